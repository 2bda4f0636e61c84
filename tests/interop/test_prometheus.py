"""A real Prometheus server (Debian's ``prometheus``), started here on loopback, scrapes
Switchboard's /metrics with its bearer token; during a SIPp call its query API returns the
active-calls gauge."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from pathlib import Path

import httpx
import pytest

from tests.interop.call_group_harness import (
    Phones,
    config_for,
    finish,
    post,
    serving,
    trunk_scenario,
    uas,
    wait_bridged,
)
from tests.interop.sipp import free_port, start_sipp

pytestmark = [pytest.mark.interop, pytest.mark.slow]
TOKEN = "metrics-token-for-tests"


def _prometheus_config(path: Path, target: str) -> Path:
    path.write_text(f"""
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: switchboard
    authorization:
      type: Bearer
      credentials: {TOKEN}
    static_configs:
      - targets: ["{target}"]
""")
    return path


async def _query(client: httpx.AsyncClient, query: str) -> float | None:
    answer = (await client.get("/api/v1/query", params={"query": query})).json()
    results = answer["data"]["result"]
    return float(results[0]["value"][1]) if results else None


async def test_prometheus_scrapes_the_active_calls_gauge_during_a_call(tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    assert binary is not None, "prometheus is not installed (scripts/setup --test installs it)"
    phones = Phones(free_port(), free_port(), free_port())
    alice = await start_sipp(uas(phones.alice))
    trunk = await start_sipp(uas(phones.trunk, trunk_scenario(tmp_path, "0506868000")))
    web = free_port(socket.SOCK_STREAM)
    extra = f'metrics_token = "{TOKEN}"'
    async with serving(tmp_path, config_for(phones), extra) as (server, client):
        host, port = server.config.server.http_address
        config = _prometheus_config(tmp_path / "prometheus.yml", f"{host}:{port}")
        prometheus = await asyncio.create_subprocess_exec(
            binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{web}",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            answer = await post(
                client, "call_group", {"group_name": "support", "destination": "0312341234"}
            )
            assert answer["result_code"] == 0, answer
            live = await wait_bridged(server)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web}") as prom:
                active = None
                async with asyncio.timeout(30):  # Prometheus starts, then scrapes every 1 s
                    while active is None or active < 1:
                        with contextlib.suppress(httpx.TransportError):  # not up yet
                            active = await _query(prom, "sum(switchboard_calls_active)")
                        await asyncio.sleep(0.25)
                assert active == 1
                up = await _query(prom, 'up{job="switchboard"}')
                assert up == 1  # the scrape authenticated and parsed
            assert live.bridged  # the call is still up
            await post(client, "hangup", {"uuid": answer["uuids"][0]})  # type: ignore[index]
            await finish(alice, trunk)
        finally:
            prometheus.terminate()
            await prometheus.wait()
