"""The ``switchboard`` command run as a real process: --help, check-config, serve."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.interop.sipp import free_port
from tests.sip.factories import request

pytestmark = pytest.mark.slow


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switchboard", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_help_lists_the_commands() -> None:
    result = _run("--help")
    assert result.returncode == 0
    assert "serve" in result.stdout and "check-config" in result.stdout


def test_check_config_accepts_the_bundled_example_and_names_bad_keys(tmp_path: Path) -> None:
    ok = _run("check-config", "examples/switchboard.toml")
    assert ok.returncode == 0, ok.stderr
    assert "sip_listen  127.0.0.1:5060" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[server]\nsip_listen = "nowhere"\nrtp_timeot = 5\n')
    result = _run("check-config", str(bad))
    assert result.returncode == 2
    assert "server.sip_listen" in result.stderr and "server.rtp_timeot" in result.stderr


def _write_config(tmp_path: Path, sip_port: int, http_port: int) -> Path:
    config = tmp_path / "switchboard.toml"
    config.write_text(
        f'[server]\nsip_listen = "127.0.0.1:{sip_port}"\n'
        f'http_listen = "127.0.0.1:{http_port}"\n'
        f'database = "sqlite:///{tmp_path}/switchboard.db"\n'
    )
    return config


async def test_serve_answers_healthz_and_sip_options_then_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    sip_port, http_port = free_port(), free_port(socket.SOCK_STREAM)
    config = _write_config(tmp_path, sip_port, http_port)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "switchboard",
        "serve",
        "--config",
        str(config),
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(400):  # start-up runs the migrations: seconds on a busy machine
                try:
                    health = await client.get(f"http://127.0.0.1:{http_port}/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("server did not start")
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
            sock.sendto(bytes(request("OPTIONS", sent_by="127.0.0.1:9")), ("127.0.0.1", sip_port))
            reply = await asyncio.wait_for(loop.sock_recv(sock, 65535), 2.0)
        assert reply.startswith(b"SIP/2.0 200 OK")
    finally:
        process.terminate()
        _, stderr = await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode == 0
    log = stderr.decode()
    assert "OPTIONS sip:bob@example.com" in log  # one line per SIP message
    assert f"http listening on 127.0.0.1:{http_port}" in log
    assert "GET /healthz - 200 ok " in log  # one access line per HTTP request
    assert "shutting down" in log


def test_json_logs_are_one_object_per_line(tmp_path: Path) -> None:
    config = _write_config(tmp_path, free_port(), free_port(socket.SOCK_STREAM))
    result = _run("--log-format", "json", "apply", str(config))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)


def test_a_certificate_that_cannot_be_loaded_is_a_clear_error(tmp_path: Path) -> None:
    config = _write_config(tmp_path, free_port(), free_port(socket.SOCK_STREAM))
    missing = tmp_path / "missing.pem"
    text = config.read_text().replace(
        "[server]\n",
        f'[server]\nhttp_tls = true\ntls_certificate = "{missing}"\ntls_key = "{missing}"\n',
    )
    config.write_text(text)
    result = _run("serve", "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.startswith("switchboard: ") and "missing.pem" in result.stderr
    assert "Traceback" not in result.stderr
