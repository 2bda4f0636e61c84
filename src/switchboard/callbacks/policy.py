"""What a delivery looks like and when it is tried again (API §3), pure.

- Backoff: 1 s, 2 s, 4 s … doubling, capped at 5 minutes, for up to 24 hours after the
  callback was created; then it is given up (and logged).
- Signature: ``X-Switchboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
  "<t>.<raw body>")>`` when the domain has a ``callback_secret``; the receiver recomputes it
  over the exact bytes it got and checks ``t`` is recent (replay protection).
- ``X-Switchboard-Delivery`` is constant across retries, so receivers can de-duplicate.
- Only http and https URLs; loopback, private and link-local addresses are refused unless
  the server allows them (tests do). Host names are checked when they resolve, at send time.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from urllib.parse import urlsplit

FIRST_DELAY = 1.0
MAX_DELAY = 300.0
GIVE_UP_AFTER = 24 * 3600.0


def next_delay(attempts: int) -> float:
    """Seconds before try number ``attempts + 1`` (``attempts`` already failed)."""
    return min(FIRST_DELAY * (1 << min(max(attempts - 1, 0), 20)), MAX_DELAY)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def headers(delivery_id: str, body: bytes, secret: str | None, now: float) -> dict[str, str]:
    out = {"Content-Type": "application/json", "X-Switchboard-Delivery": delivery_id}
    if secret:
        out["X-Switchboard-Signature"] = signature(secret, int(now), body)
    return out


class CallbackUrlError(ValueError):
    pass


def check_url(url: str, *, allow_private: bool) -> str:
    """Raise ``CallbackUrlError`` for what can never be delivered; return the URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CallbackUrlError("callback_url must be an http or https URL")
    if not allow_private and is_private_host(parts.hostname):
        raise CallbackUrlError("callback_url points to a private or loopback address")
    return url


def is_private_host(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False  # a name: checked again once resolved, at delivery time
    return (
        address.is_private or address.is_loopback or address.is_link_local
        or address.is_reserved or address.is_multicast or address.is_unspecified
    )  # fmt: skip
