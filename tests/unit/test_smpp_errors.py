"""submit_sm_resp statuses: which mean go on, slow down, retry, or give up."""

from __future__ import annotations

import pytest

from appliance.domain.smpp_errors import SPEC_CODES, TRANSPORT_FAILURE, classify, is_retryable
from appliance.protocols.smpp import CommandStatus

S = CommandStatus


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (S.ESME_ROK, "ok"),
        (S.ESME_RTHROTTLED, "throttled"),
        (S.ESME_RMSGQFUL, "throttled"),
        (S.ESME_RSYSERR, "temporary"),
        (S.ESME_RX_T_APPN, "temporary"),
        (S.ESME_RINVBNDSTS, "temporary"),
        (S.ESME_RUNKNOWNERR, "temporary"),
        (S.ESME_RINVDSTADR, "permanent"),
        (S.ESME_RINVSRCADR, "permanent"),
        (S.ESME_RSUBMITFAIL, "permanent"),
        (S.ESME_RX_P_APPN, "permanent"),
        (S.ESME_RX_R_APPN, "permanent"),
        (S.ESME_RINVMSGLEN, "permanent"),
        (S.ESME_RINVESMCLASS, "permanent"),
        (S.ESME_RINVDSTTON, "permanent"),
        (S.ESME_RDELIVERYFAILURE, "permanent"),
        (0x400, "temporary"),  # vendor-specific: unknown to us
        (0x4FF, "temporary"),
        (0x09, "permanent"),  # reserved inside a spec range classifies like its neighbours
    ],
)
def test_classify(status: int, kind: str) -> None:
    assert classify(status) == kind


def test_every_spec_status_is_known() -> None:
    assert {int(status) for status in CommandStatus} <= SPEC_CODES


def test_retryable() -> None:
    assert is_retryable("throttled") and is_retryable("temporary") and is_retryable(TRANSPORT_FAILURE)
    assert not is_retryable("ok") and not is_retryable("permanent")
