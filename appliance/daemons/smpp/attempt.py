"""`AttemptSender`: one dispatch (one attempt of one message) onto its carrier, exactly once if it can be.

The dispatcher hands each decoded `SmsDispatch` to `send` and acks or hands back by the verdict. The
attempt is cut into parts (`parts.build_parts`); the parts already recorded for (message_id, attempt)
are not sent again, so a redelivered dispatch costs nothing at the carrier, and the missing ones go
out with the same concatenation reference. Each part is recorded (`record_submission`, batched with
other dispatches' by the `SubmissionBook`) the moment its submit_sm_resp is in (announced to
`PendingIds` meanwhile, so a fast receipt waits for the row).
Only when every part is recorded is `submitted` published and "ack" returned. A permanent refusal, or
temporary errors on every try, publish `rejected` and return "ack"; so does a dispatch not wholly sent
within `dispatch_max_age_s`, or still unsent after the cascade's `expires_at` (reason "expired", with
the ids of any parts that did go out). Anything else (no bind, closing, store or bus trouble) returns
"nak": the dispatch comes back later.
"""

from __future__ import annotations

import asyncio
import time
from typing import Literal

from appliance.daemons.smpp.batching import SubmissionBook
from appliance.daemons.smpp.parts import build_parts
from appliance.daemons.smpp.pool import CarrierPool, SubmitFailed, SubmitRefused
from appliance.daemons.smpp.publish import EventSink, rejected_event, submitted_event
from appliance.daemons.smpp.receipts import PendingIds
from appliance.daemons.smpp.settings import SmppSettings
from appliance.domain.dispatch import SmsDispatch, expired
from appliance.domain.dlr import id_key
from appliance.errors import InvalidInput, StoreError
from appliance.logs import get_logger
from appliance.protocols.smpp.pdu import SubmitSm
from appliance.store.smpp_base import SmppSubmission

Verdict = Literal["ack", "nak"]
log = get_logger("hermes.smpp")


class AttemptSender:
    """`await send(dispatch)` -> "ack" (settled: submitted or rejected) or "nak" (try again later)."""

    def __init__(
        self,
        pool: CarrierPool,
        *,
        book: SubmissionBook,
        sink: EventSink,
        settings: SmppSettings,
        pending: PendingIds,
    ) -> None:
        self.pool = pool
        self.submitted = 0
        self.rejected = 0
        self.resubmits_avoided = 0
        self._book = book
        self._sink = sink
        self._settings = settings
        self._pending = pending

    async def send(self, dispatch: SmsDispatch) -> Verdict:
        carrier = self.pool.carrier
        found = await self._book.find_attempt(carrier.name, dispatch.message_id, dispatch.attempt)
        recorded = {part.part: part for part in found}
        try:
            pdus = build_parts(dispatch, carrier)
        except InvalidInput as exc:
            return await self._reject(dispatch, reason="invalid", detail=str(exc))
        missing = [(number, pdu) for number, pdu in enumerate(pdus, 1) if number not in recorded]
        if not missing:
            self.resubmits_avoided += 1
            return await self._submitted(dispatch, recorded)
        now = time.time()
        if expired(dispatch.expires_at, now):  # the cascade has moved on: sending now would duplicate
            return await self._reject(
                dispatch,
                reason="expired",
                detail=f"the cascade gave up on this attempt {now - dispatch.expires_at:.1f} s ago",
                accepted=[recorded[number].carrier_message_id for number in sorted(recorded)],
            )
        age = now - dispatch.created_at
        if dispatch.created_at and age > self._settings.dispatch_max_age_s:
            return await self._reject(
                dispatch,
                reason="expired",
                detail=f"{age:.0f} s old, {len(missing)} of {len(pdus)} parts unsent",
                accepted=[recorded[number].carrier_message_id for number in sorted(recorded)],
            )
        results = await asyncio.gather(
            *(self._submit_part(dispatch, number, len(pdus), pdu) for number, pdu in missing),
            return_exceptions=True,
        )
        failures: list[tuple[int, BaseException]] = []
        for (number, _), result in zip(missing, results, strict=True):
            if isinstance(result, SmppSubmission):
                recorded[number] = result
            else:
                failures.append((number, result))
        if not failures:
            return await self._submitted(dispatch, recorded)
        accepted = [recorded[number].carrier_message_id for number in sorted(recorded)]
        for number, error in failures:
            if isinstance(error, SubmitRefused | SubmitFailed):
                reason = "refused" if isinstance(error, SubmitRefused) else "retries_exhausted"
                return await self._reject(
                    dispatch,
                    reason=reason,
                    status=error.command_status,
                    status_name=error.status_name,
                    part=number,
                    detail=str(error),
                    accepted=accepted,
                )
        number, error = failures[0]
        log.warning(
            "dispatch handed back",
            action="smpp.handed_back",
            carrier=carrier.name,
            message_id=dispatch.message_id,
            part=number,
            error=str(error) or repr(error),
        )
        return "nak"

    async def _submit_part(
        self, dispatch: SmsDispatch, number: int, parts: int, pdu: SubmitSm
    ) -> SmppSubmission:
        carrier = self.pool.name
        ref = f"{dispatch.message_id}:{dispatch.attempt}:{number}/{parts}"
        carrier_message_id = await self.pool.submit(pdu, ref=ref)
        key = id_key(carrier_message_id)
        self._pending.add(carrier, key)
        try:
            submission = SmppSubmission(
                carrier=carrier,
                carrier_message_id=carrier_message_id,
                id_key=key,
                message_id=dispatch.message_id,
                tenant_id=dispatch.tenant_id,
                attempt=dispatch.attempt,
                part=number,
                parts=parts,
                submitted_at=time.time(),
            )
            await self._record(submission)
        finally:
            self._pending.done(carrier, key)
        return submission

    async def _record(self, submission: SmppSubmission) -> None:
        """Record, retrying briefly: the carrier has the part, so losing the row would cost a duplicate."""
        for attempt in range(4):
            try:
                await self._book.record_submission(submission)
                return
            except StoreError as exc:
                if attempt == 3:
                    log.error(
                        "accepted part not recorded; a redelivery will send it again",
                        action="smpp.record_failed",
                        carrier=submission.carrier,
                        carrier_message_id=submission.carrier_message_id,
                        error=str(exc),
                    )
                    raise
                await asyncio.sleep(0.2 * 2**attempt)

    async def _submitted(self, dispatch: SmsDispatch, recorded: dict[int, SmppSubmission]) -> Verdict:
        await self._sink.publish(submitted_event(dispatch, [recorded[n] for n in sorted(recorded)]))
        self.submitted += 1
        return "ack"

    async def _reject(
        self,
        dispatch: SmsDispatch,
        *,
        reason: str,
        status: int | None = None,
        status_name: str | None = None,
        part: int | None = None,
        detail: str = "",
        accepted: list[str] | None = None,
    ) -> Verdict:
        event = rejected_event(
            dispatch,
            reason=reason,
            status=status,
            status_name=status_name,
            part=part,
            detail=detail,
            accepted=accepted or [],
        )
        await self._sink.publish(event)
        self.rejected += 1
        log.info(
            "dispatch rejected",
            action="smpp.rejected",
            carrier=dispatch.carrier,
            message_id=dispatch.message_id,
            reason=reason,
            status=status_name,
        )
        return "ack"
