"""L5: turn a loosely typed `MessageRequest` into a `Message`, or one 422 listing every bad field.

Called by each ingress once the body is decoded: `normalize(request, tenant_id=..., origin=...,
message_id=..., now=..., idempotency_key=...)`. Decoding itself fails earlier for bodies that are not
JSON or have unknown top-level fields; `describe_decode_error` turns those msgspec errors into the
same error shape.

Shapes: the short form (`to` + `channel`, plus `from`/`subject`/`html` for email) or the full form
(`channels`: an ordered cascade of `{channel, to, timeout_s, success}`), never both. Field paths in
the answer read like the JSON: `channels[1].to`, `metadata.team`. The rules for single fields live in
`fields`.

The message has one sender. With email in the cascade `from` is the email sender (required) and an
SMS leg uses the tenant's default originator; with SMS but no email it is the SMS originator (E.164
or up to 11 GSM characters); otherwise it is passed to the adapter as an opaque string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

import msgspec

from appliance.domain.message import (
    CHANNELS,
    DEFAULT_TIMEOUT_S,
    ChannelTarget,
    Message,
    MessageRequest,
    Origin,
)
from appliance.domain.pipeline.fields import MAX_SMS_PARTS, FieldChecker, FieldError
from appliance.domain.pipeline.rejection import Rejection
from appliance.domain.segmentation import segment_count

MAX_CHANNELS: Final = 5
_TARGET_KEYS: Final = frozenset({"channel", "to", "timeout_s", "success"})
_MSGSPEC_AT: Final = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_MSGSPEC_FIELD: Final = re.compile(r"Object (?:contains unknown|missing required) field `(?P<name>[^`]*)`")


def normalize(
    request: MessageRequest,
    *,
    tenant_id: str,
    origin: Origin,
    message_id: str,
    now: float,
    idempotency_key: str | None = None,
    default_timeouts: Mapping[str, float] = DEFAULT_TIMEOUT_S,
) -> Message | Rejection:
    """The validated `Message`, or a 422 `Rejection` listing every invalid field at once."""
    check = FieldChecker()
    targets = _targets(check, request)
    channels = _named_channels(request)  # also those of steps with errors, so content is checked too
    body, subject, html = check.content(request, channels)
    sender = check.sender(request.from_, channels)
    metadata = check.metadata(request.metadata)
    priority = check.priority(request.priority)
    webhook_url = check.url(request.webhook_url)
    marketing = check.flag("marketing", request.marketing)
    consent = check.flag("consent", request.consent)
    notify_all = check.flag("notify_all", request.notify_all)
    encoding, parts = None, 0
    if "sms" in channels and body:
        encoding, parts = segment_count(body)
        if parts > MAX_SMS_PARTS:
            check.fail("body", f"needs {parts} SMS parts ({encoding}); at most {MAX_SMS_PARTS} are sent")
    if check.errors or not targets:
        return invalid(check.errors)
    return Message(
        id=message_id,
        tenant_id=tenant_id,
        origin=origin,
        channels=tuple(
            t
            if t.timeout_s is not None
            else msgspec.structs.replace(t, timeout_s=_timeout(default_timeouts, t))
            for t in targets
        ),
        created_at=now,
        body=body,
        subject=subject,
        html=html,
        sender=sender,
        metadata=metadata,
        priority=priority,
        idempotency_key=idempotency_key,
        webhook_url=webhook_url,
        marketing=marketing,
        consent=consent,
        notify_all=notify_all,
        sms_parts=parts,
        sms_encoding=encoding,
    )


def _named_channels(request: MessageRequest) -> set[str]:
    named = [request.channel] if request.channels is None else request.channels
    if not isinstance(named, list | tuple):
        return set()
    names = (step.get("channel") if isinstance(step, dict) else step for step in named)
    return {name for name in names if isinstance(name, str) and name in CHANNELS}


def _timeout(defaults: Mapping[str, float], target: ChannelTarget) -> float:
    return defaults.get(target.channel, DEFAULT_TIMEOUT_S[target.channel])


def _targets(check: FieldChecker, request: MessageRequest) -> list[ChannelTarget]:
    short = request.to is not None or request.channel is not None
    if short and request.channels is not None:
        check.fail("channels", "give either to + channel (short form) or channels (full form), not both")
        return []
    if short:
        target = check.target("", request.channel, request.to, None, None)
        return [target] if target else []
    steps = request.channels
    if steps is None:
        check.fail("channels", "required: give to + channel (short form) or channels (full form)")
        return []
    if not isinstance(steps, list | tuple) or not steps:
        check.fail("channels", "must be a non-empty list of {channel, to, timeout_s, success}")
        return []
    if len(steps) > MAX_CHANNELS:
        check.fail("channels", f"at most {MAX_CHANNELS} channels, got {len(steps)}")
    targets: list[ChannelTarget] = []
    for i, step in enumerate(steps[:MAX_CHANNELS]):
        path = f"channels[{i}]."
        if not isinstance(step, dict):
            check.fail(f"channels[{i}]", "must be an object {channel, to, timeout_s, success}")
            continue
        for key in sorted(set(step) - _TARGET_KEYS, key=str):
            check.fail(f"{path}{key}", "unknown field")
        get = step.get
        target = check.target(path, get("channel"), get("to"), get("timeout_s"), get("success"))
        if target is not None:
            targets.append(target)
    return targets


def invalid(errors: list[FieldError]) -> Rejection:
    """The one 422 of L5 (also used by the batch endpoint for a malformed item)."""
    if len(errors) == 1:
        message = f"{errors[0]['field']}: {errors[0]['reason']}."
    else:
        message = f"{len(errors)} fields are invalid; see details.fields."
    return Rejection(422, "invalid_message", message, "L5", {"fields": errors})


def describe_decode_error(exc: msgspec.ValidationError | msgspec.DecodeError) -> Rejection:
    """A body msgspec could not decode: 400 "malformed_json", or 422 naming the field at fault."""
    text = str(exc)
    if not isinstance(exc, msgspec.ValidationError):
        return Rejection(
            400, "malformed_json", f"The body is not valid JSON: {text}.", "L5", {"reason": text}
        )
    where = _MSGSPEC_AT.search(text)
    path = where["path"].lstrip(".") if where else ""
    text = text[: where.start()] if where else text
    named = _MSGSPEC_FIELD.match(text)
    if named:
        path = f"{path}.{named['name']}".lstrip(".")
        reason = "unknown field" if "unknown" in text else "required"
    else:
        reason = text.replace("`", "").replace("Expected", "expected", 1)
    return invalid([{"field": path or "$", "reason": reason}])
