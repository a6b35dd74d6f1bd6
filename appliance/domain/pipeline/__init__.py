"""The pure layers of the validation pipeline (seed §9): each answers a `Rejection` or lets pass.

The gateway runs them in order, cheapest first, and maps a `Rejection` to its edge's answer:

    L3 rate_limit  RateLimiter.check(tenant_id, rate, burst, now, n)  429 rate_limited, exceeds_burst
    L5 schema      normalize(request, ...) -> Message | Rejection     422 invalid_message
                   describe_decode_error(exc)                         400 malformed_json, 422
    L6 compliance  check_compliance(message, ...)                     451 opted_out, suppressed, no_consent
    L7 content     ContentScanner(rules).scan(message)                400 content_rejected

L0-L2, L4, L8 and L9 need the store or the bus and live in the gateway. No I/O here.
"""

from appliance.domain.pipeline.compliance import check_compliance, normalize_address
from appliance.domain.pipeline.content import DEFAULT_SHORTENERS, SPAM_PHRASES, ContentRules, ContentScanner
from appliance.domain.pipeline.fields import FieldError, is_plausible_email, parse_e164
from appliance.domain.pipeline.rate_limit import NEVER, RateLimiter, TokenBucket, share
from appliance.domain.pipeline.rejection import Rejected, Rejection
from appliance.domain.pipeline.schema import MAX_CHANNELS, describe_decode_error, invalid, normalize

__all__ = [
    "DEFAULT_SHORTENERS",
    "MAX_CHANNELS",
    "NEVER",
    "SPAM_PHRASES",
    "ContentRules",
    "ContentScanner",
    "FieldError",
    "RateLimiter",
    "Rejected",
    "Rejection",
    "TokenBucket",
    "check_compliance",
    "describe_decode_error",
    "invalid",
    "is_plausible_email",
    "normalize",
    "normalize_address",
    "parse_e164",
    "share",
]
