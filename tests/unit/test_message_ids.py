"""Message ids: time-ordered, unique across refills of the entropy buffer and across a fork."""

from __future__ import annotations

import os

from appliance.domain.message import new_message_id


def test_ids_are_unique_and_ordered_by_time() -> None:
    ids = [new_message_id(1_700_000_000.0 + n / 1000) for n in range(50_000)]  # ~120 buffer refills
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(len(i) == 36 and i.startswith("msg_") for i in ids)
    int(ids[0][4:], 16)  # hex


def test_a_forked_child_never_repeats_the_parents_ids() -> None:
    new_message_id(0.0)  # the parent's buffer holds unused bytes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids and leave at once
        os.close(read)
        os.write(write, " ".join(new_message_id(0.0) for _ in range(5)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split()
    os.waitpid(pid, 0)
    parent = [new_message_id(0.0) for _ in range(5)]
    assert len(child) == 5 and not set(child) & set(parent)
