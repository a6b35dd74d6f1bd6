"""The SMPP 3.4 session as a pure state machine: states, who may send what when, sequence numbers, window.

No sockets and no clock: `now` is passed in (a monotonic float), so tests drive it directly. The
asyncio `SmppConnection` feeds it every PDU it decodes (`receive`) and every PDU it sends
(`send_request`, `send_response`), and asks it which requests have timed out (`expired`).

States follow §2.3: OPEN after connect, BOUND_TX/RX/TRX after a successful bind, UNBINDING once we
sent unbind (our own requests stop, the peer's in-flight ones are still served), CLOSED after
unbind_resp or a lost connection. `REQUEST_STATES` is the table of which side (ESME or SMSC) may issue
each request in which states; a response is legal only for a request that awaits it.

    SessionError(ProtocolError)   the peer sent a PDU this state forbids; nothing changed, and `reply`
                                  is the PDU to answer with (None: send nothing)
    SessionUsageError(HermesError) we tried to send what this state forbids; nothing changed
    └── WindowFull                the window already holds `window` unanswered requests
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal

from msgspec.structs import replace

from appliance.errors import HermesError, ProtocolError
from appliance.protocols.smpp.constants import RESPONSE_BIT, CommandId, CommandStatus, status_name
from appliance.protocols.smpp.pdu import PDU_CLASSES, GenericNack, Pdu

C = CommandId
S = CommandStatus
Side = Literal["esme", "smsc"]
MAX_SEQUENCE: Final = 0x7FFFFFFF
"""Sequence numbers run 1..0x7FFFFFFF and then wrap (§5.1.4)."""


class State(StrEnum):
    """Session states of §2.3; UNBINDING is 3.4's "unbound" half-step between unbind and its response."""

    OPEN = "open"
    BOUND_TX = "bound_tx"
    BOUND_RX = "bound_rx"
    BOUND_TRX = "bound_trx"
    UNBINDING = "unbinding"
    CLOSED = "closed"


_OPEN: Final = frozenset({State.OPEN})
_TX: Final = frozenset({State.BOUND_TX, State.BOUND_TRX})
_RX: Final = frozenset({State.BOUND_RX, State.BOUND_TRX})
BOUND: Final = _TX | _RX

REQUEST_STATES: Final[Mapping[tuple[Side, int], frozenset[State]]] = {
    ("esme", C.BIND_TRANSMITTER): _OPEN,
    ("esme", C.BIND_RECEIVER): _OPEN,
    ("esme", C.BIND_TRANSCEIVER): _OPEN,
    ("smsc", C.OUTBIND): _OPEN,
    ("esme", C.UNBIND): BOUND,
    ("smsc", C.UNBIND): BOUND,
    # 3.4 lists enquire_link for bound states only; 5.0 (§2.4) also allows OPEN, and peers do send it.
    ("esme", C.ENQUIRE_LINK): _OPEN | BOUND,
    ("smsc", C.ENQUIRE_LINK): _OPEN | BOUND,
    ("esme", C.SUBMIT_SM): _TX,
    ("esme", C.SUBMIT_MULTI): _TX,
    ("esme", C.QUERY_SM): _TX,
    ("esme", C.CANCEL_SM): _TX,
    ("esme", C.REPLACE_SM): _TX,
    ("esme", C.DATA_SM): _TX,
    ("smsc", C.DATA_SM): _RX,
    ("smsc", C.DELIVER_SM): _RX,
    ("smsc", C.ALERT_NOTIFICATION): _RX,
}
"""(issuing side, request command_id) -> the session states in which it may be sent (§2.3, §4)."""

BIND_RESULT: Final[Mapping[int, State]] = {
    C.BIND_TRANSMITTER: State.BOUND_TX,
    C.BIND_RECEIVER: State.BOUND_RX,
    C.BIND_TRANSCEIVER: State.BOUND_TRX,
}
BindType = Literal["transmitter", "receiver", "transceiver"]
BIND_TYPES: Final[Mapping[int, BindType]] = {
    C.BIND_TRANSMITTER: "transmitter",
    C.BIND_RECEIVER: "receiver",
    C.BIND_TRANSCEIVER: "transceiver",
}
NO_RESPONSE: Final = frozenset({C.OUTBIND, C.ALERT_NOTIFICATION})
"""Requests the spec gives no response PDU."""
OUTSIDE_WINDOW: Final = frozenset({C.ENQUIRE_LINK, C.UNBIND, *BIND_RESULT})
"""Control requests are tracked but never wait for window room, so a stuck window can still be probed."""

_CLASSES: Final[Mapping[int, type[Pdu]]] = {cls.command_id: cls for cls in PDU_CLASSES}


def may_issue(side: Side, state: State, command_id: int) -> bool:
    """Whether `side` may send the request `command_id` while the session is in `state`."""
    return state in REQUEST_STATES.get((side, command_id), frozenset())


def error_response(request: Pdu, command_status: int) -> Pdu:
    """The request's own response carrying `command_status`, or generic_nack if it has none."""
    cid = type(request).command_id
    cls = _CLASSES.get(cid | RESPONSE_BIT)
    if cls is None or cid in NO_RESPONSE or cid & RESPONSE_BIT:
        return GenericNack(request.sequence_number, command_status)
    return cls(request.sequence_number, command_status)


class SessionError(ProtocolError):
    """The peer sent a PDU that the session state does not allow."""

    def __init__(self, reason: str, *, command_status: int, reply: Pdu | None) -> None:
        self.reason = reason
        self.command_status = command_status
        self.reply = reply
        super().__init__(f"{reason} ({status_name(command_status)})")


class SessionUsageError(HermesError):
    """This PDU may not be sent in the session's current state."""

    def __init__(self, reason: str, *, command_status: int = S.ESME_RINVBNDSTS) -> None:
        self.command_status = command_status
        super().__init__(reason)


class WindowFull(SessionUsageError):
    """The window is full: wait for a response before sending another request."""

    def __init__(self, window: int) -> None:
        super().__init__(f"{window} requests already await a response", command_status=S.ESME_RTHROTTLED)


@dataclass(frozen=True, slots=True)
class Outstanding:
    """A request we sent that awaits its response: when it went out, and when we give up on it."""

    request: Pdu
    sent_at: float
    deadline: float
    in_window: bool

    @property
    def sequence_number(self) -> int:
        return self.request.sequence_number


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """The peer sent a request that is legal now; answer it with `send_response` unless `needs_response`
    is False."""

    pdu: Pdu
    needs_response: bool


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """The peer answered one of our requests (generic_nack included); it left the window."""

    outstanding: Outstanding
    response: Pdu


Event = RequestReceived | ResponseReceived


class Session:
    """One side of one SMPP session. Illegal PDUs raise and leave every field as it was."""

    def __init__(
        self, side: Side, *, window: int = 10, peer_window: int = 100, first_sequence: int = 1
    ) -> None:
        if window < 1 or peer_window < 1:
            raise ValueError("window and peer_window must be at least 1")
        if not 1 <= first_sequence <= MAX_SEQUENCE:
            raise ValueError(f"first_sequence must be 1..{MAX_SEQUENCE}")
        self.side: Final[Side] = side
        self.peer: Final[Side] = "smsc" if side == "esme" else "esme"
        self.window = window
        self.peer_window = peer_window
        self._state = State.OPEN
        self._bound_as: State | None = None
        self._next_seq = first_sequence
        self._outstanding: dict[int, Outstanding] = {}
        self._deadlines: list[tuple[float, int]] = []  # heap; entries of answered requests go stale
        self._in_window = 0
        self._incoming: dict[int, int] = {}  # the peer's requests we owe a response: seq -> command_id
        self._incoming_in_window = 0

    @property
    def state(self) -> State:
        return self._state

    @property
    def bound_as(self) -> State | None:
        """The BOUND_* state the bind reached; kept through UNBINDING and CLOSED for the record."""
        return self._bound_as

    @property
    def is_bound(self) -> bool:
        return self._state in BOUND

    @property
    def in_flight(self) -> int:
        """Our unanswered requests that count against the window."""
        return self._in_window

    @property
    def has_room(self) -> bool:
        return self._in_window < self.window

    @property
    def outstanding(self) -> Mapping[int, Outstanding]:
        """Every unanswered request of ours, control PDUs included, by sequence number."""
        return self._outstanding

    @property
    def owed(self) -> int:
        """The peer's requests still waiting for our response."""
        return len(self._incoming)

    # -- sending ---------------------------------------------------------------------------------

    def send_request(self, pdu: Pdu, now: float, timeout: float) -> Pdu:
        """Register a request we are about to send; returns it with a fresh sequence number.

        Whatever `pdu.sequence_number` says is replaced. Raises `SessionUsageError` (or `WindowFull`).
        """
        cid = type(pdu).command_id
        if cid & RESPONSE_BIT:
            raise SessionUsageError(f"{type(pdu).__name__} is a response", command_status=S.ESME_RINVCMDID)
        if not may_issue(self.side, self._state, cid):
            raise SessionUsageError(f"an {self.side} may not send {type(pdu).__name__} in {self._state}")
        if cid in BIND_RESULT and any(
            type(o.request).command_id in BIND_RESULT for o in self._outstanding.values()
        ):
            raise SessionUsageError("a bind is already in progress", command_status=S.ESME_RALYBND)
        in_window = cid not in OUTSIDE_WINDOW
        if in_window and self._in_window >= self.window:
            raise WindowFull(self.window)
        sent = replace(pdu, sequence_number=self._allocate())
        if cid in NO_RESPONSE:
            return sent
        entry = Outstanding(sent, now, now + timeout, in_window)
        self._outstanding[sent.sequence_number] = entry
        heapq.heappush(self._deadlines, (entry.deadline, sent.sequence_number))
        self._in_window += in_window
        if cid == C.UNBIND:
            self._state = State.UNBINDING
        return sent

    def send_response(self, pdu: Pdu) -> None:
        """Record that we answer the peer's request `pdu.sequence_number`; a bind_resp OK binds us."""
        cid = type(pdu).command_id
        seq = pdu.sequence_number
        owed = self._incoming.get(seq)
        if not cid & RESPONSE_BIT:
            raise SessionUsageError(
                f"{type(pdu).__name__} is not a response", command_status=S.ESME_RINVCMDID
            )
        if self._state is State.CLOSED:
            raise SessionUsageError("the session is closed")
        if owed is None or (cid != C.GENERIC_NACK and cid != owed | RESPONSE_BIT):
            raise SessionUsageError(f"no request with sequence {seq} awaits a {type(pdu).__name__}")
        del self._incoming[seq]
        self._incoming_in_window -= owed not in OUTSIDE_WINDOW
        bound = BIND_RESULT.get(owed)
        if bound is not None and cid != C.GENERIC_NACK and pdu.command_status == S.ESME_ROK:
            self._state = self._bound_as = bound
        elif owed == C.UNBIND:
            self._close()

    # -- receiving -------------------------------------------------------------------------------

    def receive(self, pdu: Pdu, now: float) -> Event:
        """Classify a PDU from the peer and apply its transition. Raises `SessionError` if illegal."""
        if type(pdu).command_id & RESPONSE_BIT:
            return self._receive_response(pdu)
        return self._receive_request(pdu)

    def _receive_response(self, pdu: Pdu) -> ResponseReceived:
        cid = type(pdu).command_id
        seq = pdu.sequence_number
        entry = self._outstanding.get(seq)
        if entry is None or (cid != C.GENERIC_NACK and cid != type(entry.request).command_id | RESPONSE_BIT):
            raise SessionError(
                f"{type(pdu).__name__} {seq} answers no request of ours",
                command_status=S.ESME_RINVCMDID,
                reply=None,
            )
        self._forget(entry)
        rcid = type(entry.request).command_id
        bound = BIND_RESULT.get(rcid)
        if bound is not None and cid != C.GENERIC_NACK and pdu.command_status == S.ESME_ROK:
            self._state = self._bound_as = bound
        elif rcid == C.UNBIND:
            self._close()
        return ResponseReceived(entry, pdu)

    def _receive_request(self, pdu: Pdu) -> RequestReceived:
        cid = type(pdu).command_id
        seq = pdu.sequence_number
        name = type(pdu).__name__
        allowed = REQUEST_STATES.get((self.peer, cid))
        if allowed is None:
            status = S.ESME_RINVCMDID
            raise SessionError(
                f"an {self.peer} may not send {name}", command_status=status, reply=GenericNack(seq, status)
            )
        state = self._state
        if state is State.UNBINDING and cid not in BIND_RESULT:
            state = self._bound_as or State.OPEN  # the peer's in-flight requests are still served
        if state not in allowed:
            status = S.ESME_RALYBND if cid in BIND_RESULT and state is not State.CLOSED else S.ESME_RINVBNDSTS
            reply = None if self._state is State.CLOSED else error_response(pdu, status)
            raise SessionError(f"{name} not allowed in {self._state}", command_status=status, reply=reply)
        if cid in BIND_RESULT and any(c in BIND_RESULT for c in self._incoming.values()):
            status = S.ESME_RALYBND
            raise SessionError(
                "a bind is already being answered", command_status=status, reply=error_response(pdu, status)
            )
        needs_response = cid not in NO_RESPONSE
        if needs_response:
            if seq in self._incoming:
                raise SessionError(
                    f"{name} reuses sequence {seq} of a request still unanswered",
                    command_status=S.ESME_RSYSERR,
                    reply=None,
                )
            in_window = cid not in OUTSIDE_WINDOW
            if in_window and self._incoming_in_window >= self.peer_window:
                status = S.ESME_RTHROTTLED if self.side == "smsc" else S.ESME_RMSGQFUL
                raise SessionError(
                    f"the peer exceeded its window of {self.peer_window}",
                    command_status=status,
                    reply=error_response(pdu, status),
                )
            self._incoming[seq] = cid
            self._incoming_in_window += in_window
        return RequestReceived(pdu, needs_response)

    # -- time and teardown -----------------------------------------------------------------------

    def expired(self, now: float) -> list[Outstanding]:
        """Remove and return our requests whose deadline is at or before `now`, earliest first."""
        heap = self._deadlines
        out: list[Outstanding] = []
        while heap and heap[0][0] <= now:
            deadline, seq = heapq.heappop(heap)
            entry = self._outstanding.get(seq)
            if entry is not None and entry.deadline == deadline:
                self._forget(entry, from_heap=False)
                out.append(entry)
                if type(entry.request).command_id == C.UNBIND:
                    self._close()
        return out

    def next_deadline(self) -> float | None:
        """When the earliest unanswered request times out, or None if none waits."""
        heap = self._deadlines
        while heap:
            deadline, seq = heap[0]
            entry = self._outstanding.get(seq)
            if entry is not None and entry.deadline == deadline:
                return deadline
            heapq.heappop(heap)
        return None

    def abandon(self, sequence_number: int) -> Outstanding | None:
        """Stop waiting for the response to one request (it could not be sent, or was unreadable)."""
        entry = self._outstanding.get(sequence_number)
        if entry is not None:
            self._forget(entry)
        return entry

    def close(self) -> list[Outstanding]:
        """The connection is gone: CLOSED, and every unanswered request is returned to be failed."""
        lost = list(self._outstanding.values())
        self._close()
        return lost

    # -- internals -------------------------------------------------------------------------------

    def _allocate(self) -> int:
        seq = self._next_seq
        while seq in self._outstanding:  # only possible after a wrap with a very old request pending
            seq = seq % MAX_SEQUENCE + 1
        self._next_seq = seq % MAX_SEQUENCE + 1
        return seq

    def _forget(self, entry: Outstanding, *, from_heap: bool = True) -> None:
        del self._outstanding[entry.sequence_number]
        self._in_window -= entry.in_window
        heap = self._deadlines
        if from_heap and len(heap) > 64 + 2 * len(self._outstanding):  # drop stale entries now and then
            self._deadlines = [(o.deadline, s) for s, o in self._outstanding.items()]
            heapq.heapify(self._deadlines)

    def _close(self) -> None:
        self._state = State.CLOSED
        self._outstanding.clear()
        self._deadlines.clear()
        self._in_window = 0
        self._incoming.clear()
        self._incoming_in_window = 0
