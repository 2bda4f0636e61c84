"""What the API answers a request that names no method, or uses the wrong HTTP verb: the
Basix envelope with an error id (``not_found``, ``method_not_allowed``), never FastAPI's
own ``{"detail": …}``."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.interop.servers import running_server

CONFIG = """
[[domains]]
name = "example.com"
api_token = "token-for-tests"
"""
AUTH = {"Authorization": "Basic " + base64.b64encode(b"example.com:token-for-tests").decode()}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with running_server(CONFIG, tmp_path / "db.sqlite") as server:
        host, port = server.config.server.http_address
        task = asyncio.create_task(server.http.serve())
        async with asyncio.timeout(10):
            while not server.http.started:
                await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
            try:
                yield http
            finally:
                server.http.should_exit = True
                await task


def _error(response: httpx.Response) -> tuple[int, int, str]:
    body = response.json()
    return response.status_code, body["result_code"], body["error"]["id"]


async def test_a_method_that_does_not_exist_is_not_found(client: httpx.AsyncClient) -> None:
    answer = await client.post("/basix/api/no_such_method", headers=AUTH, json={})
    assert _error(answer) == (404, 500, "not_found")
    assert "/basix/api/no_such_method" in answer.json()["error"]["description"]


async def test_a_get_on_a_post_method_is_method_not_allowed(client: httpx.AsyncClient) -> None:
    answer = await client.get("/basix/api/call_group", headers=AUTH)
    assert _error(answer) == (405, 500, "method_not_allowed")
