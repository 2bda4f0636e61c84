"""Starting SIPp: a peer that could not take its port fails where it starts, with SIPp's
words, not later as a phone or trunk that never answers."""

from __future__ import annotations

import os
import socket

import pytest

from tests.interop.call_group_harness import uas
from tests.interop.sipp import free_port, port_bound, start_sipp

pytestmark = pytest.mark.interop


async def test_a_sipp_whose_port_was_taken_fails_to_start_with_its_reason() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with pytest.raises(AssertionError, match=rf"127.0.0.1:{port}.*Address already in use"):
            await start_sipp(uas(port))


@pytest.mark.parametrize("mode", ["u1", "t1"])
async def test_a_started_sipp_holds_its_port_itself(mode: str) -> None:
    port = free_port()
    sipp = await start_sipp([*uas(port), "-t", mode])
    try:
        assert sipp.returncode is None
        assert port_bound(port, owner=sipp.pid, udp=mode == "u1")
    finally:
        sipp.kill()
        await sipp.wait()


def test_a_port_is_bound_by_whoever_holds_its_socket() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ours:
        ours.bind(("127.0.0.1", 0))
        port = ours.getsockname()[1]
        assert port_bound(port) and port_bound(port, owner=os.getpid())
        assert not port_bound(port, owner=os.getppid())  # bound, but not by that process
