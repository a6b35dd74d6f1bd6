"""The tenant REST API (Litestar): messages in, message status out, suppression uploads.

Handlers are thin: `POST /v1/messages` hands the raw body to `Ingress`, which runs the pipeline; the
reads authenticate the same way (layers 1 and 2) and answer from the store the recorder fills.
Every error is `{error: {code, message, layer, details}}`; the status is decided by whoever built the
`Rejection` (the pipeline) or, for framework errors, in `_framework_error` — nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.params import FromPath, FromQuery

from appliance import __version__
from appliance.daemons.gateway.ingress import Answer, Ingress
from appliance.daemons.gateway.openapi import (
    BatchSubmission,
    MessageSubmission,
    SuppressionUpload,
    operation_with_body,
)
from appliance.domain.message import CHANNELS
from appliance.domain.pipeline import Rejection, normalize_address, parse_e164
from appliance.errors import NotFound
from appliance.store import EventRecord, FullStore, MessageRecord, Suppression


class ErrorDetail(msgspec.Struct):
    code: str
    message: str
    layer: str
    details: dict[str, Any]


class ErrorBody(msgspec.Struct):
    error: ErrorDetail


def _errors(*statuses: int) -> dict[int, ResponseSpec]:
    return {
        status: ResponseSpec(data_container=ErrorBody, description=_DESCRIPTIONS[status])
        for status in statuses
    }


_DESCRIPTIONS = {
    400: "L7 content rule, or malformed JSON",
    401: "L1: missing, unknown or revoked API key",
    402: "L4: balance or monthly quota exhausted",
    403: "L2: tenant suspended",
    404: "no such message for this tenant",
    409: "L0: Idempotency-Key used before (first answer attached)",
    422: "L5: invalid fields, all listed",
    429: "L3: rate limited (Retry-After)",
    451: "L6: suppressed, opted out or no marketing consent",
    503: "not stored durably; retry (Retry-After)",
}


def _respond(answer: Answer) -> Response[dict[str, Any]]:
    return Response(answer.body, status_code=answer.status, headers=answer.headers, media_type=MediaType.JSON)


def _rejection(rejection: Rejection) -> Response[dict[str, Any]]:
    return Response(rejection.body(), status_code=rejection.status, headers=rejection.headers())


def _framework_error(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = exc.detail if isinstance(exc, HTTPException) else "internal error"
    code = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}.get(status, "error")
    return Response(
        {"error": {"code": code, "message": message, "layer": "edge", "details": {}}}, status_code=status
    )


def _message_body(record: MessageRecord, events: list[EventRecord] | None) -> dict[str, Any]:
    """A message as the API shows it; `events` None in listings, which do not load them."""
    payload = record.payload
    return {
        "message_id": record.id,
        "state": record.state,
        "origin": record.origin,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "channels": payload.get("channels", []),
        "estimated_cost": record.estimated_cost,
        "cost": record.cost,
        "events": None
        if events is None
        else [
            {"kind": e.kind, "at": e.at, "state": e.state, **({"data": e.data} if e.data else {})}
            for e in events
        ],
    }


def create_gateway_app(
    *, ingress: Ingress, store: FullStore, nats_connected: Callable[[], bool], node: str
) -> Litestar:
    @get(
        "/healthz", media_type=MediaType.JSON, summary="Liveness and bus connectivity", include_in_schema=True
    )
    async def healthz() -> Response[dict[str, object]]:
        connected = nats_connected()
        status = "ok" if connected else "degraded"
        return Response(
            {"status": status, "node": node, "nats": connected}, status_code=200 if connected else 503
        )

    @post(
        "/v1/messages",
        summary="Submit a message, a cascade, or a batch of up to 1,000",
        description="202 with the message id once the message is durable; a batch answers 207 with one "
        "result per message. Send `Idempotency-Key` to make retries safe for 24 h.",
        operation_class=operation_with_body(MessageSubmission, BatchSubmission),
        status_code=202,
        responses={
            207: ResponseSpec(data_container=dict[str, Any], description="batch: one result per message"),
            **_errors(400, 401, 402, 403, 409, 422, 429, 451, 503),
        },
    )
    async def submit(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        answer = await ingress.submit(
            authorization=request.headers.get("authorization"),
            idempotency_key=request.headers.get("idempotency-key"),
            body=await request.body(),
        )
        return _respond(answer)

    @get(
        "/v1/messages/{message_id:str}",
        summary="A message's state, channels and events",
        responses=_errors(401, 403, 404),
    )
    async def show(request: Request[Any, Any, Any], message_id: FromPath[str]) -> Response[dict[str, Any]]:
        auth = await ingress.authenticate(request.headers.get("authorization"))
        if isinstance(auth, Rejection):
            return _rejection(auth)
        try:
            record = await store.get_message(auth.tenant.id, message_id)
        except NotFound:
            return _rejection(Rejection(404, "not_found", f"no message {message_id}", "edge"))
        return Response(_message_body(record, await store.list_events(auth.tenant.id, message_id)))

    @get(
        "/v1/messages",
        summary="List messages, oldest first, paged with `after`",
        responses=_errors(401, 403, 422),
    )
    async def list_messages(
        request: Request[Any, Any, Any],
        status: FromQuery[str | None] = None,
        since: FromQuery[float | None] = None,
        after: FromQuery[str | None] = None,
        limit: FromQuery[int] = 100,
    ) -> Response[dict[str, Any]]:
        auth = await ingress.authenticate(request.headers.get("authorization"))
        if isinstance(auth, Rejection):
            return _rejection(auth)
        if not 1 <= limit <= 1000:
            return _rejection(
                Rejection(422, "invalid_query", "limit must be 1-1000", "edge", {"field": "limit"})
            )
        records = await store.list_messages(
            auth.tenant.id, state=status, since=since, after_id=after, limit=limit
        )
        return Response(
            {
                "messages": [_message_body(record, None) for record in records],
                "next": records[-1].id if len(records) == limit else None,
            }
        )

    @post(
        "/v1/suppressions",
        summary="Upload addresses never to be contacted (layer 6)",
        operation_class=operation_with_body(SuppressionUpload),
        status_code=200,
        responses=_errors(401, 403, 422),
    )
    async def upload_suppressions(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        auth = await ingress.authenticate(request.headers.get("authorization"))
        if isinstance(auth, Rejection):
            return _rejection(auth)
        try:
            upload = msgspec.json.decode(await request.body(), type=SuppressionUpload)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            return _rejection(Rejection(422, "invalid_upload", str(exc), "edge"))
        if upload.channel not in CHANNELS:
            return _rejection(
                Rejection(422, "invalid_upload", "unknown channel", "edge", {"field": "channel"})
            )
        bad = [a for a in upload.addresses if upload.channel in ("sms", "whatsapp") and parse_e164(a) is None]
        if bad:
            return _rejection(
                Rejection(422, "invalid_upload", "not E.164 numbers", "edge", {"addresses": bad[:20]})
            )
        added = 0
        for address in upload.addresses:
            await store.add_suppression(
                Suppression(
                    tenant_id=auth.tenant.id,
                    address=normalize_address(upload.channel, address),
                    reason=upload.reason[:200],
                    created_at=ingress.now(),
                )
            )
            added += 1
        ingress.suppressions_changed(auth.tenant.id)
        return Response({"added": added})

    return Litestar(
        route_handlers=[healthz, submit, show, list_messages, upload_suppressions],
        exception_handlers={Exception: _framework_error},
        openapi_config=OpenAPIConfig(
            title="Hermes REST API",
            version=__version__,
        ),
    )
