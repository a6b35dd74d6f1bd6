"""The inbound SMPP server: enterprise clients bind here and submit through the same pipeline as REST.

Wiring on top of `protocols.smpp.server`: binds are checked against the tenant's SMPP credentials
(`SmppLogins`, cached), refused binds from one address are answered later and later (`BindGuard`),
a tenant holds at most `max_binds_per_tenant` binds; submit_sm and data_sm become a `MessageRequest`
(text decoded, parts reassembled, addresses in E.164, `smpp.*` metadata for the receipt) that
`Ingress.submit_authenticated` runs through L3..L9, so the submit_sm_resp with our message id leaves
only once the message is durable. Refusals become command_status in `domain.smpp_rejections`.
Receipts go back through `smpp_receipts.ReceiptRelay`.

Who runs it: gateway worker 0 only (see `appliance.daemons.gateway.serve`): binds are few and long
lived, one process holds them all, so the per-tenant bind limit, reassembly of parts that arrive
on different binds and the session listing are exact without cross-process coordination.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from appliance.bus.streams import SMPP_SESSIONS, event_subject
from appliance.config.schema import Config, SmppIngressSection
from appliance.daemons.gateway.ingress import Ingress
from appliance.daemons.gateway.registry_cache import Authenticated, RegistryCache
from appliance.daemons.gateway.smpp_coalescer import SubmitCoalescer
from appliance.daemons.gateway.smpp_logins import SmppLogins
from appliance.daemons.gateway.smpp_parts import PartStore, open_part_store
from appliance.daemons.gateway.smpp_receipts import ReceiptRelay
from appliance.daemons.http import bind_tcp
from appliance.domain.message import MessageRequest, new_message_id
from appliance.domain.pipeline import Rejection
from appliance.domain.receipt_text import TEXT_CHARS
from appliance.domain.segmentation import CONCAT_METADATA, Concat, format_concat
from appliance.domain.smpp_ingress import (
    Assembled,
    BindGuard,
    PartSets,
    Refused,
    check_part_fits,
    decode_text_of,
    destination_of,
    receipt_metadata,
    refused_parts_event,
    sender_of,
    split_part,
)
from appliance.domain.smpp_rejections import ESME_VENDOR_ACCOUNT_SUSPENDED, command_status
from appliance.errors import StartupError
from appliance.logs import get_logger
from appliance.protocols.smpp.connection import Reject, SessionConfig, SmppConnection
from appliance.protocols.smpp.constants import INTERFACE_VERSION_34, CommandStatus
from appliance.protocols.smpp.pdu import (
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    CancelSm,
    DataSm,
    DataSmResp,
    Pdu,
    QuerySm,
    ReplaceSm,
    SubmitMulti,
    SubmitSm,
    SubmitSmResp,
)
from appliance.protocols.smpp.server import ServerSession, SmppServer
from appliance.protocols.smpp.session import BIND_TYPES, BindType
from appliance.protocols.smpp.tlv import Tlvs
from appliance.store import FullStore, Tenant
from appliance.store.models import ConcatenatedMode

S = CommandStatus
_BIND_RESP: Final = {
    "transmitter": BindTransmitterResp,
    "receiver": BindReceiverResp,
    "transceiver": BindTransceiverResp,
}
_RETRYABLE: Final = frozenset({S.ESME_RTHROTTLED, S.ESME_RSYSERR})
_EVENT_ENCODER: Final = msgspec.json.Encoder()
EventPublisher = Callable[[str, bytes, str], Awaitable[None]]
"""Publishes (subject, payload, Nats-Msg-Id) to EVENTS and returns once it is stored."""
log = get_logger("hermes.gateway.smpp")


class ClientSession(ServerSession):
    """One enterprise bind: its tenant and counters, besides what `ServerSession` knows."""

    server: HermesSmppServer

    def __init__(self, server: HermesSmppServer, connection: SmppConnection) -> None:
        super().__init__(server, connection)
        self.tenant_id: str | None = None
        self.concatenated: ConcatenatedMode = "reassemble"  # the login's choice, fixed at bind
        self.since: float | None = None
        self.submitted = 0
        self.refused = 0
        self.receipts_sent = 0

    @property
    def room(self) -> int:
        """deliver_sm that may still be sent before the window is full."""
        session = self.connection.session
        return max(0, session.window - session.in_flight) if self.can_receive else 0

    @property
    def receipts_in_flight(self) -> int:
        return self.connection.session.in_flight

    def describe(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "system_id": self.system_id,
            "address": self.peer,
            "bind_type": self.bind_type,
            "since": self.since,
            "submitted": self.submitted,
            "refused": self.refused,
            "receipts_sent": self.receipts_sent,
            "receipts_in_flight": self.receipts_in_flight if self.can_receive else 0,
        }

    async def _bind(self, pdu: BindTransmitter | BindReceiver | BindTransceiver) -> Pdu | None:
        bind_type = BIND_TYPES[type(pdu).command_id]
        resp_cls = _BIND_RESP[bind_type]
        status = await self.server.gateway.check_bind(self, pdu.system_id, pdu.password, bind_type)
        if status:
            return resp_cls(pdu.sequence_number, status)
        self.system_id, self.system_type, self.bind_type = pdu.system_id, pdu.system_type, bind_type
        self.since = time.time()
        tlvs = Tlvs(sc_interface_version=INTERFACE_VERSION_34)
        await self.connection.send_response(
            resp_cls(pdu.sequence_number, system_id=self.server.system_id, tlvs=tlvs)
        )
        log.info(
            "smpp client bound",
            action="smpp.bound",
            tenant_id=self.tenant_id,
            system_id=pdu.system_id,
            bind=bind_type,
            peer=self.peer,
        )
        self.server.gateway.bound(self)
        return None


class HermesSmppServer(SmppServer):
    """`SmppServer` on sockets bound by the daemon (plain, and TLS when configured), with
    `ClientSession`s that the `SmppGateway` authenticates."""

    def __init__(self, gateway: SmppGateway, *, system_id: str, config: SessionConfig) -> None:
        super().__init__(authenticate=_never, handler=gateway.handle, system_id=system_id, config=config)
        self.gateway = gateway
        self._extra: list[asyncio.Server] = []

    async def serve_on(self, sock: socket.socket, tls: ssl.SSLContext | None = None) -> None:
        """Accept on an already bound socket (the first one given is `address`)."""
        server = await asyncio.start_server(self._on_client, sock=sock, ssl=tls)
        if self._server is None:
            self._server = server
        else:
            self._extra.append(server)
        host, port = sock.getsockname()[:2]
        log.info("smpp listening", action="smpp.listening", address=f"{host}:{port}", tls=tls is not None)

    async def close(self, timeout_s: float = 5.0) -> None:
        for server in self._extra:
            server.close()
        await super().close(timeout_s)
        for server in self._extra:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.close_timeout_s):
                    await server.wait_closed()

    def _new_session(self, connection: SmppConnection) -> ClientSession:
        return ClientSession(self, connection)

    def _session_closed(self, session: ServerSession) -> None:
        if isinstance(session, ClientSession):
            self.gateway.closed(session)

    def clients(self) -> list[ClientSession]:
        return [s for s in self._sessions if isinstance(s, ClientSession)]


async def _never(_system_id: str, _password: str, _bind_type: BindType, _peer: str) -> bool:
    """`ClientSession` decides binds itself; the base class's authenticator is never asked."""
    return False


def session_config(section: SmppIngressSection) -> SessionConfig:
    return SessionConfig(
        window=section.window,
        peer_window=section.client_window,
        enquire_link_s=section.enquire_link_s or None,
        enquire_link_timeout_s=section.enquire_link_timeout_s,
        idle_timeout_s=section.idle_timeout_s,
        bind_timeout_s=section.bind_timeout_s,
    )


def tls_context(section: SmppIngressSection) -> ssl.SSLContext:
    """The server context of the TLS listener; a missing or unreadable certificate is a StartupError."""
    if not section.tls_cert_file or not section.tls_key_file:
        raise StartupError("gateway.smpp.tls_listen needs gateway.smpp.tls_cert_file and tls_key_file")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(section.tls_cert_file, section.tls_key_file)
    except (OSError, ssl.SSLError) as exc:
        raise StartupError(f"gateway.smpp.tls_cert_file/tls_key_file cannot be loaded: {exc}") from exc
    return context


class SmppGateway:
    """Binds, submits and the session list of the inbound SMPP server; `server` is the listener."""

    def __init__(
        self,
        section: SmppIngressSection,
        *,
        ingress: Ingress,
        registry: RegistryCache,
        store: FullStore,
        receipts: ReceiptRelay,
        part_store: PartStore | None = None,
        publish_event: EventPublisher | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.section = section
        self.ingress = ingress
        self.registry = registry
        self.receipts = receipts
        self.part_store = part_store
        self._publish_event = publish_event
        self.logins = SmppLogins(store)
        self.guard = BindGuard(
            base_s=section.bind_failure_delay_s,
            max_s=section.bind_failure_max_delay_s,
            reset_s=section.bind_failure_reset_s,
        )
        self.parts = PartSets(
            timeout=section.reassembly_timeout_s, max_pending=section.reassembly_max_pending
        )
        self.server = HermesSmppServer(self, system_id=section.system_id, config=session_config(section))
        self._monotonic = monotonic
        self._tasks: set[asyncio.Task[None]] = set()
        self._coalescer = SubmitCoalescer(ingress, self._tasks)
        self.subscription: Subscription | None = None
        receipts.set_receivers(self.receivers)
        self._sweeper: asyncio.Task[None] | None = None

    def start_sweeping(self) -> None:
        """Drop incomplete concatenated messages after the reassembly timeout (`sweep_parts`)."""
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_loop())

    # ---- bind ------------------------------------------------------------------------------
    async def check_bind(self, session: ClientSession, system_id: str, password: str, bind_type: str) -> int:
        """0 to accept the bind (the session then belongs to its tenant), else the status to refuse."""
        address = session.peer.rpartition(":")[0]
        login = await self.logins.check(system_id, password)
        tenant = await self.registry.tenant(login.tenant_id) if login is not None else None
        if tenant is None or tenant.status != "active":
            failures, delay = self.guard.failed(address, self._monotonic())
            log.warning(
                "smpp bind refused",
                action="smpp.bind_failed",
                system_id=system_id,
                peer=session.peer,
                bind=bind_type,
                reason="suspended tenant" if tenant is not None else "wrong system_id or password",
                failures=failures,
                delay_s=delay,
            )
            if delay:
                await asyncio.sleep(delay)
            return S.ESME_RBINDFAIL
        self.guard.succeeded(address)
        limit = self.section.max_binds_per_tenant
        held = sum(1 for s in self.server.clients() if s.tenant_id == tenant.id)
        if limit and held >= limit:
            log.warning(
                "smpp bind refused: too many binds",
                action="smpp.bind_limit",
                tenant_id=tenant.id,
                system_id=system_id,
                peer=session.peer,
                limit=limit,
            )
            return S.ESME_RALYBND
        session.tenant_id = tenant.id  # counts against the limit from here on, before any await
        session.concatenated = login.concatenated if login is not None else "reassemble"
        try:
            await self.receipts.ensure_consumer(tenant.id)
        except Exception as exc:
            session.tenant_id = None
            log.error(
                "smpp bind refused: receipts cannot be queued",
                action="smpp.bind_unavailable",
                tenant_id=tenant.id,
                error=str(exc) or type(exc).__name__,
            )
            return S.ESME_RSYSERR
        return 0

    def bound(self, session: ClientSession) -> None:
        if session.can_receive and session.tenant_id is not None:
            self.receipts.attach(session.tenant_id)

    def closed(self, session: ClientSession) -> None:
        if session.tenant_id is not None and session.since is not None:
            self.receipts.wake(session.tenant_id)

    def receivers(self, tenant_id: str) -> list[ClientSession]:
        return [s for s in self.server.clients() if s.tenant_id == tenant_id and s.can_receive]

    def apply_change(self, kind: str, ident: str) -> None:
        """An admin change: forget cached logins; a suspended or deleted tenant loses its binds.
        Call after the registry cache forgot the tenant, so the re-read sees the change."""
        self.logins.invalidate(kind, ident)
        if kind == "tenant" and any(s.tenant_id == ident for s in self.server.clients()):
            task = asyncio.get_running_loop().create_task(self._recheck(ident))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _recheck(self, tenant_id: str) -> None:
        tenant = await self.registry.tenant(tenant_id)
        if tenant is not None and tenant.status == "active":
            return
        sessions = [s for s in self.server.clients() if s.tenant_id == tenant_id]
        log.info(
            "unbinding a suspended tenant",
            action="smpp.tenant_unbound",
            tenant_id=tenant_id,
            binds=len(sessions),
        )
        async with asyncio.TaskGroup() as tg:
            for session in sessions:
                tg.create_task(session.unbind(2.0))

    async def close(self, timeout_s: float = 5.0) -> None:
        """Stop accepting and unbind every client (bounded); stop the receipt pumps."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self.subscription is not None:
            with contextlib.suppress(Exception):
                await self.subscription.unsubscribe()
        await self.server.close(timeout_s)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=1.0)
        await self.receipts.close()

    # ---- the session list ------------------------------------------------------------------
    def sessions(self, tenant_id: str | None = None) -> list[dict[str, Any]]:
        return [
            s.describe()
            for s in self.server.clients()
            if s.since is not None and (tenant_id is None or s.tenant_id == tenant_id)
        ]

    # ---- requests --------------------------------------------------------------------------
    async def handle(self, session: ServerSession, pdu: Pdu) -> Pdu | None:
        assert isinstance(session, ClientSession)
        if isinstance(pdu, SubmitSm | DataSm):
            try:
                message_id = await self._submit(session, pdu)
            except Reject:
                session.refused += 1
                raise
            session.submitted += 1
            if isinstance(pdu, SubmitSm):
                return SubmitSmResp(pdu.sequence_number, message_id=message_id)
            return DataSmResp(pdu.sequence_number, message_id=message_id)
        if isinstance(pdu, QuerySm):
            raise Reject(S.ESME_RQUERYFAIL, "query_sm is not offered; use receipts or the REST API")
        if isinstance(pdu, CancelSm):
            raise Reject(S.ESME_RCANCELFAIL, "messages are dispatched at once; nothing to cancel")
        if isinstance(pdu, ReplaceSm):
            raise Reject(S.ESME_RREPLACEFAIL, "messages are dispatched at once; nothing to replace")
        if isinstance(pdu, SubmitMulti):
            raise Reject(S.ESME_RSUBMITFAIL, "submit_multi is not offered; send one submit_sm each")
        raise Reject(S.ESME_RINVCMDID, f"{type(pdu).__name__} is not offered")

    async def _submit(self, session: ClientSession, pdu: SubmitSm | DataSm) -> str:
        if session.tenant_id is None:
            raise Reject(S.ESME_RINVBNDSTS, "not bound")
        tenant = await self.registry.tenant(session.tenant_id)
        if tenant is None or tenant.status != "active":
            raise Reject(ESME_VENDOR_ACCOUNT_SUSPENDED, "the tenant is suspended")
        tlvs = pdu.tlvs
        try:
            part = split_part(
                pdu.short_message if isinstance(pdu, SubmitSm) else b"",
                tlvs.message_payload,
                pdu.esm_class,
                (tlvs.sar_msg_ref_num, tlvs.sar_total_segments, tlvs.sar_segment_seqnum),
            )
            to = destination_of(pdu.destination_addr, pdu.dest_addr_ton)
            if part.concat is None:
                text = decode_text_of(part.payload, pdu.data_coding)
                return await self._accept(session, tenant=tenant, pdu=pdu, to=to, text=text)
            if session.concatenated == "parts":
                # each part its own message, sent on as that part of a concatenated SMS
                text = decode_text_of(part.payload, pdu.data_coding)
                check_part_fits(text, part.concat)
                return await self._accept(
                    session, tenant=tenant, pdu=pdu, to=to, text=text, concat=part.concat
                )
            tenant_id = session.tenant_id
            conversation = (pdu.source_addr, pdu.destination_addr)
            key = (tenant_id, *conversation)
            concat = part.concat
            now = self._monotonic()
            # what a receipt for this part's id needs, should its message never be sent
            try:
                part_text = decode_text_of(part.payload, pdu.data_coding)
            except Refused:
                part_text = ""
            context = _receipt_context(session, pdu, text=part_text)
            if self.part_store is not None and not self.parts.holds(key, concat):
                stored = await self.part_store.load(tenant_id, conversation, concat)
                for seq, earlier in stored.items():
                    again = Concat(concat.reference, concat.total, seq)
                    self.parts.add(key, again, earlier.part_id, earlier.payload, now, earlier.context or None)
            minted = new_message_id()
            added = self.parts.add(key, concat, minted, part.payload, now, context)
            if not isinstance(added, Assembled):
                if added == minted and self.part_store is not None:
                    try:
                        await self.part_store.put(
                            tenant_id, conversation, concat, minted, part.payload, context
                        )
                    except Exception as exc:
                        self.parts.discard(key, concat)
                        raise Reject(S.ESME_RSYSERR, f"the part could not be stored: {exc!r}") from None
                return added
            text = ""
            try:
                try:
                    text = decode_text_of(added.payload, pdu.data_coding)
                except Refused as exc:
                    raise Reject(exc.command_status, exc.reason) from None
                message_id = await self._accept(
                    session,
                    tenant=tenant,
                    pdu=pdu,
                    to=to,
                    text=text,
                    part_ids=added.earlier_ids,
                )
            except Reject as exc:
                if exc.command_status in _RETRYABLE:
                    self.parts.restore(key, concat, added)
                else:
                    log.warning(
                        "a concatenated message was refused after its earlier parts were answered",
                        action="smpp.concat_refused",
                        tenant_id=session.tenant_id,
                        part_ids=list(added.earlier_ids),
                        status=exc.command_status,
                    )
                    await self._refuse_answered(
                        tenant_id,
                        added.earlier_ids,
                        {**context, "smpp.text": text[:TEXT_CHARS]} if text else context,
                        command_status=exc.command_status,
                        reason=f"the whole message was refused: {exc}",
                    )
                    if self.part_store is not None:
                        await self.part_store.purge(tenant_id, conversation, concat)
                raise
            if self.part_store is not None:
                await self.part_store.purge(tenant_id, conversation, concat)
            return message_id
        except Refused as exc:
            raise Reject(exc.command_status, exc.reason) from None

    async def _refuse_answered(
        self,
        tenant_id: str,
        ids: tuple[str, ...],
        context: dict[str, str],
        *,
        command_status: int,
        reason: str,
    ) -> None:
        """Tell the client, by REJECTD receipts, that the ids it got for parts will never be delivered."""
        if not ids or self._publish_event is None:
            return
        event = refused_parts_event(
            tenant_id, ids, context, command_status=command_status, reason=reason, at=time.time()
        )
        try:
            subject = event_subject(tenant_id, event.kind)
            await self._publish_event(subject, _EVENT_ENCODER.encode(event), event.id)
        except Exception as exc:
            log.error(
                "could not record the refusal of answered parts",
                action="smpp.parts_refusal_lost",
                tenant_id=tenant_id,
                part_ids=list(ids),
                error=repr(exc),
            )

    async def sweep_parts(self) -> int:
        """Give up on sets that did not complete within the reassembly timeout (or were evicted): their
        answered ids get REJECTD receipts, their stored parts go. Returns how many sets were dropped."""
        dropped = self.parts.expire(self._monotonic())
        for abandoned in dropped:
            tenant_id, source, destination = _conversation_key(abandoned.key)
            await self._refuse_answered(
                tenant_id,
                abandoned.ids,
                dict(abandoned.context),
                command_status=0,
                reason=f"incomplete: {len(abandoned.ids)} of {abandoned.total} parts arrived in time",
            )
            if self.part_store is not None:
                await self.part_store.purge(
                    tenant_id, (source, destination), Concat(abandoned.reference, abandoned.total, 1)
                )
        return len(dropped)

    async def _sweep_loop(self) -> None:
        interval = min(5.0, max(0.05, self.section.reassembly_timeout_s / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                dropped = await self.sweep_parts()
            except Exception as exc:  # the next sweep tries again; nothing is lost meanwhile
                log.error("sweeping incomplete parts failed", action="smpp.sweep_failed", error=repr(exc))
                continue
            if dropped:
                log.warning(
                    "incomplete concatenated messages dropped",
                    action="smpp.concat_expired",
                    sets=dropped,
                )

    async def _accept(
        self,
        session: ClientSession,
        *,
        tenant: Tenant,
        pdu: SubmitSm | DataSm,
        to: str,
        text: str,
        part_ids: tuple[str, ...] = (),
        concat: Concat | None = None,
    ) -> str:
        metadata = _receipt_context(session, pdu, text=text, part_ids=part_ids)
        if concat is not None:
            metadata[CONCAT_METADATA] = format_concat(concat)
        request = MessageRequest(
            to=to,
            channel="sms",
            body=text,
            from_=sender_of(pdu.source_addr, pdu.source_addr_ton),
            metadata=metadata,
        )
        auth = Authenticated(f"smpp:{session.system_id}", tenant)
        result = await self._coalescer.submit(auth, request)
        if isinstance(result, Rejection):
            raise Reject(command_status(result), f"{result.layer} {result.code}: {result.message}")
        return result.id


def _conversation_key(key: object) -> tuple[str, str, str]:
    """(tenant, source, destination): how `_submit` keys a set of parts."""
    tenant_id, source, destination = key if isinstance(key, tuple) else ("", "", "")
    return str(tenant_id), str(source), str(destination)


def _receipt_context(
    session: ClientSession, pdu: SubmitSm | DataSm, *, text: str, part_ids: tuple[str, ...] = ()
) -> dict[str, str]:
    """The `smpp.*` metadata a receipt for this submit needs (who asked, and how it was addressed)."""
    return receipt_metadata(
        system_id=session.system_id or "",
        registered_delivery=pdu.registered_delivery,
        source=(pdu.source_addr_ton, pdu.source_addr_npi, pdu.source_addr),
        destination=(pdu.dest_addr_ton, pdu.dest_addr_npi, pdu.destination_addr),
        text=text,
        part_ids=part_ids,
    )


class _SessionsQuery(msgspec.Struct):
    tenant_id: str | None = None


async def start_smpp(
    config: Config,
    *,
    ingress: Ingress,
    registry: RegistryCache,
    store: FullStore,
    nats: NatsClient,
    worker: int = 0,
) -> SmppGateway:
    """Build the SMPP server, bind its listeners (plain, and TLS when configured), and answer
    session-list requests on `SMPP_SESSIONS`. The caller closes it with `close()`."""
    section = config.gateway.smpp
    js = nats.jetstream()
    relay = ReceiptRelay(nats, timeout_s=section.receipt_timeout_s)
    part_store = await open_part_store(js, section.reassembly_timeout_s + 60.0)

    async def publish_event(subject: str, payload: bytes, msg_id: str) -> None:
        await js.publish(subject, payload, timeout=10.0, stream="EVENTS", headers={"Nats-Msg-Id": msg_id})

    smpp = SmppGateway(
        section,
        ingress=ingress,
        registry=registry,
        store=store,
        receipts=relay,
        part_store=part_store,
        publish_event=publish_event,
    )
    smpp.start_sweeping()
    tls = tls_context(section) if section.tls_listen else None
    sockets = [bind_tcp(section.listen, key="gateway.smpp.listen")]
    if section.tls_listen:
        sockets.append(bind_tcp(section.tls_listen, key="gateway.smpp.tls_listen"))
    try:
        await smpp.server.serve_on(sockets[0])
        if tls is not None:
            await smpp.server.serve_on(sockets[1], tls)
    except BaseException:
        for sock in sockets:
            sock.close()
        await smpp.close()
        raise
    node = config.appliance.node_name

    async def on_query(msg: Msg) -> None:
        try:
            query = msgspec.json.decode(msg.data or b"{}", type=_SessionsQuery)
        except (msgspec.DecodeError, msgspec.ValidationError):
            query = _SessionsQuery()
        sessions = smpp.sessions(query.tenant_id)
        queued: dict[str, int | None] = {}
        for tenant_id in {s["tenant_id"] for s in sessions if s["tenant_id"]}:
            queued[tenant_id] = await relay.queued(tenant_id)
        for entry in sessions:
            entry["receipts_queued"] = queued.get(entry["tenant_id"])
        body = {"node": node, "worker": worker, "sessions": sessions}
        with contextlib.suppress(Exception):
            await msg.respond(msgspec.json.encode(body))

    smpp.subscription = await nats.subscribe(SMPP_SESSIONS, cb=on_query)
    return smpp
