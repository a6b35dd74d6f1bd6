"""The typed shape of `hermes.toml`.

Every key is declared here with its default and a comment saying what it does; `hermes.toml.example`
mirrors this file and a test parses it. Structs are frozen and forbid unknown keys, so a typo in the
file is refused instead of silently ignored.
"""

from __future__ import annotations

import socket
from typing import Annotated, Literal, cast

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
    # Most accepted messages that may wait for cascade in the MESSAGES stream (0 = no limit). Past it,
    # ingress answers 503 (REST) / ESME_RSYSERR (SMPP) with the reason, so clients back off instead of
    # the backlog growing until the disk is full. `power` mode keeps such messages in its intake log.
    backlog_max_messages: Annotated[int, msgspec.Meta(ge=0)] = 2_000_000
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
    # Worker processes serving the REST API (they share the port with SO_REUSEPORT). With more than
    # one, each tenant's rate limit is one token bucket in JetStream KV that the workers lease from.
    workers: PositiveInt = 1


class SmppIngressSection(_Section, frozen=True):
    # host:port of the inbound SMPP server for enterprise clients (served by gateway worker 0).
    listen: Listen = "0.0.0.0:2775"
    enabled: bool = False
    # Optional SMPP-over-TLS listener ("host:port", "" = none); needs tls_cert_file and tls_key_file.
    tls_listen: str = ""
    # PEM certificate chain and private key of the TLS listener.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # The system_id Hermes answers binds with.
    system_id: str = "hermes"
    # Close a bind that sent nothing (not even enquire_link) for this many seconds.
    idle_timeout_s: PositiveFloat = 120.0
    # Probe a quiet bind with enquire_link this often (seconds; 0 = never probe).
    enquire_link_s: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    # Close a bind whose enquire_link is not answered within this many seconds.
    enquire_link_timeout_s: PositiveFloat = 10.0
    # Close a connection that does not bind within this many seconds of connecting.
    bind_timeout_s: PositiveFloat = 10.0
    # Receipts (deliver_sm) that may await the client's deliver_sm_resp at once, per bind.
    window: PositiveInt = 100
    # The client's requests worked on at once per bind; more are answered ESME_RTHROTTLED.
    client_window: PositiveInt = 500
    # Concurrent binds one tenant may hold on this node (all system_ids together; 0 = unlimited); one
    # more is refused with ESME_RALYBND.
    max_binds_per_tenant: Annotated[int, msgspec.Meta(ge=0)] = 10
    # Wrong binds from one IP address are answered late: delay doubles from this (seconds) ...
    bind_failure_delay_s: Annotated[float, msgspec.Meta(ge=0)] = 0.5
    # ... up to this, and the count resets after this many seconds without a failure.
    bind_failure_max_delay_s: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    bind_failure_reset_s: PositiveFloat = 600.0
    # Seconds the parts of a concatenated message (UDH or SAR) wait for the missing ones.
    reassembly_timeout_s: PositiveFloat = 300.0
    # Part sets waiting at once; beyond this the oldest is given up.
    reassembly_max_pending: PositiveInt = 10_000
    # Seconds a receipt waits for the client's deliver_sm_resp before it is retried.
    receipt_timeout_s: PositiveFloat = 30.0


class SmtpIngressSection(_Section, frozen=True):
    # host:port of the inbound SMTP server.
    listen: Listen = "0.0.0.0:2525"
    enabled: bool = False


class ContentSection(_Section, frozen=True):
    """Layer 7 rules: what a message may not contain."""

    # Regular expressions (Python syntax, case-insensitive) that reject a message when they match.
    prohibited_patterns: list[str] = msgspec.field(default_factory=list)
    # Hosts whose links reject a message (subdomains included), on top of the built-in shortener list.
    blocked_domains: list[str] = msgspec.field(default_factory=list)
    # Use the built-in list of public URL shorteners.
    block_url_shorteners: bool = True
    # More links than this in one message is refused.
    max_urls: int = 5
    # Spam heuristic score (0-10) at or above which a message is refused; 0 disables the check.
    spam_score_threshold: float = 7.0
    # Phrases (whole words, any case) that add to the spam score, on top of the built-in list.
    spam_phrases: list[str] = msgspec.field(default_factory=list)


class GatewaySection(_Section, frozen=True):
    # "process": 202 after the JetStream ack (survives the crash of any Hermes process).
    # "power": 202 after the message is fsynced to the gateway's intake log (survives power loss).
    durability: Literal["process", "power"] = "process"
    # How long an Idempotency-Key is remembered, in hours.
    idempotency_ttl_h: PositiveFloat = 24.0
    # Most messages in one batch request.
    max_batch: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1_000
    # Marketing messages need the tenant to assert consent ("marketing": true needs "consent": true).
    require_marketing_consent: bool = True
    content: ContentSection = msgspec.field(default_factory=ContentSection)
    rest: RestSection = msgspec.field(default_factory=RestSection)
    smpp: SmppIngressSection = msgspec.field(default_factory=SmppIngressSection)
    smtp: SmtpIngressSection = msgspec.field(default_factory=SmtpIngressSection)


class MtaSection(_Section, frozen=True):
    # Deliver all email through this relay ("host:port") instead of MX lookup; "" = MX lookup.
    smarthost: str = ""


class PricingSection(_Section, frozen=True):
    """Estimated prices reserved at layer 4 before a route is known (routes bring exact rates later)."""

    currency: str = "EUR"
    sms_part: float = 0.05
    email: float = 0.001
    push: float = 0.0
    whatsapp: float = 0.03
    telegram: float = 0.0


class CascadeSection(_Section, frozen=True):
    """Default wait per channel before falling back to the next one, in seconds; and the engine."""

    sms_timeout_s: PositiveFloat = 60.0
    email_timeout_s: PositiveFloat = 300.0
    push_timeout_s: PositiveFloat = 30.0
    whatsapp_timeout_s: PositiveFloat = 120.0
    telegram_timeout_s: PositiveFloat = 60.0
    # Cascade worker processes; they share the work and never drive the same message at once.
    workers: PositiveInt = 2
    # Inputs (messages, executor events, due timers) one worker works on at once.
    concurrency: PositiveInt = 256
    # Seconds to wait for the router's answer before the step is retried (the router may be restarting).
    route_timeout_s: PositiveFloat = 5.0
    # Seconds a finished message's state is kept, so an input redelivered after the end changes nothing.
    finished_ttl_s: Annotated[float, msgspec.Meta(ge=1)] = 600.0

    def timeouts(self) -> dict[str, float]:
        return {
            "sms": self.sms_timeout_s,
            "email": self.email_timeout_s,
            "push": self.push_timeout_s,
            "whatsapp": self.whatsapp_timeout_s,
            "telegram": self.telegram_timeout_s,
        }


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


DaemonName = Literal["admin", "recorder", "smpp", "router", "cascade", "simulator", "notifier", "gateway"]
Niceness = Annotated[int, msgspec.Meta(ge=0, le=19)]


def _background_nice() -> dict[DaemonName, int]:
    """Work that can wait a moment yields the cores to ingress under load; see SupervisorSection.nice."""
    return {"cascade": 10, "router": 10, "recorder": 15, "notifier": 15, "simulator": 15}


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
    # CPU priority (nice 0-19) per daemon, all workers alike; unnamed daemons run at 0. Ingress (gateway,
    # smpp) answers clients and nats-server acks them: they come first. What they accepted is safe in
    # JetStream, so the daemons that work it off (cascade, router, recorder, notifier) take the cores they
    # leave: a burst is accepted at full speed and drained just after, rather than every daemon slowed.
    nice: dict[DaemonName, Niceness] = msgspec.field(default_factory=_background_nice)

    def nice_of(self, daemon: str) -> int:
        """The nice `daemon` runs at: its entry in `nice`, else 0."""
        return self.nice.get(cast("DaemonName", daemon), 0)  # any name may be asked; unknown ones run at 0


class RouterSection(_Section, frozen=True):
    """SMS route choice: number lookups and the health a route needs to be used."""

    # HTTP HLR/MNP lookup for numbers the local MNP table does not know, e.g.
    # "https://hlr.example.net/v1/lookup?msisdn={number}" ({number} is E.164 without "+"); "" = none.
    # It must answer JSON {"mccmnc": "238-01", "ported": true|false}.
    hlr_url: str = ""
    # Seconds an HLR request may take before the numbering plan is used instead.
    hlr_timeout_s: PositiveFloat = 2.0
    # Seconds a lookup result is cached (numbers port rarely; MNP imports clear the cache).
    lookup_cache_ttl_s: PositiveFloat = 86_400.0
    # A route whose error rate is above this, or whose known DLR rate is below min_dlr_rate, is skipped.
    max_error_rate: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.05
    min_dlr_rate: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.90


class SimulatorSection(_Section, frozen=True):
    """The built-in carrier simulator, for demos and trials: never point real traffic at it."""

    # host:port of a simulated SMSC run by hermesd ("" = none). `make run` turns it on.
    smsc_listen: str = ""
    # Register it as carrier "sim" (an aggregator priced for every number) if no such carrier exists.
    register_carrier: bool = True
    # Delay before the simulated delivery receipt, and the share of receipts that report failure.
    dlr_delay_ms: Annotated[float, msgspec.Meta(ge=0)] = 200.0
    fail_rate: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.0


class Config(_Section, frozen=True):
    appliance: ApplianceSection = msgspec.field(default_factory=ApplianceSection)
    nats: NatsSection = msgspec.field(default_factory=NatsSection)
    store: StoreSection = msgspec.field(default_factory=StoreSection)
    admin: AdminSection = msgspec.field(default_factory=AdminSection)
    gateway: GatewaySection = msgspec.field(default_factory=GatewaySection)
    mta: MtaSection = msgspec.field(default_factory=MtaSection)
    tiers: TiersSection = msgspec.field(default_factory=TiersSection)
    pricing: PricingSection = msgspec.field(default_factory=PricingSection)
    cascade: CascadeSection = msgspec.field(default_factory=CascadeSection)
    router: RouterSection = msgspec.field(default_factory=RouterSection)
    simulator: SimulatorSection = msgspec.field(default_factory=SimulatorSection)
    supervisor: SupervisorSection = msgspec.field(default_factory=SupervisorSection)
