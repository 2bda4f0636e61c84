"""The call_group ladder against one node and against two nodes behind Kamailio, in one run.

    python -m bench.cluster_ladder [--rates 25 50 100 150 200 250 300 350] [--seconds 10]
        [--topologies embedded cluster1 cluster2] [--members registered|static]
        [--short] [--no-write] [--workdir DIR] [--profile RATE]

Each rung is bench/call_group_ladder.py's: ``rate`` call_group requests per second for
``seconds``, open loop, each to one of 100 groups of 10 members in turn; members are phones
played by one SIPp that answers at once, the destination a PSTN number on a SIPp trunk that
answers at once, talks 1 s and hangs up. Here the requests are spread over the nodes' APIs
in turn (round robin), and each set-up (bench/cluster_topology.py) runs the whole ladder:
one node on SQLite, one node in cluster mode behind the front with PostgreSQL and Redis
(the baseline), two nodes behind the same front. Members register through the front once
per set-up (``--members static``: static contacts instead, rung straight from the nodes).

Per rung: completed calls/s, failures, drain, the nodes' SIP retransmissions, API
latency, and CPU from /proc: the cluster's (nodes, Kamailio, Redis, PostgreSQL, each with
its children), SIPp's and the generator's, and the whole machine's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop

from bench import profile
from bench.call_group_ladder import TALK, healthz, offer, sipp_counts
from bench.cluster_config import Members
from bench.cluster_phones import member_scenario
from bench.cluster_report import write_report
from bench.cluster_stack import box_busy, children_cpu, own_cpu, tree_cpu
from bench.cluster_topology import Deployment, Topology, deployment
from bench.pbx import SCENARIOS, CallbackSink, HttpClient, free_port, percentile, sipp

CONNECTIONS = 64  # per node, as the ladder's one client has
SHORT_RATES, SHORT_SECONDS = [20, 40], 5.0


class RoundRobin(HttpClient):
    """One HttpClient per node; each request goes to the next node in turn."""

    def __init__(self, ports: list[int], connections: int) -> None:
        super().__init__(ports[0], connections)
        self.clients = [HttpClient(port, connections) for port in ports]
        self.sent = 0

    async def open(self) -> None:
        for client in self.clients:
            await client.open()

    async def post(self, path: str, body: Mapping[str, object]) -> tuple[int, dict[str, object]]:
        client = self.clients[self.sent % len(self.clients)]
        self.sent += 1
        return await client.post(path, body)

    def close(self) -> None:
        for client in self.clients:
            client.close()


@dataclass
class ClosingSink(CallbackSink):
    """The ladder's sink, which also closes the connections the nodes keep open to it: the
    nodes outlive a rung's event loop, and a handler cancelled with the loop is logged."""

    writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            await super()._serve(reader, writer)
        finally:
            self.writers.discard(writer)

    async def aclose(self) -> None:
        self.close()
        for writer in list(self.writers):
            writer.close()
        deadline = time.monotonic() + 5
        while self.writers and time.monotonic() < deadline:  # their handlers see the end
            await asyncio.sleep(0.01)


class CpuMeter:
    """CPU seconds spent since it was made, by part of the cluster and around it.

    ``spent`` is read when the rung's calls are over, so the wall time is the rung's own;
    SIPp's CPU can only be read once its processes are reaped (``sipp_spent``), which is
    later: a SIPp whose expected calls were refused waits for its timeout."""

    def __init__(self, parts: dict[str, list[int]]) -> None:
        self.parts = parts
        self.start = self._read()
        self.sipp_start = children_cpu()
        self.started = time.monotonic()

    def _read(self) -> dict[str, float]:
        reading = {name: tree_cpu(pids) for name, pids in self.parts.items()}
        return {**reading, "generator": own_cpu(), "box": box_busy()}

    def spent(self) -> dict[str, float]:
        now = self._read()
        spent = {name: now[name] - self.start[name] for name in now}
        return {**spent, "wall": time.monotonic() - self.started}

    def sipp_spent(self) -> float:
        return children_cpu() - self.sipp_start


def uas(scenario: Path, port: int, calls: int) -> list[str]:
    """SIPp arguments: ``scenario`` on 127.0.0.1:``port`` until ``calls`` calls are over."""
    return ["-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-m", str(calls)]


async def rung(setup: Deployment, rate: int, seconds: float, workdir: Path) -> dict[str, Any]:
    """One rung of load against a running set-up."""
    calls = int(rate * seconds)
    name = f"{setup.topology.value}_{rate}"
    members_log, trunk_log = workdir / f"members_{name}.log", workdir / f"trunk_{name}.log"
    timeout = ["-timeout", str(int(seconds + 60)), "-max_socket", "60000"]
    meter = CpuMeter(setup.parts)
    peers = [
        sipp([*uas(member_scenario(workdir), setup.member_port, calls), *timeout], members_log),
        sipp(
            [*uas(SCENARIOS / "uas_trunk_talk.xml", setup.trunk_port, calls), *timeout], trunk_log
        ),
    ]
    sink = ClosingSink(free_port(socket.SOCK_STREAM))
    await sink.start()
    client = RoundRobin(setup.http_ports, CONNECTIONS)
    await client.open()
    before = [healthz(port) for port in setup.http_ports]
    for pid in setup.profiles:
        os.kill(pid, signal.SIGUSR1)  # the load only: not start-up or registering
    started = time.monotonic()
    latencies, answers = await offer(client, rate, seconds, f"http://127.0.0.1:{sink.port}/hook")
    accepted = answers.get("accepted", 0)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # every outcome delivered, every call over
        if sink.total() >= accepted and all(
            healthz(port)["calls"] == 0 for port in setup.http_ports
        ):
            break
        await asyncio.sleep(0.05)
    wall = time.monotonic() - started
    cpu = meter.spent()
    for pid in setup.profiles:
        os.kill(pid, signal.SIGUSR2)  # written when the load is over
    after = [healthz(port) for port in setup.http_ports]
    client.close()
    await sink.aclose()
    for process in peers:
        try:
            process.wait(70)
        except Exception:
            process.kill()
            process.wait()
    cpu["sipp"] = meter.sipp_spent()  # SIPp's own wall time may be longer than the rung's
    member_ok, member_failed = sipp_counts(members_log)
    trunk_ok, trunk_failed = sipp_counts(trunk_log)
    completed = min(sink.outcomes.get("0", 0), member_ok, trunk_ok)
    cluster = sum(cpu[part] for part in setup.parts)
    return {
        "topology": setup.topology.value,
        "rate": rate,
        "offered": calls,
        "completed": completed,
        # as the ladder: completed over offer plus drain, less the 1 s every call talks
        "completed_per_s": completed / max(seconds, wall - TALK),
        "failed": calls - completed,
        "drain_s": wall - seconds,
        "answers": answers,
        "outcomes": sink.outcomes,
        "sipp": {"members": [member_ok, member_failed], "trunk": [trunk_ok, trunk_failed]},
        "retransmitted": sum(
            a["retransmitted"] - b["retransmitted"] for a, b in zip(after, before, strict=True)
        ),
        "api_ms_p50": 1000 * percentile(latencies, 0.50),
        "api_ms_p99": 1000 * percentile(latencies, 0.99),
        "wall_s": wall,
        "cpu_s": cpu,
        "cluster_cpu_s": cluster,
        "cluster_cpu_pct": 100 * cluster / cpu["wall"],
        "cluster_ms_per_call": 1000 * cluster / max(completed, 1),
        "sipp_cpu_s": cpu["sipp"],
        "generator_cpu_pct": 100 * cpu["generator"] / cpu["wall"],
        "box_cpu_pct": 100 * cpu["box"] / cpu["wall"],
    }


def profiled(
    topology: Topology, members: Members, rate: int, seconds: float, workdir: Path
) -> None:
    """One rung at ``rate`` with the nodes under cProfile; prints each node's top functions
    (cProfile slows the nodes: the shares of time are what it is for, not the figures)."""
    with deployment(topology, members, workdir, profile=True) as setup:
        result = uvloop.run(rung(setup, rate, seconds, workdir / topology.value))
    print(json.dumps({"profiled": result}), flush=True)
    for pid, stats in setup.profiles.items():
        print(f"\n{topology.value}, node pid {pid}, {rate}/s:", flush=True)
        print(profile.table(stats, result["completed"]), flush=True)
        print(profile.by_cumulative(stats, result["completed"], top=40), flush=True)


def ladder(
    topology: Topology, members: Members, rates: list[int], seconds: float, workdir: Path
) -> list[dict[str, Any]]:
    results = []
    with deployment(topology, members, workdir) as setup:
        for rate in rates:
            result = uvloop.run(rung(setup, rate, seconds, workdir / topology.value))
            result["bindings"] = setup.bindings
            print(json.dumps(result), flush=True)
            results.append(result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rates", type=int, nargs="+", default=[25, 50, 100, 150, 200, 250, 300, 350]
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--topologies", nargs="+", type=Topology, choices=list(Topology), default=list(Topology)
    )
    parser.add_argument(
        "--members", type=Members, choices=list(Members), default=Members.REGISTERED
    )
    parser.add_argument(
        "--short",
        action="store_true",
        help=f"smoke test: rates {SHORT_RATES} for {SHORT_SECONDS:g} s, no write",
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--profile",
        type=int,
        metavar="RATE",
        help="instead of the ladder: one rung at RATE per set-up with the nodes under "
        "cProfile; prints where their time goes",
    )
    parser.add_argument("--workdir", type=Path, help="keep logs and configs here")
    args = parser.parse_args()
    if args.short:
        args.rates, args.seconds, args.no_write = SHORT_RATES, SHORT_SECONDS, True
    results: dict[Topology, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="cluster-ladder-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        if args.profile:
            for topology in args.topologies:
                profiled(topology, args.members, args.profile, args.seconds, workdir)
            return
        for topology in args.topologies:
            results[topology] = ladder(topology, args.members, args.rates, args.seconds, workdir)
    command = (
        f"python -m bench.cluster_ladder --rates {' '.join(map(str, args.rates))} "
        f"--seconds {args.seconds:g} --topologies {' '.join(t.value for t in args.topologies)} "
        f"--members {args.members.value}"
    )
    write_report(results, args.seconds, args.members, command, write=not args.no_write)


if __name__ == "__main__":
    main()
