"""`SmppServer`: the SMSC side, where enterprises (and our tests and simulator) bind to Hermes.

The gateway daemon gives it two callbacks: `authenticate(system_id, password, bind_type, peer)`
decides binds against the tenant registry, and `handler(session, pdu)` answers submit_sm, data_sm,
query_sm, cancel_sm, replace_sm and submit_multi. enquire_link and unbind are answered by the
connection itself. DLRs and MO go back with `await session.deliver(pdu)`, which honours the
session's window. `close()` stops accepting, unbinds every session and waits, all bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Final

from appliance.logs import get_logger
from appliance.protocols.smpp.connection import DEFAULT_CONFIG, Reject, SessionConfig, SmppConnection
from appliance.protocols.smpp.constants import INTERFACE_VERSION_34, CommandStatus
from appliance.protocols.smpp.pdu import (
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    Pdu,
)
from appliance.protocols.smpp.session import BIND_TYPES, BindType, SessionUsageError, State
from appliance.protocols.smpp.tlv import Tlvs

Authenticator = Callable[[str, str, BindType, str], Awaitable[bool]]
"""(system_id, password, bind_type, peer "host:port") -> accept? Raise `Reject` for a specific status."""
RequestHandler = Callable[["ServerSession", Pdu], Awaitable[Pdu | None]]
"""(session, request) -> response; the contract of `connection.Handler`, with the session it came on."""

_BIND_RESP: Final[dict[BindType, type[BindTransmitterResp | BindReceiverResp | BindTransceiverResp]]] = {
    "transmitter": BindTransmitterResp,
    "receiver": BindReceiverResp,
    "transceiver": BindTransceiverResp,
}
_log = get_logger("hermes.smpp")


class ServerSession:
    """One ESME connected to the server; `system_id` and `bind_type` are set once it is bound."""

    def __init__(self, server: SmppServer, connection: SmppConnection) -> None:
        self.server = server
        self.connection = connection
        self.peer = connection.peer
        self.system_id: str | None = None
        self.system_type = ""
        self.bind_type: BindType | None = None

    def __repr__(self) -> str:
        return f"ServerSession({self.system_id!r}, {self.bind_type}, {self.peer}, {self.state})"

    @property
    def state(self) -> State:
        return self.connection.state

    @property
    def is_bound(self) -> bool:
        return self.connection.session.is_bound

    @property
    def can_receive(self) -> bool:
        """Bound as receiver or transceiver, so deliver_sm may be pushed to it."""
        return self.state in (State.BOUND_RX, State.BOUND_TRX)

    async def deliver(self, pdu: Pdu, timeout_s: float = 30.0) -> Pdu:
        """Push a deliver_sm (or data_sm) and return the ESME's response; waits for window room."""
        return await (await self.issue(pdu, timeout_s))

    async def issue(self, pdu: Pdu, timeout_s: float = 30.0) -> asyncio.Future[Pdu]:
        """Put a request on the wire once the window has room; returns the future of its response."""
        if not self.can_receive:
            raise SessionUsageError(f"{self!r} cannot receive {type(pdu).__name__}")
        return await self.connection.issue(pdu, timeout_s)

    async def send_response(self, pdu: Pdu) -> None:
        await self.connection.send_response(pdu)

    def abort(self, reason: str = "aborted by the server") -> None:
        """Drop the connection at once (no unbind)."""
        self.connection.abort(reason)

    async def unbind(self, timeout_s: float = 5.0) -> None:
        await self.connection.unbind(timeout_s)

    async def wait_closed(self) -> str:
        return await self.connection.wait_closed()

    async def _handle(self, pdu: Pdu) -> Pdu | None:
        if isinstance(pdu, BindTransmitter | BindReceiver | BindTransceiver):
            return await self._bind(pdu)
        return await self.server.handler(self, pdu)

    async def _bind(self, pdu: BindTransmitter | BindReceiver | BindTransceiver) -> Pdu | None:
        bind_type = BIND_TYPES[type(pdu).command_id]
        resp_cls = _BIND_RESP[bind_type]
        status: int
        try:
            accepted = await self.server.authenticate(pdu.system_id, pdu.password, bind_type, self.peer)
            status = CommandStatus.ESME_ROK if accepted else CommandStatus.ESME_RBINDFAIL
        except Reject as exc:
            status = exc.command_status
        if status:
            _log.info("smpp.bind_refused", system_id=pdu.system_id, peer=self.peer, status=status)
            return resp_cls(pdu.sequence_number, status)
        self.system_id, self.system_type, self.bind_type = pdu.system_id, pdu.system_type, bind_type
        tlvs = Tlvs(sc_interface_version=INTERFACE_VERSION_34)
        await self.connection.send_response(
            resp_cls(pdu.sequence_number, system_id=self.server.system_id, tlvs=tlvs)
        )
        _log.info("smpp.bound", action="smpp.bound", system_id=pdu.system_id, bind=bind_type, peer=self.peer)
        if self.server.on_bound is not None:
            self.server.on_bound(self)
        return None


class SmppServer:
    """A TCP listener that runs one `SmppConnection` per ESME."""

    def __init__(
        self,
        *,
        authenticate: Authenticator,
        handler: RequestHandler,
        host: str = "127.0.0.1",
        port: int = 0,
        system_id: str = "hermes",
        on_bound: Callable[[ServerSession], None] | None = None,
        config: SessionConfig = DEFAULT_CONFIG,
    ) -> None:
        self.authenticate = authenticate
        self.handler = handler
        self.host = host
        self.port = port
        self.system_id = system_id
        self.on_bound = on_bound
        self.config = config
        self._server: asyncio.Server | None = None
        self._sessions: dict[ServerSession, None] = {}  # insertion-ordered set
        self._tasks: set[asyncio.Task[object]] = set()
        self._closing = False

    @property
    def address(self) -> tuple[str, int]:
        """Where the server listens (the real port when constructed with port 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the server is not listening")
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    @property
    def sessions(self) -> list[ServerSession]:
        """Every connected session, bound or not, oldest first."""
        return list(self._sessions)

    def receivers(self, system_id: str) -> list[ServerSession]:
        """The sessions of `system_id` that deliver_sm may be pushed to."""
        return [s for s in self._sessions if s.system_id == system_id and s.can_receive]

    async def start(self) -> None:
        """Bind the listening socket; the server accepts from now on."""
        self._server = await asyncio.start_server(self._on_client, self.host, self.port)
        _log.info("smpp.listening", action="smpp.listening", address="{}:{}".format(*self.address))

    async def close(self, timeout_s: float = 5.0) -> None:
        """Stop accepting, unbind every session within `timeout_s`; connections still open after a
        further `config.close_timeout_s` are cancelled. Idempotent."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        async with asyncio.TaskGroup() as tg:
            for session in list(self._sessions):
                tg.create_task(session.unbind(timeout_s))
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=self.config.close_timeout_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.close_timeout_s):
                    await self._server.wait_closed()

    async def __aenter__(self) -> SmppServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _new_session(self, connection: SmppConnection) -> ServerSession:
        """The session for a new connection (a subclass returns its own kind)."""
        return ServerSession(self, connection)

    def _session_closed(self, session: ServerSession) -> None:
        """Called once a session's connection has ended (a hook for subclasses)."""

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        connection = SmppConnection(reader, writer, side="smsc", config=self.config)
        session = self._new_session(connection)
        connection.handler = session._handle
        if self._closing:
            connection.abort("the server is shutting down")
        self._sessions[session] = None
        try:
            await connection.run()
        finally:
            self._sessions.pop(session, None)
            self._session_closed(session)
            if task is not None:
                self._tasks.discard(task)
