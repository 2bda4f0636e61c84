"""SIPp phones registering to Switchboard's registrar (RFC 3261 §10) over loopback."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from switchboard.registrar.location import Binding
from tests.interop.servers import injection_file, running_server, users_config
from tests.interop.sipp import SCENARIOS, free_port, run_sipp

pytestmark = [pytest.mark.interop, pytest.mark.slow]
CONFIG = users_config(3)


def _sipp(
    scenario: str, server_port: int, inf: Path, *extra: str, phone_port: int | None = None
) -> list[str]:
    return [
        "-sf", str(SCENARIOS / scenario), "-inf", str(inf), f"127.0.0.1:{server_port}",
        "-i", "127.0.0.1", "-p", str(phone_port or free_port()), "-nostdin", "-timeout", "60",
        *extra,
    ]  # fmt: skip


async def test_phone_registers_with_digest_and_the_binding_is_echoed(
    tmp_path: Path, database_url: str
) -> None:
    inf = injection_file(tmp_path / "users.csv", ["user0000"])
    async with running_server(CONFIG, database_url) as server:
        port = server.endpoint.listen_port
        result = await run_sipp(_sipp("uac_register.xml", port, inf, "-m", "1"), 30)
        assert result.returncode == 0, result.output[-2000:]
        (contact,) = server.registrar.contacts("example.com", "user0000")
        assert contact.startswith("sip:user0000@127.0.0.1:")
        assert server.registrar.counters["challenged"] == 1
        assert server.registrar.counters["registered"] == 1
        (stored,) = await server.registrar.store.load()
        assert stored.contact == contact and stored.user_agent == "SIPp"


async def test_wrong_password_never_gets_200(tmp_path: Path) -> None:
    inf = injection_file(tmp_path / "users.csv", ["user0001"], password="guessed")
    async with running_server(CONFIG, tmp_path / "db.sqlite") as server:
        port = server.endpoint.listen_port
        result = await run_sipp(_sipp("uac_register_wrong_password.xml", port, inf, "-m", "3"), 30)
        assert result.returncode == 0, result.output[-2000:]  # every answer was 403
        assert server.registrar.contacts("example.com", "user0001") == []
        assert server.registrar.counters["registered"] == 0


async def test_unregister_removes_the_binding(tmp_path: Path) -> None:
    inf = injection_file(tmp_path / "users.csv", ["user0002"])
    async with running_server(CONFIG, tmp_path / "db.sqlite") as server:
        port, phone = server.endpoint.listen_port, free_port()  # the same phone both times
        registered = await run_sipp(
            _sipp("uac_register.xml", port, inf, "-m", "1", phone_port=phone), 30
        )
        assert registered.returncode == 0, registered.output[-2000:]
        assert len(server.registrar.contacts("example.com", "user0002")) == 1
        removed = await run_sipp(
            _sipp("uac_unregister.xml", port, inf, "-m", "1", phone_port=phone), 30
        )
        assert removed.returncode == 0, removed.output[-2000:]
        assert server.registrar.contacts("example.com", "user0002") == []
        assert await server.registrar.store.load() == []


async def test_500_users_register_through_sipp_at_100_per_second(tmp_path: Path) -> None:
    users = [f"user{n:04d}" for n in range(500)]
    inf = injection_file(tmp_path / "users.csv", users)
    async with running_server(users_config(500), tmp_path / "db.sqlite") as server:
        port = server.endpoint.listen_port
        args = _sipp("uac_register.xml", port, inf, "-m", "500", "-r", "100")
        result = await run_sipp(args, 60)
        assert result.returncode == 0, result.output[-2000:]
        assert (result.successful, result.failed) == (500, 0)
        assert server.registrar.location.count() == 500
        assert len(await server.registrar.store.load()) == 500


async def test_restart_keeps_live_bindings_and_drops_expired_ones(tmp_path: Path) -> None:
    database = tmp_path / "db.sqlite"
    inf = injection_file(tmp_path / "users.csv", ["user0000"])
    async with running_server(CONFIG, database) as server:
        result = await run_sipp(_sipp("uac_register.xml", server.endpoint.listen_port, inf,
                                      "-m", "1"), 30)  # fmt: skip
        assert result.returncode == 0, result.output[-2000:]
        soon = Binding("example.com", "user0001", "sip:user0001@192.0.2.9", time.time() + 0.5,
                       "c", 1)  # fmt: skip
        await server.registrar.store.save_batch([([soon], [])])
    await asyncio.sleep(0.7)  # user0001's binding expires while the server is down
    async with running_server(CONFIG, database) as restarted:
        assert len(restarted.registrar.contacts("example.com", "user0000")) == 1
        assert restarted.registrar.contacts("example.com", "user0001") == []
        stored = await restarted.registrar.store.load()
        assert [b.user for b in stored] == ["user0000"]


async def test_bindings_expire_on_time_while_running(tmp_path: Path) -> None:
    async with running_server(CONFIG, tmp_path / "db.sqlite") as server:
        service = server.registrar
        expires_at = time.time() + 0.3
        binding = Binding("example.com", "user0002", "sip:user0002@192.0.2.3", expires_at, "c", 1)
        await service.store.save_batch([([binding], [])])
        service.location.put(binding)
        service._arm()
        while service.location.count():
            await asyncio.sleep(0.005)
        late = time.time() - expires_at
        assert 0 <= late < 0.05  # removed on time, not by a periodic sweep
        async with asyncio.timeout(2.0):  # the DELETE the timer spawned, not a guessed sleep
            while service._tasks:
                await asyncio.sleep(0.005)
        assert await service.store.load() == []
