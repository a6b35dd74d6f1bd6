"""A carrier SMSC simulator on `SmppServer`: message ids, delivery receipts, and configurable trouble.

Tests, `bench/smpp_sim.py` and `hermesctl sim smsc` use it to stand in for a carrier. Each accepted
submit_sm (or data_sm) gets a message id; when registered_delivery asks for it, a receipt deliver_sm
follows after `dlr_delay_ms` on the submitting session, or on another receiver bind of the same
system_id, or is kept until one binds. Trouble on demand: `fail_rate` (UNDELIV receipts),
`reject_rate` (ESME_RSUBMITFAIL), `throttle_tps` (ESME_RTHROTTLED above the rate) and `drop_after`
(close a connection after N submits). Randomness comes from one `random.Random(seed)`.

    python -m appliance.sim.smsc --host 127.0.0.1 --port 2775 [--dlr-delay-ms 50] [--fail-rate 0.1]
        [--reject-rate 0] [--throttle-tps 100] [--drop-after N] [--window 10]
        [--system-id S --password P] [--seed N]

prints `{"listening": "host:port"}` once it accepts, and stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import heapq
import itertools
import json
import random
import signal
import time
import weakref
from collections import OrderedDict, defaultdict, deque
from dataclasses import asdict, dataclass
from typing import Final

from appliance.domain.gsm import decode_text
from appliance.errors import HermesError
from appliance.logs import configure_logging, get_logger
from appliance.protocols.smpp.connection import ConnectionLost, Reject, SessionConfig, SmppConnectionError
from appliance.protocols.smpp.constants import CommandStatus, EsmClass, MessageState, RegisteredDelivery
from appliance.protocols.smpp.pdu import (
    CancelSm,
    DataSm,
    DataSmResp,
    DeliverSm,
    Pdu,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
)
from appliance.protocols.smpp.server import ServerSession, SmppServer
from appliance.protocols.smpp.session import BindType, SessionUsageError
from appliance.protocols.smpp.tlv import Tlvs

S = CommandStatus
_KEEP_STATES: Final = 100_000
"""How many message states query_sm can still answer for; older ones are forgotten."""
_log = get_logger("hermes.sim")


@dataclass(frozen=True, slots=True)
class SimOptions:
    """How the simulated carrier behaves. Rates are fractions 0..1; None disables a limit."""

    system_id: str | None = None
    password: str | None = None
    dlr_delay_ms: float = 100.0
    fail_rate: float = 0.0
    reject_rate: float = 0.0
    throttle_tps: float | None = None
    drop_after: int | None = None
    window: int = 10
    enquire_link_s: float | None = 30.0
    seed: int | None = None


@dataclass(slots=True)
class SimCounters:
    """What the simulator has done so far; receipts count once the ESME acknowledged them."""

    submitted: int = 0
    delivered: int = 0
    failed: int = 0
    throttled: int = 0
    rejected: int = 0
    receipt_errors: int = 0


@dataclass(slots=True)
class _Receipt:
    system_id: str
    session: weakref.ref[ServerSession]
    pdu: DeliverSm
    delivered: bool


class _Throttle:
    """A token bucket of one second's worth of `tps`, refilled continuously."""

    def __init__(self, tps: float, now: float) -> None:
        self.tps = tps
        self.tokens = tps
        self.updated = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.tps, self.tokens + (now - self.updated) * self.tps)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def receipt_text(message_id: str, *, delivered: bool, submitted: float, done: float, text: str) -> bytes:
    """The de-facto receipt format (SMPP 3.4 appendix B) as carriers send it."""
    submit_date = time.strftime("%y%m%d%H%M", time.gmtime(submitted))
    done_date = submit_date if done == submitted else time.strftime("%y%m%d%H%M", time.gmtime(done))
    body = (
        f"id:{message_id} sub:001 dlvrd:{'001' if delivered else '000'} "
        f"submit date:{submit_date} done date:{done_date} "
        f"stat:{'DELIVRD' if delivered else 'UNDELIV'} err:{'000' if delivered else '001'} text:{text[:20]}"
    )
    return body.encode("latin-1", "replace")


def _text_of(pdu: SubmitSm | DataSm) -> str:
    payload = pdu.short_message if isinstance(pdu, SubmitSm) else b""
    payload = payload or pdu.tlvs.message_payload or b""
    if pdu.esm_class & EsmClass.UDHI and payload:
        payload = payload[1 + payload[0] :]
    try:
        return decode_text(payload, pdu.data_coding)
    except HermesError:
        return payload.decode("latin-1")


class SmscSimulator:
    """`await start()`, point clients at `address`, read `counters`, `await close()`."""

    def __init__(self, options: SimOptions | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.options = options or SimOptions()
        self.counters = SimCounters()
        self.server = SmppServer(
            authenticate=self._authenticate,
            handler=self._handle,
            host=host,
            port=port,
            system_id="hermes-sim",
            on_bound=self._on_bound,
            config=SessionConfig(window=self.options.window, enquire_link_s=self.options.enquire_link_s),
        )
        self._random = random.Random(self.options.seed)
        self._ids = itertools.count(1)
        self._ticket = itertools.count()  # orders receipts due at the same instant
        self._id_prefix = f"{self._random.randrange(16**4):04x}"
        self._throttle: _Throttle | None = None
        self._submits: weakref.WeakKeyDictionary[ServerSession, int] = weakref.WeakKeyDictionary()
        self._states: OrderedDict[str, int] = OrderedDict()
        self._due: list[tuple[float, int, _Receipt]] = []
        self._parked: defaultdict[str, deque[_Receipt]] = defaultdict(deque)
        self._wake = asyncio.Event()
        self._scheduler: asyncio.Task[None] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.server.address

    @property
    def pending_receipts(self) -> int:
        """Receipts not yet sent: waiting for their delay, or for a receiver to bind."""
        return len(self._due) + sum(len(q) for q in self._parked.values())

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.options.throttle_tps is not None:
            self._throttle = _Throttle(self.options.throttle_tps, loop.time())
        await self.server.start()
        self._scheduler = loop.create_task(self._send_receipts(), name="sim receipts")

    async def close(self, timeout_s: float = 5.0) -> None:
        """Stop sending receipts, unbind every session (bounded). Idempotent."""
        if self._scheduler is not None:
            self._scheduler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scheduler
        await self.server.close(timeout_s)

    async def __aenter__(self) -> SmscSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the SMSC's answers ----------------------------------------------------------------------

    async def _authenticate(self, system_id: str, password: str, bind_type: BindType, peer: str) -> bool:
        want_id, want_password = self.options.system_id, self.options.password
        return (want_id is None or system_id == want_id) and (
            want_password is None or password == want_password
        )

    async def _handle(self, session: ServerSession, pdu: Pdu) -> Pdu | None:
        if isinstance(pdu, SubmitSm | DataSm):
            return await self._submit(session, pdu)
        if isinstance(pdu, QuerySm):
            state = self._states.get(pdu.message_id)
            if state is None:
                raise Reject(S.ESME_RQUERYFAIL)
            return QuerySmResp(pdu.sequence_number, message_id=pdu.message_id, message_state=state)
        if isinstance(pdu, CancelSm):
            raise Reject(S.ESME_RCANCELFAIL, "the simulator forwards at once; nothing to cancel")
        raise Reject(S.ESME_RINVCMDID, f"the simulator does not do {type(pdu).__name__}")

    async def _submit(self, session: ServerSession, pdu: SubmitSm | DataSm) -> Pdu | None:
        options, counters = self.options, self.counters
        loop = asyncio.get_running_loop()
        if self._throttle is not None and not self._throttle.take(loop.time()):
            counters.throttled += 1
            raise Reject(S.ESME_RTHROTTLED)
        if options.reject_rate and self._random.random() < options.reject_rate:
            counters.rejected += 1
            raise Reject(S.ESME_RSUBMITFAIL)
        message_id = f"{self._id_prefix}{next(self._ids):08x}"
        counters.submitted += 1
        delivered = not (options.fail_rate and self._random.random() < options.fail_rate)
        self._remember(message_id, MessageState.ENROUTE)
        receipt = pdu.registered_delivery & RegisteredDelivery.RECEIPT_MASK
        if receipt == RegisteredDelivery.RECEIPT_ALWAYS or (
            receipt == RegisteredDelivery.RECEIPT_ON_FAILURE and not delivered
        ):
            self._schedule(session, pdu, message_id, delivered, loop.time())
        resp_cls = SubmitSmResp if isinstance(pdu, SubmitSm) else DataSmResp
        response = resp_cls(pdu.sequence_number, message_id=message_id)
        submits = self._submits[session] = self._submits.get(session, 0) + 1
        if options.drop_after is None or submits < options.drop_after:
            return response
        await session.send_response(response)  # answer the last one, then drop the line like a carrier
        session.abort(f"drop_after {options.drop_after} submits")
        return None

    def _remember(self, message_id: str, state: int) -> None:
        self._states[message_id] = state
        if len(self._states) > _KEEP_STATES:
            self._states.popitem(last=False)

    # -- receipts --------------------------------------------------------------------------------

    def _schedule(
        self, session: ServerSession, pdu: SubmitSm | DataSm, message_id: str, delivered: bool, now: float
    ) -> None:
        wall = time.time()
        text = receipt_text(message_id, delivered=delivered, submitted=wall, done=wall, text=_text_of(pdu))
        state = MessageState.DELIVERED if delivered else MessageState.UNDELIVERABLE
        dlr = DeliverSm(
            0,
            source_addr_ton=pdu.dest_addr_ton,
            source_addr_npi=pdu.dest_addr_npi,
            source_addr=pdu.destination_addr,
            dest_addr_ton=pdu.source_addr_ton,
            dest_addr_npi=pdu.source_addr_npi,
            destination_addr=pdu.source_addr,
            esm_class=EsmClass.TYPE_DELIVERY_RECEIPT,
            short_message=text,
            tlvs=Tlvs(receipted_message_id=message_id, message_state=state),
        )
        receipt = _Receipt(session.system_id or "", weakref.ref(session), dlr, delivered)
        self._queue(receipt, now + self.options.dlr_delay_ms / 1000.0)

    def _queue(self, receipt: _Receipt, due: float) -> None:
        heapq.heappush(self._due, (due, next(self._ticket), receipt))
        self._wake.set()

    def _on_bound(self, session: ServerSession) -> None:
        parked = self._parked.pop(session.system_id or "", None) if session.can_receive else None
        if parked:
            now = asyncio.get_running_loop().time()
            for receipt in parked:
                self._queue(receipt, now)

    def _target(self, receipt: _Receipt) -> ServerSession | None:
        session = receipt.session()
        if session is not None and session.can_receive:
            return session
        receivers = self.server.receivers(receipt.system_id)
        return receivers[0] if receivers else None

    async def _send_receipts(self) -> None:
        """One loop for every receipt: wait until due, then send it where the window has room."""
        loop = asyncio.get_running_loop()
        due = self._due
        while True:
            self._wake.clear()
            if not due or due[0][0] > loop.time():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(due[0][0] if due else None):
                        await self._wake.wait()
                continue
            _, _, receipt = heapq.heappop(due)
            target = self._target(receipt)
            if target is None:
                self._parked[receipt.system_id].append(receipt)
                continue
            try:
                future = await target.issue(receipt.pdu, 30.0)
            except (SmppConnectionError, SessionUsageError):
                self._parked[receipt.system_id].append(receipt)
                continue
            future.add_done_callback(functools.partial(self._receipt_answered, receipt))

    def _receipt_answered(self, receipt: _Receipt, future: asyncio.Future[Pdu]) -> None:
        if future.cancelled():
            self.counters.receipt_errors += 1
            return
        error = future.exception()
        if isinstance(error, ConnectionLost):  # keep it for the next receiver bind of this system_id
            self._parked[receipt.system_id].append(receipt)
        elif error is not None or future.result().command_status:
            self.counters.receipt_errors += 1
        else:
            if receipt.delivered:
                self.counters.delivered += 1
            else:
                self.counters.failed += 1
            message_id = receipt.pdu.tlvs.receipted_message_id or ""
            state = MessageState.DELIVERED if receipt.delivered else MessageState.UNDELIVERABLE
            if message_id in self._states:
                self._states[message_id] = state


# -- the command line ----------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m appliance.sim.smsc", description="A simulated SMSC.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2775, help="0 picks a free port")
    parser.add_argument("--dlr-delay-ms", type=float, default=100.0)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--reject-rate", type=float, default=0.0)
    parser.add_argument("--throttle-tps", type=float, default=None)
    parser.add_argument("--drop-after", type=int, default=None)
    parser.add_argument("--window", type=int, default=10, help="deliver_sm window per session")
    parser.add_argument("--system-id", default=None)
    parser.add_argument("--password", default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    return parser.parse_args(argv)


async def serve(options: SimOptions, *, host: str = "127.0.0.1", port: int = 2775) -> SimCounters:
    """Run a simulator until SIGTERM or SIGINT; prints `{"listening": "host:port"}` once it accepts.

    What `python -m appliance.sim.smsc` (and `hermesctl sim smsc`) run; returns the final counters.
    """
    simulator = SmscSimulator(options, host=host, port=port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await simulator.start()
        bound_host, bound_port = simulator.address
        print(json.dumps({"listening": f"{bound_host}:{bound_port}"}), flush=True)
        await stop.wait()
    finally:
        await simulator.close()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    _log.info("sim.stopped", action="sim.stopped", **asdict(simulator.counters))
    return simulator.counters


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    configure_logging(component="sim-smsc", node="sim", level=args.log_level)
    options = SimOptions(
        system_id=args.system_id,
        password=args.password,
        dlr_delay_ms=args.dlr_delay_ms,
        fail_rate=args.fail_rate,
        reject_rate=args.reject_rate,
        throttle_tps=args.throttle_tps,
        drop_after=args.drop_after,
        window=args.window,
        seed=args.seed,
    )
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(options, host=args.host, port=args.port))
    else:
        uvloop.run(serve(options, host=args.host, port=args.port))


if __name__ == "__main__":
    main()
