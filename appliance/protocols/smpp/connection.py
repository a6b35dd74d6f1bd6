"""One SMPP session over an asyncio stream, for either side: the `Session` rules driven by real I/O.

`SmppClient` (carrier binds) and `SmppServer` (enterprise binds) both wrap an `SmppConnection`. It
reads frames with `PduReader`, correlates responses by sequence number, makes callers wait for window
room, answers enquire_link and unbind itself, sends enquire_link every `enquire_link_s`, nacks
malformed PDUs, and hands every other incoming request to `handler`, one task per request, so
responses leave in order of completion. The connection ends on EOF, lost framing, an unanswered
enquire_link, `idle_timeout_s` without a received PDU, `bind_timeout_s` without a bind, or
`unbind()`/`abort()`; then every waiting caller gets `ConnectionLost`.

    SmppConnectionError(HermesError)
    ├── ConnectionLost      the connection closed before the response came (`reason` says why)
    └── RequestTimeout      no window room, or no response, in time (`sent` says whether it went out)
    Reject(HermesError)     raised by a handler: answer the request with `command_status`
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Final

from msgspec.structs import replace

from appliance.errors import HermesError
from appliance.logs import get_logger
from appliance.protocols.smpp.codec import PduDecodeError, PduReader, decode, encode
from appliance.protocols.smpp.constants import DEFAULT_MAX_PDU_SIZE, CommandId, CommandStatus, status_name
from appliance.protocols.smpp.pdu import (
    PDU_CLASSES,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Pdu,
    Unbind,
    UnbindResp,
)
from appliance.protocols.smpp.session import (
    BOUND,
    OUTSIDE_WINDOW,
    ResponseReceived,
    Session,
    SessionError,
    SessionUsageError,
    Side,
    State,
    error_response,
)

S = CommandStatus
Handler = Callable[[Pdu], Awaitable[Pdu | None]]
"""An incoming request -> its response (the sequence number is copied over), or None if already
answered or none is owed. Raising `Reject` answers with its status; any other exception, ESME_RSYSERR."""

_READ_SIZE: Final = 1 << 16
_CLASSES: Final = {cls.command_id: cls for cls in PDU_CLASSES}
_log = get_logger("hermes.smpp")


class SmppConnectionError(HermesError):
    """The SMPP connection failed."""


class ConnectionLost(SmppConnectionError):
    """The SMPP connection is closed."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"SMPP connection closed: {reason}")


class RequestTimeout(SmppConnectionError):
    """The SMPP request timed out."""

    def __init__(self, command: str, timeout: float, *, sent: bool) -> None:
        self.sent = sent
        what = "no response" if sent else "no window room"
        super().__init__(f"{command}: {what} within {timeout:g} s")


class Reject(HermesError):
    """The request is refused."""

    def __init__(self, command_status: int, reason: str = "") -> None:
        self.command_status = command_status
        super().__init__(reason or status_name(command_status))


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """The knobs of one session, the same for both sides; the daemons build it from hermes.toml."""

    window: int = 10
    """Our requests that may await a response at once; more wait for room."""
    peer_window: int = 100
    """The peer's requests we work on at once; more are answered ESME_RTHROTTLED / ESME_RMSGQFUL."""
    enquire_link_s: float | None = 30.0
    """Probe a bound session this often; None never probes (the peer's probes are still answered)."""
    enquire_link_timeout_s: float = 10.0
    """Close when a probe is not answered within this."""
    idle_timeout_s: float | None = None
    """Close when no PDU at all was received for this long."""
    bind_timeout_s: float | None = 10.0
    """Close a connection not bound this long after it opened (a client also bounds connect + bind)."""
    close_timeout_s: float = 5.0
    """How long teardown waits for handlers, and for the socket to close."""
    max_pdu_size: int = DEFAULT_MAX_PDU_SIZE
    """Larger command_length values lose the framing: generic_nack, then close."""


DEFAULT_CONFIG: Final = SessionConfig()


class SmppConnection:
    """An SMPP session on a stream pair; `start()` (or `async with`) runs it, `unbind()` ends it."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        side: Side,
        handler: Handler | None = None,
        config: SessionConfig = DEFAULT_CONFIG,
    ) -> None:
        self.session = Session(side, window=config.window, peer_window=config.peer_window)
        self.handler = handler
        self.config = config
        self._reader = reader
        self._writer = writer
        self._frames = PduReader(config.max_pdu_size)
        peer = writer.get_extra_info("peername")
        self.peer: str = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self._futures: dict[int, asyncio.Future[Pdu]] = {}
        self._room_waiters: deque[asyncio.Future[None]] = deque()
        self._idle = asyncio.Event()
        self._idle.set()
        self._stop = asyncio.Event()
        self._timer_wake = asyncio.Event()
        self._timer_at = float("inf")
        self._reason: str | None = None
        self._drain_until: float | None = None
        self._refusing = False
        self._enquire_seq: int | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._tg: asyncio.TaskGroup | None = None
        self._runner: asyncio.Task[None] | None = None
        self._outgoing: list[bytes] = []  # PDUs written this loop turn, sent together at its end
        self._done = asyncio.Event()
        self._started_at = self._last_rx = 0.0

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self.session.state

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    @property
    def close_reason(self) -> str | None:
        return self._reason

    def start(self) -> None:
        """Run the session in a task this object owns; `wait_closed()` joins it."""
        if self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self.run(), name=f"smpp {self.peer}")

    async def run(self) -> None:
        """Run the session in the calling task until it ends; never raises for connection trouble."""
        loop = asyncio.get_running_loop()
        self._started_at = self._last_rx = loop.time()
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                reading = tg.create_task(self._read_loop())
                timing = tg.create_task(self._timer_loop())
                await self._stop.wait()
                reading.cancel()
                timing.cancel()
                await self._finish_handlers(loop)
        except Exception as exc:  # a bug in a loop: log it, and still close properly below
            self._stop_with(f"internal error: {exc!r}")
            _log.error("smpp.connection_crashed", peer=self.peer, exc_info=exc)
        finally:
            self._tg = None
            self._fail_everything(ConnectionLost(self._reason or "closed"))
            await self._close_transport()
            self._done.set()
            _log.info("smpp.closed", action="smpp.closed", peer=self.peer, reason=self._reason)

    async def wait_closed(self) -> str:
        """Wait until the session has ended and its socket is closed; returns why it ended."""
        if self._runner is not None:
            await asyncio.shield(self._runner)
        else:
            await self._done.wait()
        return self._reason or "closed"

    def abort(self, reason: str = "aborted") -> None:
        """End now: no unbind, handlers still running are cancelled. Returns at once."""
        self._drain_until = 0.0
        self._stop_with(reason)

    async def unbind(self, timeout_s: float = 5.0) -> None:
        """Orderly end within `timeout_s`: refuse new requests, let ours be answered, unbind, close.

        Idempotent. Handlers still working on the peer's requests get what is left of the deadline.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        if not (self._refusing or self._stop.is_set()):  # else an unbind is under way already
            self._refusing = True
            self._drain_until = deadline
            with contextlib.suppress(TimeoutError, SmppConnectionError, SessionUsageError):
                async with asyncio.timeout_at(deadline):
                    await self._idle.wait()
                    if self.session.is_bound:
                        await (await self._issue(Unbind(0), max(0.001, deadline - loop.time())))
            self._stop_with("unbind unanswered" if self.session.bound_as else "closed locally")
        if self._runner is not None or self._tg is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, deadline - loop.time()) + self.config.close_timeout_s):
                    await self.wait_closed()

    async def __aenter__(self) -> SmppConnection:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.unbind(self.config.close_timeout_s)

    # -- sending ---------------------------------------------------------------------------------

    async def request(self, pdu: Pdu, timeout_s: float = 30.0) -> Pdu:
        """Send a request and return its response (maybe an error status or a generic_nack).

        Waits up to `timeout_s` for window room, then up to `timeout_s` for the response. Raises
        `RequestTimeout`, `ConnectionLost`, or `SessionUsageError` when the state forbids it.
        """
        return await (await self.issue(pdu, timeout_s))

    async def issue(self, pdu: Pdu, timeout_s: float = 30.0) -> asyncio.Future[Pdu]:
        """Send a request once the window has room; returns the future of its response.

        Lets a caller put several requests on the wire in order before awaiting any answer.
        """
        if self._refusing:
            raise ConnectionLost(self._reason or "unbinding")
        return await self._issue(pdu, timeout_s)

    async def _issue(self, pdu: Pdu, timeout_s: float) -> asyncio.Future[Pdu]:
        if self._stop.is_set():
            raise ConnectionLost(self._reason or "closed")
        loop = asyncio.get_running_loop()
        if type(pdu).command_id not in OUTSIDE_WINDOW:
            await self._wait_room(loop, timeout_s, type(pdu).__name__)
        try:
            sent = self.session.send_request(pdu, loop.time(), timeout_s)
        except SessionUsageError:
            self._wake_room()  # the room we were given goes to the next in line
            raise
        seq = sent.sequence_number
        try:
            self._write(encode(sent))
        except BaseException:
            self.session.abandon(seq)
            self._release(sent)
            raise
        future: asyncio.Future[Pdu] = loop.create_future()
        self._futures[seq] = future
        self._idle.clear()
        if loop.time() + timeout_s < self._timer_at:
            self._timer_wake.set()
        try:
            await self._drain()
        except BaseException:
            future.cancel()  # nobody will await it; its response, if any, is dropped
            raise
        return future

    async def send_response(self, pdu: Pdu) -> None:
        """Answer one of the peer's requests (a handler returning its response does this for you)."""
        self.session.send_response(pdu)
        self._write(encode(pdu))
        await self._drain()

    def _write(self, data: bytes) -> None:
        """Queue a PDU; the PDUs of one loop turn go out in one write at its end. A window's worth of
        responses (or receipts) that become ready together is then one send() instead of one each."""
        if self._writer.is_closing():
            raise ConnectionLost(self._reason or "the transport is closing")
        if not self._outgoing:
            asyncio.get_running_loop().call_soon(self._send_outgoing)
        self._outgoing.append(data)

    def _send_outgoing(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        if outgoing and not self._writer.is_closing():
            self._writer.write(outgoing[0] if len(outgoing) == 1 else b"".join(outgoing))

    def _send_raw(self, pdu: Pdu) -> None:
        """Write a PDU the session has already judged (an error reply); never raises."""
        with contextlib.suppress(Exception):
            self._write(encode(pdu))

    async def _drain(self) -> None:
        """Wait while the transport's buffer is over its high-water mark (what this turn queued joins
        it at the turn's end, so the next drain counts it)."""
        try:
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            self._stop_with(f"write failed: {exc!r}")
            raise ConnectionLost(self._reason or "write failed") from exc

    # -- the window ------------------------------------------------------------------------------

    async def _wait_room(self, loop: asyncio.AbstractEventLoop, timeout_s: float, command: str) -> None:
        session = self.session
        if session.has_room and not self._room_waiters:
            return
        deadline = loop.time() + timeout_s
        while True:
            waiter: asyncio.Future[None] = loop.create_future()
            self._room_waiters.append(waiter)
            try:
                async with asyncio.timeout_at(deadline):
                    await waiter
            except TimeoutError:
                self._drop_waiter(waiter)
                raise RequestTimeout(command, timeout_s, sent=False) from None
            except BaseException:
                self._drop_waiter(waiter)
                raise
            if self._stop.is_set():
                raise ConnectionLost(self._reason or "closed")
            if session.has_room:
                return

    def _drop_waiter(self, waiter: asyncio.Future[None]) -> None:
        if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
            self._wake_room()  # we were handed room we will not use: pass it on
        else:
            with contextlib.suppress(ValueError):
                self._room_waiters.remove(waiter)

    def _wake_room(self) -> None:
        waiters = self._room_waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _release(self, request: Pdu) -> None:
        """A request left the window: wake one waiter for room, and note when nothing is in flight."""
        if type(request).command_id not in OUTSIDE_WINDOW:
            self._wake_room()
        if not self._futures:
            self._idle.set()

    # -- receiving -------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        reader, frames = self._reader, self._frames
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = await reader.read(_READ_SIZE)
            except (ConnectionError, OSError) as exc:
                self._stop_with(f"read failed: {exc!r}")
                return
            if not data:
                self._stop_with("the peer closed the connection")
                return
            try:
                frames.feed(data)
                for frame in frames:
                    self._on_frame(frame, loop)
            except PduDecodeError as exc:  # a bad command_length: framing is lost for good
                self._send_raw(GenericNack(exc.sequence_number or 0, exc.command_status))
                _log.warning("smpp.framing_lost", peer=self.peer, error=str(exc))
                self._stop_with(f"framing lost: {exc.reason}")
                return

    def _on_frame(self, frame: bytes, loop: asyncio.AbstractEventLoop) -> None:
        self._last_rx = now = loop.time()
        try:
            pdu = decode(frame)
        except PduDecodeError as exc:
            self._on_undecodable(exc)
            return
        try:
            event = self.session.receive(pdu, now)
        except SessionError as exc:
            _log.warning("smpp.illegal_pdu", peer=self.peer, pdu=type(pdu).__name__, error=str(exc))
            if exc.reply is not None:
                self._send_raw(exc.reply)
            return
        if isinstance(event, ResponseReceived):
            self._on_response(event)
            return
        cid = type(pdu).command_id
        if cid == CommandId.ENQUIRE_LINK:
            self._respond_now(EnquireLinkResp(pdu.sequence_number))
        elif cid == CommandId.UNBIND:
            self._refusing = True
            self._spawn(self._answer_unbind(pdu, loop))
        elif self.handler is None:
            if event.needs_response:
                self._respond_now(error_response(pdu, S.ESME_RX_T_APPN))
        else:
            self._spawn(self._handle(pdu, event.needs_response))

    def _spawn(self, work: Coroutine[None, None, None]) -> None:
        """Run `work` in the session's task group, tracked so teardown can drain and cancel it."""
        if self._tg is None:
            work.close()
            return
        task = self._tg.create_task(work)
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    def _on_undecodable(self, exc: PduDecodeError) -> None:
        seq = exc.sequence_number or 0
        cid = exc.command_id
        _log.warning("smpp.malformed_pdu", peer=self.peer, error=str(exc))
        if cid is not None and cid & 0x80000000:  # an unreadable response: fail its request, answer nothing
            entry = self.session.abandon(seq)
            future = self._futures.pop(seq, None)
            if future is not None and not future.done():
                future.set_exception(exc)
            if entry is not None:
                self._release(entry.request)
            return
        reply_cid = exc.reply_command_id
        if reply_cid == CommandId.GENERIC_NACK:
            self._send_raw(GenericNack(seq, exc.command_status))
        else:
            self._send_raw(_CLASSES[reply_cid](seq, exc.command_status))

    def _on_response(self, event: ResponseReceived) -> None:
        seq = event.outstanding.sequence_number
        if seq == self._enquire_seq:
            self._enquire_seq = None
        future = self._futures.pop(seq, None)
        if future is not None and not future.done():
            future.set_result(event.response)
        self._release(event.outstanding.request)
        if self.session.state is State.CLOSED:
            self._stop_with("unbound")

    def _respond_now(self, pdu: Pdu) -> None:
        try:
            self.session.send_response(pdu)
            self._write(encode(pdu))
        except (SessionUsageError, ConnectionLost) as exc:
            _log.warning("smpp.response_dropped", peer=self.peer, pdu=type(pdu).__name__, error=str(exc))

    async def _handle(self, pdu: Pdu, needs_response: bool) -> None:
        assert self.handler is not None
        try:
            response = await self.handler(pdu)
        except Reject as exc:
            response = error_response(pdu, exc.command_status)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            _log.error("smpp.handler_failed", peer=self.peer, pdu=type(pdu).__name__, exc_info=exc)
            response = error_response(pdu, S.ESME_RSYSERR)
        if response is None or not needs_response:
            return
        if response.sequence_number != pdu.sequence_number:
            response = replace(response, sequence_number=pdu.sequence_number)
        self._respond_now(response)
        with contextlib.suppress(ConnectionLost):
            await self._drain()

    async def _answer_unbind(self, unbind: Pdu, loop: asyncio.AbstractEventLoop) -> None:
        """The peer unbinds: let running handlers answer (bounded), then unbind_resp and close."""
        others = self._handlers - {asyncio.current_task()}
        if others:
            await asyncio.wait(others, timeout=self.config.close_timeout_s)
        self._respond_now(UnbindResp(unbind.sequence_number))
        with contextlib.suppress(ConnectionLost):
            await self._drain()
        self._drain_until = loop.time()
        self._stop_with("the peer unbound")

    # -- timers ----------------------------------------------------------------------------------

    async def _timer_loop(self) -> None:
        loop = asyncio.get_running_loop()
        session = self.session
        next_enquire = loop.time() + (self.config.enquire_link_s or 0.0)
        while not self._stop.is_set():
            now = loop.time()
            for entry in session.expired(now):
                seq = entry.sequence_number
                if seq == self._enquire_seq:
                    self._stop_with(f"no enquire_link_resp within {self.config.enquire_link_timeout_s:g} s")
                    return
                future = self._futures.pop(seq, None)
                if future is not None and not future.done():
                    name = type(entry.request).__name__
                    future.set_exception(RequestTimeout(name, entry.deadline - entry.sent_at, sent=True))
                self._release(entry.request)
            if self.config.idle_timeout_s is not None and now - self._last_rx >= self.config.idle_timeout_s:
                self._stop_with(f"nothing received for {self.config.idle_timeout_s:g} s")
                return
            if (
                self.config.bind_timeout_s is not None
                and session.state is State.OPEN
                and now - self._started_at >= self.config.bind_timeout_s
            ):
                self._stop_with(f"no bind within {self.config.bind_timeout_s:g} s")
                return
            if self.config.enquire_link_s is not None and now >= next_enquire:
                next_enquire = now + self.config.enquire_link_s
                if session.state in BOUND and self._enquire_seq is None:
                    self._send_enquire_link(now)
            self._timer_at = wake_at = self._next_wake(next_enquire)
            self._timer_wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(wake_at):
                    await self._timer_wake.wait()

    def _send_enquire_link(self, now: float) -> None:
        try:
            sent = self.session.send_request(EnquireLink(0), now, self.config.enquire_link_timeout_s)
            self._write(encode(sent))
        except (SessionUsageError, ConnectionLost):
            return
        self._enquire_seq = sent.sequence_number

    def _next_wake(self, next_enquire: float) -> float:
        candidates = [self.session.next_deadline()]
        if self.config.enquire_link_s is not None:
            candidates.append(next_enquire)
        if self.config.idle_timeout_s is not None:
            candidates.append(self._last_rx + self.config.idle_timeout_s)
        if self.config.bind_timeout_s is not None and self.session.state is State.OPEN:
            candidates.append(self._started_at + self.config.bind_timeout_s)
        return min((c for c in candidates if c is not None), default=self._last_rx + 3600.0)

    # -- teardown --------------------------------------------------------------------------------

    def _stop_with(self, reason: str) -> None:
        if self._reason is None:
            self._reason = reason
        self._stop.set()

    async def _finish_handlers(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._handlers:
            return
        until = (
            self._drain_until if self._drain_until is not None else loop.time() + self.config.close_timeout_s
        )
        remaining = until - loop.time()
        if remaining > 0:
            await asyncio.wait(set(self._handlers), timeout=remaining)
        for task in self._handlers:
            task.cancel()

    def _fail_everything(self, error: ConnectionLost) -> None:
        self.session.close()
        futures, self._futures = self._futures, {}
        for future in futures.values():
            if not future.done():
                future.set_exception(error)
        while self._room_waiters:
            waiter = self._room_waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)
        self._idle.set()

    async def _close_transport(self) -> None:
        self._send_outgoing()  # an error reply or unbind_resp queued last still leaves before the close
        writer = self._writer
        writer.close()
        try:
            async with asyncio.timeout(self.config.close_timeout_s):
                await writer.wait_closed()
        except (TimeoutError, ConnectionError, OSError):
            writer.transport.abort()
