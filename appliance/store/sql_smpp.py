"""SMPP correlation (`SmppStore`) in portable SQL, mixed into `SqlStore` (sql.py) beside `SqlCarriers`.

Like the other mixins it runs over the host's `_session()` (`SqlHost`) and reaches sql.py for types only.
Both dialects run `INSERT ... ON CONFLICT (...) DO UPDATE ... WHERE` (SQLite since 3.24), which makes
`record_submission` idempotent and lets a reused carrier id replace a stale row in one statement; and a
conditional `UPDATE` makes "the first final receipt wins" atomic without a lock of our own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from appliance.errors import NotFound
from appliance.store.smpp_base import DlrMark, DlrOutcome, SmppStore, SmppSubmission
from appliance.store.sql_messages import SqlHost

if TYPE_CHECKING:
    from appliance.store.sql import Row

_FIELDS: Final = SmppSubmission.__struct_fields__
_COLUMNS: Final = ", ".join(_FIELDS)
_NEW: Final = [name for name in _FIELDS if not name.startswith("dlr_")]
_REPLACE: Final = ", ".join(
    [f"{name} = excluded.{name}" for name in _NEW if name not in ("carrier", "carrier_message_id")]
    + [f"{name} = NULL" for name in _FIELDS if name.startswith("dlr_")]
)
_RECORD: Final = (
    f"INSERT INTO smpp_submissions ({', '.join(_NEW)}) VALUES ({', '.join('?' for _ in _NEW)}) "
    f"ON CONFLICT (carrier, carrier_message_id) DO UPDATE SET {_REPLACE} "
    "WHERE smpp_submissions.message_id <> excluded.message_id "
    "OR smpp_submissions.attempt <> excluded.attempt OR smpp_submissions.part <> excluded.part"
)
_SET_DLR: Final = (
    "UPDATE smpp_submissions SET dlr_state = ?, dlr_outcome = ?, dlr_err = ?, dlr_at = ? "
    "WHERE carrier = ? AND carrier_message_id = ? AND (dlr_outcome IS NULL OR (dlr_outcome = 'pending'"
)
_FINAL_DLR: Final = _SET_DLR + "))"
_PENDING_DLR: Final = _SET_DLR + " AND COALESCE(dlr_state, '') <> ?))"
_ONE: Final = f"SELECT {_COLUMNS} FROM smpp_submissions WHERE carrier = ? AND carrier_message_id = ?"
_KEYS_PER_QUERY: Final = 100


def _submission(row: Row) -> SmppSubmission:
    return SmppSubmission(**dict(zip(_FIELDS, row, strict=True)))


class SqlSmpp(SqlHost, SmppStore):
    """Submitted parts and their receipts."""

    async def record_submission(self, submission: SmppSubmission) -> bool:
        params = tuple(getattr(submission, name) for name in _NEW)
        async with self._session(write=True) as session:
            return await session.execute(_RECORD, params) > 0

    async def find_submission(self, carrier: str, id_keys: Sequence[str]) -> SmppSubmission | None:
        keys = list(dict.fromkeys(id_keys))[:_KEYS_PER_QUERY]
        if not keys:
            return None
        marks = ", ".join("?" for _ in keys)
        sql = f"SELECT {_COLUMNS} FROM smpp_submissions WHERE carrier = ? AND id_key IN ({marks})"
        rows = [_submission(row) for row in await self._fetch_all(sql, (carrier, *keys))]
        if not rows:
            return None
        rank = {key: index for index, key in enumerate(keys)}
        return min(rows, key=lambda row: (rank[row.id_key], -row.submitted_at))

    async def find_attempt(self, carrier: str, message_id: str, attempt: int) -> list[SmppSubmission]:
        sql = (
            f"SELECT {_COLUMNS} FROM smpp_submissions WHERE message_id = ? AND attempt = ? AND carrier = ? "
            "ORDER BY part, submitted_at"
        )
        return [_submission(row) for row in await self._fetch_all(sql, (message_id, attempt, carrier))]

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
        params: tuple[object, ...] = (state, outcome, err, at, carrier, carrier_message_id)
        async with self._session(write=True) as session:
            if outcome == "pending":
                changed = await session.execute(_PENDING_DLR, (*params, state))
            else:
                changed = await session.execute(_FINAL_DLR, params)
            row = await session.fetch_one(_ONE, (carrier, carrier_message_id))
        if row is None:
            raise NotFound("smpp submission", f"{carrier}/{carrier_message_id}")
        return DlrMark(submission=_submission(row), duplicate=changed == 0)

    async def purge_submissions(self, before: float) -> int:
        async with self._session(write=True) as session:
            return await session.execute("DELETE FROM smpp_submissions WHERE submitted_at < ?", (before,))
