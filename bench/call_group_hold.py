"""Concurrency hold: N bridged call_group calls held at once, with relayed RTP, and
without RTP for the memory each held call costs.

    python -m bench.call_group_hold [--calls 300] [--seconds 60]

Set-up: N call_group requests at 50/s to groups of 10 members; members and the trunk are
SIPp (``bench/scenarios/uas_hold_rtp.xml``) answering at once with SDP that points at this
process's own RTP sockets, one per call side, and noting the relay port they were offered.
With RTP: every socket sends 50 packets/s of PCMU (172 bytes) to its relay port for
``--seconds``; receivers measure loss and RFC 3550 interarrival jitter (``bench.media``).
Baseline, in the same invocation: the same sockets and traffic, directly, no relay.
Without RTP: Switchboard's resident memory with the N calls held, minus before them, just
after set-up and once the set-up transactions have expired (35 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop

from bench.media import Receiver, _endpoint, _run
from bench.pbx import (
    SCENARIOS,
    CallbackSink,
    Directory,
    HttpClient,
    cpu_seconds,
    free_port,
    rss_bytes,
    sipp,
    switchboard,
)
from bench.report import write_section

GROUP_SIZE = 10
SETUP_RATE = 50
SETTLE = 35.0  # seconds: longer than the 32 s that finished transactions are kept


def _inject(path: Path, peers: list[Receiver], map_file: Path) -> Path:
    path.write_text("SEQUENTIAL\n" + "".join(f"{p.port};{map_file}\n" for p in peers))
    return path


def _relay_ports(map_file: Path) -> dict[int, int]:
    if not map_file.exists():
        return {}
    pairs = (line.split() for line in map_file.read_text().splitlines() if line.strip())
    return {int(ours): int(relay) for ours, relay in pairs}


async def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def hold(calls: int, seconds: float, rtp: bool, workdir: Path) -> dict[str, Any]:
    members = [await _endpoint() for _ in range(calls)]
    trunks = [await _endpoint() for _ in range(calls)]
    tag = "rtp" if rtp else "mem"
    member_map, trunk_map = workdir / f"member_{tag}.map", workdir / f"trunk_{tag}.map"
    member_port, trunk_port, sink_port = free_port(), free_port(), free_port(socket.SOCK_STREAM)
    scenario = str(SCENARIOS / "uas_hold_rtp.xml")
    sides = (("member", member_port, members, member_map), ("trunk", trunk_port, trunks,
                                                                  trunk_map))  # fmt: skip
    peers = [
        sipp(["-sf", scenario, "-inf", str(_inject(workdir / f"{name}_{tag}.csv", sockets, file)),
              "-i", "127.0.0.1", "-p", str(port), "-m", str(calls), "-max_socket", "60000"],
             workdir / f"sipp_{name}_{tag}.log")
        for name, port, sockets, file in sides
    ]  # fmt: skip
    sink = CallbackSink(sink_port)
    await sink.start()
    users = -(-calls // GROUP_SIZE) * GROUP_SIZE
    directory = Directory(users, GROUP_SIZE, member_port, trunk_port)
    result: dict[str, Any] = {"calls": calls}
    with switchboard(directory, workdir, sink_port) as pbx:
        client = HttpClient(pbx.http_port, connections=16)
        await client.open()
        await asyncio.sleep(1.0)
        rss_before = rss_bytes(pbx.pid)
        url = f"http://127.0.0.1:{sink_port}/hook"
        for n in range(calls):
            _, answer = await client.post("/basix/api/call_group", {
                "group_name": f"group{n % (users // GROUP_SIZE):03d}",
                "destination": "0312341234", "callback_url": url})  # fmt: skip
            assert answer.get("result_code") == 0, answer
            await asyncio.sleep(1 / SETUP_RATE)
        await _wait(lambda: len(sink.answered) >= calls, 60, "every call answered")
        await _wait(lambda: len(_relay_ports(member_map)) >= calls
                    and len(_relay_ports(trunk_map)) >= calls, 30, "relay ports")  # fmt: skip
        await asyncio.sleep(2.0)  # set-up traffic done; the heap settles
        result["rss_before"] = rss_before
        result["rss_held"] = rss_bytes(pbx.pid)
        if not rtp:  # set-up transactions linger 32 s (RFC 6026 Timer M, §17 Timer K/J)
            await asyncio.sleep(SETTLE)
            result["rss_steady"] = rss_bytes(pbx.pid)
        else:
            for peer in members + trunks:  # ringback heard before the bridge is not counted
                peer.received, peer.jitter, peer.last_transit = 0, 0.0, None
            to_a, to_b = _relay_ports(member_map), _relay_ports(trunk_map)
            targets = [(to_a[m.port], to_b[t.port]) for m, t in zip(members, trunks, strict=True)]
            cpu_before = cpu_seconds(pbx.pid)
            result["relayed"] = await _run(list(zip(members, trunks, strict=True)), targets,
                                           seconds)  # fmt: skip
            result["cpu_pct"] = 100 * (cpu_seconds(pbx.pid) - cpu_before) / (seconds + 0.5)
            for peer in members + trunks:
                peer.received, peer.jitter, peer.last_transit = 0, 0.0, None
            direct = [(t.port, m.port) for m, t in zip(members, trunks, strict=True)]
            result["direct"] = await _run(list(zip(members, trunks, strict=True)), direct,
                                          seconds)  # fmt: skip
        for uuid in sink.answered:
            await client.post("/basix/api/hangup", {"uuid": uuid})
        client.close()
    sink.close()
    for process in peers:
        process.wait(30)
    for peer in members + trunks:
        peer.transport.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--workdir", type=Path, help="keep logs and configs here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hold-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        memory = uvloop.run(hold(args.calls, args.seconds, False, workdir))
        media = uvloop.run(hold(args.calls, args.seconds, True, workdir))
    print(json.dumps({"memory": memory, "media": media}), flush=True)
    per_call = (memory["rss_held"] - memory["rss_before"]) / args.calls
    steady = (memory["rss_steady"] - memory["rss_before"]) / args.calls
    d, r = media["direct"], media["relayed"]
    if args.no_write:
        return
    body = (
        f"{args.calls} call_group calls set up at {SETUP_RATE}/s (SIPp members and trunk), "
        f"all bridged at once, held for {args.seconds:g} s with 50 packets/s each way on every "
        "call (PCMU, 172 bytes); loss and jitter seen by the receiving sockets. Baseline: "
        "the same sockets and traffic directly, no relay, same run.\n\n"
        "| calls held | path | packets sent | loss | jitter p50 / max ms | Switchboard CPU |\n"
        "|---|---|---|---|---|---|\n"
        f"| {args.calls} | direct (baseline) | {d['sent']} | {d['loss_pct']:.3f} % | "
        f"{d['jitter_ms_p50']:.2f} / {d['jitter_ms_max']:.2f} | – |\n"
        f"| {args.calls} | through Switchboard | {r['sent']} | {r['loss_pct']:.3f} % | "
        f"{r['jitter_ms_p50']:.2f} / {r['jitter_ms_max']:.2f} | {media['cpu_pct']:.0f} % |\n\n"
        f"Memory without RTP (Switchboard's resident set): {memory['rss_before'] / 2**20:.1f} "
        f"MiB before the calls; {memory['rss_held'] / 2**20:.1f} MiB just after all "
        f"{args.calls} were set up ({per_call / 1024:.1f} KiB per call, finished set-up "
        f"transactions still kept); {memory['rss_steady'] / 2**20:.1f} MiB after "
        f"{SETTLE:g} s of holding: **{steady / 1024:.1f} KiB per held call**."
    )
    command = f"python -m bench.call_group_hold --calls {args.calls} --seconds {args.seconds:g}"
    write_section("Concurrency hold with relayed media", command, body)


if __name__ == "__main__":
    main()
