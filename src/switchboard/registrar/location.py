"""Bindings of addresses-of-record to contacts: the location service (RFC 3261 §10).

Pure: times are absolute (seconds since the epoch), because bindings outlive the process
and must expire at the same instant after a restart.

A count of bindings per source address (where each REGISTER came from) answers "is a phone
registered from this address?" in O(1): the PBX asks it for every INVITE it receives, to
tell a phone from a stranger. Every change goes through ``put`` and ``remove`` (``load``,
``replace`` and ``expire`` too), which keep the count.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from switchboard.config import canonical_host
from switchboard.sip.address import parse_address
from switchboard.sip.errors import ParseError
from switchboard.sip.grammar import bounded_int
from switchboard.sip.transaction.base import Peer
from switchboard.sip.uri import SipUri, parse_uri, unescape

Aor = tuple[str, str]  # (domain, user)


@dataclass(frozen=True, slots=True)
class Binding:
    domain: str
    user: str
    contact: str  # the Contact URI as the phone sent it
    expires_at: float
    call_id: str
    cseq: int
    q: str | None = None
    received: str = ""  # transport:host:port the REGISTER came from (for NATed phones)
    user_agent: str = ""
    path: tuple[str, ...] = ()  # RFC 3327: the proxies it is reached through, first first

    @property
    def aor(self) -> Aor:
        return (self.domain, self.user)

    @property
    def key(self) -> str:
        return contact_key(self.contact)

    @property
    def source(self) -> Peer | None:
        """Where the REGISTER came from: where the phone is rung (NAT, RFC 5626 flows)."""
        transport, _, rest = self.received.partition(":")
        host, _, port = rest.rpartition(":")
        number = bounded_int(port, 65535)
        if not host or not number:
            return None
        return Peer(transport, host.strip("[]"), number)

    @property
    def origin_host(self) -> str | None:
        """The phone's own address: where the REGISTER came from, or, relayed by the
        cluster's front, the ``received`` its Path records (Kamailio's add_path_received)."""
        if self.path:
            found = path_received(self.path[0])
            if found is not None:
                return found
        source = self.source
        return source.host if source is not None else None

    def expires_in(self, now: float) -> int:
        return max(0, round(self.expires_at - now))


def contact_key(uri: str) -> str:
    """Bindings are compared with URI equivalence (§10.3 step 7, §19.1.4), roughly."""
    scheme, _, rest = uri.partition(":")
    userinfo, at, hostpart = rest.rpartition("@")
    return f"{scheme.lower()}:{unescape(userinfo)}{at}{hostpart.lower()}"


class LocationService:
    def __init__(self) -> None:
        self._bindings: dict[Aor, dict[str, Binding]] = {}
        self._expiry_heap: list[tuple[float, int, Aor, str]] = []
        self._sequence = itertools.count()
        self._sources: Counter[str] = Counter()  # canonical source host -> bindings from it

    def bindings(self, aor: Aor, now: float) -> list[Binding]:
        """Live bindings, highest q first (§10.2.1.2: q orders a user's terminals)."""
        live = [b for b in self._bindings.get(aor, {}).values() if b.expires_at > now]
        return sorted(live, key=lambda b: -float(b.q or "1"))

    def get(self, aor: Aor, contact: str) -> Binding | None:
        return self._bindings.get(aor, {}).get(contact_key(contact))

    def put(self, binding: Binding) -> None:
        table = self._bindings.setdefault(binding.aor, {})
        replaced = table.get(binding.key)
        if replaced is not None:
            self._count_source(replaced, -1)
        table[binding.key] = binding
        self._count_source(binding, +1)
        heapq.heappush(
            self._expiry_heap,
            (binding.expires_at, next(self._sequence), binding.aor, binding.key),
        )

    def remove(self, aor: Aor, contact: str) -> Binding | None:
        table = self._bindings.get(aor)
        if table is None:
            return None
        removed = table.pop(contact_key(contact), None)
        if not table:
            del self._bindings[aor]
        if removed is not None:
            self._count_source(removed, -1)
        return removed

    def registered_from(self, host: str) -> bool:
        """Whether some binding's REGISTER came from ``host`` (any spelling of it).
        A binding counts until ``expire`` removes it, at its expiry."""
        return self._sources[canonical_host(host)] > 0

    def _count_source(self, binding: Binding, delta: int) -> None:
        origin = binding.origin_host
        if origin is None:
            return
        host = canonical_host(origin)
        self._sources[host] += delta
        if self._sources[host] <= 0:
            del self._sources[host]

    def load(self, bindings: Iterable[Binding], now: float) -> int:
        """Take bindings from storage; the expired ones are left out. Returns how many."""
        count = 0
        for binding in bindings:
            if binding.expires_at > now:
                self.put(binding)
                count += 1
        return count

    def replace(self, aor: Aor, bindings: Iterable[Binding], now: float) -> int:
        """Make ``aor``'s bindings exactly the live ones of ``bindings`` (as stored, e.g.
        after another node changed them). Returns how many bindings were added, changed
        or removed."""
        wanted = {b.key: b for b in bindings if b.aor == aor and b.expires_at > now}
        current = dict(self._bindings.get(aor, {}))
        changes = 0
        for key, binding in current.items():
            if key not in wanted:
                self.remove(aor, binding.contact)
                changes += 1
        for key, binding in wanted.items():
            if current.get(key) != binding:
                self.put(binding)
                changes += 1
        return changes

    def aors(self) -> set[Aor]:
        return set(self._bindings)

    def next_expiry(self) -> float | None:
        heap = self._expiry_heap
        while heap:
            expires_at, _, aor, key = heap[0]
            current = self._bindings.get(aor, {}).get(key)
            if current is not None and current.expires_at == expires_at:
                return expires_at
            heapq.heappop(heap)  # refreshed or removed since
        return None

    def expire(self, now: float) -> list[Binding]:
        """Remove and return every binding whose time has come."""
        expired = []
        while (deadline := self.next_expiry()) is not None and deadline <= now:
            _, _, aor, key = heapq.heappop(self._expiry_heap)
            binding = self._bindings[aor][key]
            self.remove(aor, binding.contact)
            expired.append(binding)
        return expired

    def all_bindings(self) -> list[Binding]:
        return [b for table in self._bindings.values() for b in table.values()]

    def count(self) -> int:
        return sum(len(table) for table in self._bindings.values())


def path_received(hop: str) -> str | None:
    """The host of a Path URI's ``received`` parameter, if it has one."""
    address = parse_address(hop)
    uri = address.uri
    if not isinstance(uri, SipUri):
        return None
    received = uri.params.get("received")
    if not received:
        return None
    try:
        target = parse_uri(unescape(received))
    except ParseError:
        return None
    return target.host_port[0] if isinstance(target, SipUri) else None
