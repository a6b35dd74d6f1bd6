"""The closed set of ways hermesctl fails, each with its exit code; `fail` prints one line to stderr."""

from __future__ import annotations

import sys
from enum import IntEnum
from typing import NoReturn

import typer


class ExitCode(IntEnum):
    ERROR = 1
    USAGE = 2  # typer/click's own code for bad arguments
    NOT_RUNNING = 3
    NOT_FOUND = 4
    CONFLICT = 5
    INVALID = 6
    UNAUTHORIZED = 7
    UNHEALTHY = 8


def fail(message: str, code: ExitCode = ExitCode.ERROR) -> NoReturn:
    print(f"hermesctl: {message}", file=sys.stderr)
    raise typer.Exit(int(code))
