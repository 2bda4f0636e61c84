"""The HTTP API fuzzed from its own OpenAPI schema by schemathesis, run as a separate
process (a real HTTP client) against the running server: no 5xx, no crash, and the server
still answers and holds no calls it cannot account for afterwards. The Basix and health
methods, that is: the provisioning API (its own token) is not fuzzed here."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest

from tests.interop.call_group_harness import Phones, config_for, post, serving
from tests.interop.sipp import free_port

pytestmark = [pytest.mark.slow]


def _schemathesis() -> list[str]:
    command = shutil.which("st", path=str(Path(sys.executable).parent))
    if command is None:
        raise RuntimeError("schemathesis is not installed: pip install -e '.[test]'")
    return [command]


async def test_the_api_fuzzed_from_its_openapi_schema_never_answers_5xx(tmp_path: Path) -> None:
    phones = Phones(free_port(), free_port(), free_port())  # nobody answers there
    async with serving(tmp_path, config_for(phones)) as (server, client):
        process = await asyncio.create_subprocess_exec(
            *_schemathesis(), "run", f"{client.base_url}/openapi.json",
            "--checks", "not_a_server_error,content_type_conformance",
            "--auth", "example.com:token-for-tests",
            "--max-examples", "300", "--seed", "4475", "--workers", "1",
            "--request-timeout", "10", "--no-color",
            # Failed authentications block the source (docs/security.md), after which every
            # method answers 429 and the fuzz reaches no handler. So every request carries
            # the domain's credentials (no generated Authorization header, none left out),
            # and the provisioning API, which takes another token and is off here, is left
            # out.
            "--generation-with-security-parameters", "false",
            "--exclude-tag", "provisioning",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            # schemathesis keeps its crash cache in `.schemathesis/` under the working
            # directory: a run from the checkout would rewrite files in the repository.
            cwd=tmp_path,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(process.communicate(), 240)
        report = out.decode(errors="replace")
        assert process.returncode == 0, report[-4000:]
        assert "Rate limited" not in report, report[-4000:]  # the source was blocked
        assert (tmp_path / ".schemathesis").is_dir(), "its cache is kept out of the checkout"
        health = await client.get("/healthz")
        assert health.status_code == 200
        answer = await post(client, "hangup", {"uuid": "after-the-fuzz"})
        assert answer["error"]["id"] == "channel_not_found"  # type: ignore[index]
        for call in list(server.engine.calls):
            call.hang_up("test over")
