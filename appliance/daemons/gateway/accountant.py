"""Layer 4: balance and quota, with leases so the hot path rarely touches the store.

Each gateway worker ("holder") reserves a chunk of a tenant's prepaid balance and/or monthly quota in
one store transaction (`take_lease`), spends from it in memory, and settles what it spent every
second (`settle_lease`). A lease is carved out of what is available, so the sum of all workers'
spending can never exceed a tenant's balance or quota: no overspend at all, not even by a batch.
The price is that a worker may refuse (402) while another still holds unspent lease; chunks are
kept small near the limit to bound that. After a crash, a worker's restart hands its old leases
back (anything spent in the last second before the crash goes uncharged: the error is in the
tenant's favour).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from appliance.domain.accounts import month_of
from appliance.domain.pipeline import Rejection
from appliance.logs import get_logger
from appliance.store import FullStore, Tenant

log = get_logger("hermes.accountant")
_MESSAGE_CHUNK = 1_000


@dataclass
class _Ledger:
    prepaid: bool
    month: str
    lease_amount: float = 0.0
    lease_messages: int = 0
    spent_amount: float = 0.0
    spent_messages: int = 0
    stale: bool = False  # the account changed: settle, release and re-read it before the next use
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Accountant:
    def __init__(
        self, store: FullStore, holder: str, *, amount_chunk: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self.holder = holder
        self._amount_chunk = amount_chunk
        self._clock = clock
        self._ledgers: dict[str, _Ledger] = {}

    async def reclaim(self) -> int:
        """Hand back the leases an earlier run of this holder left behind; return how many."""
        leases = await self._store.leases_of(self.holder)
        for lease in leases:
            await self._store.settle_lease(
                lease.tenant_id,
                self.holder,
                month=lease.month,
                spent_amount=0.0,
                spent_messages=0,
                release=True,
                at=self._clock(),
            )
        return len(leases)

    def invalidate(self, tenant_id: str) -> None:
        """The account changed (credit, quota edit): re-read it on next use."""
        ledger = self._ledgers.get(tenant_id)
        if ledger is not None:
            ledger.stale = True

    async def _ledger(self, tenant: Tenant, now: float) -> _Ledger:
        month = month_of(now)
        ledger = self._ledgers.get(tenant.id)
        if ledger is not None and ledger.month == month and not ledger.stale:
            return ledger
        if ledger is not None:
            await self._settle_one(tenant.id, ledger, release=True)
        account = await self._store.get_account(tenant.id, month)
        fresh = _Ledger(prepaid=account.prepaid, month=month)
        self._ledgers[tenant.id] = fresh
        return fresh

    async def reserve(self, tenant: Tenant, amount: float, messages: int) -> Rejection | None:
        """Take `amount` and `messages` for a tenant, or say why not (402)."""
        now = self._clock()
        ledger = await self._ledger(tenant, now)
        quota = tenant.monthly_quota
        if not ledger.prepaid and quota == 0:
            return None
        async with ledger.lock:
            need_amount = amount - ledger.lease_amount if ledger.prepaid else 0.0
            need_messages = messages - ledger.lease_messages if quota > 0 else 0
            if need_amount > 1e-12 or need_messages > 0:
                for chunk_amount, chunk_messages in (
                    (
                        max(need_amount, self._amount_chunk) if need_amount > 1e-12 else 0.0,
                        max(need_messages, min(_MESSAGE_CHUNK, max(quota // 50, 1)))
                        if need_messages > 0
                        else 0,
                    ),
                    (max(need_amount, 0.0), max(need_messages, 0)),
                ):
                    granted = await self._store.take_lease(
                        tenant.id,
                        self.holder,
                        month=ledger.month,
                        amount=chunk_amount,
                        messages=chunk_messages,
                        quota=quota,
                        at=now,
                    )
                    if granted:
                        ledger.lease_amount += chunk_amount
                        ledger.lease_messages += chunk_messages
                        break
                else:
                    return await self._refusal(tenant, ledger, amount, messages)
            if ledger.prepaid:
                ledger.lease_amount -= amount
                ledger.spent_amount += amount
            if quota > 0:
                ledger.lease_messages -= messages
                ledger.spent_messages += messages
        return None

    def refund(self, tenant_id: str, amount: float, messages: int) -> None:
        """Give back a reservation whose message was refused after layer 4, or failed to publish."""
        ledger = self._ledgers.get(tenant_id)
        if ledger is None:
            return
        if ledger.prepaid:
            ledger.lease_amount += amount
            ledger.spent_amount -= amount
        if ledger.spent_messages >= messages:
            ledger.lease_messages += messages
            ledger.spent_messages -= messages

    async def _refusal(self, tenant: Tenant, ledger: _Ledger, amount: float, messages: int) -> Rejection:
        account = await self._store.get_account(tenant.id, ledger.month)
        if ledger.prepaid and account.balance - account.reserved + ledger.lease_amount < amount:
            return Rejection(
                status=402,
                code="insufficient_balance",
                layer="L4",
                message=f"prepaid balance too low for this message (needs {amount:.4f} {account.currency})",
                details={
                    "balance": round(account.balance, 6),
                    "currency": account.currency,
                    "needed": round(amount, 6),
                },
            )
        return Rejection(
            status=402,
            code="quota_exhausted",
            layer="L4",
            message=f"monthly quota of {tenant.monthly_quota} messages is used up for {ledger.month}",
            details={
                "quota": tenant.monthly_quota,
                "used": account.quota_used,
                "month": ledger.month,
                "needed": messages,
            },
        )

    async def _settle_one(self, tenant_id: str, ledger: _Ledger, *, release: bool) -> None:
        async with ledger.lock:
            spent_amount, spent_messages = ledger.spent_amount, ledger.spent_messages
            if not (spent_amount or spent_messages or release):
                return
            ledger.spent_amount, ledger.spent_messages = 0.0, 0
            if release:
                ledger.lease_amount, ledger.lease_messages = 0.0, 0
        try:
            await self._store.settle_lease(
                tenant_id,
                self.holder,
                month=ledger.month,
                spent_amount=spent_amount,
                spent_messages=spent_messages,
                release=release,
                at=self._clock(),
            )
        except Exception as exc:  # keep the amounts for the next try
            ledger.spent_amount += spent_amount
            ledger.spent_messages += spent_messages
            log.warning(
                "settling a lease failed; will retry",
                action="accounts.settle_failed",
                tenant_id=tenant_id,
                error=str(exc),
            )

    async def settle(self, *, release: bool = False) -> None:
        for tenant_id, ledger in list(self._ledgers.items()):
            await self._settle_one(tenant_id, ledger, release=release)

    async def run(self, stopping: asyncio.Event, interval_s: float = 1.0) -> None:
        """Settle every `interval_s` until stopped, then settle and release everything."""
        while not stopping.is_set():
            try:
                async with asyncio.timeout(interval_s):
                    await stopping.wait()
            except TimeoutError:
                await self.settle()
        await self.settle(release=True)
