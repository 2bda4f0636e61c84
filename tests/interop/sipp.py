"""Running SIPp (Debian ``sip-tester``) as a real peer on loopback."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

SCENARIOS = Path(__file__).parent / "scenarios"
BIND_FAILED = 254  # SIPp's exit status for "fatal error binding a socket"


def sipp_binary() -> str:
    path = shutil.which("sipp")
    if path is None:
        raise RuntimeError("sipp is not installed: apt-get install sip-tester (see .ci/run)")
    return path


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as first:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
            with socket.socket(socket.AF_INET, other) as second:
                try:
                    second.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


@dataclass
class SippResult:
    returncode: int
    output: str
    successful: int
    failed: int


_COUNTER = re.compile(r"(Successful call|Failed call)\s*\|\s*(\d+)\s*\|\s*(\d+)")


async def run_sipp(args: list[str], timeout: float) -> SippResult:
    process = await asyncio.create_subprocess_exec(
        sipp_binary(),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        out, _ = await process.communicate()
        raise AssertionError(
            "sipp did not finish:\n" + out.decode(errors="replace")[-3000:]
        ) from None
    text = out.decode(errors="replace")
    counts = {"Successful call": 0, "Failed call": 0}
    for name, _periodic, cumulative in _COUNTER.findall(text):
        counts[name] = int(cumulative)
    assert process.returncode is not None
    return SippResult(process.returncode, text, counts["Successful call"], counts["Failed call"])


async def start_sipp(args: list[str]) -> asyncio.subprocess.Process:
    """Start SIPp; when it is given a local port (-p), return once it listens there.

    A port someone else took after the test chose it fails here, with SIPp's words, and
    not later as a peer that never answers."""
    process = await asyncio.create_subprocess_exec(
        sipp_binary(),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    if "-p" in args:
        port = int(args[args.index("-p") + 1])
        host = args[args.index("-i") + 1] if "-i" in args else "127.0.0.1"
        mode = args[args.index("-t") + 1] if "-t" in args else "u1"
        where = f"{'UDP' if mode.startswith('u') else 'TCP'} {host}:{port}"
        for _ in range(500):
            if port_bound(port, host, owner=process.pid, udp=mode.startswith("u")):
                return process
            if process.returncode == BIND_FAILED:
                out, _ = await process.communicate()
                errors = [line for line in out.decode().splitlines() if "errno" in line]
                raise AssertionError(f"SIPp could not bind {where}: {errors}")
            if process.returncode is not None:
                return process  # it ran and ended at once: the caller judges its output
            await asyncio.sleep(0.02)
        process.kill()
        out, _ = await process.communicate()
        raise AssertionError(f"SIPp did not bind {where} in 10 s: {out[-1500:]!r}")
    return process


def port_bound(
    port: int, host: str = "127.0.0.1", owner: int | None = None, *, udp: bool = True
) -> bool:
    """Whether a socket is bound to ``host:port`` (or the wildcard), UDP or else TCP, read
    from the kernel's table; with ``owner``, a socket of that process.

    Probing by binding the port ourselves would hold it for a moment, and a SIPp starting
    in that moment fails with "Unable to bind main socket" (measured: 13 in 100 starts
    under a tight probe)."""
    # /proc/net/udp prints the address as the in-memory 32-bit word: native byte order
    wanted = {
        f"{int.from_bytes(socket.inet_aton(address), sys.byteorder):08X}:{port:04X}"
        for address in (host, "0.0.0.0")
    }
    with open(f"/proc/net/{'udp' if udp else 'tcp'}") as rows:
        next(rows)  # the header
        inodes = {row.split()[9] for row in rows if row.split()[1] in wanted}
    if owner is None or not inodes:
        return bool(inodes)
    held = open_files(owner)
    return any(f"socket:[{inode}]" in held for inode in inodes)


def open_files(pid: int) -> set[str]:
    """What process ``pid`` holds open, as its /proc fd links read ("socket:[inode]")."""
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:  # it ended
        return set()
    held = set()
    for fd in fds:
        try:
            held.add(str(fd.readlink()))
        except OSError:  # closed meanwhile
            continue
    return held
