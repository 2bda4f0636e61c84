"""The cluster ladder's section of docs/benchmarks.md: a table per set-up, the set-ups side
by side as ratios to the one-node cluster run in the same invocation, and what the figures
say: where each set-up saturates, the CPU per call of the whole cluster, and what more
cores would give when the machine itself is the limit.
"""

from __future__ import annotations

import math
import os
from typing import Any

from bench.cluster_config import USERS, Members
from bench.cluster_topology import Topology
from bench.report import write_section

SECTION = "call_group ladder: one node against two behind Kamailio"
PACE = 0.95  # completed/s at least this share of the offer: the rung keeps pace
BOX_LIMIT = 0.9  # machine busy at least this share of its cores: the machine is the limit
PROJECTED_CORES = 8
PARTS = ("nodes", "front", "redis", "postgres")

Row = dict[str, Any]


def keeps_pace(row: Row) -> bool:
    return bool(row["failed"] == 0 and row["completed_per_s"] >= PACE * row["rate"])


def sustained(rows: list[Row]) -> Row | None:
    """The last rung before the first that fails a call or falls behind the offer."""
    last = None
    for row in sorted(rows, key=lambda r: r["rate"]):
        if not keeps_pace(row):
            break
        last = row
    return last


def peak(rows: list[Row]) -> Row:
    return max(rows, key=lambda r: r["completed_per_s"])


def ms_per_call(row: Row, part: str) -> float:
    spent: float = row["cpu_s"].get(part, 0.0)
    return 1000 * spent / max(int(row["completed"]), 1)


def _table(rows: list[Row]) -> str:
    lines = [
        "| offered/s | completed/s | failed | drain s | SIP retrans. | API p50 / p99 ms "
        "| cluster CPU | cluster ms/call | nodes / front / Redis / PostgreSQL ms/call "
        "| SIPp ms/call | generator CPU | machine CPU |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        parts = " / ".join(f"{ms_per_call(r, part):.2f}" for part in PARTS)
        lines.append(
            f"| {r['rate']} | {r['completed_per_s']:.0f} | {r['failed']} | {r['drain_s']:.1f} "
            f"| {r['retransmitted']} | {r['api_ms_p50']:.1f} / {r['api_ms_p99']:.1f} "
            f"| {r['cluster_cpu_pct']:.0f} % | {r['cluster_ms_per_call']:.2f} | {parts} "
            f"| {ms_per_call(r, 'sipp'):.2f} | {r['generator_cpu_pct']:.0f} % "
            f"| {r['box_cpu_pct']:.0f} % |"
        )
    return "\n".join(lines)


def _side_by_side(results: dict[Topology, list[Row]]) -> str:
    topologies = list(results)
    base = results.get(Topology.CLUSTER1)
    head = " | ".join(f"{t.label} completed/s (failed)" for t in topologies)
    ratios = [t for t in topologies if base is not None and t is not Topology.CLUSTER1]
    ratio_head = "".join(f" | {t.label} / 1 node behind Kamailio" for t in ratios)
    lines = [
        f"| offered/s | {head}{ratio_head} |",
        "|---|" + "---|" * (len(topologies) + len(ratios)),
    ]
    by_rate = {t: {r["rate"]: r for r in rows} for t, rows in results.items()}
    for rate in sorted({r["rate"] for rows in results.values() for r in rows}):
        cells = []
        for t in topologies:
            row = by_rate[t].get(rate)
            cells.append(f"{row['completed_per_s']:.0f} ({row['failed']})" if row else "–")
        for t in ratios:
            row, one = by_rate[t].get(rate), by_rate[Topology.CLUSTER1].get(rate)
            cells.append(
                f"{row['completed_per_s'] / max(one['completed_per_s'], 1e-9):.2f}"
                if row and one
                else "–"
            )
        lines.append(f"| {rate} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _findings(results: dict[Topology, list[Row]], cores: int) -> list[str]:
    said = []
    for t, rows in results.items():
        top, held = peak(rows), sustained(rows)
        pace = (
            f"kept pace with no failed call up to {held['rate']}/s "
            f"({held['cluster_ms_per_call']:.2f} ms of cluster CPU per call there, "
            + ", ".join(
                f"{part} {ms_per_call(held, part):.2f}" for part in PARTS if part in held["cpu_s"]
            )
            + ")"
            if held
            else "fell behind or failed calls from the first rung"
        )
        said.append(
            f"- {t.label}: {pace}; at most {top['completed_per_s']:.0f} completed/s "
            f"(offered {top['rate']}/s, machine CPU {top['box_cpu_pct']:.0f} %)."
        )
    one, two = results.get(Topology.CLUSTER1), results.get(Topology.CLUSTER2)
    if one and two:
        said.append(_compare(one, two))
        said.extend(_per_node(one, two))
        said.extend(_projection(two, cores))
    return said


def _per_node(one: list[Row], two: list[Row]) -> list[str]:
    """A node's CPU per call it handles when each node takes the same load: one node at R
    against two at 2R (R each). What scaling costs a node, apart from the machine's cores."""
    by_rate = {r["rate"]: r for r in two}
    pairs = [(row, by_rate[2 * row["rate"]]) for row in one if 2 * row["rate"] in by_rate]
    if not pairs:
        return []
    said = ", ".join(
        f"{alone['rate']}/s per node: {ms_per_call(alone, 'nodes'):.2f} ms alone, "
        f"{ms_per_call(pair, 'nodes'):.2f} ms of two"
        for alone, pair in pairs
    )
    return [
        f"- Node CPU per call with the same load on each node (one node at R, two at 2R): {said}."
    ]


def _compare(one: list[Row], two: list[Row]) -> str:
    ratio = peak(two)["completed_per_s"] / max(peak(one)["completed_per_s"], 1e-9)
    text = f"- Two nodes against one, both behind Kamailio: {ratio:.2f}× the completed calls/s"
    held_one, held_two = sustained(one), sustained(two)
    if held_one and held_two:
        text += (
            f", {held_two['rate'] / held_one['rate']:.2f}× the highest rate kept with no "
            f"failure; cluster CPU per call {held_two['cluster_ms_per_call']:.2f} ms "
            f"against {held_one['cluster_ms_per_call']:.2f} ms"
        )
    return text + "."


def _projection(two: list[Row], cores: int) -> list[str]:
    """What ``PROJECTED_CORES`` would give, from the per-call CPU of the two-node cluster at
    the highest rung it kept pace with; only when the machine was the limit at its peak."""
    top, held = peak(two), sustained(two)
    if held is None:
        return []
    if top["box_cpu_pct"] < 100 * cores * BOX_LIMIT:
        return [
            f"- The machine was not the limit of two nodes: {top['box_cpu_pct']:.0f} % "
            f"busy of {100 * cores} % at their peak."
        ]
    cluster = held["cluster_ms_per_call"]
    tools = ms_per_call(held, "sipp") + ms_per_call(held, "generator")
    node = ms_per_call(held, "nodes")  # one node's CPU per call it handles
    budget = 1000.0 * PROJECTED_CORES
    alone, shared = budget / cluster, budget / (cluster + tools)
    nodes = math.ceil(alone * node / 1000.0)  # a node is one Python process: one core at most
    return [
        f"- The {cores}-core machine was the limit at two nodes' peak ({top['box_cpu_pct']:.0f} % "
        f"busy of {100 * cores} %). From CPU per call at {held['rate']}/s ({cluster:.2f} ms the "
        f"cluster, {tools:.2f} ms SIPp and the generator), {PROJECTED_CORES} cores would give "
        f"about {alone:.0f} calls/s with the load tools on other machines (the nodes taking "
        f"{alone * node / 1000:.1f} cores: {nodes} nodes, as a node is one Python process, "
        f"one core at most; Kamailio, Redis and PostgreSQL the rest, if they scale "
        f"with them), or about {shared:.0f} calls/s with the load tools on the same "
        f"{PROJECTED_CORES} cores. An estimate from per-call CPU, not a measurement."
    ]


def write_report(
    results: dict[Topology, list[Row]],
    seconds: float,
    members: Members,
    command: str,
    *,
    write: bool,
    cores: int = os.cpu_count() or 1,
) -> str:
    """The section's body; written into docs/benchmarks.md when ``write``."""
    reach = (
        "registered through the front once per set-up (digest, from the member SIPp's port)"
        if members is Members.REGISTERED
        else "static contacts (each node rings the member SIPp directly)"
    )
    bindings = [
        f"{t.label}: {rows[0]['bindings']}" for t, rows in results.items() if rows[0]["bindings"]
    ]
    body = (
        f"The call_group ladder (see above) against each set-up in turn, in one run: each rung "
        f"offers the rate for {seconds:g} s, open loop, to 100 groups of 10 members, spread "
        f"over the nodes' APIs in turn; destination a SIPp trunk that answers at once, talks "
        f"1 s and hangs up. Members: one SIPp answering at once and echoing Record-Route, "
        f"{reach}. Set-ups: one node on SQLite; one node in cluster mode behind Kamailio "
        f"(`deploy/kamailio`) with PostgreSQL (its default settings, fsync on, as "
        f"`scripts/cluster` starts it) and Redis, the baseline; two nodes behind the same "
        f"front sharing PostgreSQL and Redis. Everything runs on this machine, SIPp and "
        f"the generator included. Completed, failed, drain and completed/s as in the ladder. "
        f"Cluster CPU: every process of the set-up with its children (nodes, Kamailio, Redis, "
        f"PostgreSQL; 100 % = one core) from the offer's start to the last call's end, and per "
        f"completed call; the generator's beside it, and SIPp's per call (read once SIPp has "
        f"exited: a SIPp whose calls were refused waits for its timeout); machine CPU is "
        f"/proc/stat's busy time, everything on the machine. A rung keeps pace when no call "
        f"failed and completed/s is at least {PACE:.0%} of the offer."
        + (
            f" Bindings each node counted after registering ({USERS} members): "
            + "; ".join(bindings)
            + "."
            if bindings
            else ""
        )
    )
    parts = [body, "### Side by side\n\n" + _side_by_side(results)]
    parts.append("\n".join(_findings(results, cores)))
    parts += [f"### {t.label}\n\n" + _table(rows) for t, rows in results.items()]
    text = "\n\n".join(parts)
    print(text, flush=True)
    if write:
        write_section(SECTION, command, text)
    return text
