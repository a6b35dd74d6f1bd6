"""The SMPP session state machine, driven without sockets: legal and illegal PDUs per state and side,
bind and unbind transitions, the window, timeouts, and sequence numbers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.protocols.smpp import (
    AlertNotification,
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    CancelSm,
    CommandStatus,
    DataSm,
    DataSmResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Outbind,
    Pdu,
    QuerySm,
    ReplaceSm,
    SubmitMulti,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
)
from appliance.protocols.smpp.session import (
    MAX_SEQUENCE,
    RequestReceived,
    ResponseReceived,
    Session,
    SessionError,
    SessionUsageError,
    Side,
    State,
    WindowFull,
    error_response,
    may_issue,
)

S = CommandStatus
T0 = 1000.0

Bind = BindTransmitter | BindReceiver | BindTransceiver
BINDS: dict[State, type[Bind]] = {
    State.BOUND_TX: BindTransmitter,
    State.BOUND_RX: BindReceiver,
    State.BOUND_TRX: BindTransceiver,
}
BIND_RESPS: dict[State, type[BindTransmitterResp | BindReceiverResp | BindTransceiverResp]] = {
    State.BOUND_TX: BindTransmitterResp,
    State.BOUND_RX: BindReceiverResp,
    State.BOUND_TRX: BindTransceiverResp,
}


def esme(bound: State | None = None, *, window: int = 10, first_sequence: int = 1) -> Session:
    """An ESME session, bound as `bound` by a real bind / bind_resp exchange."""
    session = Session("esme", window=window, first_sequence=first_sequence)
    if bound is not None:
        sent = session.send_request(BINDS[bound](0, system_id="acme"), T0, 10.0)
        session.receive(BIND_RESPS[bound](sent.sequence_number, system_id="smsc"), T0)
        assert state_of(session) is bound
    return session


def smsc(bound: State | None = None, *, peer_window: int = 100) -> Session:
    """An SMSC session, bound as `bound` by receiving a bind and answering it OK."""
    session = Session("smsc", peer_window=peer_window)
    if bound is not None:
        session.receive(BINDS[bound](7000, system_id="acme"), T0)
        session.send_response(BIND_RESPS[bound](7000))
        assert state_of(session) is bound
    return session


def state_of(session: Session) -> State:
    """The state, read through a call so mypy does not carry a narrowed value across transitions."""
    return session.state


def snapshot(session: Session) -> tuple[object, ...]:
    return (
        session.state,
        session.bound_as,
        session.in_flight,
        dict(session.outstanding),
        session.owed,
        session._next_seq,
    )


# -- binding ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("bound", [State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX])
def test_an_esme_bind_ok_moves_open_to_the_bound_state(bound: State) -> None:
    session = esme()
    sent = session.send_request(BINDS[bound](0, system_id="acme", password="pw"), T0, 10.0)
    assert sent.sequence_number == 1
    assert state_of(session) is State.OPEN
    event = session.receive(BIND_RESPS[bound](1, system_id="smsc"), T0 + 0.01)
    assert isinstance(event, ResponseReceived)
    assert event.outstanding.request == sent
    assert state_of(session) is bound
    assert session.bound_as is bound
    assert session.is_bound


@pytest.mark.parametrize("status", [S.ESME_RBINDFAIL, S.ESME_RINVPASWD])
def test_a_refused_bind_leaves_the_session_open(status: CommandStatus) -> None:
    session = esme()
    sent = session.send_request(BindTransceiver(0, system_id="acme"), T0, 10.0)
    session.receive(BindTransceiverResp(sent.sequence_number, status), T0)
    assert state_of(session) is State.OPEN
    assert not session.outstanding
    again = session.send_request(BindTransceiver(0, system_id="acme"), T0, 10.0)
    assert again.sequence_number == 2


def test_a_generic_nack_to_a_bind_does_not_bind() -> None:
    session = esme()
    sent = session.send_request(BindTransmitter(0), T0, 10.0)
    event = session.receive(GenericNack(sent.sequence_number, S.ESME_RINVCMDID), T0)
    assert isinstance(event, ResponseReceived)
    assert state_of(session) is State.OPEN


def test_a_second_bind_while_one_is_pending_is_refused_locally() -> None:
    session = esme()
    session.send_request(BindTransmitter(0), T0, 10.0)
    before = snapshot(session)
    with pytest.raises(SessionUsageError) as caught:
        session.send_request(BindReceiver(0), T0, 10.0)
    assert caught.value.command_status == S.ESME_RALYBND
    assert snapshot(session) == before


@pytest.mark.parametrize("bound", [State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX])
def test_an_smsc_binds_when_it_answers_a_bind_ok(bound: State) -> None:
    session = smsc()
    event = session.receive(BINDS[bound](5, system_id="acme"), T0)
    assert event == RequestReceived(BINDS[bound](5, system_id="acme"), needs_response=True)
    assert state_of(session) is State.OPEN
    session.send_response(BIND_RESPS[bound](5, system_id="hermes"))
    assert state_of(session) is bound


def test_an_smsc_refusing_a_bind_stays_open_and_accepts_another() -> None:
    session = smsc()
    session.receive(BindTransceiver(5), T0)
    session.send_response(BindTransceiverResp(5, S.ESME_RBINDFAIL))
    assert state_of(session) is State.OPEN
    session.receive(BindTransceiver(6), T0)
    session.send_response(BindTransceiverResp(6))
    assert state_of(session) is State.BOUND_TRX


def test_an_smsc_answers_a_bind_on_a_bound_session_with_already_bound() -> None:
    session = smsc(State.BOUND_TRX)
    before = snapshot(session)
    with pytest.raises(SessionError) as caught:
        session.receive(BindTransmitter(9), T0)
    assert caught.value.command_status == S.ESME_RALYBND
    assert caught.value.reply == BindTransmitterResp(9, S.ESME_RALYBND)
    assert snapshot(session) == before


def test_an_smsc_answers_a_second_pending_bind_with_already_bound() -> None:
    session = smsc()
    session.receive(BindTransmitter(1), T0)
    with pytest.raises(SessionError) as caught:
        session.receive(BindReceiver(2), T0)
    assert caught.value.reply == BindReceiverResp(2, S.ESME_RALYBND)
    assert session.owed == 1


# -- which PDU is legal where ----------------------------------------------------------------------

ESME_OPS: list[type[Pdu]] = [SubmitSm, SubmitMulti, QuerySm, CancelSm, ReplaceSm, DataSm]
SMSC_OPS: list[type[Pdu]] = [DeliverSm, DataSm, AlertNotification]


@pytest.mark.parametrize("op", ESME_OPS)
@pytest.mark.parametrize(
    ("state", "legal"),
    [(State.OPEN, False), (State.BOUND_TX, True), (State.BOUND_RX, False), (State.BOUND_TRX, True)],
)
def test_what_an_esme_may_send(op: type[Pdu], state: State, legal: bool) -> None:
    session = esme(None if state is State.OPEN else state)
    if legal:
        sent = session.send_request(op(0), T0, 5.0)
        assert session.outstanding[sent.sequence_number].request == sent
        return
    before = snapshot(session)
    with pytest.raises(SessionUsageError) as caught:
        session.send_request(op(0), T0, 5.0)
    assert caught.value.command_status == S.ESME_RINVBNDSTS
    assert snapshot(session) == before


@pytest.mark.parametrize("op", ESME_OPS)
@pytest.mark.parametrize(
    ("state", "legal"),
    [(State.OPEN, False), (State.BOUND_TX, True), (State.BOUND_RX, False), (State.BOUND_TRX, True)],
)
def test_what_an_smsc_accepts_from_an_esme(op: type[Pdu], state: State, legal: bool) -> None:
    session = smsc(None if state is State.OPEN else state)
    if legal:
        assert session.receive(op(42), T0) == RequestReceived(op(42), needs_response=True)
        assert session.owed == 1
        return
    before = snapshot(session)
    with pytest.raises(SessionError) as caught:
        session.receive(op(42), T0)
    assert caught.value.command_status == S.ESME_RINVBNDSTS
    assert caught.value.reply == error_response(op(42), S.ESME_RINVBNDSTS)
    assert caught.value.reply is not None and caught.value.reply.sequence_number == 42
    assert snapshot(session) == before


@pytest.mark.parametrize(
    ("op", "state", "legal"),
    [
        (DeliverSm, State.BOUND_RX, True),
        (DeliverSm, State.BOUND_TRX, True),
        (DeliverSm, State.BOUND_TX, False),
        (DeliverSm, State.OPEN, False),
        (DataSm, State.BOUND_RX, True),
        (DataSm, State.BOUND_TX, False),
        (AlertNotification, State.BOUND_TRX, True),
        (AlertNotification, State.BOUND_TX, False),
    ],
)
def test_what_an_esme_accepts_from_an_smsc(op: type[Pdu], state: State, legal: bool) -> None:
    session = esme(None if state is State.OPEN else state)
    if legal:
        event = session.receive(op(3), T0)
        assert isinstance(event, RequestReceived)
        assert event.needs_response is (op is not AlertNotification)
        return
    before = snapshot(session)
    with pytest.raises(SessionError) as caught:
        session.receive(op(3), T0)
    assert caught.value.command_status == S.ESME_RINVBNDSTS
    assert snapshot(session) == before


@pytest.mark.parametrize("op", [DeliverSm, AlertNotification, Outbind])
def test_an_smsc_may_not_receive_what_only_an_smsc_sends(op: type[Pdu]) -> None:
    session = smsc(State.BOUND_TRX)
    before = snapshot(session)
    with pytest.raises(SessionError) as caught:
        session.receive(op(8), T0)
    assert caught.value.reply == GenericNack(8, S.ESME_RINVCMDID)
    assert snapshot(session) == before


@pytest.mark.parametrize("op", [SubmitSm, QuerySm, BindTransmitter])
def test_an_esme_may_not_receive_what_only_an_esme_sends(op: type[Pdu]) -> None:
    session = esme(State.BOUND_TRX)
    with pytest.raises(SessionError) as caught:
        session.receive(op(8), T0)
    assert caught.value.reply == GenericNack(8, S.ESME_RINVCMDID)


def test_an_esme_may_not_send_deliver_sm_and_an_smsc_may_not_send_submit_sm() -> None:
    with pytest.raises(SessionUsageError):
        esme(State.BOUND_TRX).send_request(DeliverSm(0), T0, 5.0)
    with pytest.raises(SessionUsageError):
        smsc(State.BOUND_TRX).send_request(SubmitSm(0), T0, 5.0)


@pytest.mark.parametrize(
    ("side", "state", "command_id", "expected"),
    [
        ("esme", State.OPEN, BindTransceiver.command_id, True),
        ("smsc", State.OPEN, BindTransceiver.command_id, False),
        ("smsc", State.OPEN, Outbind.command_id, True),
        ("esme", State.OPEN, EnquireLink.command_id, True),
        ("smsc", State.BOUND_RX, DeliverSm.command_id, True),
        ("smsc", State.BOUND_TX, DeliverSm.command_id, False),
        ("esme", State.UNBINDING, SubmitSm.command_id, False),
        ("esme", State.CLOSED, EnquireLink.command_id, False),
        ("esme", State.BOUND_TX, Unbind.command_id, True),
        ("smsc", State.BOUND_TRX, Unbind.command_id, True),
        ("esme", State.OPEN, Unbind.command_id, False),
    ],
)
def test_may_issue_table(side: Side, state: State, command_id: int, expected: bool) -> None:
    assert may_issue(side, state, command_id) is expected


def test_enquire_link_is_answered_in_open_and_bound_states() -> None:
    for session in (esme(), esme(State.BOUND_TX), smsc(), smsc(State.BOUND_RX)):
        assert isinstance(session.receive(EnquireLink(77), T0), RequestReceived)
        session.send_response(EnquireLinkResp(77))
        assert session.owed == 0


def test_responses_must_match_an_outstanding_request() -> None:
    session = esme(State.BOUND_TRX)
    sent = session.send_request(SubmitSm(0), T0, 5.0)
    before = snapshot(session)
    for stray in (SubmitSmResp(sent.sequence_number + 1), DeliverSmResp(sent.sequence_number)):
        with pytest.raises(SessionError) as caught:
            session.receive(stray, T0)
        assert caught.value.reply is None
        assert snapshot(session) == before
    event = session.receive(SubmitSmResp(sent.sequence_number, message_id="m1"), T0 + 0.2)
    assert isinstance(event, ResponseReceived)
    assert event.outstanding.sent_at == T0
    assert session.in_flight == 0


def test_a_generic_nack_answers_any_outstanding_request() -> None:
    session = esme(State.BOUND_TX)
    sent = session.send_request(SubmitSm(0), T0, 5.0)
    event = session.receive(GenericNack(sent.sequence_number, S.ESME_RINVCMDLEN), T0)
    assert isinstance(event, ResponseReceived)
    assert session.in_flight == 0


def test_we_may_only_answer_requests_we_received_with_their_own_response() -> None:
    session = smsc(State.BOUND_TRX)
    session.receive(SubmitSm(11), T0)
    with pytest.raises(SessionUsageError):
        session.send_response(SubmitSmResp(12))
    with pytest.raises(SessionUsageError):
        session.send_response(DataSmResp(11))
    with pytest.raises(SessionUsageError):
        session.send_response(SubmitSm(11))
    session.send_response(SubmitSmResp(11, message_id="x"))
    with pytest.raises(SessionUsageError):
        session.send_response(SubmitSmResp(11, message_id="x"))


def test_a_generic_nack_may_answer_any_request_we_owe() -> None:
    session = smsc(State.BOUND_TRX)
    session.receive(SubmitSm(11), T0)
    session.send_response(GenericNack(11, S.ESME_RSYSERR))
    assert session.owed == 0


def test_a_reused_sequence_number_of_an_unanswered_request_is_refused() -> None:
    session = smsc(State.BOUND_TX)
    session.receive(SubmitSm(11), T0)
    with pytest.raises(SessionError) as caught:
        session.receive(SubmitSm(11), T0)
    assert caught.value.reply is None
    assert session.owed == 1


def test_the_peer_window_is_enforced_with_throttling() -> None:
    session = smsc(State.BOUND_TRX, peer_window=2)
    session.receive(SubmitSm(1), T0)
    session.receive(SubmitSm(2), T0)
    with pytest.raises(SessionError) as caught:
        session.receive(SubmitSm(3), T0)
    assert caught.value.reply == SubmitSmResp(3, S.ESME_RTHROTTLED)
    assert isinstance(session.receive(EnquireLink(4), T0), RequestReceived)  # control PDUs still pass
    session.send_response(SubmitSmResp(1, message_id="a"))
    assert isinstance(session.receive(SubmitSm(5), T0), RequestReceived)


def test_an_esme_over_its_peer_window_answers_message_queue_full() -> None:
    session = Session("esme", peer_window=1)
    sent = session.send_request(BindReceiver(0), T0, 5.0)
    session.receive(BindReceiverResp(sent.sequence_number), T0)
    session.receive(DeliverSm(1), T0)
    with pytest.raises(SessionError) as caught:
        session.receive(DeliverSm(2), T0)
    assert caught.value.reply == DeliverSmResp(2, S.ESME_RMSGQFUL)


def test_requests_without_a_response_are_not_owed() -> None:
    session = esme(State.BOUND_RX)
    session.receive(AlertNotification(5), T0)
    assert session.owed == 0
    with pytest.raises(SessionUsageError):
        session.send_response(GenericNack(5))
    assert error_response(AlertNotification(5), S.ESME_RINVBNDSTS) == GenericNack(5, S.ESME_RINVBNDSTS)


def test_an_outbind_from_the_smsc_is_legal_only_while_open() -> None:
    session = esme()
    assert session.receive(Outbind(1, system_id="smsc"), T0) == RequestReceived(
        Outbind(1, system_id="smsc"), needs_response=False
    )
    bound = esme(State.BOUND_TRX)
    with pytest.raises(SessionError) as caught:
        bound.receive(Outbind(2), T0)
    assert caught.value.reply == GenericNack(2, S.ESME_RINVBNDSTS)


def test_sending_an_outbind_registers_nothing() -> None:
    session = Session("smsc")
    sent = session.send_request(Outbind(0, system_id="hermes"), T0, 5.0)
    assert sent.sequence_number == 1
    assert not session.outstanding


# -- unbinding -------------------------------------------------------------------------------------


def test_our_unbind_stops_our_requests_but_serves_the_peers_until_unbind_resp() -> None:
    session = esme(State.BOUND_TRX)
    submit = session.send_request(SubmitSm(0), T0, 5.0)
    unbind = session.send_request(Unbind(0), T0, 5.0)
    assert state_of(session) is State.UNBINDING
    with pytest.raises(SessionUsageError):
        session.send_request(SubmitSm(0), T0, 5.0)
    with pytest.raises(SessionUsageError):
        session.send_request(EnquireLink(0), T0, 5.0)
    assert isinstance(session.receive(SubmitSmResp(submit.sequence_number), T0), ResponseReceived)
    assert isinstance(session.receive(DeliverSm(90), T0), RequestReceived)
    session.send_response(DeliverSmResp(90))
    session.receive(UnbindResp(unbind.sequence_number), T0)
    assert state_of(session) is State.CLOSED
    assert session.bound_as is State.BOUND_TRX


def test_the_peers_unbind_closes_once_we_answer_it() -> None:
    session = smsc(State.BOUND_TX)
    assert isinstance(session.receive(Unbind(3), T0), RequestReceived)
    assert state_of(session) is State.BOUND_TX
    session.send_response(UnbindResp(3))
    assert state_of(session) is State.CLOSED


def test_unbinds_that_cross_on_the_wire_both_complete() -> None:
    session = esme(State.BOUND_TRX)
    ours = session.send_request(Unbind(0), T0, 5.0)
    session.receive(Unbind(50), T0)
    session.send_response(UnbindResp(50))
    assert state_of(session) is State.CLOSED
    with pytest.raises(SessionError):
        session.receive(UnbindResp(ours.sequence_number), T0)


def test_unbind_is_illegal_while_open_and_nothing_is_legal_once_closed() -> None:
    session = smsc()
    with pytest.raises(SessionError) as caught:
        session.receive(Unbind(1), T0)
    assert caught.value.reply == UnbindResp(1, S.ESME_RINVBNDSTS)
    closed = smsc(State.BOUND_TRX)
    closed.close()
    with pytest.raises(SessionError) as caught:
        closed.receive(SubmitSm(2), T0)
    assert caught.value.reply is None
    with pytest.raises(SessionUsageError):
        closed.send_request(EnquireLink(0), T0, 1.0)


# -- the window and time ---------------------------------------------------------------------------


def test_the_window_holds_at_most_window_requests_and_frees_on_response() -> None:
    session = esme(State.BOUND_TX, window=3)
    sent = [session.send_request(SubmitSm(0), T0, 5.0) for _ in range(3)]
    assert session.in_flight == 3
    assert not session.has_room
    before = snapshot(session)
    with pytest.raises(WindowFull):
        session.send_request(SubmitSm(0), T0, 5.0)
    assert snapshot(session) == before
    session.receive(SubmitSmResp(sent[1].sequence_number), T0)
    assert session.in_flight == 2
    assert session.has_room
    session.send_request(SubmitSm(0), T0, 5.0)


def test_control_requests_bypass_a_full_window_but_are_tracked() -> None:
    session = esme(State.BOUND_TX, window=1)
    session.send_request(SubmitSm(0), T0, 5.0)
    probe = session.send_request(EnquireLink(0), T0, 5.0)
    assert session.in_flight == 1
    assert probe.sequence_number in session.outstanding
    session.receive(EnquireLinkResp(probe.sequence_number), T0)
    assert session.in_flight == 1


def test_expired_returns_timed_out_requests_in_deadline_order_and_frees_the_window() -> None:
    session = esme(State.BOUND_TX, window=5)
    late = session.send_request(SubmitSm(0), T0, 10.0)
    early = session.send_request(SubmitSm(0), T0 + 1, 2.0)
    answered = session.send_request(SubmitSm(0), T0 + 1, 2.0)
    session.receive(SubmitSmResp(answered.sequence_number), T0 + 1.5)
    assert session.next_deadline() == T0 + 3
    assert session.expired(T0 + 2.99) == []
    timed_out = session.expired(T0 + 3)
    assert [o.request for o in timed_out] == [early]
    assert timed_out[0].deadline == T0 + 3
    assert session.in_flight == 1
    assert session.next_deadline() == T0 + 10
    assert [o.request for o in session.expired(T0 + 100)] == [late]
    assert session.next_deadline() is None
    assert session.in_flight == 0
    with pytest.raises(SessionError):  # a late response is a stray now
        session.receive(SubmitSmResp(early.sequence_number), T0 + 4)


def test_an_expired_bind_leaves_the_session_open_and_an_expired_unbind_closes_it() -> None:
    session = esme()
    session.send_request(BindTransceiver(0), T0, 1.0)
    session.expired(T0 + 1)
    assert state_of(session) is State.OPEN
    bound = esme(State.BOUND_TRX)
    bound.send_request(Unbind(0), T0, 1.0)
    bound.expired(T0 + 1)
    assert state_of(bound) is State.CLOSED


def test_close_hands_back_every_unanswered_request() -> None:
    session = esme(State.BOUND_TRX)
    sent = [session.send_request(SubmitSm(0), T0, 5.0) for _ in range(3)]
    session.receive(DeliverSm(9), T0)
    lost = session.close()
    assert sorted(o.sequence_number for o in lost) == [p.sequence_number for p in sent]
    assert state_of(session) is State.CLOSED
    assert session.in_flight == 0
    assert session.owed == 0


def test_abandon_frees_the_slot_of_a_request_that_never_left() -> None:
    session = esme(State.BOUND_TX, window=1)
    sent = session.send_request(SubmitSm(0), T0, 5.0)
    assert session.abandon(sent.sequence_number) is not None
    assert session.abandon(sent.sequence_number) is None
    assert session.has_room


def test_stale_deadline_entries_do_not_pile_up() -> None:
    session = esme(State.BOUND_TX, window=10)
    for i in range(10_000):
        sent = session.send_request(SubmitSm(0), T0 + i, 30.0)
        session.receive(SubmitSmResp(sent.sequence_number), T0 + i)
    assert len(session._deadlines) < 200


# -- sequence numbers ------------------------------------------------------------------------------


def test_sequence_numbers_count_up_and_wrap_to_one() -> None:
    session = esme(State.BOUND_TX, first_sequence=MAX_SEQUENCE - 2)
    assert session.outstanding == {}
    seqs = []
    for _ in range(4):
        sent = session.send_request(SubmitSm(0), T0, 5.0)
        seqs.append(sent.sequence_number)
        session.receive(SubmitSmResp(sent.sequence_number), T0)
    # the bind took MAX-2
    assert seqs == [MAX_SEQUENCE - 1, MAX_SEQUENCE, 1, 2]


def test_a_wrapped_sequence_skips_numbers_still_outstanding() -> None:
    session = esme(State.BOUND_TX, window=5, first_sequence=MAX_SEQUENCE)
    one = session.send_request(SubmitSm(0), T0, 1e9)  # the bind took MAX, so this is 1 and stays pending
    assert one.sequence_number == 1
    session._next_seq = 1  # pretend two billion requests went by
    assert session.send_request(SubmitSm(0), T0, 5.0).sequence_number == 2


def test_the_callers_sequence_number_is_ignored() -> None:
    session = esme(State.BOUND_TX)
    assert session.send_request(SubmitSm(12345), T0, 5.0).sequence_number == 2


@given(st.lists(st.sampled_from(["send", "answer", "expire"]), max_size=60), st.integers(1, 6))
def test_window_accounting_never_drifts(ops: list[str], window: int) -> None:
    session = esme(State.BOUND_TX, window=window)
    now = T0
    pending: list[int] = []
    for op in ops:
        now += 0.5
        if op == "send":
            if session.has_room:
                pending.append(session.send_request(SubmitSm(0), now, 2.0).sequence_number)
            else:
                with pytest.raises(WindowFull):
                    session.send_request(SubmitSm(0), now, 2.0)
        elif op == "answer" and pending:
            seq = pending.pop(0)
            if seq in session.outstanding:
                session.receive(SubmitSmResp(seq), now)
        else:
            for gone in session.expired(now):
                pending.remove(gone.sequence_number)
        assert session.in_flight == len(session.outstanding) <= window
        assert session.in_flight == sum(1 for s in pending if s in session.outstanding)


@pytest.mark.parametrize("kwargs", [{"window": 0}, {"peer_window": 0}, {"first_sequence": 0}])
def test_bad_construction_is_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must"):
        Session("esme", **kwargs)
