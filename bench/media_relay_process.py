"""The relay side of ``bench.media``: runs in its own process so its CPU is measured alone.

Reads one JSON line on stdin: ``[[caller_port, far_port], …]`` (loopback ports of the
generator's sockets); creates one bridged PCMU session per pair; prints the sessions' relay
ports as one JSON line; relays until stdin closes; prints its CPU seconds and packet
counters as a last JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import uvloop

from switchboard.media.ports import PortAllocator
from switchboard.media.relay import LegMedia, MediaRelay


async def main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    pairs = json.loads(await reader.readline())
    relay = MediaRelay("127.0.0.1", "127.0.0.1", PortAllocator(30000, 39999))
    sessions = []
    for caller, far in pairs:
        session = await relay.create_session()
        session.a.set_media(LegMedia(("127.0.0.1", caller), "PCMU", 0))
        session.b.set_media(LegMedia(("127.0.0.1", far), "PCMU", 0))
        session.bridge()
        sessions.append(session)
    print(json.dumps([[s.a.port, s.b.port] for s in sessions]), flush=True)
    cpu_start = time.process_time()
    await reader.read()  # until the generator closes our stdin
    cpu = time.process_time() - cpu_start
    relayed = sum(s.a.stats.packets_out + s.b.stats.packets_out for s in sessions)
    print(json.dumps({"cpu_seconds": cpu, "packets_relayed": relayed}), flush=True)
    for session in sessions:
        session.close()


if __name__ == "__main__":
    uvloop.run(main())
