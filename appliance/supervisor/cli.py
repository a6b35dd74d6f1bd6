"""The `hermesd` command line. Exit codes: 0 stopped cleanly, 1 failed at run time, 2 bad config."""

from __future__ import annotations

import argparse
import os
import sys

from appliance import __version__
from appliance.config import DEFAULT_CONFIG_PATH, load_config
from appliance.errors import ConfigError, HermesError
from appliance.logs import configure_logging, get_logger


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hermesd",
        description="Hermes supervisor: starts the embedded NATS, migrates the store and runs the daemons.",
    )
    parser.add_argument(
        "--config",
        default=os.environ.get("HERMES_CONFIG", DEFAULT_CONFIG_PATH),
        help=f"TOML config file (default: $HERMES_CONFIG or {DEFAULT_CONFIG_PATH})",
    )
    parser.add_argument("--check-config", action="store_true", help="validate the config and exit")
    parser.add_argument("--version", action="version", version=f"hermesd {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"hermesd: {exc}", file=sys.stderr)
        return 2
    if args.check_config:
        print(f"config OK: {args.config}")
        return 0
    configure_logging(
        component="hermesd",
        node=config.appliance.node_name,
        level=config.appliance.log_level,
        fmt=config.appliance.log_format,
    )
    from appliance.supervisor.node import run_node

    try:
        import uvloop

        uvloop.run(run_node(config, args.config))
    except HermesError as exc:
        get_logger("hermes.supervisor").error("hermesd cannot run", action="node.failed", error=str(exc))
        print(f"hermesd: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # pragma: no cover - signals are handled inside the loop
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
