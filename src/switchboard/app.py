"""The composition root: builds storage, the directory, the SIP endpoint, the registrar and
the HTTP server, and runs them until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Iterator
from contextlib import suppress

from switchboard.api import call_control
from switchboard.api.app import Services as ApiServices
from switchboard.api.app import create_app
from switchboard.api.auth import ApiAuth
from switchboard.api.connections import ConnectionLimits
from switchboard.api.listener import GuardedServer
from switchboard.api.overload import LoopLagMonitor
from switchboard.callbacks.delivery import CallbackDelivery
from switchboard.cluster.lease import keep_lease
from switchboard.cluster.redis_state import RedisState
from switchboard.cluster.state import ClusterState, LocalState
from switchboard.cluster.values import GATHER_SECONDS
from switchboard.config import Config, ServerConfig, split_hostport
from switchboard.cti.directory_feed import DirectoryFeed
from switchboard.cti.hub import CtiHub
from switchboard.cti.shared_feed import SharedCtiFeed
from switchboard.cti.tickets import TicketBook
from switchboard.directory import Directory
from switchboard.directory_sync import DirectorySync
from switchboard.media.ports import PortAllocator
from switchboard.media.relay import MediaRelay
from switchboard.metrics import Metrics
from switchboard.node_calls import NodeCalls
from switchboard.pbx.engine import Engine
from switchboard.pbx.incoming import IncomingCalls
from switchboard.pbx.routing import Router
from switchboard.registrar.registrar import RegistrarSettings
from switchboard.registrar.service import RegistrarService
from switchboard.sip.endpoint import SipEndpoint
from switchboard.sip.tls import TlsListener
from switchboard.sip.transport import TcpLimits
from switchboard.sip.useragent import UserAgent
from switchboard.store.database import create_engine, migrate
from switchboard.store.outbox import Outbox
from switchboard.store.records import CallRecordStore
from switchboard.store.registrations import RegistrationStore
from switchboard.store.writes import WriteQueue
from switchboard.tls import client_context, https_context
from switchboard.trunks import TrunkMonitor

log = logging.getLogger("switchboard")


class _HttpServer(GuardedServer):
    """The HTTP API behind its connection caps, request deadline and body cap (see
    ``api/listener.py``, ``api/bodylimit.py``), without uvicorn's own signal handling: the
    composition root owns SIGTERM/SIGINT."""

    def __init__(self, services: ApiServices, settings: ServerConfig) -> None:
        limits = ConnectionLimits(
            settings.http_max_connections, settings.http_connections_per_source
        )
        app = create_app(
            services,
            max_body=settings.http_max_body,
            listener=limits.statistics,
            admin_max_body=settings.admin_max_body,
        )
        super().__init__(app, settings.http_address, limits, tls=https_context(settings))

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Server:
    def __init__(self, config: Config) -> None:
        self.config = config
        server = config.server
        self.database = create_engine(server.database)
        self.writes = WriteQueue(self.database)  # group commit for outbox rows and records
        self.directory = Directory(config)
        host, port = server.sip_address
        self.endpoint = SipEndpoint(
            host,
            port,
            advertised_host=server.sip_advertised_host,
            tcp_limits=TcpLimits(
                server.sip_tcp_connections_per_source, server.sip_tcp_idle_timeout
            ),
            tls=TlsListener.configured(server),
        )
        self.user_agent = UserAgent(self.endpoint)
        low, high = server.rtp_ports
        self.media = MediaRelay(
            host, server.sip_advertised_host, PortAllocator(low, high), tone=server.ringback_tone
        )
        self.registrar = RegistrarService.serve(
            self.user_agent, config, self.directory, RegistrationStore(self.database)
        )
        self.allow_private_callbacks = server.callback_allow_private
        self.admin_token = server.admin_token
        self.metrics_token = server.metrics_token
        self.callbacks = CallbackDelivery(
            Outbox(self.database, self.writes, config.cluster.node),
            secret_for=self._callback_secret,
            allow_private=server.callback_allow_private,
            key_for=self._api_token,
            per_domain=server.callback_concurrency_per_domain,
            max_response=server.callback_max_response,
            deadline=server.callback_deadline,
        )
        self.records = CallRecordStore(self.database, self.writes)
        self.cti = CtiHub()
        self.trunks = TrunkMonitor(
            self.user_agent,
            self.directory,
            every=server.trunk_ping_seconds,
            timeout=server.trunk_ping_timeout,
        )
        self.directory_feed = DirectoryFeed(
            self.cti,
            self.directory,
            self.registrar.contacts,
            trunk_state=lambda domain, trunk: self.trunks.state(domain, trunk).value,
        )
        self.trunks.listeners.append(
            lambda status: self.directory_feed.trunk_changed(status.domain, status.name)
        )
        self.registrar.on_binding = self.directory_feed.binding_changed
        self.tickets = TicketBook()
        self.api_auth = ApiAuth(self.directory)
        self.overload = LoopLagMonitor()
        # What the nodes of a cluster share (docs/cluster-state.md): in this process for a
        # node alone; Redis with [cluster] redis, connected in ``start``.
        self.state: ClusterState = LocalState(config.cluster.node)
        self._lease: asyncio.Task[None] | None = None
        self.node_calls: NodeCalls | None = None
        self.cti_feed: SharedCtiFeed | None = None  # a cluster's CTI events (cti/shared_feed.py)
        self.engine = Engine(
            self.user_agent,
            self.registrar,
            self.media,
            self.callbacks,
            server,
            records=self.records,
            cti=self.cti,
            trunk_down=self.trunks.down,
        )
        self.incoming = IncomingCalls.serve(self.user_agent, config, self.registrar, self.engine)
        self.outbox = self.callbacks.outbox
        self.metrics = Metrics(self)
        self.directory_sync = DirectorySync(self.database, self.directory, config)
        self.directory.listeners.append(self._directory_changed)
        self.http = _HttpServer(self, server)
        self.stopping = asyncio.Event()

    async def _join_cluster(self) -> None:
        cluster = self.config.cluster
        if cluster.redis is not None:
            lease = cluster.lease_seconds
            self.state = await RedisState.connect(cluster.redis, cluster.node, lease=lease)
        await self.state.join()
        if isinstance(self.state, RedisState):  # alone, every channel and call is this node's
            self.node_calls = NodeCalls(self.state, self.callbacks, self.records, self.cti)
            self.engine.watcher = self.node_calls
            self.engine.reservations = self.state
            # failed authentications count across the nodes (throttle.ThrottleSharing)
            self.api_auth.share(self.state.throttle("api", self.api_auth.throttle.settings))
            registrar = self.registrar.registrar
            self.registrar.share_throttles(
                self.state.throttle("sip", registrar.throttle.settings),
                self.state.throttle("sip-user", registrar.user_throttle.settings),
            )
        self.state.serve_commands(self._command)
        log.info("cluster: node %s (%s)", cluster.node, "redis" if cluster.redis else "alone")

    async def _share_calls(self, state: RedisState, node_calls: NodeCalls) -> None:
        """CTI events through the cluster (one seq per domain), then the lease, whose
        reaper reports dead nodes' calls: both publish CTI events, numbered by the feed."""
        domains = [domain.name for domain in self.directory.config.domains]
        feed = SharedCtiFeed(
            self.cti, state, domains=domains, node=state.node, gather=GATHER_SECONDS
        )
        await feed.start()  # before anything publishes: nothing is numbered here
        self.cti_feed = feed
        node_calls.shown_by = feed.channels_of
        # calls an earlier life of this node left (it died and came back before it was
        # reaped): nobody else will report them
        await node_calls.node_failed(state.node)
        every = self.config.cluster.lease_seconds / 3
        self._lease = asyncio.create_task(
            keep_lease(state, every=every, on_node_failed=self._node_failed)
        )

    async def _leave_cluster(self) -> None:
        await self.api_auth.unshare()  # its pending failures end before Redis is closed
        await self.registrar.unshare_throttles()
        if self._lease is not None:
            self._lease.cancel()
            with suppress(asyncio.CancelledError):
                await self._lease
        self.state.serve_commands(None)
        if self.node_calls is not None:
            await self.node_calls.drain()
        with suppress(Exception):  # leaving is best effort: the lease lapses anyway
            await self.state.leave()
        if isinstance(self.state, RedisState):
            await self.state.aclose()

    async def _node_failed(self, node: str) -> None:
        log.warning("cluster: node %s failed; its reservations are released", node)
        if self.node_calls is not None:
            await self.node_calls.node_failed(node)

    async def _command(self, command: dict[str, object]) -> dict[str, object]:
        """A call command another node forwarded: its channel lives here."""
        return await call_control.run_here(self, command)

    def _directory_changed(self, _before: Config, after: Config) -> None:
        """What is built from the directory once follows a change (provisioning)."""
        self.registrar.registrar.settings = RegistrarSettings.for_config(after)
        self.incoming.router = Router(after)
        self._trust_tls_trunks(after)

    def _trust_tls_trunks(self, config: Config) -> None:
        """A TLS trunk's own CA file, or no check where its config says so."""
        for domain in config.domains:
            for trunk in domain.trunks:
                if trunk.transport != "tls" or (trunk.tls_verify and not trunk.tls_ca_file):
                    continue  # the system's CAs
                host, port = split_hostport(trunk.address)
                context = client_context(cafile=trunk.tls_ca_file, verify=trunk.tls_verify)
                self.endpoint.trust_tls(host, port, context)

    def _callback_secret(self, domain: str) -> str | None:
        config = self.directory.domain(domain)
        return config.callback_secret if config is not None else None

    def _api_token(self, domain: str) -> str | None:
        config = self.directory.domain(domain)
        return config.api_token if config is not None else None

    def cti_subscribers(self) -> int:
        return sum(len(subscribers) for subscribers in self.cti.subscribers.values())

    def bindings(self) -> int:
        return self.registrar.location.count()

    def rtp_packets(self) -> dict[str, int]:
        return self.media.packet_counts()

    def statistics(self) -> dict[str, int]:
        return {
            **self.endpoint.statistics(),
            **self.registrar.statistics(),
            **self.media.statistics(),
            **self.engine.statistics(),
            **self.callbacks.counters,
            **self.cti.counters,
            **self.api_auth.statistics(),
            **self.writes.counters,
            **self.overload.counters,
            **self.trunks.counters,
            **(self.cti_feed.statistics() if self.cti_feed is not None else {}),
            **(self.node_calls.counters if self.node_calls is not None else {}),
        }

    async def start(self) -> None:
        await migrate(self.database)
        await self._join_cluster()
        if isinstance(self.state, RedisState) and self.node_calls is not None:
            await self._share_calls(self.state, self.node_calls)
        await self.directory_sync.start()
        await self.registrar.start()
        self.directory_feed.seed(self.registrar.location.all_bindings())
        self.directory.listeners.append(self.directory_feed.reconfigured)
        await self.callbacks.start()
        await self.endpoint.start()
        self.trunks.start()
        self.overload.start()

    async def stop(self) -> None:
        await self.overload.stop()
        await self.directory_sync.close()
        await self.trunks.close()
        for call in list(self.engine.calls):
            call.hang_up("shutting down")
        for session in list(self.media.sessions):
            session.close()
        await asyncio.gather(*self.engine.pending_writes, return_exceptions=True)
        if self.cti_feed is not None:  # the calls' last events reach the other nodes
            await self.cti_feed.close()
        await self._leave_cluster()
        await self.endpoint.close()
        await self.callbacks.close()
        await self.registrar.close()
        await self.writes.drain()
        await self.database.dispose()

    async def run(self) -> None:
        """Serve until SIGTERM/SIGINT or ``stopping`` is set, then shut down in order."""
        await self.start()
        # What exists now (modules, the directory, the app) lives as long as the process.
        # Frozen, the collector stops re-scanning it; and a call's many small objects mostly
        # die young, so a larger first generation lets them go before they are promoted and
        # re-scanned by full collections. Measured at 100 calls/s (bench.call_group_ladder):
        # with Python's defaults (700, 10, 10) full collections paused the loop up to 280 ms
        # and API p99 was 150 ms; with these, 19 ms, and a third of the collector's CPU.
        # The second generation is collected after 2 young collections, not 20: what
        # survives a young collection is mostly a call's SIP objects, which the RFC 6026
        # timers keep for 32 s, and 20 young collections' worth of them paused the loop
        # 220-260 ms at 200 calls/s (API p99 210-260 ms); after 2, 60-85 ms (p99 55-98 ms;
        # the collector found no garbage in either). Full collections keep their pace
        # (2000 young collections apart, as with (20_000, 20, 100)).
        # A young collection comes when allocations outrun deallocations by the first
        # threshold, and under a steady load they nearly match: each call's objects die
        # about as fast as the next call's are made. With transactions held as octets
        # (``held_as_wire``) less outlives a call, and 100_000 makes young collections rare
        # (2 in a 10 s step at 200/s instead of 12-15, and no second-generation ones): the
        # collector's CPU in such a step 460-850 -> 90-280 ms, its longest pause the same
        # (~80 ms), no garbage found either way. Cyclic garbage (an error's traceback)
        # waits for at most 100_000 allocations.
        gc.collect()
        gc.freeze()
        gc.set_threshold(100_000, 2, 1000)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stopping.set)
        host, port = self.config.server.http_address
        log.info("http listening on %s:%d (API, ws_cti, /board, /metrics)", host, port)
        http_task = asyncio.create_task(self.http.serve())
        stopper = asyncio.create_task(self.stopping.wait())
        await asyncio.wait({http_task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        log.info("shutting down")
        self.http.should_exit = True
        with suppress(asyncio.CancelledError):
            await http_task
        stopper.cancel()
        await self.stop()
        log.info("stopped")
