"""The provisioning API fuzzed from its OpenAPI schema by schemathesis, as the Basix methods
are (``test_schema_fuzz.py``): every request with the admin token, no 5xx, and afterwards
the server still answers and its directory is one the config file's rules accept."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from switchboard.config import validate_config
from tests.api.test_schema_fuzz import _schemathesis
from tests.interop.call_group_harness import Phones, config_for, serving
from tests.interop.sipp import free_port

pytestmark = [pytest.mark.slow]
ADMIN = "admin-token-for-the-fuzz"


async def test_the_provisioning_api_fuzzed_never_answers_5xx(tmp_path: Path) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    extra = f'admin_token = "{ADMIN}"'
    async with serving(tmp_path, config_for(phones), extra) as (server, client):
        process = await asyncio.create_subprocess_exec(
            *_schemathesis(), "run", f"{client.base_url}/openapi.json",
            "--checks", "not_a_server_error,content_type_conformance",
            "--header", f"Authorization: Bearer {ADMIN}",
            "--include-tag", "provisioning",
            # every request carries the token: a run of refused ones would block the source
            "--generation-with-security-parameters", "false",
            "--max-examples", "60", "--seed", "4475", "--workers", "1",
            "--request-timeout", "10", "--no-color",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,  # its cache stays out of the checkout
        )  # fmt: skip
        out, _ = await asyncio.wait_for(process.communicate(), 240)
        report = out.decode(errors="replace")
        assert process.returncode == 0, report[-4000:]
        assert "Rate limited" not in report, report[-4000:]
        assert (await client.get("/healthz")).status_code == 200
        validate_config(server.directory.config.model_dump())  # still a valid directory
        answer = await client.get(
            "/admin/api/directory", headers={"Authorization": f"Bearer {ADMIN}"}
        )
        assert answer.status_code == 200 and answer.json()["result_code"] == 0
