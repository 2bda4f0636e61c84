"""The config of each benchmarked node: the call_group ladder's directory (100 groups of 10
users, one PSTN trunk; bench/pbx.py's ``Directory``), run alone on SQLite or as a node of
a cluster (PostgreSQL, Redis, the SIP front).

Members are reached either as phones registered through the front (``registered``: users
with a password and no static contact; what a cluster is for) or at static contacts
(``static``: each node rings the member SIPp directly, the way bench/call_group_ladder.py
does, which works while a binding is known only to the node its REGISTER reached).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bench.pbx import TOKEN

GROUPS, GROUP_SIZE = 100, 10
USERS = GROUPS * GROUP_SIZE
DOMAIN = "example.com"
PASSWORD = "bench-secret"


class Members(StrEnum):
    REGISTERED = "registered"
    STATIC = "static"


@dataclass(frozen=True, slots=True)
class Cluster:
    """What makes a node a cluster node: the shared database, Redis and the front."""

    node: str
    database: str
    redis: str
    front: str


def user_name(n: int) -> str:
    return f"user{n:04d}"


def node_toml(
    *,
    sip: int,
    http: int,
    rtp: tuple[int, int],
    database: str,
    cluster: Cluster | None,
    members: Members,
    member_port: int,
    trunk_port: int,
) -> str:
    """One node's config; ``database`` is used when ``cluster`` is None (a SQLite URL)."""
    server = (
        f'[server]\nsip_listen = "127.0.0.1:{sip}"\nhttp_listen = "127.0.0.1:{http}"\n'
        f'database = "{cluster.database if cluster else database}"\n'
        f"callback_allow_private = true\nrtp_ports = [{rtp[0]}, {rtp[1]}]\n"
        "trunk_ping_seconds = 0\n"  # the trunk plays scripted calls, not OPTIONS
        # the generator is one source with a pool of connections per node
        "http_connections_per_source = 128\n"
    )
    lines = [server]
    if cluster is not None:
        lines.append(
            f'[cluster]\nnode = "{cluster.node}"\nredis = "{cluster.redis}"\n'
            f'front = "{cluster.front}"\n'
        )
    lines.append(
        f'[[domains]]\nname = "{DOMAIN}"\napi_token = "{TOKEN}"\n'
        f"channel_limit = 100000\npstn_channel_limit = 100000\n"
        f'calling_number = "0506868000"\n'
    )
    for n in range(USERS):
        reach = (
            f'sip_password = "{PASSWORD}"\n'
            if members is Members.REGISTERED
            else f'contacts = ["sip:{user_name(n)}@127.0.0.1:{member_port}"]\n'
        )
        lines.append(f'[[domains.users]]\nid = {n + 1}\nname = "{user_name(n)}"\n{reach}')
    for g in range(GROUPS):
        names = ", ".join(f'"{user_name(n)}"' for n in range(g * GROUP_SIZE, (g + 1) * GROUP_SIZE))
        lines.append(
            f'[[domains.groups]]\nid = {g + 1}\nname = "group{g:03d}"\n'
            f"member_answer_timeout = 15\nmembers = [{names}]\n"
        )
    lines.append(f'[[domains.trunks]]\nname = "pstn"\naddress = "127.0.0.1:{trunk_port}"\n')
    return "\n".join(lines)
