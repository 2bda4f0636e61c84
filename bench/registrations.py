"""Registrations per second, with digest authentication, driven by SIPp.

    python -m bench.registrations [--users N] [--rate R] [--limit L]

Each registration is REGISTER → 401 → REGISTER with MD5 credentials → 200, with a new
binding stored in SQLite before the 200 (the server's default storage). The phones are
SIPp running ``tests/interop/scenarios/uac_register.xml``. The baseline, in the same run,
is SIPp itself acting as the registrar (``bench/scenarios/uas_registrar.xml``: challenge,
verify, answer, nothing stored): the ceiling of this machine and SIPp.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.report import write_section
from bench.uas_calls import COUNT, free_port

ROOT = Path(__file__).resolve().parent.parent
PHONE = ROOT / "tests" / "interop" / "scenarios" / "uac_register.xml"
REGISTRAR = ROOT / "bench" / "scenarios" / "uas_registrar.xml"


def _write_inputs(work: Path, users: int) -> tuple[Path, Path]:
    config = work / "bench.toml"
    rows = ['[[domains]]\nname = "example.com"\napi_token = "bench-token"\n']
    rows += [
        f'[[domains.users]]\nid = {n + 1}\nname = "u{n:05d}"\nsip_password = "bench-secret"\n'
        for n in range(users)
    ]
    config.write_text("\n".join(rows))
    inf = work / "users.csv"
    lines = ["SEQUENTIAL"] + [
        f"u{n:05d};example.com;[authentication username=u{n:05d} password=bench-secret];3600"
        for n in range(users)
    ]
    inf.write_text("\n".join(lines) + "\n")
    return config, inf


@contextmanager
def _switchboard(work: Path, config: Path, port: int) -> Iterator[None]:
    http = free_port_tcp()
    server_table = (
        f'[server]\nsip_listen = "127.0.0.1:{port}"\nhttp_listen = "127.0.0.1:{http}"\n'
        f'database = "sqlite:///{work}/bench.db"\n\n'
    )
    full = work / "server.toml"
    full.write_text(server_table + config.read_text())
    process = subprocess.Popen(
        [sys.executable, "-m", "switchboard", "--log-level", "WARNING", "serve", "--config",
         str(full)],
    )  # fmt: skip
    try:
        for _ in range(200):
            try:
                httpx.get(f"http://127.0.0.1:{http}/healthz", timeout=0.5)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield
    finally:
        process.terminate()
        process.wait(20)


@contextmanager
def _sipp_registrar(port: int) -> Iterator[None]:
    process = subprocess.Popen(
        ["sipp", "-sf", str(REGISTRAR), "-i", "127.0.0.1", "-p", str(port), "-nostdin"],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    try:
        yield
    finally:
        process.terminate()
        process.wait(10)


def free_port_tcp() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _drive(port: int, inf: Path, users: int, rate: int, limit: int) -> dict[str, float]:
    command = [
        "sipp", "-sf", str(PHONE), "-inf", str(inf), f"127.0.0.1:{port}", "-i", "127.0.0.1",
        "-p", str(free_port()), "-m", str(users), "-r", str(rate), "-l", str(limit),
        "-nostdin", "-timeout", "120",
    ]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    counts = {k: int(v) for k, v in COUNT.findall(result.stdout)}
    ok = counts.get("Successful call", 0)
    return {"per_s": ok / elapsed, "ok": ok, "failed": counts.get("Failed call", 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--rate", type=int, default=3000, help="offered registrations/s")
    parser.add_argument("--limit", type=int, default=100, help="registrations in flight")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config, inf = _write_inputs(work, args.users)
        port = free_port()
        with _sipp_registrar(port):
            baseline = _drive(port, inf, args.users, args.rate, args.limit)
        print("sipp registrar", baseline, flush=True)
        port = free_port()
        with _switchboard(work, config, port):
            ours = _drive(port, inf, args.users, args.rate, args.limit)
        print("switchboard", ours, flush=True)
    rows = [
        f"| {name} | {r['per_s']:.0f} | {r['per_s'] / baseline['per_s']:.2f} | "
        f"{r['ok']:.0f} | {r['failed']:.0f} |"
        for name, r in (("SIPp as registrar (ceiling)", baseline), ("Switchboard", ours))
    ]
    body = (
        f"{args.users} different users, SIPp offering {args.rate}/s with at most {args.limit} "
        "in flight; each registration is REGISTER/401/REGISTER+MD5 digest/200 over UDP, and "
        "Switchboard stores every binding in SQLite (WAL) before answering.\n\n"
        "| registrar | registrations/s | ratio to ceiling | completed | failed |\n"
        "|---|---|---|---|---|\n" + "\n".join(rows)
    )
    command = (
        f"python -m bench.registrations --users {args.users} --rate {args.rate} "
        f"--limit {args.limit}"
    )
    write_section("Registrations/s with digest against SIPp", command, body)


if __name__ == "__main__":
    main()
