"""Layers 8 and 9: put an accepted message, its audit record and its `accepted` event on JetStream.

All three are published pipelined (publish_async) and awaited together: the caller answers 202 only
once JetStream has acknowledged every one. `Nats-Msg-Id` makes a retried publish a no-op inside the
streams' duplicate window, so a relay that replays after a crash does not duplicate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from nats.js.client import JetStreamContext

from appliance.bus.streams import accepted_subject, audit_subject, event_subject
from appliance.errors import BusError


class Envelope:
    """One accepted message as bytes, ready to publish (built once, also written to the intake log)."""

    __slots__ = ("accepted_event", "audit", "message", "message_id", "tenant_id")

    def __init__(self, tenant_id: str, message_id: str, message: bytes, audit: bytes, accepted_event: bytes):
        self.tenant_id = tenant_id
        self.message_id = message_id
        self.message = message
        self.audit = audit
        self.accepted_event = accepted_event


class JetStreamPublisher:
    def __init__(self, js: JetStreamContext, *, ack_timeout_s: float = 10.0) -> None:
        self._js = js
        self._timeout = ack_timeout_s

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Publish every envelope; raise BusError unless JetStream acknowledged all of them."""
        futures = []
        try:
            for env in envelopes:
                futures.append(
                    await self._js.publish_async(
                        accepted_subject(env.tenant_id), env.message, headers={"Nats-Msg-Id": env.message_id}
                    )
                )
                futures.append(
                    await self._js.publish_async(
                        audit_subject(env.tenant_id),
                        env.audit,
                        headers={"Nats-Msg-Id": f"{env.message_id}:audit"},
                    )
                )
                futures.append(
                    await self._js.publish_async(
                        event_subject(env.tenant_id, "accepted"),
                        env.accepted_event,
                        headers={"Nats-Msg-Id": f"{env.message_id}:accepted"},
                    )
                )
            async with asyncio.timeout(self._timeout):
                await asyncio.gather(*futures)
        except Exception as exc:
            for future in futures:
                future.cancel()
            raise BusError(f"JetStream did not acknowledge the publish: {exc or type(exc).__name__}") from exc
