"""Timer accuracy under load: member_answer_timeout and answer_timeout errors while
call_group load runs beside them.

    python -m bench.timer_accuracy [--rate 75] [--seconds 30] [--probes-per-second 2]

Probe calls go to a group of two members that ring and never answer (``bench.ringing_phone``
in its own process, noting when each INVITE and CANCEL arrives): member_answer_timeout 1 s,
answer_timeout 2 s. Per probe, the member timeout error is (first CANCEL − first INVITE) −
1 s and the answer timeout error is (second CANCEL − first INVITE) − 2 s, as seen on the
wire by the phone. Baseline, in the same invocation: the same probes with no load. The load
is the ladder's (``bench.call_group_ladder``): ``--rate`` call_group/s, 1 s calls.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import uvloop

from bench.call_group_ladder import step
from bench.pbx import HttpClient, free_port, percentile
from bench.report import write_section

MEMBER_TIMEOUT, ANSWER_TIMEOUT = 1.0, 2.0


def probe_directory(phone_port: int) -> str:
    users = "".join(
        f'[[domains.users]]\nid = {9000 + n}\nname = "probe{n}"\n'
        f'contacts = ["sip:probe{n}@127.0.0.1:{phone_port}"]\n'
        for n in (1, 2)
    )
    group = ('[[domains.groups]]\nid = 9000\nname = "probe"\nmember_answer_timeout = 1\n'
             'answer_timeout = 2\nmembers = ["probe1", "probe2"]\n')  # fmt: skip
    return "\n" + users + group


def prober(per_second: float, seconds: float) -> Any:
    async def probe(client: HttpClient, callback_url: str) -> int:
        loop = asyncio.get_running_loop()
        start, count = loop.time() + 0.5, int(per_second * seconds)
        for n in range(count):
            await asyncio.sleep(max(0.0, start + n / per_second - loop.time()))
            _, answer = await client.post("/basix/api/call_group", {
                "group_name": "probe", "destination": "0312341234",
                "callback_url": callback_url})  # fmt: skip
            assert answer.get("result_code") == 0, answer
        return count

    return probe


def errors(notes: list[dict[str, Any]]) -> dict[str, list[float]]:
    by_user: dict[str, list[dict[str, Any]]] = {"probe1": [], "probe2": []}
    for note in notes:
        by_user.setdefault(note["user"], []).append(note)
    member, answer = [], []
    for first, second in zip(by_user["probe1"], by_user["probe2"], strict=False):
        if "cancel" in first:
            member.append(1000 * (first["cancel"] - first["invite"] - MEMBER_TIMEOUT))
        if "cancel" in second:
            answer.append(1000 * (second["cancel"] - first["invite"] - ANSWER_TIMEOUT))
    return {"member": member, "answer": answer}


async def measure(rate: int, seconds: float, per_second: float, workdir: Path) -> dict[str, Any]:
    port = free_port()
    phone = subprocess.Popen([sys.executable, "-m", "bench.ringing_phone", str(port)],
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert phone.stdout is not None
    phone.stdout.readline()  # "ready"
    try:
        result = await step(rate, seconds, workdir, extra=probe_directory(port),
                            probe=prober(per_second, seconds))  # fmt: skip
    finally:
        phone.terminate()
        notes = json.loads(phone.stdout.readline() or "[]")
        phone.wait()
    return {"load": result, "errors_ms": errors(notes)}


def summary(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (f"{percentile(values, 0.5):+.1f} / {percentile(values, 0.99):+.1f} / "
            f"{max(values, key=abs):+.1f} ({len(values)})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=75, help="load, call_group/s")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--probes-per-second", type=float, default=2.0)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="timers-") as tmp:
        for rate in (0, args.rate):
            result = uvloop.run(measure(rate, args.seconds, args.probes_per_second, Path(tmp)))
            load = result["load"]
            print(json.dumps({"rate": rate, "errors_ms": result["errors_ms"], "load": {
                k: load[k] for k in ("completed", "failed", "cpu_pct", "api_ms_p99")}}),
                flush=True)  # fmt: skip
            label = "none (baseline)" if rate == 0 else f"{rate} call_group/s"
            rows.append(
                f"| {label} | {load['completed']} / {load['failed']} | {load['cpu_pct']:.0f} % | "
                f"{summary(result['errors_ms']['member'])} | "
                f"{summary(result['errors_ms']['answer'])} |"
            )
    if args.no_write:
        return
    body = (
        f"Probes: {args.probes_per_second:g} call_group/s for {args.seconds:g} s to a group "
        "of two phones that never answer (member_answer_timeout 1 s, answer_timeout 2 s); "
        "errors are measured where the phone receives INVITE and CANCEL. Load: the ladder's "
        "calls (SIPp members and trunk, 1 s talk). Errors in ms as p50 / p99 / worst "
        "(samples); positive is late.\n\n"
        "| load | load calls completed / failed | Switchboard CPU | member timeout error ms "
        "| answer timeout error ms |\n|---|---|---|---|---|\n" + "\n".join(rows)
    )
    command = (f"python -m bench.timer_accuracy --rate {args.rate} --seconds {args.seconds:g} "
               f"--probes-per-second {args.probes_per_second:g}")  # fmt: skip
    write_section("Timer accuracy under load", command, body)


if __name__ == "__main__":
    main()
