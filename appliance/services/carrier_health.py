"""The latest health report of each carrier, as the smpp daemon publishes them every 2 s on
`hermes.smpp.health.<carrier>`; a report older than `stale_s` counts as none (the carrier is down)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgspec

from appliance.domain.routing import CarrierHealth

HEALTH_SUBJECT_ALL = "hermes.smpp.health.*"


class HealthBoard:
    def __init__(self, *, stale_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._reports: dict[str, tuple[float, dict[str, Any]]] = {}
        self._stale_s = stale_s
        self._clock = clock

    def receive(self, subject: str, data: bytes) -> None:
        try:
            report = msgspec.json.decode(data)
        except msgspec.DecodeError:
            return
        if isinstance(report, dict):
            self._reports[subject.rsplit(".", 1)[-1]] = (self._clock(), report)

    def report(self, carrier: str) -> dict[str, Any] | None:
        entry = self._reports.get(carrier)
        if entry is None or self._clock() - entry[0] > self._stale_s:
            return None
        return entry[1]

    def health(self, carrier: str) -> CarrierHealth | None:
        """The report as the route decision reads it."""
        report = self.report(carrier)
        if report is None:
            return None
        return CarrierHealth(
            binds_up=int(report.get("binds_up", 0)),
            window_free=int(report.get("window_free", 0)),
            error_rate=float(report.get("error_rate", 0.0)),
            dlr_rate=report.get("dlr_rate"),
        )
