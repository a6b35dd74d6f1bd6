"""The store interface of SMPP correlation (migration 0004): which carrier message id is which part of
which message, and what its delivery receipt said.

Only the smpp daemon calls it: `record_submission` once per part after its submit_sm_resp, `find_attempt`
when a dispatch is redelivered, `find_submission` + `mark_dlr` per receipt, `purge_submissions` now and
then. Implemented in portable SQL by `sql_smpp.SqlSmpp`, mixed into `SqlStore`. The store does not depend
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

    async def purge_submissions(self, before: float) -> int:
        """Delete parts submitted before `before` (epoch seconds); return how many."""
