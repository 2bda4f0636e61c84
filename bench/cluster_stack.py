"""The processes of a benchmarked cluster, started and stopped by the bench itself, and the
CPU they spend: PostgreSQL, Redis, Switchboard nodes and the SIP front (Kamailio, through
``deploy/kamailio/front`` as ``scripts/cluster`` runs it).

Rules: every process starts in its own session and is stopped with its whole process group,
so nothing outlives the bench; CPU is read from /proc for a process and all its descendants,
with the time of descendants already reaped (``cutime``/``cstime``) included, so that
PostgreSQL backends or Kamailio workers that come and go are still counted.
"""

from __future__ import annotations

import glob
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.pbx import free_port

REPOSITORY = Path(__file__).resolve().parent.parent
FRONT_SCRIPT = REPOSITORY / "deploy" / "kamailio" / "front"
_TICKS = os.sysconf("SC_CLK_TCK")
START_SECONDS = 60.0


def free_sip_port() -> int:
    """A port free on 127.0.0.1 for both UDP and TCP (a SIP listener binds both)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as tcp:
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone since the directory was listed
        return None
    return text.rsplit(")", 1)[1].split()


def tree_cpu(roots: list[int]) -> float:
    """CPU seconds (user + system) of ``roots`` and every descendant, reaped ones included."""
    parents: dict[int, int] = {}
    fields: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            parents[int(entry)] = int(stat[1])
            fields[int(entry)] = stat
    members = {pid for pid in roots if pid in fields}
    grew = True
    while grew:  # the tree is shallow: a few passes
        found = {pid for pid, parent in parents.items() if parent in members} - members
        members |= found
        grew = bool(found)
    ticks = sum(sum(int(fields[pid][i]) for i in (11, 12, 13, 14)) for pid in members)
    return ticks / _TICKS


def own_cpu() -> float:
    """This process's CPU seconds, its children not included."""
    times = os.times()
    return times.user + times.system


def children_cpu() -> float:
    """CPU seconds of this process's children reaped so far (SIPp peers, once waited for)."""
    times = os.times()
    return times.children_user + times.children_system


def box_busy() -> float:
    """CPU seconds the whole machine has been busy, all cores summed (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / _TICKS


def spawn(
    command: list[str], log: Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A process in its own session (its children stop with it), output to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes], how: int = signal.SIGTERM) -> None:
    """``how`` to the process group, SIGKILL after 20 s."""
    for sig in (how, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(20)
            break
        except subprocess.TimeoutExpired:
            continue
    process.wait()


def wait_until(
    ready: Callable[[], bool], what: str, process: subprocess.Popen[bytes], log: Path
) -> None:
    """Poll ``ready()`` until true; fail if ``process`` exits or START_SECONDS pass."""
    deadline = time.monotonic() + START_SECONDS
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{what} did not start (log {log}):\n{tail}")
        time.sleep(0.1)


def _answers_http(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def _answers_tcp(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _answers_options(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.5)
        me = f"127.0.0.1:{s.getsockname()[1]}"
        s.sendto(
            (
                f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {me};branch=z9hG4bK{time.monotonic_ns()}\r\n"
                f"From: <sip:bench@{me}>;tag=1\r\nTo: <sip:127.0.0.1:{port}>\r\n"
                f"Call-ID: {time.monotonic_ns()}@bench\r\nCSeq: 1 OPTIONS\r\n"
                "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            ).encode(),
            ("127.0.0.1", port),
        )
        try:
            return s.recv(4096).startswith(b"SIP/2.0 ")
        except OSError:
            return False


# --- PostgreSQL ---------------------------------------------------------------------------


def _as_postgres(command: list[str]) -> list[str]:
    """initdb and the server refuse to run as root: the postgres system user runs them."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class Postgres:
    url: str
    pid: int  # the postmaster


@contextmanager
def postgres(workdir: Path) -> Iterator[Postgres]:
    """A fresh PostgreSQL cluster (Debian's binaries, as scripts/cluster starts it: default
    durability settings) with an empty database ``switchboard``."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (scripts/setup --test)")
    binaries = Path(found[-1]).parent
    home = workdir / "postgres"
    home.mkdir()
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(home, user.pw_uid, user.pw_gid)
    data, port = home / "data", free_port(socket.SOCK_STREAM)
    subprocess.run(
        _as_postgres(
            [
                str(binaries / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1"
    subprocess.run(
        _as_postgres(
            [
                str(binaries / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-w",
                "-l",
                str(home / "log"),
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            _as_postgres(
                [
                    str(binaries / "createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    "postgres",
                    "switchboard",
                ]
            ),
            check=True,
            capture_output=True,
        )
        pid = int((data / "postmaster.pid").read_text().split("\n", 1)[0])
        yield Postgres(f"postgresql://postgres@127.0.0.1:{port}/switchboard", pid)
    finally:
        subprocess.run(
            _as_postgres([str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            check=False,
            capture_output=True,
        )


# --- Redis --------------------------------------------------------------------------------


@dataclass
class Service:
    """A process of the cluster: its address and the process leading its session."""

    name: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def redis(workdir: Path) -> Iterator[Service]:
    home = workdir / "redis"
    home.mkdir()
    port, log = free_port(socket.SOCK_STREAM), home / "log"
    process = spawn(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(home),
            "--daemonize",
            "no",
        ],
        log,
    )
    try:
        wait_until(lambda: _answers_tcp(port), "redis-server", process, log)
        yield Service("redis", port, process)
    finally:
        stop(process)


# --- nodes and the front ------------------------------------------------------------------


@contextmanager
def node(
    name: str, config_text: str, sip: int, http: int, workdir: Path, *, profile: Path | None = None
) -> Iterator[Service]:
    """``switchboard serve`` on ``config_text`` (SIP port ``sip``, HTTP port ``http``);
    ready once ``/healthz`` answers. ``profile``: under cProfile (bench/profiled_serve.py:
    SIGUSR1 starts it, SIGUSR2 writes it there)."""
    home = workdir / name
    home.mkdir()
    config, log = home / "switchboard.toml", home / "log"
    config.write_text(config_text)
    program = ["switchboard"] if profile is None else ["bench.profiled_serve", str(profile)]
    process = spawn(
        [
            sys.executable,
            "-m",
            *program,
            "--log-level",
            "WARNING",
            "serve",
            "--config",
            str(config),
        ],
        log,
        cwd=home,
        # bench.profiled_serve is found from the repository, not the node's directory
        env=None if profile is None else {**os.environ, "PYTHONPATH": str(REPOSITORY)},
    )
    try:
        wait_until(lambda: _answers_http(http), name, process, log)
        yield Service(name, sip, process)
    finally:
        stop(process)


@contextmanager
def front(workdir: Path, port: int, nodes: list[int]) -> Iterator[Service]:
    """Kamailio with the shipped config on 127.0.0.1:``port`` in front of the nodes' SIP
    ports. The flood limit is lifted: every phone, the bench's registrations included, is
    on 127.0.0.1, which the shipped limit (60 requests per 2 s) would cut off."""
    home = workdir / "front"
    home.mkdir()
    log = home / "log"
    command = [
        str(FRONT_SCRIPT),
        "--dir",
        str(home),
        "--listen",
        f"127.0.0.1:{port}",
        "--log-level",
        "0",
        "--flood-limit",
        "1000000",
        *(f"127.0.0.1:{sip}" for sip in nodes),
    ]
    process = spawn(command, log)
    try:
        wait_until(lambda: _answers_options(port), "the SIP front", process, log)
        yield Service("front", port, process)
    finally:
        stop(process)
