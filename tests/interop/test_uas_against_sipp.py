"""SIPp calls a UAS built on the endpoint: its built-in ``uac`` scenario, and
``uac_call_then_bye.xml`` where every one of a thousand calls must end with its BYE."""

from __future__ import annotations

import pytest

from switchboard.sip.endpoint import SipEndpoint
from switchboard.sip.useragent import UserAgent
from switchboard.testing.autoanswer import auto_answer
from tests.interop.sipp import SCENARIOS, free_port, run_sipp

pytestmark = [pytest.mark.interop, pytest.mark.slow]


async def _answering_endpoint() -> SipEndpoint:
    endpoint = SipEndpoint("127.0.0.1", free_port())
    await endpoint.start()
    auto_answer(UserAgent(endpoint))
    return endpoint


@pytest.mark.parametrize("transport", ["u1", "t1"], ids=["udp", "tcp"])
async def test_sipp_uac_completes_1000_calls(transport: str) -> None:
    """Under load the endpoint's socket may overflow and lose an ACK and the BYE after it;
    the call must still end with that BYE, retransmitted (§17.1.2.2), and not with SIPp
    taking the retransmitted 2xx for the BYE's 200 (see the scenario)."""
    endpoint = await _answering_endpoint()
    try:
        result = await run_sipp(
            [
                "-sf",
                str(SCENARIOS / "uac_call_then_bye.xml"),
                f"127.0.0.1:{endpoint.listen_port}",
                "-t",
                transport,
                "-i",
                "127.0.0.1",
                "-p",
                str(free_port()),
                "-m",
                "1000",
                "-r",
                "200",
                "-l",
                "100",
                "-timeout",
                "60",
                "-timeout_error",
                "-nostdin",
            ],
            timeout=90,
        )
    finally:
        await endpoint.close()
    assert result.returncode == 0, result.output[-3000:]
    assert result.successful == 1000
    assert result.failed == 0
    assert endpoint.statistics()["awaiting_ack"] == 0


async def test_sipp_uac_completes_calls_despite_10_percent_packet_loss() -> None:
    endpoint = await _answering_endpoint()
    try:
        result = await run_sipp(
            [
                "-sn",
                "uac",
                f"127.0.0.1:{endpoint.listen_port}",
                "-t",
                "u1",
                "-i",
                "127.0.0.1",
                "-p",
                str(free_port()),
                "-m",
                "100",
                "-r",
                "50",
                "-l",
                "100",
                "-lost",
                "10",
                "-timeout",
                "120",
                "-nostdin",
                "-recv_timeout",
                "60000",
            ],
            timeout=150,
        )
    finally:
        await endpoint.close()
    assert result.failed == 0, result.output[-3000:]
    assert result.successful == 100, result.output[-3000:]
