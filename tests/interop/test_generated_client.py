"""A client generated from the running server's ``/openapi.json`` with openapi-python-client,
as an integrator would make one, places a call_group and hangs it up: its functions are
named after the methods, its classes after the schemas, and it authenticates through its
own ``AuthenticatedClient`` (``prefix="Basic"``, the token ``DOMAIN:API_TOKEN`` in base64),
not with a header added by hand. SIPp plays the member's phone, which rings until the
hangup cancels it."""

from __future__ import annotations

import asyncio
import base64
import importlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from switchboard.app import Server
from tests.interop.call_group_harness import Phones, config_for, finish, serving, uas
from tests.interop.sipp import SCENARIOS, free_port, start_sipp

pytestmark = [pytest.mark.interop, pytest.mark.slow]
PACKAGE = "switchboard_client"
GENERATOR_CONFIG = "post_hooks: []\n"  # it would run ruff on what it made: imported as it is


def _generator() -> str:
    command = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent))
    if command is None:
        raise RuntimeError("openapi-python-client is not installed: pip install -e '.[test]'")
    return command


async def generate_client(url: str, where: Path) -> None:
    """Generate the package ``PACKAGE`` into ``where``; any warning of the generator (a
    schema it cannot make a type of) fails."""
    config = where / "generator.yaml"
    config.write_text(GENERATOR_CONFIG)
    process = await asyncio.create_subprocess_exec(
        *[_generator(), "generate", "--url", url, "--meta", "none", "--fail-on-warning"],
        *["--config", str(config), "--output-path", str(where / PACKAGE)],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, out.decode(errors="replace")[-4000:]


@pytest.fixture
def generated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Where the generated package goes, importable; forgotten after the test."""
    where = tmp_path / "generated"
    where.mkdir()
    monkeypatch.syspath_prepend(str(where))
    yield where
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


async def _channel_rings(server: Server, uuid: str) -> None:
    """Until the member's phone has answered 180 for the channel ``uuid`` (5 s at most)."""
    deadline = asyncio.get_running_loop().time() + 5
    while asyncio.get_running_loop().time() < deadline:
        channels = {c.uuid: c for c in server.cti.channels("example.com")}
        if uuid in channels and "ringing" in channels[uuid].tags:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"channel {uuid} did not ring")


async def _no_calls_left(server: Server) -> None:
    deadline = asyncio.get_running_loop().time() + 5
    while server.engine.statistics() != {"calls": 0, "channels": 0}:
        assert asyncio.get_running_loop().time() < deadline, server.engine.statistics()
        await asyncio.sleep(0.02)


async def test_a_generated_client_places_a_call_group_and_hangs_it_up(
    tmp_path: Path, generated: Path
) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    alice = await start_sipp(uas(phones.alice, SCENARIOS / "uas_ring_until_cancel.xml"))
    try:
        async with serving(tmp_path, config_for(phones)) as (server, http):
            await generate_client(f"{http.base_url}/openapi.json", generated)
            client_module, models = _module("client"), _module("models")
            call_group, hangup = _module("api.basix.call_group"), _module("api.basix.hangup")
            assert call_group.asyncio.__annotations__["client"] is client_module.AuthenticatedClient
            # importing the generated package ran on the server's own event loop: its overload
            # guard saw the loop late and refuses calls until its average lag settles
            settled = asyncio.get_running_loop().time() + 5
            while server.overload.overloaded:
                assert asyncio.get_running_loop().time() < settled, server.overload.lag
                await asyncio.sleep(0.02)

            def client(domain: str, token: str) -> Any:
                """Its own authentication: ``prefix token`` in Authorization, here the
                HTTP Basic credentials (RFC 7617)."""
                basic = base64.b64encode(f"{domain}:{token}".encode()).decode()
                return client_module.AuthenticatedClient(
                    base_url=str(http.base_url), prefix="Basic", token=basic
                )

            request = models.CallGroupRequest(group_name="support", destination="0312341234")
            async with client("example.com", "not-the-token") as stranger:
                refused = await call_group.asyncio(client=stranger, body=request)
            assert isinstance(refused, models.ErrorAnswer), refused
            assert refused.error.id == "authentication_required"

            async with client("example.com", "token-for-tests") as member:
                answer = await call_group.asyncio(client=member, body=request, idempotency_key="o1")
                assert isinstance(answer, models.CallAnswer), answer
                assert len(answer.uuids) == 2  # alice's leg, then bob's
                again = await call_group.asyncio(client=member, body=request, idempotency_key="o1")
                assert again.uuids == answer.uuids  # a retry: it started nothing

                await _channel_rings(server, answer.uuids[0])
                hangup_alice = models.HangupRequest(uuid=answer.uuids[0])
                done = await hangup.asyncio(client=member, body=hangup_alice)
                assert isinstance(done, models.Done), done
                await finish(alice)  # its phone got the CANCEL
                await _no_calls_left(server)
                gone = await hangup.asyncio(client=member, body=hangup_alice)
                assert isinstance(gone, models.ErrorAnswer), gone
                assert gone.error.id == "channel_not_found"
    finally:
        if alice.returncode is None:
            alice.kill()
            await alice.wait()
