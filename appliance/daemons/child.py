"""`python -m appliance.daemons.child NAME --config FILE [--worker N]`: how hermesd starts a daemon."""

from __future__ import annotations

import sys

from appliance.daemons.runtime import child_main

if __name__ == "__main__":
    sys.exit(child_main())
