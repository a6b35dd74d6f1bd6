"""What a submit_sm_resp command_status means for the message: go on, slow down, retry, or give up.

The smpp daemon's carrier pool asks `classify` after every answer and acts on the class:

    ok          the carrier took the part: record its message id
    throttled   back-pressure (ESME_RTHROTTLED, ESME_RMSGQFUL): slow the carrier's pace and send the same
                part again later; never a reason to fail the message
    temporary   the carrier or this bind had trouble (ESME_RSYSERR, an application error it calls
                temporary, a wrong bind state, a vendor code we do not know): retry, preferably on
                another connection, a bounded number of times. Timeouts and lost connections are
                temporary too (`TRANSPORT_FAILURE`)
    permanent   the message itself is refused (bad destination or source, ESME_RSUBMITFAIL, a malformed
                field, ...): sending it again cannot help, so the attempt is `rejected`

The domain imports no protocol code, so the status numbers (SMPP 3.4 §5.1.3) are repeated here.
"""

from __future__ import annotations

from typing import Final, Literal

SubmitClass = Literal["ok", "throttled", "temporary", "permanent"]

ESME_ROK: Final = 0x00
ESME_RINVMSGLEN: Final = 0x01
ESME_RINVCMDLEN: Final = 0x02
ESME_RINVCMDID: Final = 0x03
ESME_RINVBNDSTS: Final = 0x04
ESME_RSYSERR: Final = 0x08
ESME_RINVSRCADR: Final = 0x0A
ESME_RINVDSTADR: Final = 0x0B
ESME_RMSGQFUL: Final = 0x14
ESME_RSUBMITFAIL: Final = 0x45
ESME_RTHROTTLED: Final = 0x58
ESME_RX_T_APPN: Final = 0x64
ESME_RX_P_APPN: Final = 0x65
ESME_RX_R_APPN: Final = 0x66
ESME_RUNKNOWNERR: Final = 0xFF

THROTTLED: Final = frozenset({ESME_RTHROTTLED, ESME_RMSGQFUL})
TEMPORARY: Final = frozenset({ESME_RSYSERR, ESME_RINVBNDSTS, ESME_RX_T_APPN, ESME_RUNKNOWNERR})
"""Trouble of the moment or of this bind, not of the message."""

SPEC_CODES: Final = frozenset(
    {
        *range(0x16),
        *range(0x33, 0x35),
        0x40,
        *range(0x42, 0x46),
        *range(0x48, 0x4A),
        *range(0x50, 0x52),
        *range(0x53, 0x56),
        0x58,
        *range(0x61, 0x68),
        *range(0xC0, 0xC5),
        0xFE,
        0xFF,
    }
)
"""Every status SMPP 3.4 defines (some numbers in these ranges are reserved; they classify alike)."""

TRANSPORT_FAILURE: Final[SubmitClass] = "temporary"
"""The class of a submit that got no answer: a timeout or a connection lost before the response."""


def classify(command_status: int) -> SubmitClass:
    """The class of a submit_sm_resp (or generic_nack) status.

    Statuses outside the spec (vendor codes 0x400-0x4FF, reserved numbers) are temporary: we cannot
    tell, and the retry bound turns a code that keeps coming back into a rejection soon enough.
    """
    if command_status == ESME_ROK:
        return "ok"
    if command_status in THROTTLED:
        return "throttled"
    if command_status in TEMPORARY or command_status not in SPEC_CODES:
        return "temporary"
    return "permanent"


def is_retryable(kind: SubmitClass) -> bool:
    """Whether the same part may be sent again (throttled and temporary), as opposed to done or refused."""
    return kind in ("throttled", "temporary")
