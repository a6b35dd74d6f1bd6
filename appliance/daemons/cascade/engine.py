"""`Engine.apply`: one input (an accepted message, an executor's event, a due timer) through the machine.

A step: read the message's record from the CASCADE bucket, run `Cascade.handle`, ask the router when
the machine says so (feeding the answer back in the same step), write the new record with
compare-and-set, then carry out the commands (dispatches, timers, events: every publish with a
deterministic `Nats-Msg-Id`), and only then let the caller ack the input.

Round trips are what a step costs, so: an accepted message skips the read (its record is created with
"expected revision 0", and only a create that fails reads); a step's publishes all go out before any ack
is awaited; and a timer the step has already left behind (its channel failed, or the message finished,
within the step) is not published, since it could only fire to be ignored.

The record keeps the step's input id and commands (the outbox). If the worker dies after the write but
before the publishes are acknowledged, the input comes back (it was never acked), is recognised as the
record's last input, and the outbox is published again; copies that did get out are dropped by
JetStream's duplicate window. A lost compare-and-set (another worker moved the message first) re-reads
and re-applies; nothing is published from a state that lost. A finished message's record is written
with a TTL, so an input redelivered after the end finds it finished and starts nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
from nats.aio.client import Client as NatsClient

from appliance.bus.cascade_state import StateBucket, StateConflict
from appliance.bus.requests import Requests
from appliance.bus.streams import event_subject, timer_subject
from appliance.daemons.cascade.routes import RouteAsker
from appliance.domain.cascade import (
    Cascade,
    CascadeEvent,
    CascadeState,
    Command,
    Dispatch,
    Emit,
    Finish,
    RequestRoute,
    Start,
    StartTimer,
)
from appliance.domain.cascade_inputs import from_route_plan
from appliance.domain.dispatch import (
    ChannelDispatch,
    SmsDispatch,
    adapter_subject,
    email_subject,
    sms_subject,
)
from appliance.domain.events import Event
from appliance.domain.message import Message
from appliance.domain.segmentation import CONCAT_METADATA
from appliance.errors import BusError
from appliance.logs import get_logger

_MAX_CONFLICTS: Final = 20
_STEP_TIMEOUT_S: Final = 15.0
_SMS_PRIORITY: Final = {"low": 0, "normal": 0, "high": 1}
log = get_logger("hermes.cascade")


class Record(msgspec.Struct, frozen=True, array_like=True):
    """What the bucket holds per message: the message, its state, and the last step's input and outbox."""

    message: Message
    state: CascadeState
    last_input: str
    outbox: tuple[Command, ...] = ()


class Timer(msgspec.Struct, frozen=True):
    """A durable timer on TIMERS: fires `Timeout(attempt)` for the message at `due` (epoch seconds)."""

    message_id: str
    tenant_id: str
    attempt: int
    due: float


_RECORD_ENCODER: Final = msgspec.msgpack.Encoder()
_RECORD_DECODER: Final = msgspec.msgpack.Decoder(Record)
_JSON: Final = msgspec.json.Encoder()


@dataclass
class Counters:
    steps: int = 0
    transitions: int = 0
    ignored: int = 0
    unknown: int = 0
    conflicts: int = 0
    republished: int = 0
    finished: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)


class Engine:
    def __init__(
        self,
        nats: NatsClient,
        requests: Requests,
        states: StateBucket,
        *,
        default_timeouts: Mapping[str, float],
        route_timeout_s: float = 5.0,
        finished_ttl_s: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._nats = nats
        self._requests = requests
        self._routes = RouteAsker(requests, timeout_s=route_timeout_s)
        self._states = states
        self._defaults = dict(default_timeouts)
        self._finished_ttl_s = finished_ttl_s
        self._clock = clock
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self.counters = Counters()

    async def apply(
        self,
        message_id: str,
        input_id: str,
        event: CascadeEvent,
        message: Message | None = None,
        *,
        not_before: float = 0.0,
    ) -> None:
        """Run one input to completion (state written, commands published); raise to have it redelivered.

        `not_before`: the step's clock reads at least this (a due timer is due, whatever this host's
        clock says against the one that set it).
        """
        lock = self._acquire(message_id)
        try:
            async with lock, asyncio.timeout(_STEP_TIMEOUT_S):
                await self._apply(message_id, input_id, event, message, not_before)
        finally:
            self._release(message_id)

    async def _apply(
        self, key: str, input_id: str, event: CascadeEvent, accepted: Message | None, not_before: float
    ) -> None:
        self.counters.steps += 1
        # An accepted message is almost always new: try to create its record without reading first (a
        # create expects revision 0); one that exists makes the create fail, and the loop reads it.
        optimistic = isinstance(event, Start)
        for _ in range(_MAX_CONFLICTS):
            if optimistic:
                found = None
            else:
                found = await self._states.get(key)
            record = _RECORD_DECODER.decode(found[0]) if found else None
            revision = found[1] if found else 0
            if record is not None and record.last_input == input_id:
                self.counters.republished += 1
                await self._carry_out(record.message, record.outbox)  # a redelivery: out again, deduplicated
                return
            if isinstance(event, Start):
                assert accepted is not None
                if record is not None and not (
                    record.state.terminal and accepted.attempt_base > record.message.attempt_base
                ):
                    self.counters.ignored += 1
                    return  # started already (a duplicate accept); a replay starts only a finished message
                message, state = accepted, Cascade(accepted, self._defaults).initial()
            elif record is None:
                self.counters.unknown += 1  # not ours, or finished long ago
                return
            else:
                message, state = record.message, record.state
            machine = Cascade(message, self._defaults)
            # one clock reading per step, so a channel's deadline is exactly its dispatch time + timeout
            now = max(self._clock(), not_before)
            step = machine.handle(state, event, now)
            if step.ignored:
                self.counters.ignored += 1
                return
            new_state, commands = await self._resolve_routes(machine, step.state, list(step.commands), now)
            finished = new_state.terminal
            commands = _without_stale_timers(new_state, commands)
            stored = Record(message, new_state, input_id, tuple(commands))
            try:
                await self._states.write(
                    key,
                    _RECORD_ENCODER.encode(stored),
                    revision,
                    ttl_s=self._finished_ttl_s if finished else None,
                )
            except StateConflict:
                if optimistic:
                    optimistic = False  # there is a record after all: read it and decide again
                else:
                    self.counters.conflicts += 1
                continue
            self.counters.transitions += 1
            await self._carry_out(message, commands)
            if finished:
                self.counters.finished += 1
                self.counters.by_outcome[new_state.phase] = (
                    self.counters.by_outcome.get(new_state.phase, 0) + 1
                )
            return
        raise BusError(f"cascade state of {key} kept moving under us ({_MAX_CONFLICTS} conflicts)")

    async def _resolve_routes(
        self, machine: Cascade, state: CascadeState, commands: list[Command], now: float
    ) -> tuple[CascadeState, list[Command]]:
        """Replace each RequestRoute by what the machine does with the router's answer."""
        while True:
            index = next((i for i, c in enumerate(commands) if isinstance(c, RequestRoute)), None)
            if index is None:
                return state, commands
            request = commands[index]
            assert isinstance(request, RequestRoute)
            answer = from_route_plan(request.attempt, await self._ask_router(request.to))
            step = machine.handle(state, answer, now)
            state = step.state
            commands[index : index + 1] = list(step.commands)

    async def _ask_router(self, to: str) -> dict[str, Any]:
        """The router's plan; RouterUnavailable after `route_timeout_s` (the asker bounds its request)."""
        return await self._routes.plan(to)

    # -- carrying out commands
    async def _carry_out(self, message: Message, commands: tuple[Command, ...] | list[Command]) -> None:
        publishes = [p for command in commands if (p := self._command_publish(message, command)) is not None]
        if not publishes:
            return
        try:
            await self._requests.publish_all(publishes)
        except Exception as exc:
            raise BusError(f"cascade command not stored: {exc!r}") from exc

    def _command_publish(
        self, message: Message, command: Command
    ) -> tuple[str, bytes, dict[str, str]] | None:
        """What carrying out `command` publishes (subject, body, headers), or None for nothing."""
        if isinstance(command, Emit):
            event = Event(
                kind=command.kind,
                id=f"{message.id}:{command.event_id}",
                message_id=message.id,
                tenant_id=message.tenant_id,
                at=command.at,
                state=command.state,
                data=command.data,
            )
            return (
                event_subject(message.tenant_id, command.kind),
                _JSON.encode(event),
                {"Nats-Msg-Id": event.id},
            )
        if isinstance(command, Dispatch):
            subject, payload = dispatch_payload(message, command)
            return subject, payload, {"Nats-Msg-Id": f"{message.id}:{command.attempt}:dispatch"}
        if isinstance(command, StartTimer):
            timer = Timer(
                message_id=message.id, tenant_id=message.tenant_id, attempt=command.attempt, due=command.due
            )
            msg_id = f"{message.id}:{command.attempt}:timer"
            return timer_subject(message.tenant_id), _JSON.encode(timer), {"Nats-Msg-Id": msg_id}
        if isinstance(command, Finish):
            log.debug(
                "message finished", action="cascade.finished", message_id=message.id, outcome=command.outcome
            )
        # Finish publishes nothing; RequestRoute never reaches here: it is resolved within the step
        return None

    # -- one input at a time per message within this worker (workers between them use compare-and-set)
    def _acquire(self, key: str) -> asyncio.Lock:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        return lock

    def _release(self, key: str) -> None:
        lock, users = self._locks[key]
        if users <= 1:
            del self._locks[key]
        else:
            self._locks[key] = (lock, users - 1)


def _without_stale_timers(state: CascadeState, commands: list[Command]) -> list[Command]:
    """The step's commands less the timers it has already left behind (a channel that failed, or the whole
    message finished, within the same step): such a timer would only fire later to be ignored, for the
    price of a publish now and a step then. The current channel's timer always stays."""
    return [
        c
        for c in commands
        if not isinstance(c, StartTimer) or (not state.terminal and c.attempt == state.channel_attempt)
    ]


def dispatch_payload(message: Message, command: Dispatch) -> tuple[str, bytes]:
    """The DISPATCH subject and body of one attempt."""
    route = command.route
    if command.channel == "sms":
        sms = SmsDispatch(
            message_id=message.id,
            tenant_id=message.tenant_id,
            attempt=command.attempt,
            carrier=route.target,
            to=command.to,
            body=message.body or "",
            sender=message.sender,
            priority=_SMS_PRIORITY.get(message.priority, 0),
            created_at=message.created_at,
            expires_at=command.expires_at,
            concat=message.metadata.get(CONCAT_METADATA),
        )
        return sms_subject(route.target), _JSON.encode(sms)
    other = ChannelDispatch(
        message_id=message.id,
        tenant_id=message.tenant_id,
        attempt=command.attempt,
        channel=command.channel,
        to=command.to,
        route=route.target,
        body=message.body,
        subject=message.subject,
        html=message.html,
        sender=message.sender,
        metadata=dict(message.metadata),
        priority=message.priority,
        created_at=message.created_at,
        expires_at=command.expires_at,
    )
    subject = email_subject(route.target) if command.channel == "email" else adapter_subject(route.target)
    return subject, _JSON.encode(other)
