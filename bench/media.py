"""RTP relay load: N concurrent calls, 50 packets/s each way, through the relay and direct.

    python -m bench.media [--streams 50 100 200 300] [--seconds 10]

For each N, a generator process (this one, uvloop) opens 2·N loopback sockets — a caller
and a far end per call — and sends 172-byte PCMU packets every 20 ms from each, spread
evenly over the 20 ms period. Each payload carries its send time, so the receiver measures
loss and interarrival jitter (RFC 3550 §A.8 estimator, in ms). The same traffic is run
directly (caller → far end, no relay) as the baseline, then through a relay process
(``bench.media_relay_process``), whose CPU time is measured by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import uvloop

from bench.report import write_section
from switchboard.media.rtp import RtpHeader

PERIOD = 0.020
_STAMP = struct.Struct("!d")


@dataclass
class Receiver(asyncio.DatagramProtocol):
    received: int = 0
    jitter: float = 0.0
    last_transit: float | None = None
    transport: Any = None
    samples: list[float] = field(default_factory=list)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        transit = time.perf_counter() - _STAMP.unpack_from(data, 12)[0]
        self.received += 1
        if self.last_transit is not None:
            self.jitter += (abs(transit - self.last_transit) - self.jitter) / 16
        self.last_transit = transit

    @property
    def port(self) -> int:
        return int(self.transport.get_extra_info("sockname")[1])


async def _endpoint() -> Receiver:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(Receiver, local_addr=("127.0.0.1", 0))
    return protocol


async def _run(
    pairs: list[tuple[Receiver, Receiver]], targets: list[tuple[int, int]], seconds: float
) -> dict[str, float]:
    """Send from every caller to targets[i][0] and every far end to targets[i][1]."""
    loop = asyncio.get_running_loop()
    count = len(pairs)
    ticks = int(seconds / PERIOD)
    start = loop.time() + 0.2
    sent = 0
    header = RtpHeader(0, 0, 0, 0x1234).pack()
    filler = b"\xff" * (160 - _STAMP.size)
    for tick in range(ticks):
        for index, (caller, far) in enumerate(pairs):
            due = start + tick * PERIOD + index * PERIOD / count
            delay = due - loop.time()
            if delay > 0.001:
                await asyncio.sleep(delay)
            stamp = _STAMP.pack(time.perf_counter())
            caller.transport.sendto(header + stamp + filler, ("127.0.0.1", targets[index][0]))
            far.transport.sendto(header + stamp + filler, ("127.0.0.1", targets[index][1]))
            sent += 2
    await asyncio.sleep(0.3)  # let the last packets land
    received = sum(c.received + f.received for c, f in pairs)
    jitters = sorted(x.jitter * 1000 for pair in pairs for x in pair)
    return {
        "sent": sent,
        "lost": sent - received,
        "loss_pct": 100 * (sent - received) / sent,
        "jitter_ms_p50": jitters[len(jitters) // 2],
        "jitter_ms_max": jitters[-1],
    }


async def measure(streams: int, seconds: float) -> dict[str, dict[str, float]]:
    direct_pairs = [(await _endpoint(), await _endpoint()) for _ in range(streams)]
    direct = await _run(direct_pairs, [(f.port, c.port) for c, f in direct_pairs], seconds)
    for c, f in direct_pairs:
        c.transport.close()
        f.transport.close()
    pairs = [(await _endpoint(), await _endpoint()) for _ in range(streams)]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.media_relay_process",
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write((json.dumps([[c.port, f.port] for c, f in pairs]) + "\n").encode())
    await process.stdin.drain()
    relay_ports = json.loads(await process.stdout.readline())
    relayed = await _run(pairs, [(a, b) for a, b in relay_ports], seconds)
    process.stdin.close()
    report = json.loads(await process.stdout.readline())
    await process.wait()
    relayed["cpu_pct_per_stream"] = 100 * report["cpu_seconds"] / (seconds + 0.5) / streams
    relayed["us_per_packet"] = 1e6 * report["cpu_seconds"] / max(report["packets_relayed"], 1)
    for c, f in pairs:
        c.transport.close()
        f.transport.close()
    return {"direct": direct, "relay": relayed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, nargs="+", default=[50, 100, 200, 300])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    rows = []
    for streams in args.streams:
        result = uvloop.run(measure(streams, args.seconds))
        print(streams, json.dumps(result), flush=True)
        d, r = result["direct"], result["relay"]
        rows.append(
            f"| {streams} | {streams * 100} | {d['loss_pct']:.3f} % | {r['loss_pct']:.3f} % | "
            f"{d['jitter_ms_p50']:.2f} / {d['jitter_ms_max']:.2f} | "
            f"{r['jitter_ms_p50']:.2f} / {r['jitter_ms_max']:.2f} | "
            f"{r['cpu_pct_per_stream']:.2f} % | {r['us_per_packet']:.1f} |"
        )
    body = (
        "Each call sends 50 packets/s each way (PCMU, 172 bytes); loss and jitter are seen "
        "by the receivers; CPU is the relay process's own, per call, during the run.\n\n"
        "| calls | packets/s offered | loss direct | loss via relay | jitter direct p50/max ms"
        " | jitter via relay p50/max ms | relay CPU per call | relay CPU µs/packet |\n"
        "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    command = (
        f"python -m bench.media --streams {' '.join(map(str, args.streams))} "
        f"--seconds {args.seconds:g}"
    )
    write_section("RTP relay: concurrent calls", command, body)


if __name__ == "__main__":
    main()
