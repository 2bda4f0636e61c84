"""The set-ups the cluster ladder compares, each started from nothing and stopped whole:

- ``embedded``: one node on SQLite, no front, no Redis (what bench/call_group_ladder.py
  measures; phones register with the node itself);
- ``cluster1``: one node in cluster mode: PostgreSQL, Redis and the Kamailio front (the fair
  baseline for two nodes: the same path for every request, one node fewer);
- ``cluster2``: two nodes behind the same front, sharing PostgreSQL and Redis.

Each has its member SIPp port and its trunk SIPp port for its whole life (the trunk's
address is in the nodes' config, the members' in their bindings); members are registered
once, before the first rung.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from bench.cluster_config import USERS, Cluster, Members, node_toml
from bench.cluster_phones import bindings_seen, register_members
from bench.cluster_stack import free_sip_port, front, node, postgres, redis
from bench.pbx import free_port

RTP_LOW, RTP_HIGH = 20000, 39999


class Topology(StrEnum):
    EMBEDDED = "embedded"
    CLUSTER1 = "cluster1"
    CLUSTER2 = "cluster2"

    @property
    def nodes(self) -> int:
        return 2 if self is Topology.CLUSTER2 else 1

    @property
    def clustered(self) -> bool:
        return self is not Topology.EMBEDDED

    @property
    def label(self) -> str:
        return {
            "embedded": "1 node, SQLite",
            "cluster1": "1 node behind Kamailio",
            "cluster2": "2 nodes behind Kamailio",
        }[self.value]


@dataclass
class Deployment:
    topology: Topology
    http_ports: list[int]
    member_port: int
    trunk_port: int
    # the processes whose CPU is the cluster's, by part: their session leaders' pids
    parts: dict[str, list[int]] = field(default_factory=dict)
    bindings: list[int] = field(default_factory=list)  # each node's, after registering
    profiles: dict[int, Path] = field(default_factory=dict)  # node pid: its cProfile output


@contextmanager
def deployment(
    topology: Topology, members: Members, workdir: Path, *, profile: bool = False
) -> Iterator[Deployment]:
    """``profile``: the nodes run under cProfile (``Deployment.profiles``)."""
    home = workdir / topology.value
    home.mkdir(parents=True)
    member_port, trunk_port = free_sip_port(), free_sip_port()
    sips = [free_sip_port() for _ in range(topology.nodes)]
    https = [free_port(socket.SOCK_STREAM) for _ in sips]
    span = (RTP_HIGH - RTP_LOW + 1) // topology.nodes
    with ExitStack() as stack:
        parts: dict[str, list[int]] = {}
        profiles: dict[int, Path] = {}
        front_port = free_sip_port()
        shared: tuple[str, str] | None = None  # the database and Redis URLs
        if topology.clustered:
            database = stack.enter_context(postgres(home))
            store = stack.enter_context(redis(home))
            parts |= {"postgres": [database.pid], "redis": [store.pid]}
            shared = (database.url, f"redis://127.0.0.1:{store.port}/0")
        for i, (sip, http) in enumerate(zip(sips, https, strict=True)):
            cluster = None
            if shared is not None:
                cluster = Cluster(f"node-{i + 1}", *shared, f"127.0.0.1:{front_port}")
            rtp = (RTP_LOW + i * span, RTP_LOW + (i + 1) * span - 1)
            text = node_toml(
                sip=sip,
                http=http,
                rtp=rtp,
                database=f"sqlite:///{home / 'bench.sqlite'}",
                cluster=cluster,
                members=members,
                member_port=member_port,
                trunk_port=trunk_port,
            )
            # one after the other: the first node creates the shared database's tables
            name = f"node-{i + 1}"
            stats = home / f"{name}.prof" if profile else None
            started = stack.enter_context(node(name, text, sip, http, home, profile=stats))
            parts.setdefault("nodes", []).append(started.pid)
            if stats is not None:
                profiles[started.pid] = stats
        registrar = sips[0]
        if topology.clustered:
            parts["front"] = [stack.enter_context(front(home, front_port, sips)).pid]
            registrar = front_port
        result = Deployment(topology, https, member_port, trunk_port, parts, profiles=profiles)
        if members is Members.REGISTERED:
            ok, failed = register_members(registrar, member_port, home)
            if ok != USERS:
                raise RuntimeError(
                    f"{topology}: {ok} of {USERS} members registered ({failed} failed; see {home})"
                )
            result.bindings = bindings_seen(https)
            if min(result.bindings) < USERS:
                print(
                    f"{topology}: the nodes count {result.bindings} of {USERS} bindings: "
                    "a call_group sent to a node that does not know a member's binding "
                    "cannot ring it",
                    file=sys.stderr,
                    flush=True,
                )
        yield result
