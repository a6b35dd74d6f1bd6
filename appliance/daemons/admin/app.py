"""The admin API (Litestar): what `hermesctl` and the console speak to.

Two listeners share one app factory: the unix socket (trusted by file permissions, mode 0660) and an
optional TCP listener where every request needs `Authorization: Bearer ho_...` (an operator token).
Errors are JSON `{error: {code, message, details}}`; the status code is decided in `_error_response`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, delete, get, patch, post, put
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.params import FromPath, FromQuery, JSONBody

from appliance import __version__
from appliance.daemons.admin.carrier_routes import carrier_handlers
from appliance.daemons.admin.carriers import CarrierService
from appliance.daemons.admin.message_routes import message_handlers
from appliance.daemons.admin.messages import MessageService
from appliance.daemons.admin.registry import RegistryService
from appliance.daemons.admin.smpp_sessions import SmppSessionsService, smpp_session_handlers
from appliance.errors import Conflict, HermesError, InvalidInput, NotFound, StoreError
from appliance.store import Account, ApiKey, SmppCredential, Tenant
from appliance.store.models import ConcatenatedMode

StatusProvider = Callable[[], Awaitable[dict[str, Any]]]


class NewTenant(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    tier: str
    email: str


class NewKey(msgspec.Struct, forbid_unknown_fields=True):
    label: str = "default"


class NewSmppCredential(msgspec.Struct, forbid_unknown_fields=True):
    system_id: str
    password: str
    concatenated: ConcatenatedMode = "reassemble"


class SmppCredentialEdit(msgspec.Struct, forbid_unknown_fields=True):
    concatenated: ConcatenatedMode


class NewOperatorToken(msgspec.Struct, forbid_unknown_fields=True):
    label: str


class TenantEdit(msgspec.Struct, forbid_unknown_fields=True):
    tier: str | None = None
    email: str | None = None
    rate_limit: int | None = None
    burst: int | None = None
    monthly_quota: int | None = None


class Credit(msgspec.Struct, forbid_unknown_fields=True):
    amount: float
    note: str = ""


class SuppressionChange(msgspec.Struct, forbid_unknown_fields=True):
    addresses: list[str]
    channel: str = "sms"
    reason: str = "operator"


class WebhookSetting(msgspec.Struct, forbid_unknown_fields=True):
    url: str
    events: str = "final"
    secret: str | None = None


def _account_body(tenant: Tenant, account: Account) -> dict[str, Any]:
    return {
        "tenant_id": tenant.id,
        "name": tenant.name,
        "prepaid": account.prepaid,
        "balance": round(account.balance, 6),
        "reserved": round(account.reserved, 6),
        "available": round(account.balance - account.reserved, 6),
        "currency": account.currency,
        "month": account.month,
        "monthly_quota": tenant.monthly_quota,
        "quota_used": account.quota_used,
        "quota_leased": account.quota_leased,
    }


def _tenant_body(tenant: Tenant) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(tenant)
    body["tenant_id"] = body.pop("id")
    return body


def _key_body(key: ApiKey) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(key)
    body["key_id"] = body.pop("id")
    return body


def _error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """The one place where admin errors become HTTP statuses."""
    code, status = "internal", 500
    details: dict[str, Any] = {}
    if isinstance(exc, NotFound):
        code, status, details = "not_found", 404, {"kind": exc.kind, "ref": exc.ref}
    elif isinstance(exc, Conflict):
        code, status, details = "conflict", 409, {"kind": exc.kind, "ref": exc.ref}
    elif isinstance(exc, InvalidInput):
        code, status, details = "invalid", 422, {"field": exc.field}
    elif isinstance(exc, StoreError):
        code, status = "store_unavailable", 503
    elif isinstance(exc, NotAuthorizedException):
        code, status = "unauthorized", 401
    elif isinstance(exc, HTTPException):
        code, status = ("invalid" if exc.status_code == 400 else "http_error"), exc.status_code
        details = {"extra": exc.extra} if exc.extra else {}
    message = exc.detail if isinstance(exc, HTTPException) else str(exc)
    if status == 500 and not isinstance(exc, HermesError):
        message = f"internal error: {type(exc).__name__}"
    return Response({"error": {"code": code, "message": message, "details": details}}, status_code=status)


def _actor(request: Request[Any, Any, Any]) -> str:
    return str(request.scope.get("state", {}).get("actor", "local"))


def create_admin_app(
    registry: RegistryService,
    status: StatusProvider,
    *,
    carriers: CarrierService | None = None,
    require_token: bool = False,
    messages: MessageService | None = None,
    smpp_sessions: SmppSessionsService | None = None,
) -> Litestar:
    async def operator_guard(
        connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler
    ) -> None:
        if not require_token:
            return
        header = connection.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        token = (
            await registry.authenticate_operator(presented.strip()) if scheme.lower() == "bearer" else None
        )
        if token is None:
            raise NotAuthorizedException("an operator token is required (Authorization: Bearer ho_...)")
        connection.scope.setdefault("state", {})["actor"] = f"token:{token.id}"

    @get("/v1/status")
    async def get_status() -> dict[str, Any]:
        return await status()

    @get("/v1/tenants")
    async def list_tenants() -> list[dict[str, Any]]:
        return [_tenant_body(t) for t in await registry.list_tenants()]

    @post("/v1/tenants", status_code=201)
    async def add_tenant(request: Request[Any, Any, Any], data: JSONBody[NewTenant]) -> dict[str, Any]:
        tenant, key, presented = await registry.add_tenant(
            _actor(request), name=data.name, tier=data.tier, email=data.email
        )
        return {**_tenant_body(tenant), "key_id": key.id, "api_key": presented}

    @get("/v1/tenants/{ref:str}")
    async def show_tenant(ref: FromPath[str]) -> dict[str, Any]:
        tenant = await registry.get_tenant(ref)
        body = _tenant_body(tenant)
        body["keys"] = [_key_body(k) for k in await registry.list_keys(tenant.id)]
        body["smpp"] = [msgspec.to_builtins(c) for c in await registry.list_smpp(tenant.id)]
        return body

    @post("/v1/tenants/{ref:str}/suspend", status_code=200)
    async def suspend_tenant(request: Request[Any, Any, Any], ref: FromPath[str]) -> dict[str, Any]:
        return _tenant_body(await registry.set_status(_actor(request), ref, "suspended"))

    @post("/v1/tenants/{ref:str}/resume", status_code=200)
    async def resume_tenant(request: Request[Any, Any, Any], ref: FromPath[str]) -> dict[str, Any]:
        return _tenant_body(await registry.set_status(_actor(request), ref, "active"))

    @delete("/v1/tenants/{ref:str}", status_code=200)
    async def delete_tenant(request: Request[Any, Any, Any], ref: FromPath[str]) -> dict[str, Any]:
        return {**_tenant_body(await registry.delete_tenant(_actor(request), ref)), "deleted": True}

    @patch("/v1/tenants/{ref:str}", status_code=200)
    async def edit_tenant(
        request: Request[Any, Any, Any], ref: FromPath[str], data: JSONBody[TenantEdit]
    ) -> dict[str, Any]:
        tenant = await registry.edit_tenant(
            _actor(request),
            ref,
            tier=data.tier,
            email=data.email,
            rate_limit=data.rate_limit,
            burst=data.burst,
            monthly_quota=data.monthly_quota,
        )
        return _tenant_body(tenant)

    @get("/v1/tenants/{ref:str}/account")
    async def show_account(ref: FromPath[str]) -> dict[str, Any]:
        return _account_body(*await registry.account(ref))

    @post("/v1/tenants/{ref:str}/credit", status_code=200)
    async def credit(
        request: Request[Any, Any, Any], ref: FromPath[str], data: JSONBody[Credit]
    ) -> dict[str, Any]:
        return _account_body(*await registry.credit(_actor(request), ref, data.amount, data.note))

    @get("/v1/tenants/{ref:str}/suppressions")
    async def list_suppressions(
        ref: FromPath[str], after: FromQuery[str | None] = None, limit: FromQuery[int] = 1000
    ) -> list[dict[str, Any]]:
        if not 1 <= limit <= 10_000:
            raise InvalidInput("limit", "must be between 1 and 10000")
        return [msgspec.to_builtins(s) for s in await registry.suppressions(ref, after=after, limit=limit)]

    @post("/v1/tenants/{ref:str}/suppressions", status_code=200)
    async def add_suppressions(
        request: Request[Any, Any, Any], ref: FromPath[str], data: JSONBody[SuppressionChange]
    ) -> dict[str, Any]:
        count = await registry.suppress(_actor(request), ref, data.channel, data.addresses, data.reason)
        return {"added": count}

    @delete("/v1/tenants/{ref:str}/suppressions/{channel:str}/{address:str}", status_code=200)
    async def remove_suppression(
        request: Request[Any, Any, Any], ref: FromPath[str], channel: FromPath[str], address: FromPath[str]
    ) -> dict[str, Any]:
        await registry.unsuppress(_actor(request), ref, channel, address)
        return {"removed": address}

    @put("/v1/tenants/{ref:str}/webhook", status_code=200)
    async def set_webhook(
        request: Request[Any, Any, Any], ref: FromPath[str], data: JSONBody[WebhookSetting]
    ) -> dict[str, Any]:
        tenant, hook = await registry.set_webhook(_actor(request), ref, data.url, data.events, data.secret)
        return {"tenant_id": tenant.id, "url": hook.url, "events": hook.events, "secret": hook.secret}

    @get("/v1/tenants/{ref:str}/webhook")
    async def show_webhook(ref: FromPath[str]) -> dict[str, Any]:
        tenant, hook, deliveries = await registry.webhook(ref)
        return {
            "tenant_id": tenant.id,
            "url": hook.url if hook else None,
            "events": hook.events if hook else None,
            "deliveries": [
                {k: v for k, v in msgspec.to_builtins(d).items() if k != "body"} for d in deliveries
            ],
        }

    @delete("/v1/tenants/{ref:str}/webhook", status_code=200)
    async def remove_webhook(request: Request[Any, Any, Any], ref: FromPath[str]) -> dict[str, Any]:
        await registry.remove_webhook(_actor(request), ref)
        return {"removed": True}

    @get("/v1/tenants/{ref:str}/keys")
    async def list_keys(ref: FromPath[str]) -> list[dict[str, Any]]:
        return [_key_body(k) for k in await registry.list_keys(ref)]

    @post("/v1/tenants/{ref:str}/keys", status_code=201)
    async def create_key(
        request: Request[Any, Any, Any], ref: FromPath[str], data: JSONBody[NewKey]
    ) -> dict[str, Any]:
        key, presented = await registry.create_key(_actor(request), ref, data.label)
        return {**_key_body(key), "api_key": presented}

    @delete("/v1/tenants/{ref:str}/keys/{key_id:str}", status_code=200)
    async def revoke_key(
        request: Request[Any, Any, Any], ref: FromPath[str], key_id: FromPath[str]
    ) -> dict[str, Any]:
        return _key_body(await registry.revoke_key(_actor(request), ref, key_id))

    @get("/v1/tenants/{ref:str}/smpp")
    async def list_smpp(ref: FromPath[str]) -> list[SmppCredential]:
        return await registry.list_smpp(ref)

    @post("/v1/tenants/{ref:str}/smpp", status_code=201)
    async def add_smpp(
        request: Request[Any, Any, Any], ref: FromPath[str], data: JSONBody[NewSmppCredential]
    ) -> SmppCredential:
        return await registry.add_smpp(_actor(request), ref, data.system_id, data.password, data.concatenated)

    @patch("/v1/tenants/{ref:str}/smpp/{system_id:str}")
    async def set_smpp(
        request: Request[Any, Any, Any],
        ref: FromPath[str],
        system_id: FromPath[str],
        data: JSONBody[SmppCredentialEdit],
    ) -> SmppCredential:
        return await registry.set_smpp(_actor(request), ref, system_id, data.concatenated)

    @delete("/v1/tenants/{ref:str}/smpp/{system_id:str}", status_code=200)
    async def remove_smpp(
        request: Request[Any, Any, Any], ref: FromPath[str], system_id: FromPath[str]
    ) -> dict[str, Any]:
        await registry.remove_smpp(_actor(request), ref, system_id)
        return {"system_id": system_id, "removed": True}

    @get("/v1/operator/tokens")
    async def list_tokens() -> list[dict[str, Any]]:
        return [msgspec.to_builtins(t) for t in await registry.list_operator_tokens()]

    @post("/v1/operator/tokens", status_code=201)
    async def create_token(
        request: Request[Any, Any, Any], data: JSONBody[NewOperatorToken]
    ) -> dict[str, Any]:
        token, presented = await registry.create_operator_token(_actor(request), data.label)
        return {**msgspec.to_builtins(token), "token": presented}

    @delete("/v1/operator/tokens/{token_id:str}", status_code=200)
    async def revoke_token(request: Request[Any, Any, Any], token_id: FromPath[str]) -> dict[str, Any]:
        return dict(msgspec.to_builtins(await registry.revoke_operator_token(_actor(request), token_id)))

    @get("/v1/audit")
    async def list_audit(
        limit: FromQuery[int] = 100, target: FromQuery[str | None] = None
    ) -> list[dict[str, Any]]:
        if not 1 <= limit <= 10_000:
            raise InvalidInput("limit", "must be between 1 and 10000")
        return [msgspec.to_builtins(e) for e in await registry.list_audit(limit=limit, target=target)]

    return Litestar(
        route_handlers=[
            get_status,
            list_tenants,
            add_tenant,
            show_tenant,
            suspend_tenant,
            resume_tenant,
            delete_tenant,
            edit_tenant,
            show_account,
            credit,
            list_suppressions,
            add_suppressions,
            remove_suppression,
            set_webhook,
            show_webhook,
            remove_webhook,
            list_keys,
            create_key,
            revoke_key,
            list_smpp,
            add_smpp,
            set_smpp,
            remove_smpp,
            list_tokens,
            create_token,
            revoke_token,
            list_audit,
            *(carrier_handlers(carriers) if carriers is not None else []),
            *(message_handlers(messages) if messages is not None else []),
            *(smpp_session_handlers(smpp_sessions) if smpp_sessions is not None else []),
        ],
        guards=[operator_guard],
        exception_handlers={Exception: _error_response},
        openapi_config=OpenAPIConfig(title="Hermes admin API", version=__version__),
    )
