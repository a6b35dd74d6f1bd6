"""The events the smpp daemon puts on EVENTS (`evt.<tenant>.<kind>`): how each is built and published.

Ids are derived from what the event is about, so a redelivered dispatch or a resent receipt produces
the same id: JetStream drops the copy inside its duplicate window (`Nats-Msg-Id`), and the recorder and
cascade recognise it after that.

    submitted   <message>:<attempt>:submitted          data: carrier, parts, carrier_message_ids
    rejected    <message>:<attempt>:rejected           data: carrier, reason, status, status_name, part,
                                                             detail, accepted (ids of parts sent anyway)
    dlr         <message>:<attempt>:dlr:<part>:<stat>  data: carrier, carrier_message_id, part, parts,
                                                             stat, err, outcome, final, attempt_outcome

`rejected` reasons: `refused` (the carrier's permanent status), `retries_exhausted` (temporary errors
every try), `expired` (not wholly sent within smpp.dispatch_max_age_s), `invalid` (the text
cannot be sent as SMS). A dlr's `outcome` is its part's (delivered, failed, pending) and `final` says
whether more can follow; `attempt_outcome` is the whole attempt's so far: delivered once every part is,
failed once any part is, pending otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import msgspec
from nats.js.client import JetStreamContext

from appliance.bus.streams import event_subject
from appliance.domain.dispatch import SmsDispatch
from appliance.domain.dlr import Outcome, Receipt
from appliance.domain.events import Event
from appliance.errors import BusError
from appliance.store.smpp_base import SmppSubmission

_ENCODER = msgspec.json.Encoder()


class EventSink:
    """Publishes one event and returns once JetStream has stored it; `BusError` otherwise."""

    def __init__(self, js: JetStreamContext, *, timeout_s: float = 5.0) -> None:
        self._js = js
        self._timeout_s = timeout_s
        self.published = 0

    async def publish(self, event: Event) -> None:
        subject = event_subject(event.tenant_id, event.kind)
        try:
            await self._js.publish(
                subject, _ENCODER.encode(event), timeout=self._timeout_s, headers={"Nats-Msg-Id": event.id}
            )
        except Exception as exc:
            raise BusError(f"JetStream did not store {event.kind} {event.id}: {exc!r}") from exc
        self.published += 1


def _attempt_event(dispatch: SmsDispatch, kind: str, **data: Any) -> Event:
    """An event about one attempt; its id is the same for a redelivered dispatch, so JetStream drops it."""
    return Event(
        kind=kind,
        id=f"{dispatch.message_id}:{dispatch.attempt}:{kind}",
        message_id=dispatch.message_id,
        tenant_id=dispatch.tenant_id,
        at=time.time(),
        data={"carrier": dispatch.carrier, "attempt": dispatch.attempt, **data},
    )


def submitted_event(dispatch: SmsDispatch, parts: Sequence[SmppSubmission]) -> Event:
    return _attempt_event(
        dispatch,
        "submitted",
        parts=len(parts),
        carrier_message_ids=[part.carrier_message_id for part in parts],
    )


def rejected_event(
    dispatch: SmsDispatch,
    *,
    reason: str,
    status: int | None = None,
    status_name: str | None = None,
    part: int | None = None,
    detail: str = "",
    accepted: Sequence[str] = (),
) -> Event:
    return _attempt_event(
        dispatch,
        "rejected",
        reason=reason,
        status=status,
        status_name=status_name,
        part=part,
        detail=detail,
        accepted=list(accepted),
    )


def attempt_outcome(parts: Sequence[SmppSubmission]) -> Outcome:
    """Delivered once every part is, failed once any part is, else pending (parts missing count too)."""
    if any(part.dlr_outcome == "failed" for part in parts):
        return "failed"
    expected = max((part.parts for part in parts), default=0)
    delivered = {part.part for part in parts if part.dlr_outcome == "delivered"}
    return "delivered" if expected and len(delivered) >= expected else "pending"


def dlr_event(part: SmppSubmission, receipt: Receipt, siblings: Sequence[SmppSubmission]) -> Event:
    """The event for a receipt as the store settled it (`part` holds the state that won)."""
    stat = part.dlr_state or receipt.stat or "UNKNOWN"
    outcome: Outcome = part.dlr_outcome or receipt.outcome
    data: dict[str, Any] = {
        "carrier": part.carrier,
        "carrier_message_id": part.carrier_message_id,
        "attempt": part.attempt,
        "part": part.part,
        "parts": part.parts,
        "stat": stat,
        "err": part.dlr_err if part.dlr_state else receipt.err,
        "outcome": outcome,
        "final": outcome != "pending",
        "attempt_outcome": attempt_outcome(siblings),
        "done_at": receipt.done_date,
    }
    return Event(
        kind="dlr",
        id=f"{part.message_id}:{part.attempt}:dlr:{part.part}:{stat}",
        message_id=part.message_id,
        tenant_id=part.tenant_id,
        at=time.time(),
        data=data,
    )
