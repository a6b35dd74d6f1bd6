"""SMPP 3.4 numbers: command ids, command_status codes, TON/NPI, esm_class bits, data_coding, TLV tags.

Everything here is spec data, named once so that the codec, the sessions and the tests agree.
Section numbers refer to the SMPP v3.4 specification (issue 1.2).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final, Literal

HEADER_SIZE: Final = 16
"""command_length, command_id, command_status, sequence_number: four big-endian uint32 (§3.2)."""

RESPONSE_BIT: Final = 0x80000000
"""A response's command_id is its request's with the top bit set (§5.1.2.1)."""

MAX_SHORT_MESSAGE: Final = 254
"""sm_length is one octet and the spec caps short_message at 254 octets (§5.2.21)."""

DEFAULT_MAX_PDU_SIZE: Final = HEADER_SIZE + 1024 + 4 + 0xFFFF
"""A header, generous mandatory fields and one maximal TLV (a full message_payload)."""


class CommandId(IntEnum):
    """Operation codes (§5.1.2.1)."""

    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    QUERY_SM = 0x00000003
    QUERY_SM_RESP = 0x80000003
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    REPLACE_SM = 0x00000007
    REPLACE_SM_RESP = 0x80000007
    CANCEL_SM = 0x00000008
    CANCEL_SM_RESP = 0x80000008
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    OUTBIND = 0x0000000B
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015
    SUBMIT_MULTI = 0x00000021
    SUBMIT_MULTI_RESP = 0x80000021
    ALERT_NOTIFICATION = 0x00000102
    DATA_SM = 0x00000103
    DATA_SM_RESP = 0x80000103


class CommandStatus(IntEnum):
    """Every ESME_* error code of SMPP 3.4 (§5.1.3); the member name is the spec's name."""

    ESME_ROK = 0x00000000
    ESME_RINVMSGLEN = 0x00000001
    ESME_RINVCMDLEN = 0x00000002
    ESME_RINVCMDID = 0x00000003
    ESME_RINVBNDSTS = 0x00000004
    ESME_RALYBND = 0x00000005
    ESME_RINVPRTFLG = 0x00000006
    ESME_RINVREGDLVFLG = 0x00000007
    ESME_RSYSERR = 0x00000008
    ESME_RINVSRCADR = 0x0000000A
    ESME_RINVDSTADR = 0x0000000B
    ESME_RINVMSGID = 0x0000000C
    ESME_RBINDFAIL = 0x0000000D
    ESME_RINVPASWD = 0x0000000E
    ESME_RINVSYSID = 0x0000000F
    ESME_RCANCELFAIL = 0x00000011
    ESME_RREPLACEFAIL = 0x00000013
    ESME_RMSGQFUL = 0x00000014
    ESME_RINVSERTYP = 0x00000015
    ESME_RINVNUMDESTS = 0x00000033
    ESME_RINVDLNAME = 0x00000034
    ESME_RINVDESTFLAG = 0x00000040
    ESME_RINVSUBREP = 0x00000042
    ESME_RINVESMCLASS = 0x00000043
    ESME_RCNTSUBDL = 0x00000044
    ESME_RSUBMITFAIL = 0x00000045
    ESME_RINVSRCTON = 0x00000048
    ESME_RINVSRCNPI = 0x00000049
    ESME_RINVDSTTON = 0x00000050
    ESME_RINVDSTNPI = 0x00000051
    ESME_RINVSYSTYP = 0x00000053
    ESME_RINVREPFLAG = 0x00000054
    ESME_RINVNUMMSGS = 0x00000055
    ESME_RTHROTTLED = 0x00000058
    ESME_RINVSCHED = 0x00000061
    ESME_RINVEXPIRY = 0x00000062
    ESME_RINVDFTMSGID = 0x00000063
    ESME_RX_T_APPN = 0x00000064
    ESME_RX_P_APPN = 0x00000065
    ESME_RX_R_APPN = 0x00000066
    ESME_RQUERYFAIL = 0x00000067
    ESME_RINVOPTPARSTREAM = 0x000000C0
    ESME_ROPTPARNOTALLWD = 0x000000C1
    ESME_RINVPARLEN = 0x000000C2
    ESME_RMISSINGOPTPARAM = 0x000000C3
    ESME_RINVOPTPARAMVAL = 0x000000C4
    ESME_RDELIVERYFAILURE = 0x000000FE
    ESME_RUNKNOWNERR = 0x000000FF


def status_name(code: int) -> str:
    """The spec name of a command_status, or a hex rendering for vendor codes (0x400-0x4FF) and others."""
    try:
        return CommandStatus(code).name
    except ValueError:
        return f"0x{code:08X}"


class Ton(IntEnum):
    """Type of number (§5.2.5)."""

    UNKNOWN = 0
    INTERNATIONAL = 1
    NATIONAL = 2
    NETWORK_SPECIFIC = 3
    SUBSCRIBER_NUMBER = 4
    ALPHANUMERIC = 5
    ABBREVIATED = 6


class Npi(IntEnum):
    """Numbering plan indicator (§5.2.6)."""

    UNKNOWN = 0
    ISDN = 1
    DATA = 3
    TELEX = 4
    LAND_MOBILE = 6
    NATIONAL = 8
    PRIVATE = 9
    ERMES = 10
    INTERNET = 14
    WAP = 18


class EsmClass:
    """esm_class bits (§5.2.12): messaging mode (bits 1-0), message type (bits 5-2), GSM features (7-6)."""

    MODE_MASK: Final = 0x03
    MODE_DEFAULT: Final = 0x00
    MODE_DATAGRAM: Final = 0x01
    MODE_FORWARD: Final = 0x02
    MODE_STORE_AND_FORWARD: Final = 0x03

    TYPE_MASK: Final = 0x3C
    TYPE_DEFAULT: Final = 0x00
    TYPE_DELIVERY_RECEIPT: Final = 0x04
    TYPE_DELIVERY_ACK: Final = 0x08
    TYPE_MANUAL_ACK: Final = 0x10
    TYPE_CONVERSATION_ABORT: Final = 0x18
    TYPE_INTERMEDIATE_NOTIFICATION: Final = 0x20

    UDHI: Final = 0x40
    REPLY_PATH: Final = 0x80


class RegisteredDelivery:
    """registered_delivery bits (§5.2.17)."""

    RECEIPT_MASK: Final = 0x03
    RECEIPT_NONE: Final = 0x00
    RECEIPT_ALWAYS: Final = 0x01
    RECEIPT_ON_FAILURE: Final = 0x02
    SME_ACK_MASK: Final = 0x0C
    SME_ACK_DELIVERY: Final = 0x04
    SME_ACK_MANUAL: Final = 0x08
    INTERMEDIATE_NOTIFICATION: Final = 0x10


class DataCoding(IntEnum):
    """data_coding values (§5.2.19)."""

    DEFAULT = 0x00
    IA5 = 0x01
    OCTET_UNSPECIFIED = 0x02
    LATIN1 = 0x03
    OCTET_UNSPECIFIED_8BIT = 0x04
    JIS = 0x05
    CYRILLIC = 0x06
    LATIN_HEBREW = 0x07
    UCS2 = 0x08
    PICTOGRAM = 0x09
    ISO_2022_JP = 0x0A
    EXTENDED_KANJI = 0x0D
    KS_C_5601 = 0x0E


class MessageState(IntEnum):
    """message_state in query_sm_resp and the message_state TLV (§5.2.28)."""

    ENROUTE = 1
    DELIVERED = 2
    EXPIRED = 3
    DELETED = 4
    UNDELIVERABLE = 5
    ACCEPTED = 6
    UNKNOWN = 7
    REJECTED = 8


class DestFlag(IntEnum):
    """dest_flag of a submit_multi destination (§5.2.25)."""

    SME_ADDRESS = 1
    DISTRIBUTION_LIST = 2


INTERFACE_VERSION_33: Final = 0x33
INTERFACE_VERSION_34: Final = 0x34


class Tag(IntEnum):
    """TLV tags of SMPP 3.4 (§5.3.2)."""

    DEST_ADDR_SUBUNIT = 0x0005
    DEST_NETWORK_TYPE = 0x0006
    DEST_BEARER_TYPE = 0x0007
    DEST_TELEMATICS_ID = 0x0008
    SOURCE_ADDR_SUBUNIT = 0x000D
    SOURCE_NETWORK_TYPE = 0x000E
    SOURCE_BEARER_TYPE = 0x000F
    SOURCE_TELEMATICS_ID = 0x0010
    QOS_TIME_TO_LIVE = 0x0017
    PAYLOAD_TYPE = 0x0019
    ADDITIONAL_STATUS_INFO_TEXT = 0x001D
    RECEIPTED_MESSAGE_ID = 0x001E
    MS_MSG_WAIT_FACILITIES = 0x0030
    PRIVACY_INDICATOR = 0x0201
    SOURCE_SUBADDRESS = 0x0202
    DEST_SUBADDRESS = 0x0203
    USER_MESSAGE_REFERENCE = 0x0204
    USER_RESPONSE_CODE = 0x0205
    SOURCE_PORT = 0x020A
    DESTINATION_PORT = 0x020B
    SAR_MSG_REF_NUM = 0x020C
    LANGUAGE_INDICATOR = 0x020D
    SAR_TOTAL_SEGMENTS = 0x020E
    SAR_SEGMENT_SEQNUM = 0x020F
    SC_INTERFACE_VERSION = 0x0210
    CALLBACK_NUM_PRES_IND = 0x0302
    CALLBACK_NUM_ATAG = 0x0303
    NUMBER_OF_MESSAGES = 0x0304
    CALLBACK_NUM = 0x0381
    DPF_RESULT = 0x0420
    SET_DPF = 0x0421
    MS_AVAILABILITY_STATUS = 0x0422
    NETWORK_ERROR_CODE = 0x0423
    MESSAGE_PAYLOAD = 0x0424
    DELIVERY_FAILURE_REASON = 0x0425
    MORE_MESSAGES_TO_SEND = 0x0426
    MESSAGE_STATE = 0x0427
    USSD_SERVICE_OP = 0x0501
    DISPLAY_TIME = 0x1201
    SMS_SIGNAL = 0x1203
    MS_VALIDITY = 0x1204
    ALERT_ON_MESSAGE_DELIVERY = 0x130C
    ITS_REPLY_TYPE = 0x1380
    ITS_SESSION_INFO = 0x1383


TlvKind = Literal["int", "cstr", "octets", "network_error"]
"""How a known TLV's value is typed: int (size octets), str (C-string, max incl. NUL), bytes, or a pair."""

TLV_FORMATS: Final[dict[int, tuple[TlvKind, int, int]]] = {
    # tag: (kind, min length, max length); for "int" both are the fixed size.
    Tag.DEST_ADDR_SUBUNIT: ("int", 1, 1),
    Tag.DEST_NETWORK_TYPE: ("int", 1, 1),
    Tag.DEST_BEARER_TYPE: ("int", 1, 1),
    Tag.DEST_TELEMATICS_ID: ("int", 2, 2),
    Tag.SOURCE_ADDR_SUBUNIT: ("int", 1, 1),
    Tag.SOURCE_NETWORK_TYPE: ("int", 1, 1),
    Tag.SOURCE_BEARER_TYPE: ("int", 1, 1),
    Tag.SOURCE_TELEMATICS_ID: ("int", 2, 2),
    Tag.QOS_TIME_TO_LIVE: ("int", 4, 4),
    Tag.PAYLOAD_TYPE: ("int", 1, 1),
    Tag.ADDITIONAL_STATUS_INFO_TEXT: ("cstr", 1, 256),
    Tag.RECEIPTED_MESSAGE_ID: ("cstr", 1, 65),
    Tag.MS_MSG_WAIT_FACILITIES: ("int", 1, 1),
    Tag.PRIVACY_INDICATOR: ("int", 1, 1),
    Tag.SOURCE_SUBADDRESS: ("octets", 2, 23),
    Tag.DEST_SUBADDRESS: ("octets", 2, 23),
    Tag.USER_MESSAGE_REFERENCE: ("int", 2, 2),
    Tag.USER_RESPONSE_CODE: ("int", 1, 1),
    Tag.SOURCE_PORT: ("int", 2, 2),
    Tag.DESTINATION_PORT: ("int", 2, 2),
    Tag.SAR_MSG_REF_NUM: ("int", 2, 2),
    Tag.LANGUAGE_INDICATOR: ("int", 1, 1),
    Tag.SAR_TOTAL_SEGMENTS: ("int", 1, 1),
    Tag.SAR_SEGMENT_SEQNUM: ("int", 1, 1),
    Tag.SC_INTERFACE_VERSION: ("int", 1, 1),
    Tag.CALLBACK_NUM_PRES_IND: ("int", 1, 1),
    Tag.CALLBACK_NUM_ATAG: ("octets", 0, 65),
    Tag.NUMBER_OF_MESSAGES: ("int", 1, 1),
    Tag.CALLBACK_NUM: ("octets", 4, 19),
    Tag.DPF_RESULT: ("int", 1, 1),
    Tag.SET_DPF: ("int", 1, 1),
    Tag.MS_AVAILABILITY_STATUS: ("int", 1, 1),
    Tag.NETWORK_ERROR_CODE: ("network_error", 3, 3),
    Tag.MESSAGE_PAYLOAD: ("octets", 0, 0xFFFF),
    Tag.DELIVERY_FAILURE_REASON: ("int", 1, 1),
    Tag.MORE_MESSAGES_TO_SEND: ("int", 1, 1),
    Tag.MESSAGE_STATE: ("int", 1, 1),
    Tag.USSD_SERVICE_OP: ("int", 1, 1),
    Tag.DISPLAY_TIME: ("int", 1, 1),
    Tag.SMS_SIGNAL: ("int", 2, 2),
    Tag.MS_VALIDITY: ("int", 1, 1),
    Tag.ALERT_ON_MESSAGE_DELIVERY: ("octets", 0, 0),
    Tag.ITS_REPLY_TYPE: ("int", 1, 1),
    Tag.ITS_SESSION_INFO: ("int", 2, 2),
}
"""Known TLVs and their value formats; any other tag is carried as raw bytes."""

FieldKind = Literal["u8", "cstr", "short_message", "dest_addresses", "unsuccess_smes"]
"""How a mandatory body field travels: one octet, C-string, sm_length + octets, or a counted list."""

_S = CommandStatus
FIELD_FORMATS: Final[dict[str, tuple[FieldKind, int, int]]] = {
    # name: (kind, max octets incl. NUL for C-strings, command_status when the value is too long)
    "system_id": ("cstr", 16, _S.ESME_RINVSYSID),
    "password": ("cstr", 9, _S.ESME_RINVPASWD),
    "system_type": ("cstr", 13, _S.ESME_RINVSYSTYP),
    "address_range": ("cstr", 41, _S.ESME_RINVPARLEN),
    "service_type": ("cstr", 6, _S.ESME_RINVSERTYP),
    "source_addr": ("cstr", 21, _S.ESME_RINVSRCADR),
    "destination_addr": ("cstr", 21, _S.ESME_RINVDSTADR),
    "esme_addr": ("cstr", 65, _S.ESME_RINVDSTADR),
    "schedule_delivery_time": ("cstr", 17, _S.ESME_RINVSCHED),
    "validity_period": ("cstr", 17, _S.ESME_RINVEXPIRY),
    "final_date": ("cstr", 17, _S.ESME_RINVPARLEN),
    "message_id": ("cstr", 65, _S.ESME_RINVMSGID),
    "short_message": ("short_message", MAX_SHORT_MESSAGE, _S.ESME_RINVMSGLEN),
    "dest_addresses": ("dest_addresses", 254, _S.ESME_RINVNUMDESTS),
    "unsuccess_smes": ("unsuccess_smes", 254, _S.ESME_RINVPARLEN),
    **dict.fromkeys(
        (
            "interface_version",
            "addr_ton",
            "addr_npi",
            "source_addr_ton",
            "source_addr_npi",
            "dest_addr_ton",
            "dest_addr_npi",
            "esme_addr_ton",
            "esme_addr_npi",
            "esm_class",
            "protocol_id",
            "priority_flag",
            "registered_delivery",
            "replace_if_present_flag",
            "data_coding",
            "sm_default_msg_id",
            "message_state",
            "error_code",
        ),
        ("u8", 1, _S.ESME_RINVPARLEN),
    ),
}
"""Mandatory fields by their spec name (§4). data_sm and alert_notification widen addresses to 65."""

WIDE_ADDRESS: Final = 65
"""source_addr/destination_addr size in data_sm and alert_notification (§4.7.1, §4.12.1)."""
