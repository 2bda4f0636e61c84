"""A real softphone, Debian's baresip, registers to Switchboard over loopback."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from tests.interop.servers import running_server
from tests.interop.sipp import free_port

pytestmark = [pytest.mark.interop, pytest.mark.slow]

CONFIG = """
[[domains]]
name = "example.com"
api_token = "token-for-tests"
  [[domains.users]]
  id = 1001
  name = "alice"
  sip_password = "alice-secret"
"""


def _baresip_home(path: Path, listen_port: int, registrar_port: int) -> Path:
    path.mkdir()
    (path / "config").write_text(
        f"poll_method epoll\nsip_listen 127.0.0.1:{listen_port}\nsip_trans_def udp\n"
        "audio_player aufile,/dev/null\naudio_source aufile,/dev/null\n"
        "module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\n"
        "module_app account.so\n"
    )
    (path / "accounts").write_text(
        f'<sip:alice@example.com>;auth_pass=alice-secret;outbound="sip:127.0.0.1:{registrar_port}"'
        ";regint=120\n"
    )
    return path


async def test_baresip_registers_and_shows_as_a_binding(tmp_path: Path) -> None:
    binary = shutil.which("baresip")
    assert binary, "baresip is not installed: apt-get install baresip-core (see scripts/setup)"
    async with running_server(CONFIG, tmp_path / "db.sqlite") as server:
        phone_port = free_port()
        home = _baresip_home(tmp_path / "baresip", phone_port, server.endpoint.listen_port)
        process = await asyncio.create_subprocess_exec(
            binary, "-f", str(home), "-t", "6",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            for _ in range(100):
                contacts = server.registrar.contacts("example.com", "alice")
                if contacts:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("baresip did not register")
            assert contacts[0].startswith("sip:") and f":{phone_port}" in contacts[0]
            (binding,) = server.registrar.location.bindings(("example.com", "alice"), 0.0)
            assert "baresip" in binding.user_agent.lower()
        finally:
            process.terminate()
            await process.communicate()
