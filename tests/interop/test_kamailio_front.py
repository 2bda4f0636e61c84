"""The cluster's SIP front: Kamailio with deploy/kamailio/kamailio.cfg, in front of SIPp
processes playing two Switchboard nodes, with SIPp phones (and a bare UDP peer where SIPp
cannot say what the test needs) on loopback."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.interop.kamailio import (
    REPOSITORY,
    Address,
    Front,
    SippNode,
    UdpPeer,
    header,
    options_request,
    running_front,
    sipp_nodes,
    udp_peer,
    wait_until,
)
from tests.interop.sipp import SCENARIOS, free_port, run_sipp

pytestmark = [pytest.mark.interop, pytest.mark.slow]

NO_EXTRA_HEADER = "X-Test: none"
FORGED_SOURCE = "udp:203.0.113.9:5060"  # the address the node scenarios refuse to see


def _phone(
    scenario: str, front: Front, *extra: str, port: int, calls: int, call_ids: str
) -> list[str]:
    """SIPp phone arguments; ``call_ids`` names the calls (``%u`` is the call number) so
    that the node each one is hashed to is the same on every run."""
    host, front_port = front.address
    return [
        "-sf", str(SCENARIOS / scenario), f"{host}:{front_port}", "-i", "127.0.0.1",
        "-p", str(port), "-nostdin", "-timeout", "60", "-m", str(calls), "-r", "10",
        "-cid_str", call_ids, *extra,
    ]  # fmt: skip


def _users(path: Path, users: list[str]) -> Path:
    path.write_text("SEQUENTIAL\n" + "".join(f"{user}\n" for user in users))
    return path


def _logged(nodes: list[SippNode], method: str) -> dict[str, tuple[int, dict[str, str]]]:
    """Every logged request of ``method``: ``{Call-ID: (node index, fields)}``; a Call-ID
    logged by two nodes fails the test."""
    logged: dict[str, tuple[int, dict[str, str]]] = {}
    for index, node in enumerate(nodes):
        for call_id, fields in node.requests(method).items():
            assert call_id not in logged, f"{call_id} reached two nodes"
            logged[call_id] = (index, fields)
    return logged


async def test_register_goes_to_a_node_with_a_path_naming_the_phone(tmp_path: Path) -> None:
    async with (
        sipp_nodes(tmp_path, "front_node.xml", 2) as nodes,
        running_front(tmp_path, [node.address for node in nodes]) as front,
    ):
        phone = free_port()
        result = await run_sipp(
            _phone(
                "front_phone_register.xml", front, "-inf", str(_users(tmp_path / "u", ["alice"])),
                # a Path of the phone's own would steer the node's requests: removed
                "-key", "extra", "Path: <sip:203.0.113.9;lr>",
                port=phone, calls=1, call_ids="register-%u@phone",
            ),
            30,
        )  # fmt: skip
        assert result.returncode == 0, result.output[-3000:]
        ((_, fields),) = _logged(nodes, "REGISTER").values()
        front_host, front_port = front.address
        assert fields == {
            "aor": "sip:alice@example.com",
            "path": f"<sip:{front_host}:{front_port};lr;received=sip:127.0.0.1:{phone}>",
            "source": f"udp:127.0.0.1:{phone}",
        }


async def test_registers_of_one_aor_reach_one_node(tmp_path: Path) -> None:
    aors = [f"user{n}" for n in range(8)]
    async with (
        sipp_nodes(tmp_path, "front_node.xml", 2) as nodes,
        running_front(tmp_path, [node.address for node in nodes]) as front,
    ):
        users = _users(tmp_path / "u", aors * 3)  # every AoR three times, each its Call-ID
        result = await run_sipp(
            _phone(
                "front_phone_register.xml", front, "-inf", str(users),
                "-key", "extra", NO_EXTRA_HEADER,
                port=free_port(), calls=len(aors) * 3, call_ids="aor-%u@phone",
            ),
            60,
        )  # fmt: skip
        assert (result.returncode, result.successful) == (0, 24), result.output[-3000:]
        logged = _logged(nodes, "REGISTER")
    assert len(logged) == 24
    nodes_of_aor: dict[str, set[int]] = {}
    for index, fields in logged.values():
        nodes_of_aor.setdefault(fields["aor"], set()).add(index)
    assert sorted(nodes_of_aor) == sorted(f"sip:{aor}@example.com" for aor in aors)
    assert all(len(indexes) == 1 for indexes in nodes_of_aor.values()), nodes_of_aor
    assert set().union(*nodes_of_aor.values()) == {0, 1}  # and both nodes have some


@pytest.mark.parametrize("spelling", ["X-Switchboard-Source", "x-switchboard-SOURCE"])
async def test_invite_reaches_a_node_with_record_route_and_its_real_source(
    tmp_path: Path, spelling: str
) -> None:
    async with (
        sipp_nodes(tmp_path, "front_node.xml", 2) as nodes,
        running_front(tmp_path, [node.address for node in nodes]) as front,
    ):
        phone = free_port()
        result = await run_sipp(
            _phone(
                "front_phone_invite.xml", front, "-key", "extra", f"{spelling}: {FORGED_SOURCE}",
                port=phone, calls=6, call_ids="invite-%u@phone",
            ),
            60,
        )  # fmt: skip
        # the phone's ACK and BYE went through the front, along its Record-Route
        assert (result.returncode, result.successful) == (0, 6), result.output[-3000:]
        logged = _logged(nodes, "INVITE")
    front_host, front_port = front.address
    assert sorted(logged) == sorted(f"invite-{n}@phone" for n in range(1, 7))
    for _, fields in logged.values():
        assert fields == {
            "source": f"udp:127.0.0.1:{phone}",
            "record-route": f"sip:{front_host}:{front_port};lr",
        }


@pytest.mark.parametrize("transport", ["u1", "t1"])  # the phone's: UDP, or one TCP connection
async def test_a_node_reaches_a_phone_behind_nat_through_the_front(
    tmp_path: Path, transport: str
) -> None:
    """The node calls the binding (an address nobody can reach) with its Path as Route; the
    front sends the INVITE where the REGISTER came from, and the BYE where the 200 came
    from (front_phone_behind_nat.xml, front_node_calls_back.xml check each step). Over TCP
    that is the phone's own connection, whatever port the phone listens on."""
    async with (
        sipp_nodes(tmp_path, "front_node_calls_back.xml", 2) as nodes,
        running_front(tmp_path, [node.address for node in nodes]) as front,
    ):
        result = await run_sipp(
            _phone(
                "front_phone_behind_nat.xml", front, "-t", transport,
                "-inf", str(_users(tmp_path / "u", ["bob"])),
                port=free_port(), calls=1, call_ids="nat-%u@phone",
            ),
            30,
        )  # fmt: skip
        assert (result.returncode, result.successful) == (0, 1), result.output[-3000:]


async def test_retransmissions_of_one_invite_reach_one_node_once(tmp_path: Path) -> None:
    """Each INVITE is sent three times at once (SIPp cannot: a response that arrives
    between its sends aborts the call), so copies cross on the way in; then the phone
    answers the 200 and hangs up through the front."""
    call_ids = [f"retransmitted-{n}@phone" for n in range(5)]
    async with sipp_nodes(tmp_path, "front_node.xml", 2) as nodes:
        async with (
            udp_peer() as phone,
            running_front(tmp_path, [n.address for n in nodes]) as front,
        ):
            for call_id in call_ids:
                invite = _request("INVITE", "sip:service@example.com", phone.address, call_id)
                for _ in range(3):
                    phone.send(invite, front.address)
                answer = await phone.response(200, 10, "INVITE")
                for method, cseq in (("ACK", 1), ("BYE", 2)):
                    phone.send(_in_dialog(method, cseq, invite, answer), front.address)
                await phone.response(200, 10, "BYE")
        for node in nodes:
            await node.stop()  # its message trace is complete once it has stopped
        arrivals = Counter(
            call_id for node in nodes for call_id in node.received_requests("INVITE")
        )
    assert arrivals == Counter(call_ids)


async def test_new_requests_go_to_the_other_node_when_one_does_not_answer(
    tmp_path: Path,
) -> None:
    """No OPTIONS ping in the test's time: the node is found dead by the requests sent to it."""
    async with (
        sipp_nodes(tmp_path, "front_node.xml", 2) as nodes,
        running_front(
            tmp_path, [node.address for node in nodes], ping_interval=600, node_timeout_ms=500
        ) as front,
    ):
        phone = free_port()
        before = await run_sipp(
            _phone(
                "front_phone_invite.xml", front, "-key", "extra", NO_EXTRA_HEADER,
                port=phone, calls=8, call_ids="before-%u@phone",
            ),
            60,
        )  # fmt: skip
        assert before.successful == 8, before.output[-3000:]
        assert {index for index, _ in _logged(nodes, "INVITE").values()} == {0, 1}

        stopped, alive = nodes
        await stopped.stop()
        after = await run_sipp(
            _phone(
                "front_phone_invite.xml", front, "-key", "extra", NO_EXTRA_HEADER,
                port=phone, calls=8, call_ids="after-%u@phone",
            ),
            60,
        )  # fmt: skip
        assert (after.returncode, after.successful) == (0, 8), after.output[-3000:]
        registered = await run_sipp(
            _phone(
                "front_phone_register.xml", front,
                "-inf", str(_users(tmp_path / "u", [f"user{n}" for n in range(8)])),
                "-key", "extra", NO_EXTRA_HEADER,
                port=phone, calls=8, call_ids="register-%u@phone",
            ),
            60,
        )  # fmt: skip
        assert (registered.returncode, registered.successful) == (0, 8), registered.output
        assert {f"after-{n}@phone" for n in range(1, 9)} <= set(alive.requests("INVITE"))
        assert len(alive.requests("REGISTER")) == 8
        host, port = stopped.address
        assert f"node sip:{host}:{port} did not answer INVITE: marked down" in front.log_text()


async def test_a_node_silent_to_pings_leaves_the_set_until_it_answers(tmp_path: Path) -> None:
    async with (
        sipp_nodes(tmp_path, "front_node.xml", 2) as nodes,
        running_front(tmp_path, [node.address for node in nodes], ping_interval=1) as front,
    ):
        node = nodes[0]
        uri = f"sip:{node.address[0]}:{node.address[1]}"
        await node.stop()
        await wait_until(
            lambda: f"node {uri} is out of the set" in front.log_text(), 10, "the node out"
        )
        await node.start()
        await wait_until(
            lambda: f"node {uri} answers OPTIONS: back in the set" in front.log_text(),
            10,
            "the node back",
        )
        result = await run_sipp(
            _phone(
                "front_phone_invite.xml", front, "-key", "extra", NO_EXTRA_HEADER,
                port=free_port(), calls=8, call_ids="back-%u@phone",
            ),
            60,
        )  # fmt: skip
        assert (result.returncode, result.successful) == (0, 8), result.output[-3000:]
        assert {index for index, _ in _logged(nodes, "INVITE").values()} == {0, 1}


def _request(
    method: str,
    uri: str,
    sender: Address,
    call_id: str | None = None,
    *,
    to_tag: str = "",
    routes: tuple[str, ...] = (),
) -> str:
    host, port = sender
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{uuid.uuid4().hex}",
        *(f"Route: {route}" for route in routes),
        f"From: <sip:stranger@{host}>;tag=stranger",
        f"To: <{uri}>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {call_id or uuid.uuid4().hex + '@' + host}",
        f"CSeq: 1 {method}",
        f"Contact: <sip:stranger@{host}:{port}>",
        "Max-Forwards: 70",
        "Content-Length: 0",
    ]
    return "\r\n".join(lines) + "\r\n\r\n"


def _in_dialog(method: str, cseq: int, invite: str, answer: str) -> str:
    """ACK or BYE of the dialog ``answer`` (a 200) set up: to its Contact, along its
    Record-Route (RFC 3261 §12.1.2, §12.2.1.1)."""
    (contact,) = header(answer, "Contact")
    (to,) = header(answer, "To")
    (via,) = header(invite, "Via")
    request = _request(
        method, contact.strip("<>"), _via_address(via), header(invite, "Call-ID")[0],
        routes=tuple(reversed(header(answer, "Record-Route"))),
    )  # fmt: skip
    request = request.replace(f"CSeq: 1 {method}", f"CSeq: {cseq} {method}")
    return "\r\n".join(
        f"To: {to}" if line.startswith("To:") else line for line in request.split("\r\n")
    )


def _via_address(via: str) -> Address:
    host, port = via.split()[1].split(";", maxsplit=1)[0].rsplit(":", 1)
    return host, int(port)


async def _next_request(node: UdpPeer, method: str) -> str:
    """The next ``method`` request the bare UDP node receives (the front's pings skipped)."""
    while True:
        message = await node.receive(5)
        if message.startswith(f"{method} "):
            return message


async def test_the_front_follows_no_route_a_stranger_gives(tmp_path: Path) -> None:
    async with (
        udp_peer() as node,
        udp_peer() as stranger,
        udp_peer() as victim,
        running_front(tmp_path, [node.address], ping_interval=600) as front,
    ):
        front_route = f"<sip:{front.address[0]}:{front.address[1]};lr>"
        victim_uri = f"sip:victim@{victim.address[0]}:{victim.address[1]}"
        node_uri = f"sip:node@{node.address[0]}:{node.address[1]}"

        # within a "dialog": toward anything but a node, refused
        stranger.send(
            _request("BYE", victim_uri, stranger.address, to_tag="t", routes=(front_route,)),
            front.address,
        )
        await stranger.response(403, 5)
        # toward a node, forwarded with the stranger's real address
        stranger.send(
            _request("BYE", node_uri, stranger.address, to_tag="t", routes=(front_route,)),
            front.address,
        )
        bye = await _next_request(node, "BYE")
        assert header(bye, "X-Switchboard-Source") == [
            f"udp:{stranger.address[0]}:{stranger.address[1]}"
        ]
        # an initial request: to a node, whatever Route it preloads
        stranger.send(
            _request("INVITE", victim_uri, stranger.address, routes=(f"<{victim_uri};lr>",)),
            front.address,
        )
        invite = await _next_request(node, "INVITE")
        assert header(invite, "Route") == []
        assert header(invite, "Record-Route") == [front_route]
        assert victim.received.empty()


async def test_a_flood_from_one_address_is_cut_off(tmp_path: Path) -> None:
    async with (
        udp_peer("127.0.0.3") as flooder,
        udp_peer("127.0.0.4") as neighbour,
        running_front(tmp_path, [("127.0.0.1", free_port())], flood_limit=20) as front,
    ):
        for _ in range(200):
            flooder.send(options_request(flooder.address, front.address), front.address)
        answered = 0
        try:
            while True:
                await flooder.response(200, 1.0)
                answered += 1
        except TimeoutError:
            pass
        # pike blocks a source between once and three times the limit in its window
        assert 20 <= answered <= 60
        assert "127.0.0.3" in front.log_text()
        neighbour.send(options_request(neighbour.address, front.address), front.address)
        await neighbour.response(200, 5)


# --- scripts/cluster: the real thing, on this machine ------------------------------------

CLUSTER_SCRIPT = REPOSITORY / "scripts" / "cluster"
CLUSTER_SECONDS = 240.0


async def _cluster(*arguments: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        str(CLUSTER_SCRIPT), *arguments, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), CLUSTER_SECONDS)
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


def _free_run(count: int, kind: int) -> int:
    """The first of ``count`` consecutive ports free on 127.0.0.1 (UDP and TCP)."""
    for _ in range(100):
        first = free_port(kind)
        if first + count < 65000 and all(_port_free(first + n) for n in range(1, count)):
            return first
    raise RuntimeError("no run of free ports")


def _port_free(port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _live_process_groups() -> dict[int, set[int]]:
    """Process group id -> the pids of its processes that are not zombies (/proc)."""
    groups: dict[int, set[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        state, process_group = fields[0], int(fields[2])
        if state != "Z":
            groups.setdefault(process_group, set()).add(int(stat.parent.name))
    return groups


async def test_scripts_cluster_up_2_runs_a_cluster_and_down_stops_all_of_it() -> None:
    # Not pytest's tmp_path: PostgreSQL runs as the postgres user, who must reach it.
    workdir = Path(tempfile.mkdtemp(prefix="switchboard-cluster-"))
    workdir.chmod(0o755)
    front_port = _free_run(1, socket.SOCK_DGRAM)
    node_sip, node_http = _free_run(2, socket.SOCK_DGRAM), _free_run(2, socket.SOCK_STREAM)
    env = {**os.environ, "SWITCHBOARD_CLUSTER_TABLE": "1"}
    where = ["--dir", str(workdir)]
    started: set[int] = set()
    try:
        code, output = await _cluster(
            "up", "2", *where, "--sip", str(front_port), "--node-sip", str(node_sip),
            "--node-http", str(node_http), env=env,
        )  # fmt: skip
        assert code == 0, output
        groups = _live_process_groups()
        for name in ("front", "node-1", "node-2", "redis", "postgres"):
            leader = int((workdir / "pids" / f"{name}.pid").read_text())
            assert groups.get(leader), f"{name} does not run"
            started |= groups[leader]
        code, output = await _cluster("status", *where, env=env)
        assert code == 0 and output.count("running (pid") == 5, output
        config = (workdir / "node-2" / "switchboard.toml").read_text()
        assert f'front = "127.0.0.1:{front_port}"' in config
        assert f'sip_listen = "127.0.0.1:{node_sip + 1}"' in config
        await _a_phone_behind_nat_is_called_through_the_front(
            workdir, ("127.0.0.1", front_port), [node_http, node_http + 1]
        )
    finally:
        code, output = await _cluster("down", *where, env=env)
        still = {pid for pids in _live_process_groups().values() for pid in pids} & started
        shutil.rmtree(workdir, ignore_errors=True)
    assert code == 0, output
    assert not still, f"still running after down: {sorted(still)}"


async def _a_phone_behind_nat_is_called_through_the_front(
    workdir: Path, front: Address, http_ports: list[int]
) -> None:
    """alice's phone registers through the front with digest from behind NAT (its Contact
    unreachable); call_user rings it, through the front, from each node (the binding the
    REGISTER left on one node is every node's: docs/registrar.md)."""
    phone = free_port()
    users = workdir / "alice.csv"
    users.write_text("SEQUENTIAL\nalice;[authentication username=alice password=alice-secret]\n")
    common = ["-i", "127.0.0.1", "-p", str(phone), "-nostdin", "-timeout", "60", "-m", "1"]
    registered = await run_sipp(
        ["-sf", str(SCENARIOS / "front_phone_register_digest.xml"), "-inf", str(users),
         f"{front[0]}:{front[1]}", *common],
        30,
    )  # fmt: skip
    assert registered.returncode == 0, registered.output[-3000:]
    answer_both = [*common[:-1], str(len(http_ports))]  # -m: one call from each node
    answering = asyncio.create_task(
        run_sipp(["-sf", str(SCENARIOS / "front_phone_answers.xml"), *answer_both], 60)
    )
    try:
        await wait_until(lambda: _port_bound(phone), 10, "the phone's answering SIPp")
        async with httpx.AsyncClient(auth=("example.com", "change-me-example-token")) as api:
            rung = []
            for port in http_ports:
                reply = await api.post(
                    f"http://127.0.0.1:{port}/basix/api/call_user",
                    json={"user_name": "alice", "destination": "bob"},
                )
                assert reply.json()["result_code"] == 0, reply.text
                rung += reply.json()["uuids"]
        assert len(rung) == len(http_ports)  # each node rang her
        # alice answers; bob has no phone, so the node hangs up on her: the BYE too
        # reaches her only through the front
        answered = await answering
        assert answered.returncode == 0, answered.output[-3000:]
    finally:
        answering.cancel()


def _port_bound(port: int) -> bool:
    return not _port_free(port)
