"""What the REST API's OpenAPI document says about bodies that the handlers read raw.

`POST /v1/messages` reads its body itself (so a bad key is a 401 before any parsing, and all bad
fields are listed at once), so Litestar cannot infer the request schema. The typed structs below
document the accepted shapes; msgspec renders them to JSON Schema, converted here into Litestar's
spec objects and attached with an `Operation` subclass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema

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


def _convert(node: Any, definitions: dict[str, Any]) -> Any:
    """msgspec's JSON Schema -> Litestar spec objects, with references resolved inline (Litestar
    rebuilds `components.schemas` from its own models, so ours cannot live there)."""
    if isinstance(node, list):
        return [_convert(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _convert(definitions[node["$ref"].rsplit("/", 1)[-1]], definitions)
    values: dict[str, Any] = {}
    for key, value in node.items():
        name = _SCHEMA_FIELDS.get(key, key)
        if name == "properties":
            values[name] = {prop: _convert(sub, definitions) for prop, sub in value.items()}
        elif name in ("items", "any_of", "one_of", "all_of", "additional_properties"):
            values[name] = _convert(value, definitions)
        elif name in Schema.__dataclass_fields__:
            values[name] = value
    return Schema(**values)


def schema_of(*types: type[msgspec.Struct]) -> Schema:
    """One self-contained schema: the type itself, or `oneOf` the types."""
    roots, definitions = msgspec.json.schema_components(types, ref_template="#/$defs/{name}")
    schemas = [_convert(root, definitions) for root in roots]
    return schemas[0] if len(schemas) == 1 else Schema(one_of=schemas)


def body_of(*types: type[msgspec.Struct]) -> RequestBody:
    return RequestBody(
        content={"application/json": OpenAPIMediaType(schema=schema_of(*types))}, required=True
    )


def operation_with_body(*types: type[msgspec.Struct]) -> type[Operation]:
    """An Operation class whose request body is `types` (one of them, when several)."""

    @dataclass
    class _WithBody(Operation):
        def __post_init__(self) -> None:
            # Litestar passes request_body=None for a handler without a `data` parameter.
            if self.request_body is None:
                self.request_body = body_of(*types)

    return _WithBody
