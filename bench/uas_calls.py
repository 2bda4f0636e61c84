"""Calls per second of a UAS built on the Switchboard endpoint, driven by SIPp's ``uac``.

    python -m bench.uas_calls [--calls N] [--rate R] [--limit L]

Each call is INVITE → 100 → 180 → 200 → ACK → BYE → 200. SIPp offers ``--rate`` calls/s with
at most ``--limit`` calls open, so a target slower than the offer is saturated and its own
ceiling shows. The baseline, in the same run, is SIPp ``uac`` → SIPp ``uas`` (C++ on both
sides): the most this machine and SIPp can do.
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from bench.report import write_section

COUNT = re.compile(r"(Successful call|Failed call)\s*\|\s*\d+\s*\|\s*(\d+)")
_RETRANS = re.compile(r"^\s+(INVITE|BYE) ---------->\s+\d+\s+(\d+)", re.M)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def target(kind: str, port: int) -> Iterator[None]:
    if kind == "sipp":
        command = ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-nostdin"]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, text=True)
        time.sleep(0.5)
    else:
        loop = kind.split(":")[1]
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.uas_server", str(port), "--loop", loop],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        process.stdout.readline()  # "ready"
    try:
        yield
    finally:
        process.terminate()
        process.wait(10)


def drive(port: int, calls: int, rate: int, limit: int) -> dict[str, float]:
    command = [
        "sipp", "-sn", "uac", f"127.0.0.1:{port}", "-i", "127.0.0.1", "-p", str(free_port()),
        "-m", str(calls), "-r", str(rate), "-l", str(limit), "-nostdin", "-timeout", "120",
    ]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    counts = dict((k, int(v)) for k, v in COUNT.findall(result.stdout))
    retransmissions = sum(int(n) for _, n in _RETRANS.findall(result.stdout))
    ok = counts.get("Successful call", 0)
    return {
        "calls_per_s": ok / elapsed,
        "ok": ok,
        "failed": counts.get("Failed call", 0),
        "retransmissions": retransmissions,
        "elapsed": elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rate", type=int, default=5000, help="offered calls/s")
    parser.add_argument("--limit", type=int, default=100, help="open calls at most")
    args = parser.parse_args()
    results = {}
    for kind in ("sipp", "switchboard:uvloop", "switchboard:asyncio"):
        port = free_port()
        with target(kind, port):
            results[kind] = drive(port, args.calls, args.rate, args.limit)
        print(kind, results[kind], flush=True)
    ceiling = results["sipp"]["calls_per_s"]
    names = {
        "sipp": "SIPp uas (ceiling)",
        "switchboard:uvloop": "Switchboard UAS, uvloop",
        "switchboard:asyncio": "Switchboard UAS, asyncio loop",
    }
    rows = [
        f"| {names[k]} | {r['calls_per_s']:.0f} | {r['calls_per_s'] / ceiling:.2f} | "
        f"{r['ok']:.0f} | {r['failed']:.0f} | {r['retransmissions']:.0f} |"
        for k, r in results.items()
    ]
    body = (
        f"SIPp `uac` offers {args.rate} calls/s, at most {args.limit} open, {args.calls} calls "
        "per target; each call is INVITE/100/180/200/ACK/BYE/200 over UDP on loopback. "
        "Retransmissions are SIPp's INVITE and BYE resends (a slow answer).\n\n"
        "| target | calls/s | ratio to ceiling | completed | failed | retransmissions |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    command = (
        f"python -m bench.uas_calls --calls {args.calls} --rate {args.rate} --limit {args.limit}"
    )
    write_section("UAS calls/s against SIPp", command, body)


if __name__ == "__main__":
    main()
