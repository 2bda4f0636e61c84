"""Trunk health: is each domain's trunk reachable now?

Every ``trunk_ping_seconds`` each trunk of the directory in force gets an OPTIONS (RFC 3261
§11, the usual SIP keep-alive of a gateway). Any final response, even 404 or 405, proves
the trunk is there and answering SIP: ``up``. No final response within
``trunk_ping_timeout`` (or a host name that does not resolve): ``down``. A trunk not pinged
yet is ``unknown`` and used as if up. Each change is logged (a warning when it goes down),
counted, and told to the listeners (CTI, metrics). A PSTN call toward a trunk that is down
fails at once with that cause instead of waiting for its INVITE to time out (``live.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

from switchboard.config import TrunkConfig, is_ip, split_hostport
from switchboard.directory import Directory
from switchboard.sip.transaction.base import Peer
from switchboard.sip.uri import parse_uri
from switchboard.sip.useragent import UserAgent

log = logging.getLogger("switchboard.trunks")


class TrunkState(enum.Enum):
    UNKNOWN = "unknown"
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class TrunkStatus:
    domain: str
    name: str
    address: str
    state: TrunkState
    since: float  # loop time of the last change
    detail: str  # the last answer (e.g. "200 OK", "no answer in 2 s")


Listener = Callable[[TrunkStatus], None]


class TrunkMonitor:
    def __init__(
        self, ua: UserAgent, directory: Directory, *, every: float, timeout: float
    ) -> None:
        self.ua = ua
        self.directory = directory
        self.every = every
        self.timeout = timeout
        self.statuses: dict[tuple[str, str], TrunkStatus] = {}
        self.listeners: list[Listener] = []
        self.counters = {"trunk_pings": 0, "trunk_ping_failures": 0, "trunk_state_changes": 0}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.every > 0:  # 0: trunks are not pinged (every trunk counts as up)
            self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def state(self, domain: str, trunk: str) -> TrunkState:
        status = self.statuses.get((domain, trunk))
        return status.state if status is not None else TrunkState.UNKNOWN

    def down(self, domain: str, trunk: str) -> str | None:
        """Why a PSTN call through this trunk would fail now, or None (up or unknown)."""
        status = self.statuses.get((domain, trunk))
        if status is None or status.state is not TrunkState.DOWN:
            return None
        return f"trunk {trunk} down ({status.detail})"

    async def _run(self) -> None:
        while True:
            await self.ping_all()
            await asyncio.sleep(self.every)

    async def ping_all(self) -> None:
        """One round: every trunk of every domain, at once."""
        trunks = [(d.name, t) for d in self.directory.config.domains for t in d.trunks]
        wanted = {(domain, trunk.name) for domain, trunk in trunks}
        for gone in [key for key in self.statuses if key not in wanted]:
            del self.statuses[gone]  # deleted from the directory since
        await asyncio.gather(*(self._ping(domain, trunk) for domain, trunk in trunks))

    async def _ping(self, domain: str, trunk: TrunkConfig) -> None:
        self.counters["trunk_pings"] += 1
        host, port = split_hostport(trunk.address)
        try:
            address = host if is_ip(host) else await _resolve(host, port)
        except OSError as exc:
            self._record(domain, trunk, TrunkState.DOWN, f"{host} does not resolve ({exc})")
            return
        peer = Peer(trunk.transport.upper(), address, port)
        target = parse_uri(f"sip:{host}:{port}")
        try:
            answer = await asyncio.wait_for(
                self.ua.options(target, peer, from_uri=f"sip:switchboard@{domain}"),
                self.timeout,
            )
        except TimeoutError:
            self._record(domain, trunk, TrunkState.DOWN, f"no answer in {self.timeout:g} s")
            return
        except OSError as exc:  # a TCP trunk refusing the connection
            self._record(domain, trunk, TrunkState.DOWN, f"unreachable ({exc})")
            return
        if answer.status in (408, 503):
            # our transaction's timeout or a transport error, or a gateway that says it
            # cannot take calls now
            self._record(domain, trunk, TrunkState.DOWN, f"{answer.status} {answer.reason}")
            return
        self._record(domain, trunk, TrunkState.UP, f"{answer.status} {answer.reason}")

    def _record(self, domain: str, trunk: TrunkConfig, state: TrunkState, detail: str) -> None:
        key = (domain, trunk.name)
        before = self.statuses.get(key)
        if state is TrunkState.DOWN:
            self.counters["trunk_ping_failures"] += 1
        if before is not None and before.state is state:
            self.statuses[key] = TrunkStatus(
                domain, trunk.name, trunk.address, state, before.since, detail
            )
            return
        now = asyncio.get_running_loop().time()
        status = TrunkStatus(domain, trunk.name, trunk.address, state, now, detail)
        self.statuses[key] = status
        self.counters["trunk_state_changes"] += 1
        emit = log.warning if state is TrunkState.DOWN else log.info
        emit(
            "trunk %s of %s (%s) is %s: %s", trunk.name, domain, trunk.address, state.value, detail
        )
        for listener in self.listeners:
            listener(status)


async def _resolve(host: str, port: int) -> str:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, family=socket.AF_INET, type=socket.SOCK_DGRAM
    )
    if not infos:
        raise OSError(f"no address for {host}")
    return str(infos[0][4][0])
