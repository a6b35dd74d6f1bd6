"""Durable pull consumers with batch fetch: the shape every bus-driven daemon uses.

A handler gets a batch of messages and returns once their effect is durable; only then is the batch
acked, with one ack for the last message (AckPolicy.ALL acknowledges everything before it too: one
round trip per batch instead of one per message). A handler that raises leaves the batch unacked
(JetStream redelivers after `ack_wait`), so handlers must be idempotent, and must skip (log) rather
than raise on a malformed message, or it would come back forever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from appliance.logs import get_logger

BatchHandler = Callable[[list[Msg]], Awaitable[None]]
log = get_logger("hermes.consumer")


async def consume(
    js: JetStreamContext,
    *,
    stream: str,
    durable: str,
    subject: str,
    handler: BatchHandler,
    stopping: asyncio.Event,
    batch: int = 500,
    wait_s: float = 0.5,
    ack_wait_s: float = 30.0,
) -> None:
    """Fetch, handle and ack batches until `stopping` is set."""
    config = ConsumerConfig(
        durable_name=durable,
        ack_policy=AckPolicy.ALL,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=ack_wait_s,
        max_ack_pending=batch * 4,
        filter_subject=subject,
    )
    subscription = await js.pull_subscribe(subject, durable=durable, stream=stream, config=config)
    delay = 0.1
    while not stopping.is_set():
        try:
            messages = await subscription.fetch(batch, timeout=wait_s)
        except (NatsTimeoutError, TimeoutError):
            continue
        if not messages:
            continue
        try:
            await handler(messages)
        except Exception as exc:
            log.error(
                "batch handler failed; it will be redelivered",
                action="consumer.handler_failed",
                durable=durable,
                count=len(messages),
                error=str(exc) or type(exc).__name__,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
            continue
        delay = 0.1
        await messages[-1].ack()
