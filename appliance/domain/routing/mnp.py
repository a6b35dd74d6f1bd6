"""Which mobile network a number belongs to now: a local MNP/HLR table, and a cache for any provider's answer.

The router asks, in order: the `LookupCache`, the `MnpTable` (loaded from the store or a CSV dump), an HLR
provider (I/O, in the daemon), and finally the numbering plan (`numbers.py`). Whatever answers becomes a
`Lookup` that the router caches and hands to `decision.decide`.

A table maps exact numbers and number ranges, both written as E.164 digit prefixes, to an MCC-MNC
("238-01"); the longest matching prefix wins, so a ported number listed on its own beats its range. The
table can tell a number is ported only in that case: its own entry names another network than the
range around it. Pure: CSV arrives as text, time arrives as `now`.
"""

from __future__ import annotations

import csv
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Final, Literal

import msgspec

from appliance.domain.routing.numbers import NumberInfo
from appliance.errors import InvalidInput

LookupSource = Literal["mnp_table", "hlr", "numbering_plan"]

_MCCMNC: Final = re.compile(r"([0-9]{3})-?([0-9]{2,3})")
_DIGITS: Final = re.compile(r"[0-9]{1,15}")
_HEADER: Final = ("number_or_prefix", "mccmnc", "carrier_name")
_SHOWN_ERRORS: Final = 10  # in the exception's message; `errors` holds them all


def normalize_mccmnc(text: str) -> str:
    """ "23801", "238-01" -> "238-01"; a 6-digit "238001" -> "238-001". InvalidInput otherwise."""
    match = _MCCMNC.fullmatch(text.strip())
    if match is None:
        raise InvalidInput("mccmnc", f"{text!r} is not an MCC-MNC such as 238-01")
    return f"{match[1]}-{match[2]}"


def number_digits(text: str, field: str = "number") -> str:
    """The digits of an E.164 number or prefix ("+4520" -> "4520"); InvalidInput unless 1-15 digits."""
    digits = text.strip().removeprefix("+")
    if not _DIGITS.fullmatch(digits):
        raise InvalidInput(field, f"{text!r} is not an E.164 number or prefix (1-15 digits, optional '+')")
    return digits


class Lookup(msgspec.Struct, frozen=True, kw_only=True):
    """Which network a number is on, and who said so."""

    e164: str
    source: LookupSource
    mccmnc: str | None
    """None: the source could not tell (the router then prefers no direct route)."""
    ported: bool | None = None
    """None: the source does not know."""
    cached: bool = False
    """True when this answer came out of a `LookupCache` rather than from its source just now."""
    carrier_name: str | None = None


def lookup_from_plan(info: NumberInfo, networks: Mapping[str, str] | None = None) -> Lookup:
    """The last resort: the numbering plan's allocated carrier, mapped to an MCC-MNC through `networks`
    (case-insensitive carrier name -> MCC-MNC, e.g. {"tdc": "238-01"}) when it names one. Porting is
    invisible to the plan, so `ported` stays None.
    """
    name = info.original_carrier_name
    by_name = {key.casefold(): value for key, value in (networks or {}).items()}
    mccmnc = by_name.get(name.casefold()) if name is not None else None
    return Lookup(e164=info.e164, source="numbering_plan", mccmnc=mccmnc, carrier_name=name)


class MnpRecord(msgspec.Struct, frozen=True):
    prefix: str
    """Digits without "+": a whole number ("4520123456") or a range ("4520")."""
    mccmnc: str
    carrier_name: str | None = None


class MnpCsvError(InvalidInput):
    """A CSV MNP dump with malformed rows; `errors` lists every (line number, reason)."""

    def __init__(self, errors: list[tuple[int, str]]) -> None:
        self.errors = errors
        shown = "; ".join(f"line {line}: {reason}" for line, reason in errors[:_SHOWN_ERRORS])
        more = f"; and {len(errors) - _SHOWN_ERRORS} more" if len(errors) > _SHOWN_ERRORS else ""
        super().__init__("csv", shown + more)


def parse_mnp_csv(text: str) -> list[MnpRecord]:
    """Rows `number_or_prefix,mccmnc[,carrier_name]`; blank lines and lines starting with '#' are skipped,
    and the first row may be the header `number_or_prefix,mccmnc[,carrier_name]`.

    Collects every malformed row (bad number, bad MCC-MNC, wrong field count, a prefix given twice) and
    raises one `MnpCsvError` naming their line numbers, so an operator fixes a dump in one pass.
    """
    records: list[MnpRecord] = []
    errors: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    first = True
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = [cell.strip() for cell in next(csv.reader([line]))]
        if first and tuple(cell.lower() for cell in cells) in (_HEADER, _HEADER[:2]):
            first = False
            continue
        first = False
        if len(cells) not in (2, 3):
            errors.append(
                (line_no, f"expected number_or_prefix,mccmnc[,carrier_name], not {len(cells)} fields")
            )
            continue
        try:
            prefix = number_digits(cells[0], "number_or_prefix")
            mccmnc = normalize_mccmnc(cells[1])
        except InvalidInput as exc:
            errors.append((line_no, exc.reason))
            continue
        if prefix in seen:
            errors.append((line_no, f"{prefix} is already given on line {seen[prefix]}"))
            continue
        seen[prefix] = line_no
        name = cells[2] if len(cells) == 3 and cells[2] else None
        records.append(MnpRecord(prefix, mccmnc, name))
    if errors:
        raise MnpCsvError(errors)
    return records


class MnpTable:
    """Exact numbers and ranges -> MCC-MNC, longest prefix first. Built once, replaced on reload."""

    __slots__ = ("_by_prefix", "_lengths")

    def __init__(self, records: Iterable[MnpRecord] = ()) -> None:
        """A later record for the same prefix replaces an earlier one."""
        self._by_prefix: dict[str, MnpRecord] = {}
        for record in records:
            self._by_prefix[number_digits(record.prefix, "prefix")] = record
        self._lengths = sorted({len(prefix) for prefix in self._by_prefix}, reverse=True)

    @classmethod
    def from_csv(cls, text: str) -> MnpTable:
        return cls(parse_mnp_csv(text))

    def __len__(self) -> int:
        return len(self._by_prefix)

    def matches(self, e164: str) -> list[MnpRecord]:
        """Every record whose prefix the number starts with, longest first."""
        digits = number_digits(e164)
        found = (self._by_prefix.get(digits[:length]) for length in self._lengths if length <= len(digits))
        return [record for record in found if record is not None]

    def lookup(self, e164: str) -> Lookup | None:
        """The longest match as a `Lookup`, None when nothing matches.

        `ported` is True/False only for a number listed on its own inside a listed range (its network
        differs from the range's, or not); for anything else the table cannot tell, so None.
        """
        found = self.matches(e164)
        if not found:
            return None
        best = found[0]
        ported: bool | None = None
        if best.prefix == number_digits(e164) and len(found) > 1:
            ported = best.mccmnc != found[1].mccmnc
        return Lookup(
            e164=e164, source="mnp_table", mccmnc=best.mccmnc, ported=ported, carrier_name=best.carrier_name
        )


class LookupCache:
    """The latest `Lookup` per number for `ttl_s`, at most `max_entries`, least recently used evicted.

    Negative answers (no MCC-MNC) can be kept for a shorter `negative_ttl_s`, so a number that an HLR
    could not place is asked about again sooner. A TTL of 0 caches nothing of that kind.
    """

    __slots__ = ("_entries", "max_entries", "negative_ttl_s", "ttl_s")

    def __init__(self, *, ttl_s: float, max_entries: int, negative_ttl_s: float | None = None) -> None:
        negative = ttl_s if negative_ttl_s is None else negative_ttl_s
        if not ttl_s >= 0 or not negative >= 0:
            raise InvalidInput("ttl_s", f"TTLs must be >= 0, not {ttl_s}/{negative}")
        if max_entries < 1:
            raise InvalidInput("max_entries", f"must be at least 1, not {max_entries}")
        self.ttl_s = float(ttl_s)
        self.negative_ttl_s = float(negative)
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, Lookup]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, e164: str, now: float) -> Lookup | None:
        """The cached answer marked `cached=True`; None when absent or expired (an expired one is dropped)."""
        entry = self._entries.get(e164)
        if entry is None:
            return None
        expires_at, lookup = entry
        if now >= expires_at:
            del self._entries[e164]
            return None
        self._entries.move_to_end(e164)
        return msgspec.structs.replace(lookup, cached=True)

    def put(self, lookup: Lookup, now: float) -> None:
        """Remember `lookup` for its number from `now`, evicting the least recently used beyond the bound."""
        ttl = self.ttl_s if lookup.mccmnc is not None else self.negative_ttl_s
        if ttl <= 0:
            self._entries.pop(lookup.e164, None)
            return
        self._entries[lookup.e164] = (now + ttl, msgspec.structs.replace(lookup, cached=False))
        self._entries.move_to_end(lookup.e164)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def purge(self, now: float) -> int:
        """Drop every expired entry; return how many. Optional: `get` drops expired entries it meets."""
        expired = [e164 for e164, (expires_at, _) in self._entries.items() if now >= expires_at]
        for e164 in expired:
            del self._entries[e164]
        return len(expired)

    def clear(self) -> None:
        """Forget everything (e.g. after the MNP table was reloaded)."""
        self._entries.clear()
