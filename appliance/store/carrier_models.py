"""Rows of the SMS routing registry (migration 0003) as the store hands them out: frozen and typed.

Unlike `models.py`, one of these carries a secret: `Carrier.password` is what Hermes presents when it binds
to the carrier, so it has to be readable (it is not a hash). Its repr hides it, so a logged or printed
carrier does not leak it; code that serializes a `Carrier` for an API must leave it out itself. The router
turns a `RateRow` into a `domain.routing.Rate` (same fields) and an `MnpEntry` into an `MnpRecord`.
Times are UNIX epoch seconds (float).
"""

from __future__ import annotations

from typing import Literal

import msgspec

CarrierKind = Literal["direct", "aggregator", "retail"]
BindType = Literal["transceiver", "transmitter", "receiver"]


class Carrier(msgspec.Struct, frozen=True, kw_only=True):
    """One SMS route: an SMPP peer (direct carrier or aggregator) or a retail provider's account."""

    name: str  # e.g. "telia_dk"; the key of rates and of `dispatch.sms.<carrier>`
    kind: CarrierKind
    host: str
    port: int
    system_id: str
    password: str  # SMPP bind password, stored as given (see the migration's note on protecting it)
    bind_type: BindType = "transceiver"
    connections: int = 1
    window: int = 10  # unacknowledged submits per connection
    tps: int = 0  # submits per second over all connections; 0 = no limit of ours
    system_type: str = ""
    source_ton: int = 5  # alphanumeric sender by default
    source_npi: int = 0
    dest_ton: int = 1  # international
    dest_npi: int = 1  # E.164
    use_sar: bool = False  # concatenate with sar_* TLVs instead of a UDH
    enabled: bool = True
    mccmnc_list: tuple[str, ...] = ()  # networks the carrier owns ("238-01"): its home networks
    created_at: float
    updated_at: float

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={'***' if name == 'password' else repr(getattr(self, name))}"
            for name in self.__struct_fields__
        )
        return f"Carrier({fields})"


class RateRow(msgspec.Struct, frozen=True, kw_only=True):
    """A carrier's price for numbers starting with `prefix`, optionally only on network `mccmnc`."""

    carrier: str
    prefix: str  # E.164 digits without "+"; "" for every number
    mccmnc: str | None  # "238-01"; None for any network
    price: float
    currency: str
    valid_from: float = 0.0


class MnpEntry(msgspec.Struct, frozen=True, kw_only=True):
    """Which network a number (or every number of a range) is on now, per the operator's MNP data."""

    number_or_prefix: str  # E.164 digits without "+"
    mccmnc: str
    carrier_name: str | None = None
    updated_at: float
