"""The names of the shared state's Redis keys and channels (docs/cluster-state.md).

Every name starts with the cluster's prefix. Domains, idempotency keys, uuids and sources
are percent-encoded (``urllib.parse.quote``), so a ``:`` in one cannot make two names
collide. Node names are checked against the config's pattern instead and used as they are:
the Lua scripts build a dead node's key names from its name.
"""

from __future__ import annotations

from urllib.parse import quote


def part(value: str) -> str:
    return quote(value, safe="")


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.nodes = f"{prefix}:nodes"  # ZSET node -> lease deadline (ms, Redis clock)
        self.owners = f"{prefix}:owners"  # HASH uuid -> node
        self.all_events = f"{prefix}:events"  # STREAM of every domain's events

    # Lua builds these two from a node's name too (scripts.RELEASE_NODE).
    def node_domains(self, node: str) -> str:
        return f"{self.prefix}:node:{node}:domains"

    def node_uuids(self, node: str) -> str:
        return f"{self.prefix}:node:{node}:uuids"

    def node_calls(self, node: str) -> str:  # HASH call key -> snapshot (pbx/failover.py)
        return f"{self.prefix}:node:{node}:calls"

    def usage(self, domain: str) -> str:
        return f"{self.prefix}:usage:{part(domain)}"

    def idempotency(self, domain: str, key: str) -> str:
        return f"{self.prefix}:idempotency:{part(domain)}:{part(key)}"

    def events(self, domain: str) -> str:
        return f"{self.prefix}:events:{part(domain)}"

    def failures(self, throttle: str, source: str) -> str:
        return f"{self.prefix}:throttle:{part(throttle)}:failures:{part(source)}"

    def blocked(self, throttle: str) -> str:
        return f"{self.prefix}:throttle:{part(throttle)}:blocked"

    # pub/sub channels
    def commands(self, node: str) -> str:
        return f"{self.prefix}:commands:{node}"

    def replies(self, node: str) -> str:
        return f"{self.prefix}:replies:{node}"
