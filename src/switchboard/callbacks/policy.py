"""What a delivery looks like, when it is tried again and where it may go (API §3), pure.

- Backoff: 1 s, 2 s, 4 s … doubling, capped at 5 minutes, for up to 24 hours after the
  callback was created; then it is given up (and logged).
- Signature: ``X-Switchboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
  "<t>.<raw body>")>`` when the domain has a ``callback_secret``; the receiver recomputes it
  over the exact bytes it got and checks ``t`` is recent (replay protection).
- ``X-Switchboard-Delivery`` is constant across retries, so receivers can de-duplicate.
- Only http and https URLs, to globally reachable addresses (``addresses``) unless the
  server allows private ones (tests do). A URL naming an address is judged when it is
  given; a host name each time it is resolved, by every address it resolves to, and the
  callback is then sent to one of exactly those addresses (no second lookup).
- A URL's userinfo (``user:password@``) is a credential: a log line shows the URL through
  ``redact``, never as given.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import urlsplit

from switchboard.callbacks.addresses import (
    IPAddress,
    is_loopback_name,
    literal_address,
    why_not_public,
)

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
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise CallbackUrlError("not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise CallbackUrlError("must be an http or https URL")
    if allow_private:
        return url
    if is_loopback_name(host):
        raise CallbackUrlError(f"{host} is a loopback name (RFC 6761)")
    address = literal_address(host)
    if address is not None:
        check_addresses(host, [address], allow_private=False)
    return url


def check_addresses(host: str, addresses: Iterable[IPAddress], *, allow_private: bool) -> None:
    """Every address ``host`` led to must be public: one that is not refuses them all (a
    name with a private address among its answers is not trusted for the others)."""
    if allow_private:
        return
    for address in addresses:
        why = why_not_public(address)
        if why is not None:
            shown = host if str(address) == host.strip("[]") else f"{host} ({address})"
            raise CallbackUrlError(f"{shown} is not a public address ({why})")


def redact(url: str) -> str:
    """The URL with its userinfo, if any, replaced by ``***``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()
