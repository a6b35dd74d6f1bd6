"""L6: suppression lists, global opt-outs and marketing consent, checked per recipient.

The gateway passes lookups in (its registry cache answers them), so this stays pure:

    check_compliance(message, suppressed=..., globally_opted_out=..., consent_required_for_marketing=...,
                     has_consent=...)

Every lookup receives `normalize_address(channel, to)`: E.164 for phone channels, a lower-cased
address for email, the token as given otherwise. Lists are stored in the same form, so "+45 23 45 67
89" and "+4523456789", or "Bob@Example.COM" and "bob@example.com", are one recipient. Because sms and
whatsapp share the E.164 form, an opted-out number is blocked on both: it is the same person.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from appliance.domain.message import ChannelTarget, Message
from appliance.domain.pipeline.fields import parse_e164
from appliance.domain.pipeline.rejection import Rejection

_PHONE_CHANNELS: Final = frozenset({"sms", "whatsapp"})
_NOT_DIGITS: Final = re.compile(r"[^0-9]")

_REASONS: Final = {
    "opted_out": "{to} has opted out of all messages; {channel} to it is refused.",
    "suppressed": "{to} is on this tenant's suppression list; {channel} to it is refused.",
    "no_consent": "{to} has not consented to marketing; marketing {channel} to it is refused.",
}


def normalize_address(channel: str, to: str) -> str:
    """The form lists are keyed by: E.164 for sms/whatsapp, lower case for email, else `to` stripped.

    A phone number that does not parse still gets a stable key, "+" and its digits, so a list entry
    written the same loose way matches it.
    """
    to = to.strip()
    if channel in _PHONE_CHANNELS:
        digits = _NOT_DIGITS.sub("", to)
        return parse_e164(to) or ("+" + digits if digits else to)
    if channel == "email":
        return to.lower()
    return to


def check_compliance(
    message: Message,
    *,
    suppressed: Callable[[str], bool],
    globally_opted_out: Callable[[str], bool],
    consent_required_for_marketing: bool,
    has_consent: Callable[[str], bool],
) -> Rejection | None:
    """None when every recipient may be contacted, else a 451 naming the first one that may not.

    The whole message is refused when *any* channel's recipient is blocked, not only when all are:
    operators expect a suppressed address never to be contacted, and a cascade that silently skipped
    a step would deliver on a channel the tenant did not expect. The tenant removes the step and
    sends again. For each recipient, in cascade order: the global opt-out (a STOP reply, an
    unsubscribe) first, then the tenant's suppression list, then consent when the message is
    marketing and the tenant's jurisdiction requires opt-in: either the tenant asserts it on the
    message (`consent: true`, recorded with it by L8) or `has_consent` finds a stored opt-in.
    """
    for index, target in enumerate(message.channels):
        address = normalize_address(target.channel, target.to)
        if globally_opted_out(address):
            return _refuse("opted_out", index, target, address)
        if suppressed(address):
            return _refuse("suppressed", index, target, address)
        if (
            message.marketing
            and consent_required_for_marketing
            and not message.consent
            and not has_consent(address)
        ):
            return _refuse("no_consent", index, target, address)
    return None


def _refuse(code: str, index: int, target: ChannelTarget, address: str) -> Rejection:
    return Rejection(
        451,
        code,
        _REASONS[code].format(to=address, channel=target.channel),
        "L6",
        {"channel": target.channel, "to": address, "field": f"channels[{index}].to"},
    )
