"""Switchboard's call core on the in-memory network and virtual time: the SIP endpoint,
user agent, registrar, media relay, CTI hub, router and engine of ``app.Server``, with
storage and callbacks kept in memory. Scripted phones and trunks (``testing.phones``)
register with it and call through it, so whole calls run as unit tests in milliseconds.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

from switchboard.config import Config
from switchboard.cti.hub import CtiHub
from switchboard.directory import Directory
from switchboard.media.ports import PortAllocator
from switchboard.media.relay import MediaRelay
from switchboard.pbx.engine import Engine
from switchboard.pbx.incoming import IncomingCalls
from switchboard.registrar.location import Binding
from switchboard.registrar.service import RegistrarService
from switchboard.sip.endpoint import SipEndpoint
from switchboard.sip.useragent import UserAgent
from switchboard.store.records import CallRecord
from switchboard.testing.network import Network
from switchboard.trunks import TrunkMonitor


class MemoryBindings:
    """The registrar's store, in memory (no database threads on virtual time)."""

    def __init__(self) -> None:
        self.bindings: dict[tuple[str, str, str], Binding] = {}

    async def load(self) -> list[Binding]:
        return list(self.bindings.values())

    async def delete_expired(self, now: float) -> int:
        expired = [key for key, b in self.bindings.items() if b.expires_at <= now]
        for key in expired:
            del self.bindings[key]
        return len(expired)

    async def save_batch(self, changes: list[tuple[list[Binding], list[Binding]]]) -> None:
        for upserts, removals in changes:
            for binding in removals:
                self.bindings.pop(_key(binding), None)
            for binding in upserts:
                self.bindings[_key(binding)] = binding


def _key(binding: Binding) -> tuple[str, str, str]:
    return (*binding.aor, binding.contact)


@dataclass
class MemoryOutputs:
    """Callbacks queued and records written, kept for the test to read."""

    callbacks: list[tuple[str, str, dict[str, object]]] = field(default_factory=list)
    delivery_ids: list[str | None] = field(default_factory=list)  # each callback's, if named
    records: list[CallRecord] = field(default_factory=list)

    async def enqueue(
        self, domain: str, url: str, payload: dict[str, object], delivery_id: str | None = None
    ) -> str:
        self.callbacks.append((domain, url, payload))
        self.delivery_ids.append(delivery_id)
        return delivery_id or str(len(self.callbacks))

    async def save(self, records: list[CallRecord]) -> None:
        self.records.extend(records)


class HarnessPbx:
    def __init__(self, network: Network, config: Config, *, seed: int = 1) -> None:
        self.network = network
        self.config = config
        self.seed = seed
        self.outputs = MemoryOutputs()
        self.cti = CtiHub()

    async def start(self) -> HarnessPbx:
        config, server = self.config, self.config.server
        loop = asyncio.get_running_loop()
        host, port = server.sip_address
        self.endpoint = SipEndpoint(
            host, port, advertised_host=server.sip_advertised_host, network=self.network
        )
        await self.endpoint.start()
        self.ua = UserAgent(self.endpoint)
        low, high = server.rtp_ports
        rng = random.Random(self.seed)
        self.media = MediaRelay(
            host,
            server.sip_advertised_host,
            PortAllocator(low, high, rng=rng),
            rng=rng,
            network=self.network,
        )
        directory = Directory(config)
        self.registrar = RegistrarService.serve(
            self.ua, config, directory, MemoryBindings(), clock=loop.time
        )
        await self.registrar.start()
        # pinged only when a test says so (``trunks.start()`` or ``ping_all()``): other tests
        # count the messages their trunk sees
        self.trunks = TrunkMonitor(
            self.ua, directory, every=server.trunk_ping_seconds, timeout=server.trunk_ping_timeout
        )
        self.engine = Engine(
            self.ua,
            self.registrar,
            self.media,
            self.outputs,
            server,
            records=self.outputs,
            cti=self.cti,
            trunk_down=self.trunks.down,
        )
        self.incoming = IncomingCalls.serve(self.ua, config, self.registrar, self.engine)
        return self

    async def close(self) -> None:
        await self.trunks.close()
        await self.registrar.close()
        await self.endpoint.close()

    async def __aenter__(self) -> HarnessPbx:
        return await self.start()

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()
