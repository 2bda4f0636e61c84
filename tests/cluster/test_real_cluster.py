"""Issue 16's cluster, for real: two ``switchboard serve`` processes behind Kamailio,
sharing PostgreSQL and Redis, all started by the tests (``real_cluster.py``), with SIPp
phones and a real callback listener.

- A phone registered through the front is hunted by calls made on either node, and a
  ws_cti subscriber on node 1 sees node 2's calls, with one increasing ``seq`` and frames
  Basix's own client decodes.
- A hangup sent to node 1 ends a call node 2 holds; a retried Idempotency-Key on the
  other node starts nothing.
- A node SIGKILLed under load: every accepted request still gets its one callback (the
  killed node's hunts as ``node_failed``), the survivor carries on, the domain's channel
  count returns to what is really up, and the killed node's channels leave CTI.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from switchboard.cluster.redis_state import RedisState
from switchboard.cluster.values import Usage
from tests.callbacks.receiver import CallbackReceiver, callback_receiver
from tests.cluster.real_cluster import (
    DOMAIN,
    LEASE_SECONDS,
    Cluster,
    collect,
    new_database,
    running_cluster,
    sipp_users,
    wait_for,
)
from tests.cti.basix_client import BasixClient
from tests.interop.sipp import SCENARIOS, free_port, run_sipp, start_sipp

pytestmark = [pytest.mark.interop, pytest.mark.slow]
MEMBERS = 40  # per group of the load test: more than its calls at once


@pytest.fixture
def database(postgres_admin_url: str) -> Iterator[str]:
    yield new_database(postgres_admin_url)


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    async with callback_receiver() as listening:
        yield listening


def _directory(bob: int, dest: int, erin: int) -> str:
    return f"""
  [[domains.users]]
  id = 1
  name = "alice"
  sip_password = "alice-secret"
  [[domains.users]]
  id = 2
  name = "bob"
  contacts = ["sip:bob@127.0.0.1:{bob}"]
  [[domains.users]]
  id = 3
  name = "carol"
  sip_password = "never-registered"
  [[domains.users]]
  id = 4
  name = "dest"
  contacts = ["sip:dest@127.0.0.1:{dest}"]
  [[domains.users]]
  id = 5
  name = "erin"
  contacts = ["sip:erin@127.0.0.1:{erin}"]
  [[domains.groups]]
  id = 1111
  name = "support"
  members = ["alice"]
  [[domains.groups]]
  id = 2222
  name = "desk"
  members = ["bob"]
  [[domains.groups]]
  id = 3333
  name = "slow"
  members = ["erin"]
  [[domains.groups]]
  id = 4444
  name = "desks"
  members = [{", ".join(f'"desk{n}"' for n in range(MEMBERS))}]
  [[domains.groups]]
  id = 5555
  name = "slow_desks"
  members = [{", ".join(f'"slow{n}"' for n in range(MEMBERS))}]
{_members("desk", bob, 100)}
{_members("slow", erin, 200)}
"""


def _members(name: str, port: int, first_id: int) -> str:
    """Users of one SIPp phone each (a user on a call is passed over: one call each)."""
    return "\n".join(
        f'  [[domains.users]]\n  id = {first_id + n}\n  name = "{name}{n}"\n'
        f'  contacts = ["sip:{name}{n}@127.0.0.1:{port}"]'
        for n in range(MEMBERS)
    )


def _sipp(port: int, scenario: str, calls: int) -> list[str]:
    return [
        "-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1", "-p", str(port),
        "-m", str(calls), "-nostdin", "-timeout", "120",
    ]  # fmt: skip


async def _stop_sipp(*processes: asyncio.subprocess.Process) -> None:
    for process in processes:
        if process.returncode is None:
            process.kill()
        await process.wait()


def _bodies(receiver: CallbackReceiver) -> list[tuple[str, dict[str, Any]]]:
    return [(r.headers["x-switchboard-delivery"], json.loads(r.body)) for r in receiver.received]


async def test_phones_behind_the_front_are_hunted_from_either_node_and_cti_sees_both(
    tmp_path: Path, database: str, receiver: CallbackReceiver
) -> None:
    directory = _directory(free_port(), free_port(), free_port())
    async with running_cluster(tmp_path, database, directory) as cluster:
        phone = free_port()
        users = sipp_users(tmp_path / "alice.csv", [("alice", "alice-secret")])
        front = f"{cluster.front.address[0]}:{cluster.front.address[1]}"
        register = ["-sf", str(SCENARIOS / "front_phone_register_digest.xml"), "-inf", str(users)]
        registered = await run_sipp(
            [*register, front, "-i", "127.0.0.1", "-p", str(phone), "-m", "1", "-nostdin"], 30
        )
        assert registered.returncode == 0, registered.output[-3000:]
        # both nodes know the binding, whichever the front gave the REGISTER to
        for client in cluster.clients:

            async def known(client: Any = client) -> bool:
                stats = (await client.get("/statistics")).json()["counters"]
                return bool(stats["bindings"] >= 1)

            await wait_for(known, 5, "the binding on every node")
        answering = await start_sipp(_sipp(phone, "front_phone_answers.xml", 2))
        json_frames: list[Any] = []
        bert_frames: list[Any] = []
        try:
            async with cluster.cti(0, "&format=json") as as_json, cluster.cti(0) as as_bert:
                readers = [
                    asyncio.create_task(collect(as_json, json_frames)),
                    asyncio.create_task(collect(as_bert, bert_frames)),
                ]
                body = {
                    "group_name": "support", "destination": "carol",
                    "callback_url": receiver.url,
                }  # fmt: skip
                requests = []
                for node in (0, 1):  # one call made on each node
                    answer = await cluster.call(node, "call_group", body)
                    assert answer["result_code"] == 0, answer
                    requests.append(answer["uuids"])
                    await receiver.wait_for(node + 1, 15)
                await wait_for(
                    lambda: _removed_all(json_frames, requests), 15, "both calls' CTI on node 1"
                )
                # the BERT connection is read by its own task: it may be a frame behind
                await wait_for(
                    lambda: _bert_removed_all(bert_frames, requests), 15, "the same, as BERT"
                )
                for reader in readers:
                    reader.cancel()
            out, _ = await asyncio.wait_for(answering.communicate(), 30)
            assert answering.returncode == 0, out.decode(errors="replace")[-3000:]
        finally:
            await _stop_sipp(answering)

    outcomes = {tuple(body["request_uuids"]): body for _, body in _bodies(receiver)}
    for uuids in requests:
        assert outcomes[tuple(uuids)]["answered_by"] == "alice"  # hunted, through the front

    events = [json.loads(f) for f in json_frames]
    seqs = [e["seq"] for e in events if e.get("type") == "info_event"]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs  # one seq, no gap
    channels = {
        e["data"]["uuid"]
        for e in events
        if e.get("type") == "info_event" and e.get("element") == "channel"
    }
    assert set(requests[1]) <= channels  # node 2's call, seen on node 1

    basix = BasixClient()
    for frame in bert_frames:
        assert isinstance(frame, bytes)
        basix.feed(frame)  # raises on anything Basix's own client would not decode
    seen = {m.info.get("uuid") for m in basix.messages if m.element == "channel"}
    assert set(requests[1]) <= seen


async def _removed_all(frames: list[Any], requests: list[list[str]]) -> bool:
    removed = set()
    for frame in frames:
        event = json.loads(frame)
        if (
            event.get("type") == "info_event"
            and event.get("element") == "channel"
            and event.get("event") == "removed"
        ):
            removed.add(event["data"]["uuid"])
    return all(set(uuids) <= removed for uuids in requests)


async def _bert_removed_all(frames: list[Any], requests: list[list[str]]) -> bool:
    basix = BasixClient()
    for frame in frames:
        basix.feed(frame)
    removed = {
        m.info.get("uuid")
        for m in basix.messages
        if m.kind == "info_event" and m.element == "channel" and m.event == "removed"
    }
    return all(set(uuids) <= removed for uuids in requests)


async def test_a_hangup_and_a_retried_key_reach_across_the_nodes(
    tmp_path: Path, database: str
) -> None:
    bob = free_port()
    async with running_cluster(tmp_path, database, _directory(bob, free_port(), free_port())) as c:
        ringing = await start_sipp(_sipp(bob, "uas_ring_until_cancel.xml", 1))
        try:
            body = {"group_name": "desk", "destination": "carol"}
            key = "campaign-42"
            first = await c.call(1, "call_group", body, **{"Idempotency-Key": key})
            assert first["result_code"] == 0, first
            again = await c.call(0, "call_group", body, **{"Idempotency-Key": key})
            assert again == first  # node 1 answers as node 2 did, and starts nothing
            assert (await c.api(0).get("/statistics")).json()["counters"]["calls"] == 0
            assert (await c.api(1).get("/statistics")).json()["counters"]["calls"] == 1

            hung_up = await c.call(0, "hangup", {"uuid": first["uuids"][0]})
            assert hung_up == {"result_code": 0}  # forwarded to node 2, which held it
            out, _ = await asyncio.wait_for(ringing.communicate(), 15)
            assert ringing.returncode == 0, out.decode(errors="replace")[-3000:]  # CANCELed

            async def over() -> bool:
                return bool((await c.api(1).get("/statistics")).json()["counters"]["calls"] == 0)

            await wait_for(over, 5, "the call to end on node 2")
        finally:
            await _stop_sipp(ringing)


async def test_a_node_killed_under_load_loses_no_outcome(
    tmp_path: Path, database: str, receiver: CallbackReceiver
) -> None:
    bob, dest, erin = free_port(), free_port(), free_port()
    async with running_cluster(tmp_path, database, _directory(bob, dest, erin)) as cluster:
        peers = [
            await start_sipp(_sipp(bob, "uas_member_answers.xml", 1000)),
            await start_sipp(_sipp(dest, "uas_answer_then_bye.xml", 1000)),
            await start_sipp(_sipp(erin, "uas_ring_then_answer.xml", 1000)),
        ]
        observer = await RedisState.connect(cluster.redis, "observer")
        frames: list[Any] = []
        try:
            async with cluster.cti(0, "&format=json") as cti:
                reader = asyncio.create_task(collect(cti, frames))
                accepted = await _load(cluster, receiver, seconds=4.0, rate=10.0, kill_at=2.0)
                by_node = {node: len(reqs) for node, reqs in accepted.items()}
                assert by_node[0] >= 30 and by_node[1] >= 8, by_node

                # every accepted request: one outcome, even the killed node's
                wanted = {tuple(uuids) for reqs in accepted.values() for uuids in reqs}

                async def all_told() -> bool:
                    told = {tuple(body["request_uuids"]) for _, body in _bodies(receiver)}
                    return wanted <= told

                await wait_for(all_told, 20 + 3 * LEASE_SECONDS, "a callback for every request")
                await asyncio.sleep(1.0)  # anything sent twice would be here by now

                async def idle() -> bool:
                    return await observer.usage(DOMAIN) == Usage(0, 0)

                # the survivor's calls end; the killed node's reservations were released
                await wait_for(idle, 20, "the domain's channel count to return to 0")
                await asyncio.sleep(0.5)
                reader.cancel()
        finally:
            await observer.aclose()
            await _stop_sipp(*peers)

        outcomes: dict[tuple[str, ...], set[str]] = defaultdict(set)
        results: dict[tuple[str, ...], dict[str, Any]] = {}
        for delivery, body in _bodies(receiver):
            key = tuple(body["request_uuids"])
            outcomes[key].add(delivery)
            results[key] = body
        assert all(len(ids) == 1 for ids in outcomes.values()), outcomes  # one outcome each
        assert set(outcomes) == wanted  # and none for a request nobody accepted
        survivor = [results[tuple(u)] for u in accepted[0]]
        assert all(body["result_code"] == 0 for body in survivor), survivor  # carried on
        killed = [results[tuple(u)] for u in accepted[1]]
        failed = [b for b in killed if b.get("error", {}).get("id") == "node_failed"]
        assert failed, killed  # the slow group's hunts were under way when it died

        records = await _records(cluster.database)
        assert records.get("node_failed", 0) >= len(failed)

        removed = _cti_removed(frames)
        added = _cti_added(frames)
        assert added and added <= removed  # no ghost of the killed node's calls on node 1
        by_survivor = _cti_removed(frames, data="send_bye,NODE_FAILED")
        for request in failed:  # the member it was ringing, removed by the survivor
            assert set(request["request_uuids"]) & by_survivor, request


async def _load(
    cluster: Cluster, receiver: CallbackReceiver, *, seconds: float, rate: float, kill_at: float
) -> dict[int, list[list[str]]]:
    """call_group at ``rate``/s for ``seconds`` s, alternating nodes and groups; node 2 is
    SIGKILLed at ``kill_at`` s. The accepted requests' uuids, by node."""
    accepted: dict[int, list[list[str]]] = {0: [], 1: []}
    loop = asyncio.get_running_loop()
    start = loop.time()
    killed = False
    pending: set[asyncio.Task[None]] = set()

    async def one(node: int, group: str) -> None:
        body = {"group_name": group, "destination": "dest", "callback_url": receiver.url}
        try:
            reply = await cluster.api(node).post("/basix/api/call_group", json=body)
        except Exception:  # the killed node: nothing was accepted
            return
        if reply.status_code == 200 and reply.json().get("result_code") == 0:
            accepted[node].append(reply.json()["uuids"])

    for n in range(int(seconds * rate)):
        await asyncio.sleep(max(0.0, start + n / rate - loop.time()))
        if not killed and loop.time() - start >= kill_at:
            await asyncio.gather(*pending)  # what node 2 was asked, it answered
            cluster.nodes[1].kill()
            killed = True
        node = 1 if not killed and n % 2 else 0
        task = asyncio.create_task(one(node, "slow_desks" if n % 4 < 2 else "desks"))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    return accepted


async def _records(database: str) -> dict[str, int]:
    engine = create_async_engine(database.replace("postgresql://", "postgresql+asyncpg://"))
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT disposition, count(*) FROM call_records GROUP BY disposition")
            )
            return {str(d): int(n) for d, n in rows}
    finally:
        await engine.dispose()


def _cti_events(frames: list[Any], event: str, data: str | None = None) -> set[str]:
    found = set()
    for frame in frames:
        message = json.loads(frame)
        if message.get("type") != "info_event" or message.get("element") != "channel":
            continue
        channel = message["data"]
        if message.get("event") == event and data in (None, channel["last_event_data"]):
            found.add(channel["uuid"])
    return found


def _cti_added(frames: list[Any]) -> set[str]:
    return _cti_events(frames, "added")


def _cti_removed(frames: list[Any], data: str | None = None) -> set[str]:
    return _cti_events(frames, "removed", data)
