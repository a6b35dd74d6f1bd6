"""The validation pipeline as one transport-neutral call: REST today, SMPP and SMTP ingress later.

Each layer's decision is pure (`appliance.domain.pipeline`); this class feeds them what they need
from the caches and the bus, in order, and turns the outcome into an `Answer`. Order, cheapest first:
L1 key → L2 tenant → L0 idempotency → L3 rate → L5 schema → L4 balance/quota → L6 compliance →
L7 content → L8 audit + L9 publish. L0 runs after L1/L2 (not first, as in the seed's diagram) so a
remembered answer is never served to a caller who cannot prove they are the tenant. L4 runs after
L5 because the reservation is the message's estimated cost, which needs a valid message.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from appliance.bus.idempotency import IdempotencyStore
from appliance.bus.publisher import Envelope, Sink
from appliance.bus.rate_bucket import SharedBuckets
from appliance.config.schema import Config
from appliance.daemons.gateway.accountant import Accountant
from appliance.daemons.gateway.rate_leases import RateLeases
from appliance.daemons.gateway.registry_cache import Authenticated, RegistryCache
from appliance.daemons.gateway.suppressions import GLOBAL, SuppressionCache
from appliance.domain.message import BatchRequest, Message, MessageRequest, Origin, new_message_id
from appliance.domain.pipeline import (
    ContentRules,
    ContentScanner,
    Rejection,
    check_compliance,
    describe_decode_error,
    normalize,
)
from appliance.errors import BusError
from appliance.logs import get_logger

log = get_logger("hermes.ingress")
_REQUEST_DECODER = msgspec.json.Decoder(MessageRequest)
_BATCH_DECODER = msgspec.json.Decoder(BatchRequest)
_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _answer(rejection: Rejection) -> Answer:
    return Answer(rejection.status, rejection.body(), rejection.headers())


_UNAUTHORIZED = Rejection(
    401, "unauthorized", "a valid API key is required: Authorization: Bearer hk_...", "L1"
)


class _Audit(msgspec.Struct):
    action: str
    tenant_id: str
    message_id: str
    at: float
    origin: str
    key_id: str
    fingerprint: str
    channels: list[str]


class Ingress:
    def __init__(
        self,
        *,
        config: Config,
        registry: RegistryCache,
        accountant: Accountant,
        suppressions: SuppressionCache,
        idempotency: IdempotencyStore | None,
        sink: Sink,
        workers: int = 1,
        rate_buckets: SharedBuckets | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._registry = registry
        self._accountant = accountant
        self._suppressions = suppressions
        self._idempotency = idempotency
        self._sink = sink
        self._workers = workers
        self._clock = clock
        self._monotonic = monotonic
        self._rate = RateLeases(rate_buckets, workers=workers, monotonic=monotonic)
        content = config.gateway.content
        self._scanner = ContentScanner(
            ContentRules(
                prohibited_patterns=list(content.prohibited_patterns),
                blocked_domains=list(content.blocked_domains),
                default_shorteners=content.block_url_shorteners,
                max_urls=content.max_urls,
                spam_score_threshold=content.spam_score_threshold,
                spam_phrases=list(content.spam_phrases),
            )
        )
        self._timeouts = config.cascade.timeouts()
        self._pricing = config.pricing
        # per-message price of each non-SMS channel (SMS is priced per part), looked up on every request
        self._channel_prices = {
            "email": config.pricing.email,
            "push": config.pricing.push,
            "whatsapp": config.pricing.whatsapp,
            "telegram": config.pricing.telegram,
        }

    # ---- entry points ------------------------------------------------------------------------
    async def submit(
        self, *, authorization: str | None, idempotency_key: str | None, body: bytes, origin: Origin = "rest"
    ) -> Answer:
        """One request: a single message (202) or a batch (207 with one result per message)."""
        auth = await self.authenticate(authorization)
        if isinstance(auth, Rejection):
            return _answer(auth)
        claimed = False
        if idempotency_key is not None:
            remembered = await self._claim(auth, idempotency_key)
            if remembered is not None:
                return remembered
            claimed = True
        try:
            answer = await self._submit(auth, idempotency_key, body, origin)
        except BaseException:
            if claimed:
                await self._release(auth, idempotency_key)
            raise
        if claimed:
            assert idempotency_key is not None
            if answer.status in (202, 207):
                await self._remember(auth, idempotency_key, answer)
            else:
                await self._release(auth, idempotency_key)
        return answer

    async def _submit(
        self, auth: Authenticated, idempotency_key: str | None, body: bytes, origin: Origin
    ) -> Answer:
        try:
            request = _REQUEST_DECODER.decode(body)
        except msgspec.ValidationError as exc:
            if "unknown field `messages`" not in str(exc):
                return _answer(describe_decode_error(exc))
            return await self._submit_batch(auth, idempotency_key, body, origin)
        except msgspec.DecodeError as exc:
            return _answer(describe_decode_error(exc))
        result = await self._validate(auth, request, idempotency_key, origin)
        if isinstance(result, Rejection):
            return _answer(result)
        message, envelope = result
        try:
            await self._sink([envelope])
        except BusError as exc:
            self._accountant.refund(message.tenant_id, message.estimated_cost, 1)
            return _unavailable(exc)
        return Answer(202, _accepted_body(message, self._pricing.currency))

    async def _submit_batch(
        self, auth: Authenticated, idempotency_key: str | None, body: bytes, origin: Origin
    ) -> Answer:
        try:
            batch = _BATCH_DECODER.decode(body)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            return _answer(describe_decode_error(exc))
        limit = self._config.gateway.max_batch
        if not 1 <= len(batch.messages) <= limit:
            return _answer(
                Rejection(
                    422,
                    "invalid_batch",
                    f"a batch holds 1 to {limit} messages",
                    "L5",
                    {"count": len(batch.messages), "max": limit},
                )
            )
        results: list[dict[str, Any]] = []
        accepted: list[tuple[int, Message, Envelope]] = []
        for index, item in enumerate(batch.messages):
            try:
                request = msgspec.convert(item, MessageRequest)
            except msgspec.ValidationError as exc:
                outcome: Rejection | tuple[Message, Envelope] = describe_decode_error(exc)
            else:
                outcome = await self._validate(auth, request, None, origin)
            if isinstance(outcome, Rejection):
                results.append({"index": index, "status": outcome.status, **outcome.body()})
            else:
                results.append({})
                accepted.append((index, *outcome))
        if accepted:
            try:
                await self._sink([envelope for _, _, envelope in accepted])
            except BusError as exc:
                for index, message, _ in accepted:
                    self._accountant.refund(message.tenant_id, message.estimated_cost, 1)
                    results[index] = {"index": index, "status": 503, **_unavailable(exc).body}
                accepted = []
        for index, message, _ in accepted:
            results[index] = {
                "index": index,
                "status": 202,
                **_accepted_body(message, self._pricing.currency),
            }
        return Answer(
            207, {"accepted": len(accepted), "rejected": len(results) - len(accepted), "results": results}
        )

    async def submit_authenticated(
        self, auth: Authenticated, request: MessageRequest, origin: Origin
    ) -> Message | Rejection:
        """One message from a session that already authenticated its tenant (an SMPP bind): L3..L9,
        the same layers as `submit`. Returns the accepted message once it is durable, else why not."""
        [result] = await self.submit_authenticated_many([(auth, request)], origin)
        return result

    async def submit_authenticated_many(
        self, items: Sequence[tuple[Authenticated, MessageRequest]], origin: Origin
    ) -> list[Message | Rejection]:
        """Several such messages (concurrent submit_sm of SMPP binds), each judged on its own and the
        accepted ones made durable together: one sink call, so one wait for JetStream's acks."""
        results: list[Message | Rejection] = []
        accepted: list[tuple[int, Message, Envelope]] = []
        for auth, request in items:
            outcome = await self._validate(auth, request, None, origin)
            if isinstance(outcome, Rejection):
                results.append(outcome)
            else:
                accepted.append((len(results), *outcome))
                results.append(outcome[0])
        if accepted:
            try:
                await self._sink([envelope for _, _, envelope in accepted])
            except BusError as exc:
                refusal = _not_durable(exc)
                for index, message, _ in accepted:
                    self._accountant.refund(message.tenant_id, message.estimated_cost, 1)
                    results[index] = refusal
        return results

    def now(self) -> float:
        return self._clock()

    def suppressions_changed(self, tenant_id: str) -> None:
        self._suppressions.invalidate(tenant_id)

    # ---- layers ------------------------------------------------------------------------------
    async def authenticate(self, authorization: str | None) -> Authenticated | Rejection:
        """Layers 1 and 2, also used by the read endpoints."""
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return _UNAUTHORIZED
        auth = await self._registry.authenticate(presented.strip())
        if auth is None:
            return _UNAUTHORIZED
        if auth.tenant.status != "active":
            return Rejection(
                403,
                "tenant_suspended",
                f"tenant {auth.tenant.name} is suspended",
                "L2",
                {"tenant_id": auth.tenant.id},
            )
        return auth

    async def _claim(self, auth: Authenticated, idempotency_key: str) -> Answer | None:
        if self._idempotency is None:
            return None
        if not 1 <= len(idempotency_key) <= 255:
            return _answer(
                Rejection(422, "invalid_idempotency_key", "Idempotency-Key must be 1-255 characters", "L0")
            )
        try:
            claim = await self._idempotency.claim(auth.tenant.id, idempotency_key)
        except Exception as exc:
            return _unavailable(exc)
        if claim.outcome == "claimed":
            return None
        if claim.outcome == "in_progress":
            return _answer(
                Rejection(
                    409,
                    "request_in_progress",
                    "a request with this Idempotency-Key is still being processed",
                    "L0",
                )
            )
        first = claim.answer or {}
        body = Rejection(
            409,
            "duplicate_request",
            "this Idempotency-Key was used before; first answer attached",
            "L0",
            {"first_response": first},
        ).body()
        if "message_id" in first.get("body", {}):
            body["message_id"] = first["body"]["message_id"]
        return Answer(409, body)

    async def _remember(self, auth: Authenticated, idempotency_key: str, answer: Answer) -> None:
        if self._idempotency is not None:
            try:
                await self._idempotency.answer(
                    auth.tenant.id, idempotency_key, {"status": answer.status, "body": answer.body}
                )
            except Exception as exc:  # the message is accepted; only the memory of the key is lost
                log.warning(
                    "could not remember an idempotency answer",
                    action="ingress.idem_store_failed",
                    tenant_id=auth.tenant.id,
                    error=str(exc),
                )

    async def _release(self, auth: Authenticated, idempotency_key: str | None) -> None:
        if self._idempotency is not None and idempotency_key is not None:
            try:
                await self._idempotency.release(auth.tenant.id, idempotency_key)
            except Exception as exc:
                log.warning(
                    "could not release an idempotency claim",
                    action="ingress.idem_release_failed",
                    tenant_id=auth.tenant.id,
                    error=str(exc),
                )

    async def _validate(
        self, auth: Authenticated, request: MessageRequest, idempotency_key: str | None, origin: Origin
    ) -> Rejection | tuple[Message, Envelope]:
        tenant = auth.tenant
        now = self._clock()
        limited = await self._rate.check(tenant)
        if limited is not None:
            return limited
        normalized = normalize(
            request,
            tenant_id=tenant.id,
            origin=origin,
            message_id=new_message_id(now),
            now=now,
            idempotency_key=idempotency_key,
            default_timeouts=self._timeouts,
        )
        if isinstance(normalized, Rejection):
            return normalized
        message = self._with_consent_and_cost(normalized, request)
        if isinstance(message, Rejection):
            return message
        refused = await self._accountant.reserve(tenant, message.estimated_cost, 1)
        if refused is not None:
            return refused
        tenant_list = await self._suppressions.addresses(tenant.id)
        global_list = await self._suppressions.addresses(GLOBAL)
        refused = check_compliance(
            message,
            suppressed=tenant_list.__contains__,
            globally_opted_out=global_list.__contains__,
            consent_required_for_marketing=self._config.gateway.require_marketing_consent,
            has_consent=lambda _address: message.consent,
        ) or self._scanner.scan(message)
        if refused is not None:
            self._accountant.refund(tenant.id, message.estimated_cost, 1)
            return refused
        return message, self._envelope(message, auth.key_id)

    def _with_consent_and_cost(self, message: Message, request: MessageRequest) -> Message | Rejection:
        consent = request.consent
        if consent is not None and not isinstance(consent, bool):
            return Rejection(
                422,
                "invalid_message",
                "the message has invalid fields",
                "L5",
                {"fields": [{"field": "consent", "reason": "must be true or false"}]},
            )
        cost = sum(
            self._pricing.sms_part * max(message.sms_parts, 1)
            if target.channel == "sms"
            else self._channel_prices.get(target.channel, 0.0)
            for target in message.channels
        )
        return msgspec.structs.replace(message, consent=bool(consent), estimated_cost=round(cost, 6))

    def _envelope(self, message: Message, key_id: str) -> Envelope:
        encoded = _ENCODER.encode(message)
        audit = _ENCODER.encode(
            _Audit(
                action="message.accepted",
                tenant_id=message.tenant_id,
                message_id=message.id,
                at=message.created_at,
                origin=message.origin,
                key_id=key_id,
                fingerprint=hashlib.sha256(encoded).hexdigest()[:32],
                channels=[target.channel for target in message.channels],
            )
        )
        return Envelope(message.tenant_id, message.id, encoded, audit, message.created_at)


def _accepted_body(message: Message, currency: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message_id": message.id,
        "state": "created",
        "channels": [target.channel for target in message.channels],
        "estimated_cost": message.estimated_cost,
        "currency": currency,
    }
    if message.sms_parts:
        body["sms"] = {"parts": message.sms_parts, "encoding": message.sms_encoding}
    return body


def _not_durable(exc: BaseException) -> Rejection:
    return Rejection(
        503,
        "unavailable",
        "the message could not be stored durably; retry shortly",
        "L9",
        {"reason": str(exc) or type(exc).__name__},
        retry_after_s=1.0,
    )


def _unavailable(exc: BaseException) -> Answer:
    return _answer(_not_durable(exc))
