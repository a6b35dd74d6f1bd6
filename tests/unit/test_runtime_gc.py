"""Daemons tune the garbage collector once started: what was alive at start-up is frozen out of it and
young collections run less often (see `runtime.GC_THRESHOLDS`)."""

from __future__ import annotations

import json
import subprocess
import sys

from appliance.daemons.runtime import GC_THRESHOLDS

_PROBE = (
    "import gc, json; from appliance.daemons.runtime import tune_gc; before = gc.get_freeze_count(); "
    "tune_gc(); print(json.dumps([before, gc.get_freeze_count(), gc.get_threshold()]))"
)


def test_tune_gc_freezes_what_start_up_made_and_raises_the_young_threshold() -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True)
    before, frozen, thresholds = json.loads(out.stdout)
    assert before == 0
    assert frozen > 10_000  # the imported modules' objects, at least
    assert tuple(thresholds) == GC_THRESHOLDS
    assert GC_THRESHOLDS[0] > 700  # CPython's default, which costs a busy gateway 6-8% of its CPU
