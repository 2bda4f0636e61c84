"""A phone that rings and never answers, for timer measurements (own process, own loop).

    python -m bench.ringing_phone PORT

Answers every INVITE with 180, a CANCEL with 200 and the INVITE with 487 (RFC 3261 §9.2),
absorbs the ACK, and notes when each INVITE and CANCEL arrived (monotonic clock, by
Call-ID and request URI user). Prints "ready" once listening; on SIGTERM prints the notes
as one JSON line and exits.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
import time
from typing import Any

_HEADER = re.compile(rb"^(Via|From|To|Call-ID|CSeq):[^\r\n]*\r\n", re.M | re.I)
_CALL_ID = re.compile(rb"^Call-ID:\s*([^\r\n]+)", re.M | re.I)
_USER = re.compile(rb"^[A-Z]+ sip:([^@]+)@")


def _response(request: bytes, status: str, tag: bool) -> bytes:
    lines = []
    for match in _HEADER.finditer(request):
        line = match.group(0)
        if tag and line[:3].lower() == b"to:" and b";tag=" not in line:
            line = line[:-2] + b";tag=ringing\r\n"
        lines.append(line)
    return b"SIP/2.0 " + status.encode() + b"\r\n" + b"".join(lines) + b"Content-Length: 0\r\n\r\n"


class Phone(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.notes: list[dict[str, Any]] = []
        self.invites: dict[bytes, bytes] = {}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        now = time.monotonic()
        assert self.transport is not None
        call_id_match = _CALL_ID.search(data)
        if call_id_match is None:
            return
        call_id = call_id_match.group(1).strip()
        user_match = _USER.match(data)
        user = user_match.group(1).decode() if user_match else ""
        if data.startswith(b"INVITE "):
            if call_id not in self.invites:
                self.notes.append({"call_id": call_id.decode(), "user": user, "invite": now})
            self.invites[call_id] = data
            self.transport.sendto(_response(data, "180 Ringing", tag=True), addr)
        elif data.startswith(b"CANCEL "):
            for note in self.notes:
                if note["call_id"] == call_id.decode() and "cancel" not in note:
                    note["cancel"] = now
            self.transport.sendto(_response(data, "200 OK", tag=True), addr)
            invite = self.invites.get(call_id)
            if invite is not None:
                self.transport.sendto(_response(invite, "487 Request Terminated", tag=True), addr)


async def main() -> None:
    port = int(sys.argv[1])
    loop = asyncio.get_running_loop()
    _, phone = await loop.create_datagram_endpoint(Phone, local_addr=("127.0.0.1", port))
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    print(json.dumps(phone.notes), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
