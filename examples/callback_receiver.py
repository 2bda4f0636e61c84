#!/usr/bin/env python3
"""A callback receiver for trying Switchboard on one machine: it prints every POST it gets
(a call_group's outcome, an end-of-call event) and whether its signature holds, and
answers 204 so the delivery is done.

    python3 examples/callback_receiver.py [--port 9080] [--secret SECRET]

Then pass ``"callback_url": "http://127.0.0.1:9080/callback"``. ``SECRET`` is the domain's
``callback_secret`` (by default the bundled example's). Only the standard library, so
any Python 3.11 runs it. Plain HTTP, one request at a time: for trying, not production.

Checking ``X-Switchboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
"<t>.<raw body>")>`` is what a real receiver does too: over the exact bytes received, in
constant time, and with ``t`` recent so a captured request cannot be replayed later.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

EXAMPLE_SECRET = "change-me-callback-signing-key"  # examples/switchboard.toml
MAX_BODY = 65536  # bytes; a callback is a few KiB
MAX_AGE = 300  # seconds a signature's timestamp may lag behind our clock


def signature_verdict(header: str | None, body: bytes, secret: str, now: float) -> str:
    """``ok``, or why the signature does not hold."""
    if not header:
        return "missing"
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    timestamp, given = fields.get("t", ""), fields.get("v1", "")
    if not timestamp.isdigit() or not given:
        return f"malformed ({header!r})"
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    if not hmac.compare_digest(expected.hexdigest(), given):
        return "WRONG (another secret, or the body was changed)"
    if abs(now - int(timestamp)) > MAX_AGE:
        return f"too old (t={timestamp})"
    return "ok"


def handler_for(secret: str) -> type[BaseHTTPRequestHandler]:
    class CallbackHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = self.headers.get("Content-Length", "")
            if not length.isdigit() or int(length) > MAX_BODY:
                self.send_error(413 if length.isdigit() else 411)
                return
            body = self.rfile.read(int(length))
            verdict = signature_verdict(
                self.headers.get("X-Switchboard-Signature"), body, secret, time.time()
            )
            delivery = self.headers.get("X-Switchboard-Delivery", "-")
            print(f"POST {self.path}  delivery {delivery}  signature {verdict}")
            try:
                print(json.dumps(json.loads(body), indent=2, ensure_ascii=False), flush=True)
            except ValueError:
                print(body.decode(errors="replace"), flush=True)
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: ``do_POST`` prints what matters."""

    return CallbackHandler


def main() -> None:
    parser = argparse.ArgumentParser(description="Print the callbacks Switchboard posts.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9080)
    parser.add_argument("--secret", default=EXAMPLE_SECRET, help="the domain's callback_secret")
    options = parser.parse_args()
    server = HTTPServer((options.host, options.port), handler_for(options.secret))
    print(f"receiving callbacks at http://{options.host}:{options.port}/callback", flush=True)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: stop without a traceback
        server.serve_forever()


if __name__ == "__main__":
    main()
