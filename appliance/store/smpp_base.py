"""The store interface of SMPP correlation (migration 0004): which carrier message id is which part of
which message, and what its delivery receipt said.

Only the smpp daemon calls it: `record_submission` once per part after its submit_sm_resp, `find_attempt`
before each dispatch, `find_submission` + `mark_dlr` per receipt, `purge_submissions` now and then. The
daemon gathers what its concurrent dispatches and receipts ask for into the batch forms
(`record_submissions`, `find_attempts`, `find_submissions`, `mark_dlrs`): one lock, transaction and
round trip for many rows instead of one each, which held it to a few hundred messages a second.
Implemented in portable SQL by `sql_smpp.SqlSmpp`, mixed into `SqlStore`. The store does not depend
on the domain, so the caller computes `id_key` (domain.dlr.id_key) and the lookup keys (domain.dlr).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

import msgspec

DlrOutcome = Literal["delivered", "failed", "pending"]


class SmppSubmission(msgspec.Struct, frozen=True, kw_only=True):
    """One part of one attempt as the carrier accepted it, and the receipt that settled it."""

    carrier: str
    carrier_message_id: str  # as the submit_sm_resp wrote it
    id_key: str  # its canonical spelling (domain.dlr.id_key), what receipts are matched on
    message_id: str
    tenant_id: str
    attempt: int
    part: int  # 1-based
    parts: int
    submitted_at: float
    dlr_state: str | None = None  # the receipt's stat, e.g. "DELIVRD"
    dlr_outcome: DlrOutcome | None = None
    dlr_err: str | None = None
    dlr_at: float | None = None


class DlrMark(msgspec.Struct, frozen=True, kw_only=True):
    """The row after `mark_dlr`; `duplicate` when the receipt changed nothing (the row shows what won)."""

    submission: SmppSubmission
    duplicate: bool


class DlrUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """One receipt to record on a part (`mark_dlrs`); the fields mean what `mark_dlr`'s do."""

    carrier_message_id: str
    state: str
    outcome: DlrOutcome
    err: str | None
    at: float


def best_match(rows: Sequence[SmppSubmission], id_keys: Sequence[str]) -> SmppSubmission | None:
    """Of the rows whose id_key is one of `id_keys`, the one under the earliest key (the newest on a
    tie): what `find_submission` returns, picked out of `find_submissions`' rows."""
    rank: dict[str, int] = {}
    for index, key in enumerate(id_keys):
        rank.setdefault(key, index)
    matching = [row for row in rows if row.id_key in rank]
    if not matching:
        return None
    return min(matching, key=lambda row: (rank[row.id_key], -row.submitted_at))


def dlr_applies(current: SmppSubmission, update: DlrUpdate) -> bool:
    """Whether `update` changes the part (`mark_dlr`'s rule): the first final receipt wins; a pending
    one is recorded unless a final one is in, or the same state already is."""
    if current.dlr_outcome is None:
        return True
    if current.dlr_outcome != "pending":
        return False
    return update.outcome != "pending" or (current.dlr_state or "") != update.state


def with_dlr(current: SmppSubmission, update: DlrUpdate) -> SmppSubmission:
    """The part as `update` leaves it when it applies."""
    return msgspec.structs.replace(
        current, dlr_state=update.state, dlr_outcome=update.outcome, dlr_err=update.err, dlr_at=update.at
    )


class SmppStore(Protocol):
    async def record_submission(self, submission: SmppSubmission) -> bool:
        """Insert the part (its dlr fields are ignored: a new part has no receipt yet). Idempotent: the same
        (carrier, carrier_message_id) for the same (message_id, attempt, part) changes nothing and returns
        False. If the carrier reuses an id for another part (its counter wrapped), the new part replaces
        the old row, receipt fields cleared, and True is returned."""

    async def find_submission(self, carrier: str, id_keys: Sequence[str]) -> SmppSubmission | None:
        """The carrier's part whose id_key is one of `id_keys`, preferring the earliest key that matches
        (callers put the id as written first); None when none matches."""

    async def find_attempt(self, carrier: str, message_id: str, attempt: int) -> list[SmppSubmission]:
        """The recorded parts of one attempt on one carrier, ordered by part."""

    async def mark_dlr(
        self,
        carrier: str,
        carrier_message_id: str,
        *,
        state: str,
        outcome: DlrOutcome,
        err: str | None,
        at: float,
    ) -> DlrMark:
        """Record a receipt on the part. The first final receipt (delivered or failed) wins: any receipt
        after it is a duplicate and changes nothing. A pending one is recorded unless a final one is in,
        or the same state already is. NotFound("smpp submission", id) when the part is unknown."""

    async def record_submissions(self, submissions: Sequence[SmppSubmission]) -> None:
        """`record_submission` of each, in one transaction."""

    async def find_submissions(self, carrier: str, id_keys: Sequence[str]) -> list[SmppSubmission]:
        """Every part of the carrier whose id_key is one of `id_keys` (pick with `best_match`)."""

    async def find_attempts(
        self, carrier: str, attempts: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], list[SmppSubmission]]:
        """`find_attempt` of each (message_id, attempt), in one query; every one asked for is a key."""

    async def mark_dlrs(self, carrier: str, updates: Sequence[DlrUpdate]) -> list[DlrMark | None]:
        """`mark_dlr` of each, in order and in one transaction; None (not NotFound) for an unknown part.
        Each mark shows the row as its own update left it, as if they had been made one by one."""

    async def purge_submissions(self, before: float) -> int:
        """Delete parts submitted before `before` (epoch seconds); return how many."""
