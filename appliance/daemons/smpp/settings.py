"""The smpp daemon's knobs, with the defaults it runs on until hermes.toml grows an `[smpp]` section.

Each field names the config key it is meant to become (`smpp.<field>`); `serve` builds the default
and tests build fast ones. Times are seconds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SmppSettings:
    """How the smpp daemon binds, submits, retries, reports and stops."""

    response_timeout_s: float = 10.0
    """smpp.response_timeout_s: wait this long for window room, then as long for a submit_sm_resp."""
    enquire_link_s: float = 30.0
    """smpp.enquire_link_s: probe each bind this often; an unanswered probe drops it (then re-bind)."""
    bind_timeout_s: float = 10.0
    """smpp.bind_timeout_s: TCP connect plus bind must finish within this."""
    rebind_initial_s: float = 1.0
    """smpp.rebind_initial_s: first delay before re-binding a dropped or refused bind; doubles per failure."""
    rebind_max_s: float = 60.0
    """smpp.rebind_max_s: the cap of that delay (full jitter below it)."""
    throttle_hold_s: float = 5.0
    """smpp.throttle_hold_s: after ESME_RTHROTTLED the pace stays halved this long, then recovers."""
    max_submit_tries: int = 4
    """smpp.max_submit_tries: tries of one part on temporary errors before the attempt is rejected."""
    bind_wait_s: float = 15.0
    """smpp.bind_wait_s: how long a dispatch waits for a bound connection before it is handed back."""
    dispatch_max_age_s: float = 600.0
    """smpp.dispatch_max_age_s: a dispatch not wholly sent this long after the cascade made it is rejected
    ("expired") instead: the cascade has moved on by then, and a late SMS would be a duplicate."""
    dispatches_per_slot: int = 4
    """smpp.dispatches_per_slot: dispatches worked on at once per window slot of the carrier. A dispatch
    holds a slot only while its submit_sm is out; the others are being looked up, recorded and announced
    meanwhile, so the window stays full."""
    redeliver_delay_s: float = 5.0
    """smpp.redeliver_delay_s: a dispatch handed back (no bind, shutting down) comes again after this."""
    ack_wait_s: float = 30.0
    """smpp.ack_wait_s: JetStream redelivers an unacked dispatch after this (we send progress meanwhile)."""
    unknown_dlr_grace_s: float = 1.0
    """smpp.unknown_dlr_grace_s: a receipt may overtake the recording of its submit_sm_resp; look again
    for this long before calling its id unknown."""
    health_interval_s: float = 2.0
    """smpp.health_interval_s: how often each carrier's health goes out on hermes.smpp.health.<carrier>."""
    reload_every_s: float = 60.0
    """smpp.reload_every_s: re-read all carriers this often, in case an announcement was lost."""
    drain_timeout_s: float = 5.0
    """smpp.drain_timeout_s: on stop, in-flight submits get this long to be answered before unbinding."""
    retention_days: float = 7.0
    """smpp.retention_days: submissions older than this are purged (receipts rarely come after 72 h)."""
