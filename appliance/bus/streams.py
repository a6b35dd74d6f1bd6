"""The JetStream streams of design.md §3 and the subjects on them.

Subjects carry the tenant so per-tenant consumers and limits are possible. `ensure_streams` is
idempotent: it creates missing streams and updates ones whose config drifted.
"""

from __future__ import annotations

import dataclasses

from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import BadRequestError, NotFoundError

DAY_S = 86_400.0

STREAMS: tuple[StreamConfig, ...] = (
    StreamConfig(
        name="MESSAGES",
        description="Validated messages in the unified format, consumed by cascade.",
        subjects=["msg.accepted.>"],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        discard=DiscardPolicy.NEW,
        duplicate_window=120.0,
    ),
    StreamConfig(
        name="DISPATCH",
        description="One delivery attempt on one path, consumed by smpp, mta and adapters.",
        subjects=["dispatch.>"],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        discard=DiscardPolicy.NEW,
        duplicate_window=120.0,
    ),
    StreamConfig(
        name="EVENTS",
        description="Delivery events per tenant: submitted, dlr, bounce, delivered, failed, ...",
        subjects=["evt.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=7 * DAY_S,
        duplicate_window=120.0,
    ),
    StreamConfig(
        name="TIMERS",
        description="The cascade's durable timers: one per channel tried, held until due by nak delays.",
        subjects=["cascade.timer.>"],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        discard=DiscardPolicy.NEW,
        duplicate_window=120.0,
    ),
    StreamConfig(
        name="AUDIT",
        description="The immutable layer-8 audit record.",
        subjects=["audit.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=400 * DAY_S,
        deny_delete=True,
        deny_purge=True,
    ),
)

# Core-NATS (not stored) subject on which admin announces registry changes so caches refresh.
REGISTRY_CHANGED = "hermes.registry.changed"
# Core-NATS request subjects answered by the router daemon (queue group `router`): one number, or many.
ROUTE_SUBJECT = "hermes.router.route"
ROUTE_MANY_SUBJECT = "hermes.router.route_many"
# The error code of a route plan the router cannot make now (ask again later); other codes are final.
ROUTE_UNAVAILABLE = "unavailable"
# Core-NATS request subject: every gateway serving SMPP answers with its live binds (admin gathers).
SMPP_SESSIONS = "hermes.gateway.smpp.sessions"


def accepted_subject(tenant_id: str) -> str:
    return f"msg.accepted.{tenant_id}"


def event_subject(tenant_id: str, kind: str) -> str:
    return f"evt.{tenant_id}.{kind}"


def audit_subject(tenant_id: str) -> str:
    return f"audit.{tenant_id}"


def timer_subject(tenant_id: str) -> str:
    return f"cascade.timer.{tenant_id}"


def _limited(stream: StreamConfig, backlog_max_messages: int) -> StreamConfig:
    """`stream` with the backlog limit applied when it is MESSAGES (JetStream's -1 is no limit)."""
    if stream.name != "MESSAGES":
        return stream
    return dataclasses.replace(stream, max_msgs=backlog_max_messages or -1)


async def ensure_streams(js: JetStreamContext, *, backlog_max_messages: int = 0) -> list[str]:
    """Create or update every stream; return the names that were created or changed.
    `backlog_max_messages`: nats.backlog_max_messages, the most MESSAGES holds (0 = no limit)."""
    changed: list[str] = []
    for stream in STREAMS:
        wanted = _limited(stream, backlog_max_messages)
        assert wanted.name is not None
        try:
            info = await js.stream_info(wanted.name)
        except NotFoundError:
            await js.add_stream(wanted)
            changed.append(wanted.name)
            continue
        current = info.config
        if (
            current.subjects != wanted.subjects
            or (current.max_age or 0.0) != (wanted.max_age or 0.0)
            or current.description != wanted.description
            or (current.max_msgs or -1) != (wanted.max_msgs or -1)
        ):
            try:
                await js.update_stream(wanted)
            except BadRequestError as exc:  # e.g. retention cannot change on a live stream
                raise RuntimeError(f"stream {wanted.name} cannot be updated: {exc}") from exc
            changed.append(wanted.name)
    return changed
