"""The provisioning API against the running server with a real HTTP client: CRUD of the
directory, validated with the config file's rules and messages, stored, in force at once
for the API and the registrar, and kept across a restart on the same database."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchboard.app import Server
from tests.interop.call_group_harness import serving

ADMIN = "admin-token-for-tests-0123"
CONFIG = """
[[domains]]
name = "example.com"
api_token = "token-for-tests"
callback_secret = "a-secret-of-sixteen+"
  [[domains.users]]
  id = 1
  name = "alice"
  extension = "1001"
  sip_password = "alice-secret"
  [[domains.users]]
  id = 2
  name = "bob"
  [[domains.groups]]
  id = 10
  name = "support"
  members = ["alice", "bob"]
  [[domains.trunks]]
  name = "pstn"
  address = "127.0.0.1:5999"
  password = "trunk-secret"
"""
SERVER = f'admin_token = "{ADMIN}"\ndirectory_poll_seconds = 0.2'
BEARER = {"Authorization": f"Bearer {ADMIN}"}
DOMAIN_AUTH = {
    "Authorization": "Basic " + base64.b64encode(b"example.com:token-for-tests").decode()
}


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[tuple[Server, httpx.AsyncClient]]:
    async with _serving(tmp_path) as served:
        yield served


@asynccontextmanager
async def _serving(
    tmp_path: Path, config: str = CONFIG, server_extra: str = SERVER
) -> AsyncIterator[tuple[Server, httpx.AsyncClient]]:
    async with serving(tmp_path, config, server_extra) as (server, client):
        client.headers.update(BEARER)
        yield server, client


async def _ok(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert response.status_code == 200 and body["result_code"] == 0, (response.status_code, body)
    return body


def _error(response: httpx.Response, status: int) -> str:
    body = response.json()
    assert response.status_code == status and body["result_code"] == 500, body
    assert body["error"]["description"]
    return str(body["error"]["id"])


async def test_users_and_members_are_changed_live_and_kept_across_a_restart(
    tmp_path: Path,
) -> None:
    async with _serving(tmp_path) as (server, client):
        created = await _ok(
            await client.post(
                "/admin/api/domains/example.com/users",
                json={"name": "dan", "extension": "1004", "sip_password": "dan-secret"},
            )
        )
        assert created["user"] == {"name": "dan", "extension": "1004", "id": 3}  # no secret
        assert server.directory.user("example.com", "dan") is not None  # in force at once
        moved = await _ok(
            await client.post(
                "/admin/api/domains/example.com/groups/support/members",
                json={"user": "dan", "position": 1},
            )
        )
        assert moved["group"]["members"] == ["dan", "alice", "bob"]
        group = server.directory.group("example.com", "support")
        assert group is not None and group.members == ["dan", "alice", "bob"]
        # the registrar knows dan's password now: his REGISTER is challenged, not refused
        assert server.registrar.registrar.directory.user("example.com", "dan") is not None
        version = created["version"] + 1
        assert moved["version"] == version
    async with _serving(tmp_path) as (server, client):  # the same file, the same database
        group = server.directory.group("example.com", "support")
        assert group is not None and group.members == ["dan", "alice", "bob"]
        listed = await _ok(await client.get("/admin/api/domains/example.com/users"))
        assert [u["name"] for u in listed["users"]] == ["alice", "bob", "dan"]
        assert all("sip_password" not in u for u in listed["users"])


async def test_a_changed_config_file_is_applied_at_start(tmp_path: Path) -> None:
    async with _serving(tmp_path) as (_, client):
        await _ok(await client.delete("/admin/api/domains/example.com/users/bob"))
    edited = CONFIG.replace('name = "bob"', 'name = "bob"\n  extension = "1002"')
    async with _serving(tmp_path, edited) as (server, _):
        bob = server.directory.user("example.com", "bob")
        assert bob is not None and bob.extension == "1002"  # the operator edited the file


async def test_invalid_changes_get_the_config_files_messages_and_change_nothing(
    admin: tuple[Server, httpx.AsyncClient],
) -> None:
    server, client = admin
    before = server.directory.config
    users = "/admin/api/domains/example.com/users"
    duplicate = await client.post(users, json={"name": "carol", "extension": "1001"})
    assert _error(duplicate, 400) == "invalid_config"
    assert (
        "users[2].extension: duplicate extension '1001' (also users[0])"
        in (duplicate.json()["error"]["description"])
    )
    unknown = await client.patch(f"{users}/alice", json={"colour": "blue"})
    assert _error(unknown, 400) == "invalid_config"
    assert "users[0].colour: unknown key" in unknown.json()["error"]["description"]
    member = await client.post(
        "/admin/api/domains/example.com/groups/support/members", json={"user": "nobody"}
    )
    assert "'nobody' is not a user of this domain" in member.json()["error"]["description"]
    assert _error(await client.post(users, json={"name": "alice"}), 409) == "already_exists"
    assert _error(await client.get(f"{users}/nobody"), 404) == "not_found"
    assert _error(await client.get("/admin/api/domains/nowhere.example"), 404) == "not_found"
    assert _error(await client.post(users, content=b"[1]"), 200) == "invalid_json"
    assert server.directory.config is before  # nothing changed


async def test_secrets_are_write_only_and_kept_when_left_out(
    admin: tuple[Server, httpx.AsyncClient],
) -> None:
    server, client = admin
    shown = await _ok(await client.get("/admin/api/directory"))
    text = str(shown)
    for secret in ("token-for-tests", "a-secret-of-sixteen+", "alice-secret", "trunk-secret"):
        assert secret not in text
    # a GET, edited and PUT back, keeps every secret it did not show
    domains = shown["domains"]
    domains[0]["users"][0]["label"] = "Alice L."
    await _ok(await client.put("/admin/api/directory", json={"domains": domains}))
    alice = server.directory.user("example.com", "alice")
    assert alice is not None and alice.label == "Alice L." and alice.sip_password == "alice-secret"
    domain = server.directory.domain("example.com")
    assert domain is not None and domain.api_token == "token-for-tests"
    assert domain.trunks[0].password == "trunk-secret"
    # the domain token still works on the Basix API
    basix = await client.post("/basix/api/hangup", json={"uuid": "x"}, headers=DOMAIN_AUTH)
    assert basix.json()["error"]["id"] == "channel_not_found"


async def test_renaming_a_user_follows_into_hunt_order_and_deleting_leaves_groups(
    admin: tuple[Server, httpx.AsyncClient],
) -> None:
    server, client = admin
    users = "/admin/api/domains/example.com/users"
    await _ok(await client.patch(f"{users}/bob", json={"name": "robert"}))
    group = server.directory.group("example.com", "support")
    assert group is not None and group.members == ["alice", "robert"]
    await _ok(await client.delete(f"{users}/alice"))
    group = server.directory.group("example.com", "support")
    assert group is not None and group.members == ["robert"]


async def test_a_domain_is_created_used_and_deleted(
    admin: tuple[Server, httpx.AsyncClient],
) -> None:
    server, client = admin
    await _ok(
        await client.post(
            "/admin/api/domains",
            json={
                "name": "Other.Example",
                "api_token": "other-token-1234",
                "users": [{"id": 1, "name": "zed"}],
            },
        )
    )
    other = {
        "Authorization": "Basic " + base64.b64encode(b"other.example:other-token-1234").decode()
    }
    answer = await client.post("/basix/api/hangup", json={"uuid": "x"}, headers=other)
    assert answer.json()["error"]["id"] == "channel_not_found"  # authenticated
    await _ok(await client.patch("/admin/api/domains/other.example", json={"channel_limit": 5}))
    domain = server.directory.domain("other.example")
    assert domain is not None and domain.channel_limit == 5 and domain.users[0].name == "zed"
    await _ok(await client.delete("/admin/api/domains/other.example"))
    answer = await client.post("/basix/api/hangup", json={"uuid": "x"}, headers=other)
    assert answer.json()["error"]["id"] == "authentication_required"


async def test_the_admin_token_is_required_and_guessing_is_throttled(
    admin: tuple[Server, httpx.AsyncClient],
) -> None:
    _, client = admin
    directory = "/admin/api/directory"
    assert _error(await client.get(directory, headers={"Authorization": ""}), 401) == (
        "authentication_required"
    )
    assert _error(await client.get(directory, headers=DOMAIN_AUTH), 401) == (
        "authentication_required"
    )
    for _ in range(9):
        await client.get(directory, headers={"Authorization": "Bearer wrong"})
    throttled = await client.get(directory)  # even the right token, during the block
    assert _error(throttled, 429) == "too_many_failures"


async def test_without_an_admin_token_the_api_is_off(tmp_path: Path) -> None:
    async with _serving(tmp_path, server_extra="") as (server, client):
        assert server.admin_token is None
        refused = await client.get("/admin/api/directory", headers={"Authorization": "Bearer x"})
        assert _error(refused, 401) == "authentication_required"
        guessed = await client.get(
            "/admin/api/directory", headers={"Authorization": "Bearer " + "x" * 32}
        )
        assert _error(guessed, 401) == "authentication_required"
