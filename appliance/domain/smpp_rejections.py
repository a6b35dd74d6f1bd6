"""The one place where a pipeline refusal becomes an SMPP command_status (submit_sm_resp/data_sm_resp).

The pipeline answers in HTTP terms (`Rejection.status` and its stable `code`); an SMPP client needs
a command_status it can act on: retry later (throttled, system error) or give up (bad address,
refused content). The table, as documented for operators:

| pipeline refusal                                    | command_status                           |
|-----------------------------------------------------|------------------------------------------|
| 429 rate_limited / exceeds_burst (L3)               | 0x58 ESME_RTHROTTLED                     |
| 402 insufficient_balance, quota_exhausted (L4)      | 0x45 ESME_RSUBMITFAIL                    |
| 422 invalid_message naming the recipient (L5)       | 0x0B ESME_RINVDSTADR                     |
| 422 invalid_message naming the sender `from` (L5)   | 0x0A ESME_RINVSRCADR                     |
| 422 invalid_message naming the body (too long) (L5) | 0x01 ESME_RINVMSGLEN                     |
| 422 any other field (L5)                            | 0x45 ESME_RSUBMITFAIL                    |
| 451 opted_out / suppressed / no_consent (L6)        | 0x0400 vendor: recipient blocked         |
| 400 content_rejected (L7)                           | 0x0401 vendor: content refused           |
| 403 tenant_suspended (L2)                           | 0x0402 vendor: account suspended         |
| 503 unavailable (L9: not stored durably)            | 0x08 ESME_RSYSERR (retry)                |
| anything else 4xx / 5xx                             | 0x45 ESME_RSUBMITFAIL / 0x08 ESME_RSYSERR |
"""

from __future__ import annotations

from typing import Final

from appliance.domain.pipeline.rejection import Rejection

ESME_RINVMSGLEN: Final = 0x01
ESME_RSYSERR: Final = 0x08
ESME_RINVSRCADR: Final = 0x0A
ESME_RINVDSTADR: Final = 0x0B
ESME_RSUBMITFAIL: Final = 0x45
ESME_RTHROTTLED: Final = 0x58
ESME_VENDOR_RECIPIENT_BLOCKED: Final = 0x0400
"""Hermes' vendor code (SMPP 3.4 reserves 0x400-0x4FF for vendors): compliance (L6) refused the
recipient: a global opt-out, the tenant's suppression list, or marketing without consent."""
ESME_VENDOR_CONTENT_REFUSED: Final = 0x0401
"""Hermes' vendor code: the content rules (L7) refused the text (pattern, blocked link, spam score)."""
ESME_VENDOR_ACCOUNT_SUSPENDED: Final = 0x0402
"""Hermes' vendor code: the tenant was suspended while bound."""

_BY_CODE: Final[dict[str, int]] = {
    "rate_limited": ESME_RTHROTTLED,
    "exceeds_burst": ESME_RTHROTTLED,
    "insufficient_balance": ESME_RSUBMITFAIL,
    "quota_exhausted": ESME_RSUBMITFAIL,
    "opted_out": ESME_VENDOR_RECIPIENT_BLOCKED,
    "suppressed": ESME_VENDOR_RECIPIENT_BLOCKED,
    "no_consent": ESME_VENDOR_RECIPIENT_BLOCKED,
    "content_rejected": ESME_VENDOR_CONTENT_REFUSED,
    "tenant_suspended": ESME_VENDOR_ACCOUNT_SUSPENDED,
    "unavailable": ESME_RSYSERR,
}


def command_status(rejection: Rejection) -> int:
    """The command_status that answers a submit the pipeline refused with `rejection`."""
    mapped = _BY_CODE.get(rejection.code)
    if mapped is not None:
        return mapped
    if rejection.code == "invalid_message":
        return _field_status(rejection)
    if rejection.status == 429:
        return ESME_RTHROTTLED
    return ESME_RSYSERR if rejection.status >= 500 else ESME_RSUBMITFAIL


def _field_status(rejection: Rejection) -> int:
    fields = rejection.details.get("fields") or []
    names = [str(f.get("field", "")) for f in fields if isinstance(f, dict)]
    if any(name == "to" or name.endswith(".to") for name in names):
        return ESME_RINVDSTADR
    if "from" in names:
        return ESME_RINVSRCADR
    if "body" in names:
        return ESME_RINVMSGLEN
    return ESME_RSUBMITFAIL
