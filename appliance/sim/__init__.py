"""Simulators of the systems Hermes talks to, for tests, benchmarks and demos; never used by the product.

`SmscSimulator` is a carrier SMSC on `SmppServer`: it accepts binds, answers submit_sm with message
ids and sends delivery receipts, and can be told to fail, throttle, reject or drop connections.
Run it alone with `python -m appliance.sim.smsc --port P`.

Names are imported lazily, so `python -m appliance.sim.smsc` does not load the module twice.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appliance.sim.smsc import SimCounters, SimOptions, SmscSimulator, receipt_text, serve

__all__ = ["SimCounters", "SimOptions", "SmscSimulator", "receipt_text", "serve"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("appliance.sim.smsc"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
