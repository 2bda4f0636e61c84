"""Prometheus metrics (``prometheus_client``), served at ``GET /metrics`` for the
``server.metrics_token`` bearer token.

Each server has a registry of its own (tests run several in one process). What is counted
as it happens: calls ended by kind and outcome, hunt and ring durations, API latency by
method. What is read at scrape time: calls active by kind, channels, registrations, CTI
subscribers, the callback outbox's depth and oldest age, RTP packets, trunk states, and
every counter of ``/statistics`` (SIP, registrar, callbacks, CTI, overload …) as
``switchboard_<name>_total`` (or a gauge for the levels among them).
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from switchboard.pbx.engine import Engine
from switchboard.pbx.legs import BridgeState
from switchboard.pbx.live import LiveCall
from switchboard.trunks import TrunkMonitor, TrunkState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# /statistics names that are levels, not counts
_LEVELS = frozenset(
    (
        "calls",
        "channels",
        "media_sessions",
        "rtp_port_pairs_in_use",
        "tcp_connections",
        "tls_connections",
        "awaiting_ack",
        "bindings",
        "http_connections",
        "write_queue_depth",
        "transactions",
    )
)
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_RING_SECONDS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300)


class Sources(Protocol):
    """What the server offers to be measured (``app.Server``)."""

    engine: Engine
    trunks: TrunkMonitor

    def statistics(self) -> dict[str, int]: ...

    def cti_subscribers(self) -> int: ...

    def bindings(self) -> int: ...

    def rtp_packets(self) -> Mapping[str, int]: ...


class Metrics:
    def __init__(self, sources: Sources, clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry()
        self.sources = sources
        self.clock = clock
        self.outbox: tuple[int, float | None] = (0, None)  # set before each scrape
        registry = self.registry
        self.calls_ended = Counter(
            "switchboard_calls_ended",
            "Calls ended, by kind and outcome",
            ["kind", "outcome"],
            registry=registry,
        )
        self.hunt_seconds = Histogram(
            "switchboard_hunt_seconds",
            "From the start of a call_group/call_user/call_external until its originating"
            " leg answered or the hunt gave up",
            ["kind", "answered"],
            buckets=_RING_SECONDS,
            registry=registry,
        )
        self.ring_seconds = Histogram(
            "switchboard_destination_ring_seconds",
            "From offering the destination until it answered or failed",
            ["answered"],
            buckets=_RING_SECONDS,
            registry=registry,
        )
        self.api_seconds = Histogram(
            "switchboard_api_request_seconds",
            "HTTP API latency by method (route) and status",
            ["method", "status"],
            buckets=_SECONDS,
            registry=registry,
        )
        registry.register(_Levels(self))
        sources.engine.released_listeners.append(self.call_ended)

    def scrape(self) -> bytes:
        return generate_latest(self.registry)

    def api_request(self, route: str, status: int, seconds: float) -> None:
        self.api_seconds.labels(route, str(status)).observe(seconds)

    def call_ended(self, call: LiveCall) -> None:
        state = call.machine.call
        kind = state.plan.kind.value
        self.calls_ended.labels(kind, outcome(call)).inc()
        origin = state.origin or next((s for s in state.earlier if s.role.value == "origin"), None)
        if origin is not None and origin.hunt.outcome is not None:
            ended = max((a.ended_at or 0.0 for a in origin.hunt.attempts), default=0.0)
            answered = origin.winner() is not None
            self.hunt_seconds.labels(kind, str(answered).lower()).observe(
                max(0.0, ended - state.started_at)
            )
        offered = state.destination_offered_at
        if offered is not None and state.ended_at is not None:
            answered_at = state.destination_answered_at
            until = answered_at if answered_at is not None else state.ended_at
            self.ring_seconds.labels(str(answered_at is not None).lower()).observe(
                max(0.0, until - offered)
            )


def outcome(call: LiveCall) -> str:
    """A call's outcome in a few words (a label: a small fixed set)."""
    state = call.machine.call
    if state.destination_answered_at is not None or state.earlier:
        return "completed"
    if state.failure is not None:
        return "trunk_down"
    origin = state.origin
    if origin is not None and origin.winner() is None:
        payload = call.machine.outcome or {}
        error = payload.get("error")
        return str(error.get("id", "not_answered")) if isinstance(error, dict) else "canceled"
    if state.destination_status is not None:
        status = state.destination_status
        return "busy" if status in (486, 600) else "refused" if status < 500 else "failed"
    return "canceled"


class _Levels(Collector):
    """What is read at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        sources = self.metrics.sources
        active = GaugeMetricFamily(
            "switchboard_calls_active",
            "Calls in progress, by kind and state",
            labels=["kind", "state"],
        )
        counts = Tally(
            (call.machine.call.plan.kind.value, call.machine.state.value)
            for call in sources.engine.calls
            if call.machine.state is not BridgeState.ENDED
        )
        for (kind, state), count in sorted(counts.items()):
            active.add_metric([kind, state], count)
        yield active
        yield GaugeMetricFamily(
            "switchboard_registrations", "Live phone bindings", value=sources.bindings()
        )
        yield GaugeMetricFamily(
            "switchboard_cti_subscribers",
            "Connected ws_cti sockets",
            value=sources.cti_subscribers(),
        )
        depth, oldest = self.metrics.outbox
        yield GaugeMetricFamily(
            "switchboard_callback_outbox_depth", "Callbacks waiting to be delivered", value=depth
        )
        age = max(0.0, self.metrics.clock() - oldest) if oldest is not None else 0.0
        yield GaugeMetricFamily(
            "switchboard_callback_outbox_oldest_seconds",
            "Age of the oldest callback waiting to be delivered",
            value=age,
        )
        packets = CounterMetricFamily(
            "switchboard_rtp_packets", "RTP packets relayed, by what happened", labels=["kind"]
        )
        for kind, count in sorted(sources.rtp_packets().items()):
            packets.add_metric([kind.removeprefix("packets_")], count)
        yield packets
        trunks = GaugeMetricFamily(
            "switchboard_trunk_up",
            "1 when a trunk answers its OPTIONS pings, 0 when it does not (absent: not known)",
            labels=["domain", "trunk"],
        )
        for status in sources.trunks.statuses.values():
            if status.state is not TrunkState.UNKNOWN:
                trunks.add_metric(
                    [status.domain, status.name], 1 if status.state is TrunkState.UP else 0
                )
        yield trunks
        for name, value in sorted(sources.statistics().items()):
            full = f"switchboard_{name}"
            if name in _LEVELS:
                yield GaugeMetricFamily(full, f"{name} (see /statistics)", value=value)
            else:
                yield CounterMetricFamily(full, f"{name} (see /statistics)", value=value)
