"""Parse + serialise time per SIP message.

    python -m bench.parse [--seconds N] [--no-write]

Baseline, in the same run: splitting the same bytes into lines and header name/value
pairs with no validation at all, the least any parser must do. The ratio says what the
full RFC 3261 parse (unfolding, compact names, list splitting, URI/Via/CSeq validation)
costs on top of that. "eager" is the strict parser alone, which builds every part of the
message up front as every message was parsed before the fast path: the before, measured in
the same run as the after.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from bench.report import write_section
from switchboard.sip.message import parse_message
from switchboard.sip.strict_parser import parse_strictly

INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bKnashds8;rport\r\n"
    b"Max-Forwards: 70\r\nTo: Bob <sip:bob@biloxi.example.com>\r\n"
    b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\nCSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com>\r\nContent-Type: application/sdp\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\nContent-Length: 127\r\n\r\n"
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\ns=-\r\n"
    b"c=IN IP4 192.0.2.101\r\nt=0 0\r\nm=audio 49172 RTP/AVP 0\r\n"
)
RESPONSE = (
    b"SIP/2.0 180 Ringing\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bKnashds8;rport=5060\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>;tag=8321234356\r\n"
    b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\nCSeq: 314159 INVITE\r\n"
    b"Contact: <sip:bob@192.0.2.4>\r\nContent-Length: 0\r\n\r\n"
)


def baseline(data: bytes) -> object:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    return lines[0], [line.split(":", 1) for line in lines[1:]], body


def full(data: bytes) -> object:
    return bytes(parse_message(data))


def eager(data: bytes) -> object:
    return bytes(parse_strictly(data))


def per_call(function: Callable[[bytes], object], data: bytes, seconds: float) -> float:
    """Microseconds per call, best of five rounds."""
    best = float("inf")
    for _ in range(5):
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 5:
            for _ in range(100):
                function(data)
            count += 100
        best = min(best, elapsed / count * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument(
        "--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone"
    )
    args = parser.parse_args()
    rows = []
    for name, data in (("INVITE with SDP", INVITE), ("180 Ringing", RESPONSE)):
        base = per_call(baseline, data, args.seconds)
        ours = per_call(full, data, args.seconds)
        before = per_call(eager, data, args.seconds)
        figures = f"{ours:.1f} | {before:.1f} | {base:.1f} | {ours / base:.1f}×"
        rows.append(f"| {name} | {len(data)} | {figures} |")
        print(rows[-1], flush=True)
    body = (
        "| message | bytes | parse+serialise µs | eager parse+serialise µs | baseline split µs"
        " | ratio |\n|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    if not args.no_write:
        write_section(
            "SIP parse + serialise", f"python -m bench.parse --seconds {args.seconds:g}", body
        )


if __name__ == "__main__":
    main()
