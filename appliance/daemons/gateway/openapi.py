"""What the REST API's OpenAPI document says about bodies that the handlers read raw.

`POST /v1/messages` reads its body itself (so a bad key is a 401 before any parsing, and all bad
fields are listed at once), so Litestar cannot infer the request schema. The typed structs below
document the three accepted shapes; msgspec renders them to JSON Schema, converted here into
Litestar's spec objects and attached with an `Operation` subclass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec
from litestar.openapi.spec import Components, OpenAPIMediaType, Operation, Reference, RequestBody, Schema

from appliance.domain.message import Channel, Priority, SuccessWhen


class ChannelStep(msgspec.Struct, kw_only=True):
    channel: Channel
    to: Annotated[
        str, msgspec.Meta(description="E.164 for sms/whatsapp, an address for email, a token for push")
    ]
    timeout_s: Annotated[float, msgspec.Meta(ge=1, le=86_400)] | None = None
    success: SuccessWhen = "delivered"


class MessageSubmission(msgspec.Struct, kw_only=True, rename={"from_": "from"}):
    """Short form (`to` + `channel`) or full form (`channels`, an ordered cascade): exactly one."""

    to: str | None = None
    channel: Channel | None = None
    channels: list[ChannelStep] | None = None
    body: str | None = None
    subject: str | None = None
    html: str | None = None
    from_: str | None = None
    metadata: dict[str, str] | None = None
    priority: Priority = "normal"
    webhook_url: str | None = None
    marketing: bool = False
    consent: bool = False
    notify_all: bool = False


class BatchSubmission(msgspec.Struct, kw_only=True):
    messages: Annotated[list[MessageSubmission], msgspec.Meta(min_length=1, max_length=1000)]


class SuppressionUpload(msgspec.Struct, kw_only=True):
    addresses: Annotated[list[str], msgspec.Meta(min_length=1, max_length=10_000)]
    channel: Literal["sms", "email", "whatsapp", "push", "telegram"] = "sms"
    reason: str = "tenant upload"


_SCHEMA_FIELDS = {
    "anyOf": "any_of",
    "oneOf": "one_of",
    "allOf": "all_of",
    "maxLength": "max_length",
    "minLength": "min_length",
    "maxItems": "max_items",
    "minItems": "min_items",
    "additionalProperties": "additional_properties",
    "exclusiveMinimum": "exclusive_minimum",
    "exclusiveMaximum": "exclusive_maximum",
}


def _convert(node: Any) -> Any:
    if isinstance(node, list):
        return [_convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return Reference(ref=node["$ref"])
    values: dict[str, Any] = {}
    for key, value in node.items():
        name = _SCHEMA_FIELDS.get(key, key)
        if name == "properties":
            values[name] = {prop: _convert(sub) for prop, sub in value.items()}
        elif name in ("items", "any_of", "one_of", "all_of", "additional_properties"):
            values[name] = _convert(value)
        elif name in Schema.__dataclass_fields__:
            values[name] = value
    return Schema(**values)


def components_for(*types: type[msgspec.Struct]) -> Components:
    _, definitions = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    return Components(schemas={name: _convert(schema) for name, schema in definitions.items()})


def body_of(*names: str) -> RequestBody:
    refs = [Reference(ref=f"#/components/schemas/{name}") for name in names]
    schema: Schema | Reference = refs[0] if len(refs) == 1 else Schema(one_of=refs)
    return RequestBody(content={"application/json": OpenAPIMediaType(schema=schema)}, required=True)


def operation_with_body(*names: str) -> type[Operation]:
    """An Operation class whose request body is the named component schema(s)."""

    @dataclass
    class _WithBody(Operation):
        request_body: Reference | RequestBody | None = field(default_factory=lambda: body_of(*names))

    return _WithBody
