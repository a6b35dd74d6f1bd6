"""The store interface of dead letters: messages whose every channel failed, kept for an operator.

Callers: the recorder adds entries from `dead_lettered` events (in batches, off the hot path); the admin
daemon lists, shows, replays and purges them (`hermesctl message dlq ...`). Implemented in portable SQL
by `sql_dead_letters.SqlDeadLetters`, mixed into `SqlStore`. An entry holds no copy of the message:
replay reads the accepted message from `messages.payload`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from appliance.errors import Conflict
from appliance.store.models import DeadLetter

DeadLetterFilter = Literal["dead", "replayed", "purged", "all"]


class NotDeadLettered(Conflict):
    """A replay of a message that is not (or no longer) dead-lettered: refused, nothing published."""

    def __init__(self, message_id: str, status: str) -> None:
        super().__init__("dead letter", message_id)
        self.args = (f"message {message_id} is not dead-lettered (its entry is {status}); nothing replayed",)
        self.status = status


class DeadLetterStore(Protocol):
    async def add_dead_letters(self, entries: Sequence[DeadLetter]) -> int:
        """Insert entries; return how many were written. Idempotent: an entry whose event_id is already
        stored changes nothing. An entry for a message already dead-lettered by an earlier attempt run
        (a replay that failed again) reopens it: status back to dead, the new event, attempt, reason and
        history, replay_count kept. A purged entry stays purged unless the new entry is a later attempt."""

    async def list_dead_letters(
        self,
        *,
        tenant_id: str | None = None,
        status: DeadLetterFilter = "dead",
        since: float | None = None,
        before: float | None = None,
        after_id: str | None = None,
        limit: int = 100,
    ) -> list[DeadLetter]:
        """Ascending by message id (= creation time); `after_id` is the paging cursor; `since`/`before`
        bound dead_lettered_at (since inclusive, before exclusive)."""

    async def get_dead_letter(self, message_id: str) -> DeadLetter:
        """NotFound("dead letter", id) when there is none (purged ones are found, with status purged)."""

    async def mark_replayed(self, message_id: str, *, attempt_base: int, at: float) -> DeadLetter:
        """Count a replay of a dead entry: dead -> replayed when attempt_base >= its attempt; when the entry
        already holds a later run (the replay ran and died again before this call) it stays dead.
        NotFound when absent; NotDeadLettered (a Conflict) when it is not dead (already replayed, purged)."""

    async def purge_dead_letters(
        self, *, message_id: str | None = None, tenant_id: str | None = None, before: float | None = None
    ) -> int:
        """Mark matching dead or replayed entries purged and drop their history; return how many. Needs
        `message_id`, or `tenant_id` and/or `before` (dead_lettered_at < before); InvalidInput with none.
        NotFound("dead letter", id) for a message_id with no live entry."""
