"""SMPP 3.4 PDUs as frozen msgspec Structs, one per operation.

A PDU is plain data: `codec.encode` turns one into bytes and `codec.decode` back. Field names and order
are the spec's (§4); the codec derives each wire layout from them, so the two cannot drift apart.
Every PDU carries `tlvs`, even where SMPP 3.4 lists none, because SMPP 5.0 peers add them to responses.
C-octet strings are `str` (latin-1, so any byte survives), octet strings are `bytes`.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from appliance.protocols.smpp.constants import (
    INTERFACE_VERSION_34,
    RESPONSE_BIT,
    CommandId,
)
from appliance.protocols.smpp.tlv import EMPTY_TLVS, Tlvs


class Pdu(msgspec.Struct, frozen=True, gc=False, repr_omit_defaults=True):
    """The header every PDU shares; command_length is derived by the codec, command_id by the class."""

    command_id: ClassVar[int]
    sequence_number: int
    command_status: int = 0
    tlvs: Tlvs = EMPTY_TLVS

    @classmethod
    def is_response(cls) -> bool:
        return bool(cls.command_id & RESPONSE_BIT)


def _repr_without_password(pdu: Pdu) -> str:
    """PDUs end up in logs; a bind's password must not (style: secrets never appear in logs)."""
    fields = ", ".join(
        f"{name}={'***' if name == 'password' else repr(getattr(pdu, name))}"
        for name in pdu.__struct_fields__
        if name in ("sequence_number", "system_id", "password")
        or getattr(pdu, name) != getattr(type(pdu)(0), name)
    )
    return f"{type(pdu).__name__}({fields})"


class _Bind(Pdu, frozen=True, gc=False, repr_omit_defaults=True):
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    interface_version: int = INTERFACE_VERSION_34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""

    __repr__ = _repr_without_password


class BindTransmitter(_Bind, frozen=True, gc=False, repr_omit_defaults=True):
    command_id: ClassVar[int] = CommandId.BIND_TRANSMITTER


class BindReceiver(_Bind, frozen=True, gc=False, repr_omit_defaults=True):
    command_id: ClassVar[int] = CommandId.BIND_RECEIVER


class BindTransceiver(_Bind, frozen=True, gc=False, repr_omit_defaults=True):
    command_id: ClassVar[int] = CommandId.BIND_TRANSCEIVER


class _BindResp(Pdu, frozen=True, gc=False, repr_omit_defaults=True):
    """sc_interface_version travels as a TLV; the body is left off when command_status is non-zero."""

    system_id: str = ""


class BindTransmitterResp(_BindResp, frozen=True, gc=False, repr_omit_defaults=True):
    command_id: ClassVar[int] = CommandId.BIND_TRANSMITTER_RESP


class BindReceiverResp(_BindResp, frozen=True, gc=False, repr_omit_defaults=True):
    command_id: ClassVar[int] = CommandId.BIND_RECEIVER_RESP


class BindTransceiverResp(_BindResp, frozen=True, gc=False, repr_omit_defaults=True):
    command_id: ClassVar[int] = CommandId.BIND_TRANSCEIVER_RESP


class Outbind(Pdu, frozen=True, gc=False, repr_omit_defaults=True):
    command_id: ClassVar[int] = CommandId.OUTBIND
    system_id: str = ""
    password: str = ""

    __repr__ = _repr_without_password


class Unbind(Pdu, frozen=True, gc=False, repr_omit_defaults=True):
    command_id: ClassVar[int] = CommandId.UNBIND


class UnbindResp(Pdu, frozen=True, gc=False, repr_omit_defaults=True):
    command_id: ClassVar[int] = CommandId.UNBIND_RESP


class GenericNack(Pdu, frozen=True, gc=False, repr_omit_defaults=True):
    command_id: ClassVar[int] = CommandId.GENERIC_NACK


class EnquireLink(Pdu, frozen=True, gc=False, repr_omit_defaults=True):
    command_id: ClassVar[int] = CommandId.ENQUIRE_LINK


class EnquireLinkResp(Pdu, frozen=True, gc=False, repr_omit_defaults=True):
    command_id: ClassVar[int] = CommandId.ENQUIRE_LINK_RESP


class _ShortMessage(Pdu, frozen=True, gc=False, repr_omit_defaults=True):
    """submit_sm and deliver_sm share one body (§4.4.1, §4.6.1); sm_length is derived by the codec."""

    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""


class SubmitSm(_ShortMessage, frozen=True, gc=False, repr_omit_defaults=True):
    command_id: ClassVar[int] = CommandId.SUBMIT_SM


class DeliverSm(_ShortMessage, frozen=True, gc=False, repr_omit_defaults=True):
    """From the SMSC: a mobile-originated message or, with esm_class receipt bits, a delivery receipt."""

    command_id: ClassVar[int] = CommandId.DELIVER_SM


class SubmitSmResp(Pdu, frozen=True, gc=False, repr_omit_defaults=True):
    """The body is left off when command_status is non-zero (§4.4.2)."""

    command_id: ClassVar[int] = CommandId.SUBMIT_SM_RESP
    message_id: str = ""


class DeliverSmResp(Pdu, frozen=True, gc=False, repr_omit_defaults=True):
    """message_id is unused and NULL in SMPP 3.4 (§4.6.2)."""

    command_id: ClassVar[int] = CommandId.DELIVER_SM_RESP
    message_id: str = ""


class DataSm(Pdu, frozen=True, gc=False, repr_omit_defaults=True):
    """The payload travels in the message_payload TLV; addresses may be up to 64 characters (§4.7.1)."""

    command_id: ClassVar[int] = CommandId.DATA_SM
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    registered_delivery: int = 0
    data_coding: int = 0


class DataSmResp(Pdu, frozen=True, gc=False, repr_omit_defaults=True):
    command_id: ClassVar[int] = CommandId.DATA_SM_RESP
    message_id: str = ""


class QuerySm(Pdu, frozen=True, gc=False, repr_omit_defaults=True):
    command_id: ClassVar[int] = CommandId.QUERY_SM
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""


class QuerySmResp(Pdu, frozen=True, gc=False, repr_omit_defaults=True):
    command_id: ClassVar[int] = CommandId.QUERY_SM_RESP
    message_id: str = ""
    final_date: str = ""
    message_state: int = 0
    error_code: int = 0


class CancelSm(Pdu, frozen=True, gc=False, repr_omit_defaults=True):
    command_id: ClassVar[int] = CommandId.CANCEL_SM
    service_type: str = ""
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""


class CancelSmResp(Pdu, frozen=True, gc=False, repr_omit_defaults=True):
    command_id: ClassVar[int] = CommandId.CANCEL_SM_RESP


class ReplaceSm(Pdu, frozen=True, gc=False, repr_omit_defaults=True):
    command_id: ClassVar[int] = CommandId.REPLACE_SM
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""


class ReplaceSmResp(Pdu, frozen=True, gc=False, repr_omit_defaults=True):
    command_id: ClassVar[int] = CommandId.REPLACE_SM_RESP


class AlertNotification(Pdu, frozen=True, gc=False, repr_omit_defaults=True):
    command_id: ClassVar[int] = CommandId.ALERT_NOTIFICATION
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    esme_addr_ton: int = 0
    esme_addr_npi: int = 0
    esme_addr: str = ""


class SmeAddress(msgspec.Struct, frozen=True, gc=False):
    """A submit_multi destination that is one SME (dest_flag 1)."""

    ton: int
    npi: int
    address: str


class DistributionList(msgspec.Struct, frozen=True, gc=False):
    """A submit_multi destination that names an SMSC-side distribution list (dest_flag 2)."""

    name: str


class UnsuccessSme(msgspec.Struct, frozen=True, gc=False):
    """A submit_multi_resp entry: a destination the SMSC refused, and why."""

    ton: int
    npi: int
    address: str
    error_status_code: int


class SubmitMulti(Pdu, frozen=True, gc=False, repr_omit_defaults=True):
    """submit_sm to up to 254 destinations (§4.5.1); number_of_dests is derived by the codec."""

    command_id: ClassVar[int] = CommandId.SUBMIT_MULTI
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addresses: tuple[SmeAddress | DistributionList, ...] = ()
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""


class SubmitMultiResp(Pdu, frozen=True, gc=False, repr_omit_defaults=True):
    command_id: ClassVar[int] = CommandId.SUBMIT_MULTI_RESP
    message_id: str = ""
    unsuccess_smes: tuple[UnsuccessSme, ...] = ()


PDU_CLASSES: tuple[type[Pdu], ...] = (
    BindTransmitter,
    BindTransmitterResp,
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    Outbind,
    Unbind,
    UnbindResp,
    GenericNack,
    SubmitSm,
    SubmitSmResp,
    DeliverSm,
    DeliverSmResp,
    DataSm,
    DataSmResp,
    QuerySm,
    QuerySmResp,
    CancelSm,
    CancelSmResp,
    ReplaceSm,
    ReplaceSmResp,
    EnquireLink,
    EnquireLinkResp,
    AlertNotification,
    SubmitMulti,
    SubmitMultiResp,
)
"""Every operation the codec speaks, one class per command_id."""
