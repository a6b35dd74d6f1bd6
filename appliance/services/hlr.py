"""HLR/MNP lookups over HTTP, for numbers the local MNP table does not know.

One provider shape that most HLR vendors can be fronted with: GET `hlr_url` with `{number}` replaced by
the E.164 digits, answering JSON `{"mccmnc": "238-01", "ported": true}`. Any failure (timeout, non-2xx,
bad JSON) answers None, so routing falls back to the numbering plan instead of failing the message.
"""

from __future__ import annotations

from typing import Protocol

import httpx
import msgspec

from appliance.domain.routing import Lookup, normalize_mccmnc
from appliance.errors import InvalidInput
from appliance.logs import get_logger

log = get_logger("hermes.hlr")


class HlrProvider(Protocol):
    async def lookup(self, e164: str) -> Lookup | None: ...


class _Answer(msgspec.Struct):
    mccmnc: str | None = None
    ported: bool | None = None
    network: str | None = None


class HttpHlrProvider:
    def __init__(self, url_template: str, *, timeout_s: float, http: httpx.AsyncClient) -> None:
        if "{number}" not in url_template:
            raise InvalidInput("router.hlr_url", "must contain {number}")
        self._template = url_template
        self._timeout = timeout_s
        self._http = http
        self.failures = 0

    async def lookup(self, e164: str) -> Lookup | None:
        url = self._template.replace("{number}", e164.removeprefix("+"))
        try:
            response = await self._http.get(url, timeout=self._timeout)
            response.raise_for_status()
            answer = msgspec.json.decode(response.content, type=_Answer)
            mccmnc = normalize_mccmnc(answer.mccmnc) if answer.mccmnc else None
        except (httpx.HTTPError, msgspec.DecodeError, msgspec.ValidationError, InvalidInput) as exc:
            self.failures += 1
            log.warning(
                "HLR lookup failed; using the numbering plan",
                action="hlr.failed",
                error=f"{type(exc).__name__}: {exc}"[:200],
            )
            return None
        return Lookup(
            e164=e164, source="hlr", mccmnc=mccmnc, ported=answer.ported, carrier_name=answer.network
        )
