"""Toll fraud through the API, against a running server with its default limits: someone
holding a domain's API token (a leaked CRM key, say) calls premium or international
numbers, presents someone else's caller ID, or opens as many trunk calls as it can.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.call_group_harness import post, serving
from tests.security.sip_peer import raw_peer

pytestmark = [pytest.mark.interop]


def _config(sink: tuple[str, int]) -> str:
    """A member whose phone never answers (a sink), so calls ring on; default limits."""
    return f"""
[[domains]]
name = "example.com"
api_token = "token-for-tests"
channel_limit = 100
calling_number = "0506868000"
  [[domains.users]]
  id = 1
  name = "alice"
  contacts = ["sip:alice@{sink[0]}:{sink[1]}"]
  [[domains.groups]]
  id = 1111
  name = "support"
  member_answer_timeout = 30
  members = ["alice"]
  [[domains.trunks]]
  name = "pstn"
  address = "127.0.0.1:9"
"""


async def test_premium_international_and_foreign_caller_ids_are_refused(tmp_path: Path) -> None:
    sink = await raw_peer()
    try:
        async with serving(tmp_path, _config(sink.address)) as (server, client):
            for destination in (
                "0990123456",  # premium rate
                "0101442071234567",  # international (010)
                "0033442071234567",  # international through a carrier code
                {"called_number": "0312341234", "calling_number": "0312349999"},  # not ours
                "{calling_number=0120000000}0312341234",
            ):
                body = {"group_name": "support", "destination": destination}
                answer = await post(client, "call_group", body)
                assert answer["result_code"] == 500, (destination, answer)
                assert answer["error"]["id"] == "invalid_destination"  # type: ignore[index]
            assert server.engine.statistics() == {"calls": 0, "channels": 0}
            assert sink.requests("INVITE") == []
    finally:
        sink.close()


async def test_concurrent_pstn_calls_are_capped_per_domain(tmp_path: Path) -> None:
    """The default cap is 30: the 31st call toward the PSTN is refused at once; a call to
    a user of the domain still goes through."""
    sink = await raw_peer()
    try:
        async with serving(tmp_path, _config(sink.address)) as (_server, client):
            body = {"group_name": "support", "destination": "0312341234"}
            answers = [await post(client, "call_group", body) for _ in range(31)]
            assert [a["result_code"] for a in answers] == [0] * 30 + [500]
            refused = answers[-1]["error"]
            assert refused["id"] == "channel_limit_reached"  # type: ignore[index]
            assert "pstn_channel_limit" in refused["description"]  # type: ignore[index]
            internal = await post(client, "call_group", {**body, "destination": "alice"})
            assert internal["result_code"] == 0
            for answer in answers[:30]:
                await post(client, "hangup", {"uuid": answer["uuids"][0]})  # type: ignore[index]
            answer = await post(client, "call_group", body)  # the slots came back
            assert answer["result_code"] == 0, answer
    finally:
        sink.close()
