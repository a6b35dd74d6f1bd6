"""hermesd, the supervisor: `hermesd --config FILE [--check-config]`."""

from appliance.supervisor.cli import main

__all__ = ["main"]
