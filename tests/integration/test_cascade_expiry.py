"""The smpp daemon honours the cascade's `expires_at`: an attempt the cascade gave up on is not sent."""

from __future__ import annotations

import time

import msgspec
import pytest

from appliance.domain.dispatch import SmsDispatch, sms_subject
from tests.integration.test_smpp_daemon import Harness, _no_leaked_tasks, harness

__all__ = ["_no_leaked_tasks", "harness"]  # the smpp daemon's fixtures, reused
pytestmark = pytest.mark.timeout(60)


async def test_an_expired_attempt_is_rejected_unsent_and_a_live_one_sent(harness: Harness) -> None:
    sim = await harness.sim()
    await harness.carrier("telia_dk", sim)
    await harness.service()
    now = time.time()
    for message_id, expires_at in (("msg_gone", now - 1), ("msg_live", now + 60)):
        command = SmsDispatch(
            message_id=message_id, tenant_id="tn_a", attempt=3, carrier="telia_dk", to="+4523456789",
            body="hi", created_at=now, expires_at=expires_at,
        )  # fmt: skip
        await harness.js.publish(sms_subject("telia_dk"), msgspec.json.encode(command))
    (rejected,) = await harness.wait_for("rejected", 1)
    await harness.wait_for("submitted", 1)
    assert rejected.message_id == "msg_gone" and rejected.data["reason"] == "expired"
    assert rejected.data["attempt"] == 3 and "gave up" in rejected.data["detail"]
    assert [e.message_id for e in harness.of("submitted")] == ["msg_live"]
    assert sim.counters.submitted == 1
