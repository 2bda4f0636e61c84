"""The Basix API against a running server, with a real HTTP client (and curl for the
seed's examples): every error id of API §1, idempotency, OpenAPI."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchboard.app import Server
from tests.callbacks.receiver import callback_receiver
from tests.interop.servers import running_server
from tests.interop.sipp import SCENARIOS, free_port, start_sipp

CONFIG = """
[[domains]]
name = "example.com"
api_token = "token-for-tests"
channel_limit = 8
calling_number = "0506868000"
calling_numbers = ["05068680000"]  # the seed example's caller ID
  [[domains.users]]
  id = 1
  name = "alice"
  sip_password = "pw-alice"
  contacts = ["sip:alice@127.0.0.1:SILENT_PORT;line=desk", "sip:alice@127.0.0.1:SILENT_PORT"]
  [[domains.users]]
  id = 2
  name = "bob"
  sip_password = "pw-bob"
  contacts = ["sip:bob@127.0.0.1:SILENT_PORT"]
  [[domains.users]]
  id = 3
  name = "erik"
  sip_password = "pw-erik"
  [[domains.users]]
  id = 4
  name = "dan"
  contacts = ["sip:dan@127.0.0.1:DAN_PORT"]
  [[domains.groups]]
  id = 1111
  name = "support"
  label = "Support"
  extension = "1111"
  members = ["alice", "bob"]
  [[domains.groups]]
  id = 10001111
  name = "everyone"
  strategy = "ring"
  members = ["alice", "bob", "erik", "dan"]
  [[domains.groups]]
  id = 2000
  name = "dan-only"
  members = ["dan"]
  [[domains.trunks]]
  name = "pstn"
  address = "127.0.0.1:5999"
[[domains]]
name = "other.example"
api_token = "other-domain-token"
  [[domains.groups]]
  id = 3000
  name = "support"
  members = []
"""
AUTH = {"Authorization": "Basic " + base64.b64encode(b"example.com:token-for-tests").decode()}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[Server, httpx.AsyncClient, int]]:
    dan = free_port()
    extra = "callback_allow_private = true"
    async with running_server(
        CONFIG.replace("DAN_PORT", str(dan)).replace("SILENT_PORT", str(free_port())),
        tmp_path / "db.sqlite",
        extra,
    ) as server:
        host, port = server.config.server.http_address
        task = asyncio.create_task(server.http.serve())
        while not server.http.started:
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            try:
                yield server, client, dan
            finally:
                server.http.should_exit = True
                await task


async def _call(
    client: httpx.AsyncClient, body: Any, headers: dict[str, str] = AUTH, method: str = "call_group"
) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await client.post(
        f"/basix/api/{method}",
        content=content,
        headers={**headers, "Content-Type": "application/json"},
    )


def _error(response: httpx.Response) -> str:
    body = response.json()
    assert body["result_code"] == 500 and body["error"]["description"]
    return str(body["error"]["id"])


@pytest.mark.parametrize(
    ("body", "error_id"),
    [
        ({"destination": "0312341234"}, "missing_parameter"),
        ({"group_name": "support"}, "missing_parameter"),
        ({"group_name": "nosuch", "destination": "0312341234"}, "group_not_found"),
        (
            {"group_name": "support", "group_id": 10001111, "destination": "1"},
            "conflicting_group_selectors",
        ),
        (
            {"group_name": "support", "group_extension": "9999", "destination": "1"},
            "conflicting_group_selectors",
        ),
        ({"group_name": "support", "destination": "nobody"}, "invalid_destination"),
        ({"group_name": "support", "destination": "9012345678"}, "invalid_destination"),
        ({"group_name": "support", "destination": "1", "answer_timeout": -1}, "invalid_parameter"),
        (
            {"group_name": "support", "destination": "1", "member_answer_timeout": "soon"},
            "invalid_parameter",
        ),
        (
            {"group_name": "support", "destination": "1", "calling_name": "Łukasz"},
            "invalid_parameter",
        ),
        (
            {"group_name": "support", "destination": "1", "callback_url": "ftp://x/y"},
            "invalid_parameter",
        ),
        ({"group_name": "support", "destination": "1", "strategy": "random"}, "invalid_parameter"),
        ({"group_name": ["support"], "destination": "1"}, "invalid_parameter"),
        ([1, 2], "invalid_json"),
    ],
)
async def test_bad_requests_get_their_error_id(
    api: tuple[Server, httpx.AsyncClient, int], body: Any, error_id: str
) -> None:
    server, client, _ = api
    response = await _call(client, body)
    assert response.status_code == 200
    assert _error(response) == error_id
    assert server.engine.statistics() == {"calls": 0, "channels": 0}  # nothing started


async def test_authentication_and_transport_errors(
    api: tuple[Server, httpx.AsyncClient, int],
) -> None:
    _, client, _ = api
    body = {"group_name": "support", "destination": "0312341234"}
    assert _error(await _call(client, body, headers={})) == "authentication_required"
    wrong = {"Authorization": "Basic " + base64.b64encode(b"example.com:nope").decode()}
    assert _error(await _call(client, body, headers=wrong)) == "authentication_required"
    other = {
        "Authorization": "Basic " + base64.b64encode(b"example.com:other-domain-token").decode()
    }
    assert _error(await _call(client, body, headers=other)) == "authentication_required"
    garbage = {"Authorization": "Basic ***"}
    assert _error(await _call(client, body, headers=garbage)) == "authentication_required"
    not_json = await _call(client, b"{not json")
    assert not_json.status_code == 400 and _error(not_json) == "invalid_json"
    wrong_method = await client.get("/basix/api/call_group", headers=AUTH)
    assert wrong_method.status_code == 405 and wrong_method.json()["result_code"] == 500


async def test_other_domains_groups_are_not_found(
    api: tuple[Server, httpx.AsyncClient, int],
) -> None:
    _, client, _ = api
    other = {
        "Authorization": "Basic " + base64.b64encode(b"other.example:other-domain-token").decode()
    }
    response = await _call(client, {"group_id": 1111, "destination": "0312341234"}, other)
    assert _error(response) == "group_not_found"


async def test_hangup_of_an_unknown_channel(api: tuple[Server, httpx.AsyncClient, int]) -> None:
    _, client, _ = api
    response = await _call(client, {"uuid": "no-such-uuid"}, method="hangup")
    assert _error(response) == "channel_not_found"
    assert _error(await _call(client, {}, method="hangup")) == "missing_parameter"


async def test_a_bug_is_internal_error_with_a_request_id(
    api: tuple[Server, httpx.AsyncClient, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, client, _ = api

    async def broken(request: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(server.engine, "call_group", broken)
    response = await _call(client, {"group_name": "support", "destination": "0312341234"})
    assert _error(response) == "internal_error"
    assert "boom" not in response.text and "request" in response.json()["error"]["description"]


async def test_the_seeds_five_curl_examples(
    api: tuple[Server, httpx.AsyncClient, int], tmp_path: Path
) -> None:
    """Verbatim bodies of the method description, sent with curl as written there."""
    _server, client, _ = api
    curl = shutil.which("curl")
    assert curl, "curl is needed (scripts/setup installs it)"
    url = f"{client.base_url}/basix/api/call_group"
    examples = [
        '{"group_name": "support", "answer_timeout": 10, "destination": "0312341234"}',
        '{"group_extension": "1111", "calling_name": "Erik Lehnsherr", "destination": "erik"}',
        '{"group_extension": "1111", "destination": {"called_number": "0312341234", '
        '"calling_number": "05068680000", "end_user": {"id": "#1234", "name": "Tim Tyler"}}}',
        '{"group_id": 10001111, "destination": "0312341234"}',
        '{"group_extension": "1111", "destination": "{name=James Hudson}0312341234", '
        '"callback_url": ""}',
    ]
    answers = []
    for body in examples:
        process = await asyncio.create_subprocess_exec(
            curl,
            "-s",
            "-u",
            "example.com:token-for-tests",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
            url,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await process.communicate()
        answers.append(json.loads(out))
    for index in (0, 1, 2, 4):
        assert answers[index]["result_code"] == 0, answers[index]
        # one channel per terminal, in hunting order: alice's two, then bob's
        assert len(set(answers[index]["uuids"])) == 3
    # Example 4: the ring group needs 4 member channels + 1 for the destination, on top of
    # the 6 held by examples 1-3 (their members ring on): more than the limit of 8
    assert answers[3]["result_code"] == 500
    assert answers[3]["error"]["id"] == "channel_limit_reached"


async def test_idempotency_key_returns_the_first_answer_and_starts_nothing_new(
    api: tuple[Server, httpx.AsyncClient, int],
) -> None:
    _server, client, _ = api
    headers = {**AUTH, "Idempotency-Key": "order-42"}
    body = {"group_name": "support", "destination": "0312341234"}
    first = (await _call(client, body, headers)).json()
    again = (await _call(client, body, headers)).json()
    assert first["result_code"] == 0 and again == first
    other = (await _call(client, body, {**AUTH, "Idempotency-Key": "order-43"})).json()
    assert other["uuids"] != first["uuids"]


async def test_hanging_up_a_hunt_in_progress_reports_canceled(
    api: tuple[Server, httpx.AsyncClient, int],
) -> None:
    server, client, dan_port = api
    dan = await start_sipp(
        [
            "-sf",
            str(SCENARIOS / "uas_ring_until_cancel.xml"),
            "-i",
            "127.0.0.1",
            "-p",
            str(dan_port),
            "-m",
            "1",
            "-nostdin",
        ]
    )
    await asyncio.sleep(0.3)
    async with callback_receiver() as receiver:
        answer = (
            await _call(
                client,
                {
                    "group_name": "dan-only",
                    "destination": "0312341234",
                    "callback_url": receiver.url,
                },
            )
        ).json()
        await asyncio.sleep(0.3)  # dan's phone rings
        assert (await _call(client, {"uuid": answer["uuids"][0]}, method="hangup")).json() == {
            "result_code": 0
        }
        (callback,) = await receiver.wait_for(1)
    assert json.loads(callback.body)["error"] == {"id": "canceled"}
    out, _ = await asyncio.wait_for(dan.communicate(), 10)
    assert dan.returncode == 0, out.decode(errors="replace")[-1500:]
    assert server.engine.statistics() == {"calls": 0, "channels": 0}


async def test_openapi_documents_the_methods(api: tuple[Server, httpx.AsyncClient, int]) -> None:
    """Made for client generators: operations named after the methods, schemas after what
    they are (by $ref, each defined), HTTP Basic declared where credentials are needed."""
    _, client, _ = api
    schema = (await client.get("/openapi.json")).json()
    methods = {"call_group", "call_user", "call_external", "initiate_call", "hangup", "transfer"}
    methods |= {"park", "gen_ws_ticket"}
    operations = {
        op["operationId"]: (path, verb, op)
        for path, item in schema["paths"].items()
        for verb, op in item.items()
    }
    for name in methods:
        path, _, op = operations[name]
        assert path == f"/basix/api/{name}" and op["description"]
        assert op["security"] == [{"domainToken": []}]
    for name, (path, verb, _) in operations.items():  # FastAPI's own name ends with the path
        assert not name.endswith(re.sub(r"\W", "_", path) + f"_{verb}"), name
    assert schema["components"]["securitySchemes"]["domainToken"]["scheme"] == "basic"
    assert "security" not in operations["healthz"][2]
    assert operations["statistics"][2]["security"] == [{"domainToken": []}]

    call_group = operations["call_group"][2]
    request = call_group["requestBody"]["content"]["application/json"]["schema"]
    assert request == {"$ref": "#/components/schemas/CallGroupRequest"}
    named = schema["components"]["schemas"]
    fields = named["CallGroupRequest"]["properties"]
    assert {"group_name", "destination", "callback_url", "strategy"} <= set(fields)
    assert fields["destination"] == {"$ref": "#/components/schemas/Destination"}
    answers = call_group["responses"]["200"]["content"]["application/json"]["schema"]["oneOf"]
    assert answers == [
        {"$ref": "#/components/schemas/CallAnswer"},
        {"$ref": "#/components/schemas/ErrorAnswer"},
    ]
    assert named["CallAnswer"]["required"] == ["result_code", "uuids"]
    assert [p["name"] for p in call_group["parameters"]] == ["Idempotency-Key"]
    refs = re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(schema))
    assert set(refs) <= set(named)
    assert {"Destination", "EndUser", "PstnNumber", "Error", "ErrorAnswer"} <= set(refs)


@pytest.mark.parametrize(
    ("body", "error_id"),
    [
        ({"destination": "0312341234"}, "missing_parameter"),
        ({"user_name": "alice"}, "missing_parameter"),
        ({"user_name": "nobody", "destination": "0312341234"}, "user_not_found"),
        ({"user_name": "alice", "user_id": 2, "destination": "1"}, "conflicting_user_selectors"),
        ({"user_name": "alice", "destination": "nobody"}, "invalid_destination"),
        ({"user_name": "alice", "destination": "1", "auto_answer": "yes"}, "invalid_parameter"),
        ({"user_name": "alice", "destination": "1", "answer_timeout": 0}, "invalid_parameter"),
        ({"user_name": "alice", "destination": "1", "group_resolver": "x"}, "invalid_parameter"),
        ({"user_name": "alice", "destination": "1", "group_name": "nosuch"}, "group_not_found"),
        ({"user_name": ["alice"], "destination": "1"}, "invalid_parameter"),
    ],
)
async def test_bad_call_user_requests_get_their_error_id(
    api: tuple[Server, httpx.AsyncClient, int], body: Any, error_id: str
) -> None:
    server, client, _ = api
    response = await _call(client, body, method="call_user")
    assert response.status_code == 200
    assert _error(response) == error_id
    assert server.engine.statistics() == {"calls": 0, "channels": 0}  # nothing started


async def test_call_user_rings_every_terminal_with_its_group_context_and_auto_answer(
    api: tuple[Server, httpx.AsyncClient, int],
) -> None:
    server, client, _ = api
    body = {
        "user_name": "alice",
        "destination": "0312341234",
        "auto_answer": True,
        "group_resolver": "*",
    }
    answer = (await _call(client, body, method="call_user")).json()
    assert answer["result_code"] == 0 and len(answer["uuids"]) == 2  # her two contacts
    channels = {c.uuid: c for c in server.cti.channels("example.com")}
    for uuid in answer["uuids"]:
        channel = channels[uuid]
        assert "auto_answer" in channel.tags and channel.group_id == 1111  # support
        assert channel.origination == ("call_user", "support")
        assert channel.calling_number == "0312341234"  # who she will be connected to
    hung_up = await _call(client, {"uuid": answer["uuids"][1]}, method="hangup")
    assert hung_up.json() == {"result_code": 0}
    for _ in range(100):
        if server.engine.statistics() == {"calls": 0, "channels": 0}:
            break
        await asyncio.sleep(0.01)
    assert server.engine.statistics() == {"calls": 0, "channels": 0}
    assert server.cti.channels("example.com") == []


@pytest.mark.parametrize(
    ("method", "body", "error_id"),
    [
        ("call_external", {"destination": "alice"}, "missing_parameter"),
        ("call_external", {"target": "0312341234"}, "missing_parameter"),
        ("call_external", {"target": "alice", "destination": "bob"}, "invalid_parameter"),
        ("call_external", {"target": "9012345678", "destination": "bob"}, "invalid_parameter"),
        (
            "call_external",
            {"target": "0312341234", "destination": "0312349999"},
            "invalid_destination",
        ),
        (
            "call_external",
            {
                "target": {"called_number": "0312341234", "calling_number": "0399999999"},
                "destination": "bob",
            },
            "invalid_parameter",
        ),
        ("initiate_call", {"destination": "bob"}, "missing_parameter"),
        (
            "initiate_call",
            {"user_name": "alice", "pstn_number": "0312341234", "destination": "bob"},
            "invalid_parameter",
        ),
        ("initiate_call", {"user_name": "nobody", "destination": "bob"}, "user_not_found"),
        (
            "initiate_call",
            {"user_name": "alice", "destination": "0312341234", "ani": "0399999999"},
            "invalid_parameter",
        ),
        (
            "initiate_call",
            {"user_name": "alice", "destination": "bob", "ani": True},
            "invalid_parameter",
        ),
    ],
)
async def test_bad_call_external_and_initiate_call_requests_get_their_error_id(
    api: tuple[Server, httpx.AsyncClient, int], method: str, body: Any, error_id: str
) -> None:
    server, client, _ = api
    response = await _call(client, body, method=method)
    assert response.status_code == 200
    assert _error(response) == error_id
    assert server.engine.statistics() == {"calls": 0, "channels": 0}  # nothing started


@pytest.mark.parametrize(
    ("method", "body", "origination"),
    [
        (
            "call_external",
            {"target": "0312341234", "destination": "bob"},
            ["call_external", "0312341234"],
        ),
        (
            "initiate_call",
            {
                "pstn_number": "0312341234",
                "destination": "bob",
                "ani": "05068680000",
                "group_name": "support",
            },
            ["call_external", "support"],
        ),
        (
            "initiate_call",
            {"user_name": "alice", "destination": "0312341234", "ani": "05068680000"},
            ["call_user", "alice"],
        ),
    ],
)
async def test_call_external_and_initiate_call_start_their_originating_leg(
    api: tuple[Server, httpx.AsyncClient, int], method: str, body: Any, origination: list[str]
) -> None:
    server, client, _ = api
    answer = (await _call(client, body, method=method)).json()
    assert answer["result_code"] == 0 and answer["uuids"], answer
    channels = {c.uuid: c for c in server.cti.channels("example.com")}
    for uuid in answer["uuids"]:
        assert list(channels[uuid].origination) == origination
    assert (await _call(client, {"uuid": answer["uuids"][0]}, method="hangup")).json() == {
        "result_code": 0
    }
    for _ in range(100):
        if server.engine.statistics() == {"calls": 0, "channels": 0}:
            break
        await asyncio.sleep(0.01)
    assert server.engine.statistics() == {"calls": 0, "channels": 0}


async def test_a_call_events_url_is_checked_as_a_callback_url_is(
    api: tuple[Server, httpx.AsyncClient, int],
) -> None:
    server, client, _ = api
    body = {"group_name": "support", "destination": "1", "call_events_url": "ftp://x/y"}
    assert _error(await _call(client, body)) == "invalid_parameter"
    assert server.engine.statistics() == {"calls": 0, "channels": 0}


@pytest.mark.parametrize(
    ("method", "body", "error_id"),
    [
        ("transfer", {"user_name": "dan"}, "missing_parameter"),
        ("transfer", {"uuid": "no-such-uuid"}, "missing_parameter"),
        ("transfer", {"uuid": "no-such-uuid", "user_name": "nobody"}, "user_not_found"),
        ("transfer", {"uuid": "no-such-uuid", "user_id": [1]}, "invalid_parameter"),
        ("transfer", {"uuid": "no-such-uuid", "destination": "nobody"}, "invalid_destination"),
        ("transfer", {"uuid": "no-such-uuid", "destination": "dan"}, "channel_not_found"),
        ("park", {"timeout": 30}, "missing_parameter"),
        ("park", {"uuid": "no-such-uuid", "timeout": 0}, "invalid_parameter"),
        ("park", {"uuid": "no-such-uuid", "timeout": "later"}, "invalid_parameter"),
        ("park", {"uuid": "no-such-uuid", "timeout": 3601}, "invalid_parameter"),
        ("park", {"uuid": "no-such-uuid"}, "channel_not_found"),
    ],
)
async def test_bad_transfer_and_park_requests_get_their_error_id(
    api: tuple[Server, httpx.AsyncClient, int], method: str, body: Any, error_id: str
) -> None:
    _, client, _ = api
    assert _error(await _call(client, body, method=method)) == error_id


async def test_a_ringing_call_cannot_be_transferred_or_parked_and_is_left_as_it_was(
    api: tuple[Server, httpx.AsyncClient, int],
) -> None:
    server, client, dan_port = api
    dan = await start_sipp(
        ["-sf", str(SCENARIOS / "uas_ring_until_cancel.xml"), "-i", "127.0.0.1",
         "-p", str(dan_port), "-m", "1", "-nostdin"]
    )  # fmt: skip
    await asyncio.sleep(0.3)
    answer = (await _call(client, {"group_name": "dan-only", "destination": "0312341234"})).json()
    uuid = answer["uuids"][0]
    await asyncio.sleep(0.3)  # dan's phone rings
    for method, body in (
        ("transfer", {"uuid": uuid, "user_name": "dan"}),
        ("park", {"uuid": uuid, "timeout": 30}),
    ):
        assert _error(await _call(client, body, method=method)) == "channel_not_bridged"
    assert server.engine.statistics() == {"calls": 1, "channels": 2}
    assert (await _call(client, {"uuid": uuid}, method="hangup")).json() == {"result_code": 0}
    out, _ = await asyncio.wait_for(dan.communicate(), 10)
    assert dan.returncode == 0, out.decode(errors="replace")[-1500:]
    assert server.engine.statistics() == {"calls": 0, "channels": 0}
