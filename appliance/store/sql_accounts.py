"""Balances, monthly quotas and the leases gateway workers hold on them (`AccountStore`) in portable SQL,
mixed into `SqlStore` (sql.py) beside `SqlMessages` (sql_messages.py).

A tenant has no `accounts` row until its first credit or charge (until then: postpaid, balance 0) and no
`quota_usage` row for a month until something is leased or spent in it. Every check-and-reserve is one
conditional `UPDATE ... WHERE <it fits>` whose row count says whether it did: atomic on SQLite (one writer)
and on PostgreSQL (the UPDATE locks the row and re-checks its condition after a concurrent commit), with no
`SELECT ... FOR UPDATE`, which SQLite lacks. A refusal raises `_Refused` inside the transaction so that
what was already reserved rolls back.

Lock order, so that concurrent calls on PostgreSQL never deadlock: the lease row, then the account, then
the month's quota usage (take_lease and settle_lease both follow it; credit touches only the account).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from appliance.errors import InvalidInput, NotFound
from appliance.store.base import AccountStore
from appliance.store.models import Account, Lease
from appliance.store.sql_messages import SqlHost, require_tenant

if TYPE_CHECKING:
    from appliance.store.sql import Session

# The currency of an account created by its first credit or charge.
DEFAULT_CURRENCY = "EUR"

_LEASE_KEY = "tenant_id = ? AND holder = ? AND month = ?"
_NEW_ACCOUNT = (
    "INSERT INTO accounts (tenant_id, prepaid, balance, reserved, currency) VALUES (?, 0, 0, 0, ?) "
    "ON CONFLICT DO NOTHING"
)
_NEW_USAGE = (
    "INSERT INTO quota_usage (tenant_id, month, used, leased) VALUES (?, ?, 0, 0) ON CONFLICT DO NOTHING"
)
_ACCOUNT = (
    "SELECT a.prepaid, a.balance, a.reserved, a.currency, q.used, q.leased FROM tenants t "
    "LEFT JOIN accounts a ON a.tenant_id = t.id "
    "LEFT JOIN quota_usage q ON q.tenant_id = t.id AND q.month = ? "
    "WHERE t.id = ?"
)


class _Refused(Exception):
    """The lease does not fit; raised inside its transaction so that the transaction rolls back."""


def _month_of(at: float) -> str:
    """The UTC "YYYY-MM" of an epoch time (the rule of `appliance.domain.accounts.month_of`)."""
    return time.strftime("%Y-%m", time.gmtime(at))


async def _account(session: Session, tenant_id: str, month: str) -> Account:
    row = await session.fetch_one(_ACCOUNT, (month, tenant_id))
    if row is None:
        raise NotFound("tenant", tenant_id)
    prepaid, balance, reserved, currency, used, leased = row
    return Account(
        tenant_id=tenant_id,
        prepaid=bool(prepaid),
        balance=float(balance or 0.0),
        reserved=float(reserved or 0.0),
        currency=DEFAULT_CURRENCY if currency is None else str(currency),
        month=month,
        quota_used=int(used or 0),
        quota_leased=int(leased or 0),
    )


def _not_negative(**values: float) -> None:
    for name, value in values.items():
        if value < 0:
            raise InvalidInput(name, f"must not be negative, got {value}")


class SqlAccounts(SqlHost, AccountStore):
    """Accounts, quota usage, leases and the ledger."""

    async def get_account(self, tenant_id: str, month: str) -> Account:
        async with self._session(write=False) as session:
            return await _account(session, tenant_id, month)

    async def credit(self, tenant_id: str, amount: float, *, at: float, note: str) -> Account:
        """The returned account shows the quota usage of the month of `at` (UTC)."""
        async with self._session(write=True) as session:
            await require_tenant(session, tenant_id)
            await session.execute(_NEW_ACCOUNT, (tenant_id, DEFAULT_CURRENCY))
            # A debit (amount < 0) must leave at least what the leases hold.
            if not await session.execute(
                "UPDATE accounts SET balance = balance + ?, prepaid = 1 "
                "WHERE tenant_id = ? AND (? >= 0 OR balance + ? >= reserved)",
                (float(amount), tenant_id, float(amount), float(amount)),
            ):
                account = await _account(session, tenant_id, _month_of(at))
                raise InvalidInput(
                    "amount",
                    f"a debit of {-amount} would take the balance {account.balance} below the "
                    f"{account.reserved} reserved by leases",
                )
            await session.execute(
                "INSERT INTO ledger (tenant_id, at, kind, amount, note) VALUES (?, ?, 'credit', ?, ?)",
                (tenant_id, at, float(amount), note),
            )
            return await _account(session, tenant_id, _month_of(at))

    async def take_lease(
        self, tenant_id: str, holder: str, *, month: str, amount: float, messages: int, quota: int, at: float
    ) -> bool:
        _not_negative(amount=amount, messages=messages)
        key = (tenant_id, holder, month)
        try:
            async with self._session(write=True) as session:
                await require_tenant(session, tenant_id)
                # The lease row first (see the lock order in the module docstring).
                await session.execute(
                    "INSERT INTO leases (tenant_id, holder, month, amount, messages, taken_at) "
                    "VALUES (?, ?, ?, 0, 0, ?) ON CONFLICT DO NOTHING",
                    (*key, at),
                )
                await session.execute(f"UPDATE leases SET taken_at = ? WHERE {_LEASE_KEY}", (at, *key))
                reserved = 0.0
                if await session.execute(
                    "UPDATE accounts SET reserved = reserved + ? "
                    "WHERE tenant_id = ? AND prepaid = 1 AND balance - reserved >= ?",
                    (float(amount), tenant_id, float(amount)),
                ):
                    reserved = float(amount)
                elif await session.fetch_one(
                    "SELECT 1 FROM accounts WHERE tenant_id = ? AND prepaid = 1", (tenant_id,)
                ):
                    raise _Refused
                leased = 0
                if quota > 0:
                    await session.execute(_NEW_USAGE, (tenant_id, month))
                    if not await session.execute(
                        "UPDATE quota_usage SET leased = leased + ? "
                        "WHERE tenant_id = ? AND month = ? AND used + leased + ? <= ?",
                        (messages, tenant_id, month, messages, quota),
                    ):
                        raise _Refused
                    leased = messages
                await session.execute(
                    f"UPDATE leases SET amount = amount + ?, messages = messages + ? WHERE {_LEASE_KEY}",
                    (reserved, leased, *key),
                )
        except _Refused:
            return False
        return True

    async def settle_lease(
        self, tenant_id: str, holder: str, *, month: str, spent_amount: float, spent_messages: int,
        release: bool, at: float,
    ) -> None:  # fmt: skip
        _not_negative(spent_amount=spent_amount, spent_messages=spent_messages)
        key = (tenant_id, holder, month)
        async with self._session(write=True) as session:
            await require_tenant(session, tenant_id)
            # A no-op UPDATE locks the lease row (first: see the lock order) and reads it.
            row = await session.fetch_one(
                f"UPDATE leases SET taken_at = taken_at WHERE {_LEASE_KEY} RETURNING amount, messages", key
            )
            held_amount, held_messages = (float(row[0]), int(row[1])) if row is not None else (0.0, 0)
            # What leaves the lease: what was spent out of it, and with `release` all the rest too.
            back_amount = held_amount if release else min(float(spent_amount), held_amount)
            back_messages = held_messages if release else min(spent_messages, held_messages)
            if spent_amount or back_amount:
                await session.execute(_NEW_ACCOUNT, (tenant_id, DEFAULT_CURRENCY))
                await session.execute(
                    "UPDATE accounts SET balance = balance - ?, "
                    "reserved = CASE WHEN reserved < ? THEN 0 ELSE reserved - ? END WHERE tenant_id = ?",
                    (float(spent_amount), back_amount, back_amount, tenant_id),
                )
            if spent_messages or back_messages:
                await session.execute(_NEW_USAGE, (tenant_id, month))
                await session.execute(
                    "UPDATE quota_usage SET used = used + ?, leased = CASE WHEN leased < ? THEN 0 "
                    "ELSE leased - ? END WHERE tenant_id = ? AND month = ?",
                    (spent_messages, back_messages, back_messages, tenant_id, month),
                )
            if release:
                await session.execute(f"DELETE FROM leases WHERE {_LEASE_KEY}", key)
            elif row is not None:
                await session.execute(
                    f"UPDATE leases SET amount = ?, messages = ? WHERE {_LEASE_KEY}",
                    (held_amount - back_amount, held_messages - back_messages, *key),
                )
            if spent_amount:
                await session.execute(
                    "INSERT INTO ledger (tenant_id, at, kind, amount, note) VALUES (?, ?, 'charge', ?, ?)",
                    (
                        tenant_id,
                        at,
                        float(spent_amount),
                        f"{spent_messages} message(s) by {holder} in {month}",
                    ),
                )

    async def leases_of(self, holder: str) -> list[Lease]:
        rows = await self._fetch_all(
            "SELECT tenant_id, holder, month, amount, messages, taken_at FROM leases WHERE holder = ? "
            "ORDER BY tenant_id, month",
            (holder,),
        )
        return [
            Lease(tenant_id=t, holder=h, month=m, amount=float(a), messages=int(n), taken_at=float(at))
            for t, h, m, a, n, at in rows
        ]
