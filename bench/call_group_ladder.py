"""call_group throughput ladder: posts at increasing rates against SIPp phones and trunk.

    python -m bench.call_group_ladder [--rates 10 25 50 100 200 300 400] [--seconds 10]

Each step offers ``rate`` call_group requests per second for ``seconds`` (open loop: sent on
schedule whether or not earlier ones were answered), each to one of 100 groups of 10
members in turn. Members are users reached at one SIPp ``uas`` that answers at once; the
destination is a PSTN number on a SIPp trunk that answers at once, talks 1 s and hangs up.
A call is complete when the API accepted it, its callback said ``result_code`` 0, and both
SIPp peers counted their call successful. Per step: completed calls/s, failures, SIP
retransmissions (Switchboard's own), API latency p50/p99, Switchboard CPU.

Baseline, in the same invocation and at the same rate: SIPp ``uac`` → SIPp ``uas`` direct,
1 s calls (``-d 1000``): what the machine and SIPp do with no PBX in between. A call_group
call is two such calls (member leg and trunk leg) plus the API, the hunt and a callback.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import uvloop

from bench import profile
from bench.pbx import (
    AUTH,
    SCENARIOS,
    CallbackSink,
    Directory,
    HttpClient,
    cpu_seconds,
    free_port,
    percentile,
    sipp,
    switchboard,
)
from bench.report import write_section

COUNT = re.compile(r"(Successful call|Failed call)\s*\|\s*\d+\s*\|\s*(\d+)")
GROUPS, GROUP_SIZE = 100, 10
TALK = 1.0  # seconds each call lasts once bridged (bench/scenarios/uas_trunk_talk.xml)


def sipp_counts(log: Path) -> tuple[int, int]:
    counts = dict((k, int(v)) for k, v in COUNT.findall(log.read_text(errors="replace")))
    return counts.get("Successful call", 0), counts.get("Failed call", 0)


def healthz(port: int) -> dict[str, int]:
    """The server's counters (``GET /statistics``, which takes the domain's token)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/statistics", headers={"Authorization": AUTH})
    counters: dict[str, int] = json.loads(connection.getresponse().read())["counters"]
    connection.close()
    return counters


def baseline(rate: int, seconds: float, workdir: Path) -> dict[str, float]:
    """SIPp uac → SIPp uas, 1 s calls, the same offered rate and number of calls."""
    calls = int(rate * seconds)
    port = free_port()
    server = sipp(["-sn", "uas", "-i", "127.0.0.1", "-p", str(port)], workdir / "base_uas.log")
    log = workdir / "base_uac.log"
    start = time.monotonic()
    client = sipp(["-sn", "uac", f"127.0.0.1:{port}", "-i", "127.0.0.1", "-p", str(free_port()),
                   "-r", str(rate), "-m", str(calls), "-d", "1000", "-l", "5000",
                   "-timeout", str(int(seconds + 60))], log)  # fmt: skip
    client.wait()
    elapsed = time.monotonic() - start
    server.terminate()
    server.wait()
    ok, failed = sipp_counts(log)
    return {"completed_per_s": ok / seconds, "completed": ok, "failed": failed,
            "elapsed": elapsed}  # fmt: skip


async def offer(
    client: HttpClient, rate: int, seconds: float, callback_url: str
) -> tuple[list[float], dict[str, int]]:
    """Post call_group on schedule; API latencies (s) and answers by result."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    answers: dict[str, int] = {}

    async def one(n: int) -> None:
        body = {"group_name": f"group{n % GROUPS:03d}", "destination": "0312341234",
                "callback_url": callback_url}  # fmt: skip
        sent = loop.time()
        try:
            status, answer = await client.post("/basix/api/call_group", body)
        except Exception as exc:
            key = f"http: {type(exc).__name__}"
        else:
            latencies.append(loop.time() - sent)
            error: Any = answer.get("error") or {}
            key = "accepted" if answer.get("result_code") == 0 else f"{status} {error.get('id')}"
        answers[key] = answers.get(key, 0) + 1

    tasks = []
    start = loop.time() + 0.1
    for n in range(int(rate * seconds)):
        delay = start + n / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)
    return latencies, answers


Probe = Callable[[HttpClient, str], Coroutine[Any, Any, int]]  # (client, callback URL) → calls made


async def step(
    rate: int,
    seconds: float,
    workdir: Path,
    *,
    extra: str = "",
    probe: Probe | None = None,
    profile: Path | None = None,
) -> dict[str, Any]:
    """One step of load; ``extra`` TOML is added to the directory and ``probe`` runs beside
    the load (its calls are waited for too); ``profile``: the server runs under cProfile."""
    calls = int(rate * seconds)
    member_port, trunk_port, sink_port = free_port(), free_port(), free_port(socket.SOCK_STREAM)
    members_log, trunk_log = workdir / f"members_{rate}.log", workdir / f"trunk_{rate}.log"
    timeout = ["-timeout", str(int(seconds + 60)), "-max_socket", "60000"]
    peers = []
    if calls:
        peers.append(sipp(["-sn", "uas", "-i", "127.0.0.1", "-p", str(member_port),
                           "-m", str(calls), *timeout], members_log))  # fmt: skip
        talk = str(SCENARIOS / "uas_trunk_talk.xml")
        peers.append(sipp(["-sf", talk, "-i", "127.0.0.1", "-p", str(trunk_port),
                           "-m", str(calls), *timeout], trunk_log))  # fmt: skip
    sink = CallbackSink(sink_port)
    await sink.start()
    directory = Directory(GROUPS * GROUP_SIZE, GROUP_SIZE, member_port, trunk_port, extra)
    callback_url = f"http://127.0.0.1:{sink_port}/hook"
    with switchboard(directory, workdir, sink_port, profile) as pbx:
        client = HttpClient(pbx.http_port, connections=64)
        await client.open()
        before = healthz(pbx.http_port)
        cpu_before, wall_before = cpu_seconds(pbx.pid), time.monotonic()
        probing: asyncio.Task[int] | None = None
        if probe is not None:
            probing = asyncio.create_task(probe(client, callback_url))
        if profile is not None:
            os.kill(pbx.pid, signal.SIGUSR1)  # the load only: not start-up or shutdown
        latencies, answers = await offer(client, rate, seconds, callback_url)
        probed = await probing if probing else 0
        accepted = answers.get("accepted", 0)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # every outcome delivered, every call over
            if sink.total() >= accepted + probed and healthz(pbx.http_port)["calls"] == 0:
                break
            await asyncio.sleep(0.05)
        wall = time.monotonic() - wall_before
        cpu = cpu_seconds(pbx.pid) - cpu_before
        if profile is not None:
            os.kill(pbx.pid, signal.SIGUSR2)
            while not profile.exists() or not profile.stat().st_size:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # written whole
        after = healthz(pbx.http_port)
        client.close()
    sink.close()
    for process in peers:
        try:
            process.wait(70)
        except Exception:
            process.kill()
    member_ok, member_failed = sipp_counts(members_log) if calls else (0, 0)
    trunk_ok, trunk_failed = sipp_counts(trunk_log) if calls else (0, 0)
    completed = min(sink.outcomes.get("0", 0), member_ok, trunk_ok)
    return {
        "rate": rate, "offered": calls, "completed": completed,
        # Throughput: calls completed over the time it took, offer plus drain, less the 1 s
        # every call talks; a server behind the offer shows its own pace here, not the rate.
        "completed_per_s": completed / max(seconds, wall - TALK), "failed": calls - completed,
        "drain_s": wall - seconds,
        "probed": probed,
        "answers": answers, "outcomes": sink.outcomes,
        "sipp": {"members": [member_ok, member_failed], "trunk": [trunk_ok, trunk_failed]},
        "retransmitted": after["retransmitted"] - before["retransmitted"],
        "api_ms_p50": 1000 * percentile(latencies, 0.50),
        "api_ms_p99": 1000 * percentile(latencies, 0.99),
        "cpu_pct": 100 * cpu / wall,
        "cpu_ms_per_call": 1000 * cpu / max(completed, 1),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", type=int, nargs="+", default=[10, 25, 50, 100, 200, 300, 400])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--workdir", type=Path, help="keep logs and configs here")
    parser.add_argument(
        "--profile", type=int, metavar="RATE",
        help="then one more step at RATE with the server under cProfile: where the time goes",
    )  # fmt: skip
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ladder-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for rate in args.rates:
            base = baseline(rate, args.seconds, workdir)
            base["completed_per_s"] = base["completed"] / max(args.seconds,
                                                              base["elapsed"] - TALK)  # fmt: skip
            result = uvloop.run(step(rate, args.seconds, workdir))
            print(json.dumps({"baseline": base, "switchboard": result}), flush=True)
            rows.append(
                f"| {rate} | {base['completed_per_s']:.0f} ({base['failed']} failed) | "
                f"{result['completed_per_s']:.0f} | "
                f"{result['completed_per_s'] / max(base['completed_per_s'], 1e-9):.2f} | "
                f"{result['failed']} | {result['drain_s']:.1f} | {result['retransmitted']} | "
                f"{result['api_ms_p50']:.1f} / {result['api_ms_p99']:.1f} | "
                f"{result['cpu_pct']:.0f} % | {result['cpu_ms_per_call']:.2f} |"
            )
        profiled = None
        if args.profile:
            stats = workdir / "server.prof"
            result = uvloop.run(step(args.profile, args.seconds, workdir, profile=stats))
            profiled = (result, stats.read_bytes())
            print(json.dumps({"profiled": result}), flush=True)
            print(profile.table(stats, result["completed"]), flush=True)
    if args.no_write:
        return
    rates = " ".join(str(r) for r in args.rates)
    body = (
        f"Each step offers the rate for {args.seconds:g} s, open loop; 100 groups of 10 "
        "members (one SIPp `uas` answering at once), destination a SIPp trunk that answers "
        "at once, talks 1 s and hangs up; callbacks to a sink in the generator. Completed: "
        "accepted, callback `result_code` 0, and both SIPp peers counted the call "
        "successful; failed is offered minus completed, refusals with `overloaded` "
        "included. Completed/s is completed calls over the time from the first request "
        "until the last call ended, less the 1 s of talk: a server that falls behind the "
        "offer shows its own pace there, and its backlog in the drain column (time after the "
        "offer ended until the last call ended). Baseline: SIPp `uac` → SIPp `uas`, 1 s "
        "calls, same rate, same run. CPU is Switchboard's process (100 % = one core).\n\n"
        "| offered calls/s | baseline completed/s | Switchboard completed/s | ratio | failed "
        "| drain s | SIP retransmissions | API p50 / p99 ms | CPU | CPU ms per call |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    command = f"python -m bench.call_group_ladder --rates {rates} --seconds {args.seconds:g}"
    if profiled is not None:
        command += f" --profile {args.profile}"
        body += "\n\n" + _profile_section(*profiled, args.profile)
    write_section("call_group throughput ladder", command, body)


def _profile_section(result: dict[str, Any], stats: bytes, rate: int) -> str:
    """Where the time goes, from the profiled step (cProfile's own cost inflates every
    figure: read the shares, not the microseconds)."""
    with tempfile.NamedTemporaryFile(suffix=".prof") as saved:
        saved.write(stats)
        saved.flush()
        path, calls = Path(saved.name), result["completed"]
        return (
            f"### Where the time goes\n\nOne more step at {rate}/s with the server under "
            f"cProfile during the load only ({calls} calls completed, "
            f"{result['cpu_ms_per_call']:.2f} ms of CPU per call with the profiler's own "
            "cost, which inflates every figure: read the shares). By own time, the top "
            "functions:\n\n"
            + profile.table(path, calls)
            + "\n\nSwitchboard's functions by cumulative time (callees included):\n\n"
            + profile.by_cumulative(path, calls, top=25)
        )


if __name__ == "__main__":
    main()
