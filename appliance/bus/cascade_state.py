"""Where the cascade keeps each message's state: a JetStream KV bucket, keyed by message id.

Writes are compare-and-set on the key's revision, so two workers can never both move one message:
the loser gets `StateConflict`, re-reads and re-applies. The bucket is file-backed: state survives restarts
of the cascade daemon, of nats-server and of the machine, and the cascade process holds nothing per
waiting message.

A finished message's state is written once more with a TTL (`finished_ttl_s`) instead of being deleted
at once: an input redelivered after the end (a worker killed between its publish and its ack) must
find the message finished, not start it again.
"""

from __future__ import annotations

from typing import Final

from nats.js.api import KeyValueConfig, StorageType
from nats.js.client import JetStreamContext
from nats.js.errors import BucketNotFoundError

from appliance.bus.requests import PublishRefused, Requests
from appliance.errors import BusError

BUCKET: Final = "CASCADE"
_STREAM: Final = f"KV_{BUCKET}"
_WRONG_LAST_SEQUENCE: Final = (10071, 10164)
_REMOVED: Final = ("DEL", "PURGE")


class StateConflict(BusError):
    """Another worker moved this message first; read it again."""


class StateBucket:
    """`get` and `write` (create or compare-and-set, optionally with a TTL) over the CASCADE bucket."""

    def __init__(self, requests: Requests) -> None:
        self._requests = requests

    @classmethod
    async def open(cls, js: JetStreamContext, requests: Requests) -> StateBucket:
        """The bucket, created on first use (file storage, one revision per key, direct gets)."""
        try:
            await js.key_value(BUCKET)
        except BucketNotFoundError:
            await js.create_key_value(
                KeyValueConfig(
                    bucket=BUCKET,
                    description="Cascade state per message in flight; finished ones expire.",
                    history=1,
                    storage=StorageType.FILE,
                    direct=True,
                )
            )
        return cls(requests)

    async def get(self, key: str) -> tuple[bytes, int] | None:
        """The value and its revision, or None for a message the cascade does not hold."""
        reply = await self._requests.direct_get(_STREAM, f"$KV.{BUCKET}.{key}")
        if reply is None or (reply.headers or {}).get("KV-Operation") in _REMOVED:
            return None
        return reply.data, int((reply.headers or {}).get("Nats-Sequence", "0"))

    async def write(self, key: str, value: bytes, revision: int, *, ttl_s: float | None = None) -> int:
        """Store `value` if the key is still at `revision` (0: not there); return the new revision.

        `ttl_s` makes the server remove the entry after that many seconds (a finished message).
        """
        headers = {"Nats-Expected-Last-Subject-Sequence": str(revision)}
        if ttl_s is not None:
            headers["Nats-TTL"] = str(int(ttl_s))
        try:
            return await self._requests.publish(f"$KV.{BUCKET}.{key}", value, headers)
        except PublishRefused as exc:
            if exc.code in _WRONG_LAST_SEQUENCE:
                raise StateConflict(f"cascade state of {key} moved on") from exc
            raise
