"""Republishing a stored message on MESSAGES: the bus half of a dead-letter replay.

Callers: the admin daemon (`hermesctl message dlq replay`). The message goes to `msg.accepted.<tenant>`
like a fresh one, with `Nats-Msg-Id` `<message_id>:replay:<attempt_base>` (notes/cascade_contract.md), so
a retried or concurrent replay of the same run is one message inside the stream's duplicate window.
"""

from __future__ import annotations

from nats.js.client import JetStreamContext

from appliance.bus.streams import accepted_subject
from appliance.errors import BusError


def replay_msg_id(message_id: str, attempt_base: int) -> str:
    return f"{message_id}:replay:{attempt_base}"


async def republish_accepted(
    js: JetStreamContext,
    tenant_id: str,
    message_id: str,
    attempt_base: int,
    payload: bytes,
    *,
    timeout_s: float = 10.0,
) -> bool:
    """Publish and wait for JetStream's ack; True when it was a duplicate (already replayed). BusError
    when JetStream did not store it."""
    try:
        ack = await js.publish(
            accepted_subject(tenant_id),
            payload,
            timeout=timeout_s,
            stream="MESSAGES",
            headers={"Nats-Msg-Id": replay_msg_id(message_id, attempt_base)},
        )
    except Exception as exc:
        raise BusError(
            f"JetStream did not store the replay of {message_id}: {exc or type(exc).__name__}"
        ) from exc
    return bool(ack.duplicate)
