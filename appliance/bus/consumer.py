"""Durable pull consumers with batch fetch: the shape every bus-driven daemon uses.

A handler gets a batch of messages and returns once their effect is durable; only then is the batch
acked, with one ack for the last message (AckPolicy.ALL acknowledges everything before it too: one
round trip per batch instead of one per message). A handler that raises gets the same batch
again after a growing pause (never the next one: with AckPolicy.ALL its ack would acknowledge the
failed batch too); a batch still unacked when the daemon stops is redelivered after `ack_wait`. So
handlers must be idempotent, and must skip (log) rather than raise on a malformed message, or it
would be retried forever.
"""

from __future__ import annotations

import asyncio
import contextlib
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
    while not stopping.is_set():
        try:
            messages = await subscription.fetch(batch, timeout=wait_s)
        except (NatsTimeoutError, TimeoutError):
            continue
        if not messages:
            continue
        if await _handle_until_done(handler, messages, durable=durable, stopping=stopping):
            await messages[-1].ack()


async def _handle_until_done(
    handler: BatchHandler, messages: list[Msg], *, durable: str, stopping: asyncio.Event
) -> bool:
    """Run the handler on this batch until it succeeds (True) or the daemon stops (False).

    The same batch is retried, never skipped: with AckPolicy.ALL the next batch's ack would also
    acknowledge a failed one, and its messages would never come back.
    """
    delay = 0.1
    while True:
        try:
            await handler(messages)
            return True
        except Exception as exc:
            log.error(
                "batch handler failed; retrying the same batch",
                action="consumer.handler_failed",
                durable=durable,
                count=len(messages),
                error=str(exc) or type(exc).__name__,
                retry_in_s=delay,
            )
        if stopping.is_set():
            return False
        # Tell JetStream the batch is still being worked on, so it is not handed out again meanwhile.
        with contextlib.suppress(Exception):
            await messages[-1].in_progress()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await stopping.wait()
        delay = min(delay * 2, 5.0)
