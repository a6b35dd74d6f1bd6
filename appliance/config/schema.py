"""The typed shape of `hermes.toml`.

Every key is declared here with its default and a comment saying what it does; `hermes.toml.example`
mirrors this file and a test parses it. Structs are frozen and forbid unknown keys, so a typo in the
file is refused instead of silently ignored.
"""

from __future__ import annotations

import socket
from typing import Annotated, Literal

import msgspec

Tier = Literal["starter", "business", "enterprise"]
Listen = Annotated[str, msgspec.Meta(pattern=r"^\S*:\d+$", description="host:port")]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every config section."""


class ApplianceSection(_Section, frozen=True):
    # Name of this node in logs, metrics and the cluster; defaults to the host name.
    node_name: str = msgspec.field(default_factory=socket.gethostname)
    # Where the node keeps its state: JetStream files, the SQLite store, the lock, the secret key.
    data_dir: str = "/var/lib/hermes"
    # File holding the node's secret (API keys are hashed with it). Created on first start if missing.
    # In a cluster every node must have the same file. Default: <data_dir>/secret.key.
    secret_file: str = ""
    # "auto" (console on a terminal, JSON otherwise), "json" or "console".
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Seconds a stopping daemon gets to drain before it is killed.
    shutdown_grace_s: PositiveFloat = 10.0


class NatsSection(_Section, frozen=True):
    # host:port of the embedded nats-server. Never 4222 by default, so a system NATS can coexist.
    listen: Listen = "127.0.0.1:14222"
    # An external NATS (cluster) URL; when set, no embedded server is started. Secret: HERMES_NATS_URL.
    url: str = ""
    # host:port for the embedded server's cluster routes ("" = no clustering).
    cluster_listen: str = ""
    # Routes to the other nodes' cluster_listen, e.g. ["nats-route://10.0.0.2:14248"].
    routes: list[str] = msgspec.field(default_factory=list)
    # Upper bound of JetStream file storage, in bytes (0 = nats-server's default).
    max_file_store: int = 0
    # Seconds to wait for the embedded server to accept connections.
    start_timeout_s: PositiveFloat = 15.0


class StoreSection(_Section, frozen=True):
    backend: Literal["sqlite", "postgres"] = "sqlite"
    # SQLite file; default <data_dir>/hermes.db.
    path: str = ""
    # PostgreSQL DSN, e.g. "postgresql://hermes@db/hermes". Secret: HERMES_STORE_DSN.
    dsn: str = ""
    # Connections in the PostgreSQL pool of each daemon.
    pool_size: PositiveInt = 4


class AdminSection(_Section, frozen=True):
    # Unix socket of the admin API that hermesctl uses; default <data_dir>/admin.sock (mode 0660).
    socket: str = ""
    # Optional loopback TCP listener ("host:port"); callers need an operator token.
    listen: str = ""


class RestSection(_Section, frozen=True):
    # host:port of the REST API.
    listen: Listen = "127.0.0.1:8080"
    # Worker processes serving the REST API (they share the port with SO_REUSEPORT).
    workers: PositiveInt = 1


class SmppIngressSection(_Section, frozen=True):
    # host:port of the inbound SMPP server for enterprise clients.
    listen: Listen = "0.0.0.0:2775"
    enabled: bool = False


class SmtpIngressSection(_Section, frozen=True):
    # host:port of the inbound SMTP server.
    listen: Listen = "0.0.0.0:2525"
    enabled: bool = False


class GatewaySection(_Section, frozen=True):
    rest: RestSection = msgspec.field(default_factory=RestSection)
    smpp: SmppIngressSection = msgspec.field(default_factory=SmppIngressSection)
    smtp: SmtpIngressSection = msgspec.field(default_factory=SmtpIngressSection)


class MtaSection(_Section, frozen=True):
    # Deliver all email through this relay ("host:port") instead of MX lookup; "" = MX lookup.
    smarthost: str = ""


class TierLimits(_Section, frozen=True):
    # Sustained messages per second (0 = unlimited).
    rate_limit: int = 0
    # Token bucket size: messages that may arrive at once.
    burst: int = 0
    # Messages per calendar month (0 = unlimited).
    monthly_quota: int = 0


def _starter() -> TierLimits:
    return TierLimits(rate_limit=50, burst=100, monthly_quota=100_000)


def _business() -> TierLimits:
    return TierLimits(rate_limit=500, burst=1_000, monthly_quota=5_000_000)


def _enterprise() -> TierLimits:
    return TierLimits(rate_limit=5_000, burst=10_000, monthly_quota=0)


class TiersSection(_Section, frozen=True):
    # The limits a new tenant of each tier starts with; `hermesctl tenant edit` overrides per tenant.
    starter: TierLimits = msgspec.field(default_factory=_starter)
    business: TierLimits = msgspec.field(default_factory=_business)
    enterprise: TierLimits = msgspec.field(default_factory=_enterprise)

    def limits(self, tier: Tier) -> TierLimits:
        limits: TierLimits = getattr(self, tier)
        return limits


class SupervisorSection(_Section, frozen=True):
    # Seconds a child gets to say READY before it counts as failed and is restarted.
    ready_timeout_s: PositiveFloat = 30.0
    # First restart delay of a crashed child; doubles per crash up to restart_backoff_max_s.
    restart_backoff_s: PositiveFloat = 0.5
    restart_backoff_max_s: PositiveFloat = 30.0
    # A child that stays up this long has its backoff reset.
    restart_reset_after_s: PositiveFloat = 60.0
    # A child that sends no heartbeat for this long is killed and restarted (0 = never).
    watchdog_timeout_s: float = 30.0


class Config(_Section, frozen=True):
    appliance: ApplianceSection = msgspec.field(default_factory=ApplianceSection)
    nats: NatsSection = msgspec.field(default_factory=NatsSection)
    store: StoreSection = msgspec.field(default_factory=StoreSection)
    admin: AdminSection = msgspec.field(default_factory=AdminSection)
    gateway: GatewaySection = msgspec.field(default_factory=GatewaySection)
    mta: MtaSection = msgspec.field(default_factory=MtaSection)
    tiers: TiersSection = msgspec.field(default_factory=TiersSection)
    supervisor: SupervisorSection = msgspec.field(default_factory=SupervisorSection)
