"""/metrics and the API's log lines against the running server with a real HTTP client:
the token, what is exposed, the latency histogram by method, one access line per request
and one line per failed authentication (with no secret in any line)."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from switchboard.app import Server
from tests.interop.call_group_harness import serving

TOKEN = "metrics-token-for-tests"
CONFIG = """
[[domains]]
name = "example.com"
api_token = "token-for-tests"
  [[domains.users]]
  id = 1
  name = "alice"
  [[domains.groups]]
  id = 10
  name = "support"
  members = ["alice"]
"""
DOMAIN = {"Authorization": "Basic " + base64.b64encode(b"example.com:token-for-tests").decode()}
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Server, httpx.AsyncClient]]:
    async with serving(tmp_path, CONFIG, f'metrics_token = "{TOKEN}"') as served:
        yield served


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_need_the_token_and_expose_the_servers_figures(
    served: tuple[Server, httpx.AsyncClient],
) -> None:
    _, client = served
    assert (await client.get("/metrics")).status_code == 401
    assert (await client.get("/metrics", headers=DOMAIN)).status_code == 401  # not a domain's
    await client.post("/basix/api/hangup", json={"uuid": "x"}, headers=DOMAIN)
    answer = await client.get("/metrics", headers=BEARER)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    samples = _samples(answer.text)
    latency = ("method", "/basix/api/hangup"), ("status", "200")
    assert samples[("switchboard_api_request_seconds_count", latency)] == 1
    assert samples[("switchboard_callback_outbox_depth", ())] == 0
    assert samples[("switchboard_registrations", ())] == 0
    assert samples[("switchboard_cti_subscribers", ())] == 0
    assert samples[("switchboard_rtp_packets_total", (("kind", "in"),))] == 0
    assert samples[("switchboard_api_auth_failures_total", ())] == 2  # the two refused above
    assert samples[("switchboard_calls", ())] == 0


async def test_a_call_is_counted_by_kind_and_outcome(
    served: tuple[Server, httpx.AsyncClient],
) -> None:
    server, client = served
    body = {"group_name": "support", "destination": "alice"}
    answer = (await client.post("/basix/api/call_group", json=body, headers=DOMAIN)).json()
    assert answer["result_code"] == 0, answer  # alice is not registered: it ends at once
    async with asyncio.timeout(5):
        while server.engine.calls:
            await asyncio.sleep(0.01)
    samples = _samples((await client.get("/metrics", headers=BEARER)).text)
    ended = ("kind", "call_group"), ("outcome", "no_member_available")
    assert samples[("switchboard_calls_ended_total", ended)] == 1
    assert (
        samples[("switchboard_hunt_seconds_count", (("answered", "false"), ("kind", "call_group")))]
        == 1
    )


async def test_every_request_is_one_log_line_and_failures_name_their_source(
    served: tuple[Server, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    _, client = served
    caplog.set_level(logging.INFO)
    await client.post("/basix/api/hangup", json={"uuid": "x"}, headers=DOMAIN)
    wrong = {"Authorization": "Basic " + base64.b64encode(b"example.com:guess-1234").decode()}
    await client.post("/basix/api/hangup", json={"uuid": "x"}, headers=wrong)
    access = [r.getMessage() for r in caplog.records if r.name == "switchboard.access"]
    assert access[0].startswith("POST /basix/api/hangup example.com 200 channel_not_found ")
    assert access[1].startswith("POST /basix/api/hangup example.com 200 authentication_required ")
    failures = [r.getMessage() for r in caplog.records if "authentication failed" in r.getMessage()]
    assert failures == ["API authentication failed from 127.0.0.1"]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "token-for-tests" not in text and "guess-1234" not in text
