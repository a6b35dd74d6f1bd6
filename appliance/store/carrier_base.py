"""The store interface of the SMS routing registry: carriers, their rates, and the local MNP table.

Callers: admin writes it (`hermesctl carrier ...`, `rate set`, MNP imports); the router and smpp daemons
read it into memory and reload on a bus notice, so nothing here is on a message's hot path except
`lookup_mnp` for a router that chooses not to cache the whole table. Implemented in portable SQL by
`sql_carriers.SqlCarriers`, mixed into `SqlStore`. Numbers and prefixes are E.164 digits; a leading "+"
is accepted and dropped on the way in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from appliance.store.carrier_models import Carrier, MnpEntry, RateRow


class CarrierStore(Protocol):
    # carriers
    async def add_carrier(self, carrier: Carrier) -> Carrier:
        """Insert; Conflict("carrier", name) if the name is taken."""

    async def get_carrier(self, name: str) -> Carrier:
        """NotFound("carrier", name)."""

    async def list_carriers(self) -> list[Carrier]:
        """All carriers ordered by name."""

    async def update_carrier(self, carrier: Carrier) -> Carrier:
        """Replace every field but name and created_at of the carrier `carrier.name`; NotFound."""

    async def remove_carrier(self, name: str) -> None:
        """Delete the carrier and its rates; NotFound."""

    # rates
    async def set_rate(self, rate: RateRow) -> None:
        """Insert, or replace price, currency and valid_from of the rate with the same (carrier, prefix,
        mccmnc). NotFound("carrier") when the carrier does not exist."""

    async def list_rates(self, carrier: str | None = None) -> list[RateRow]:
        """One carrier's rates, or everyone's, ordered by carrier, prefix, mccmnc."""

    async def import_rates(self, rows: Sequence[RateRow], *, replace: bool = False) -> int:
        """Upsert every row in one transaction and return how many were given. With `replace`, first delete
        every rate of the carriers the rows name (a full rate deck). NotFound("carrier") for a carrier
        that does not exist, and then nothing is written."""

    async def remove_rate(self, carrier: str, prefix: str, mccmnc: str | None = None) -> None:
        """NotFound("rate", "<carrier> <prefix> <mccmnc>")."""

    # MNP
    async def import_mnp(self, rows: Sequence[MnpEntry], *, replace: bool = False) -> int:
        """Upsert every row in one transaction and return how many were given; with `replace`, the rows
        become the whole table (a full dump)."""

    async def lookup_mnp(self, e164: str) -> MnpEntry | None:
        """The entry with the longest number_or_prefix the number starts with, or None."""

    async def count_mnp(self) -> int:
        """Rows in the MNP table."""
