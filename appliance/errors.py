"""The one exception tree of the appliance.

    HermesError
    ├── ConfigError          a config file that cannot be used (file, key, line, reason)
    ├── StartupError         the node cannot start (port taken, data dir locked or unwritable)
    ├── StoreError           the relational store failed or refused
    │   ├── NotFound         no such row
    │   └── Conflict         a unique name or id is taken
    ├── BusError             NATS / JetStream failed
    ├── ProtocolError        a peer's bytes break a wire protocol (SMPP PDU, GSM user data, ...)
    └── InvalidInput         a caller's argument is malformed (bad tier, bad name, ...)

Each edge (HTTP, SMPP, SMTP, CLI) translates these in exactly one place.
"""

from __future__ import annotations


class HermesError(Exception):
    """Something in Hermes went wrong."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or type(self).__name__).strip())

    @property
    def message(self) -> str:
        return str(self.args[0])


class ConfigError(HermesError):
    """The configuration cannot be used."""

    def __init__(self, reason: str, *, file: str, key: str | None = None, line: int | None = None) -> None:
        self.file = file
        self.key = key
        self.line = line
        self.reason = reason
        where = file
        if line is not None:
            where += f":{line}"
        if key:
            where += f": {key}"
        super().__init__(f"{where}: {reason}")


class StartupError(HermesError):
    """The node cannot start."""


class StoreError(HermesError):
    """The store failed."""


class NotFound(StoreError):
    """No such object."""

    def __init__(self, kind: str, ref: str) -> None:
        self.kind = kind
        self.ref = ref
        super().__init__(f"no {kind} {ref!r}")


class Conflict(StoreError):
    """The object already exists."""

    def __init__(self, kind: str, ref: str) -> None:
        self.kind = kind
        self.ref = ref
        super().__init__(f"{kind} {ref!r} already exists")


class BusError(HermesError):
    """The message bus failed."""


class ProtocolError(HermesError):
    """A peer sent bytes that break the protocol."""


class InvalidInput(HermesError):
    """The input is not valid."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")
