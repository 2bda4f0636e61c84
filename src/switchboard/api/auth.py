"""Who is calling the API: HTTP Basic ``DOMAIN:API_TOKEN`` (API §1, RFC 7617), with a
throttle on sources that keep failing.

A source (the client's IP address) that fails ``API_THROTTLE.max_failures`` times within
``window`` seconds is refused for ``block_seconds`` with HTTP 429 and ``Retry-After``,
before its credentials are even looked at: guessing tokens costs the guesser, not us, and a
correct token found during the block does not help. Missing, malformed and wrong
credentials all count, on the REST methods, the admin API, ``/metrics`` and the ``ws_cti``
upgrade alike. In a cluster (``share``), the count is the cluster's: a source blocked on
one node is blocked on this one at its next failure here (``throttle.ThrottleSharing``).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import math
import time
from collections.abc import Callable

from switchboard.api.errors import ApiError
from switchboard.config import DomainConfig
from switchboard.directory import Directory
from switchboard.logbudget import LogBudget
from switchboard.throttle import (
    ClusterThrottle,
    FailureThrottle,
    ThrottleSettings,
    ThrottleSharing,
)

log = logging.getLogger("switchboard.api")

API_THROTTLE = ThrottleSettings(max_failures=10, window=60.0, block_seconds=60.0)


def basic_credentials(header: str) -> tuple[str, str]:
    """User and password of an ``Authorization: Basic`` header (RFC 7617)."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise ApiError("authentication_required", "HTTP Basic DOMAIN:API_TOKEN is required")
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise ApiError("authentication_required", "malformed Basic credentials") from None
    return user, password


def domain_for_token(directory: Directory, name: str, token: str) -> DomainConfig:
    """The domain whose token this is; the comparison takes the same time for any input."""
    domain = directory.domain(name)
    expected = domain.api_token if domain else "x" * 32
    if not hmac.compare_digest(token.encode(), expected.encode()) or domain is None:
        raise ApiError("authentication_required", "wrong domain or API token")
    return domain


class ApiAuth:
    def __init__(
        self,
        directory: Directory,
        settings: ThrottleSettings = API_THROTTLE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        self.throttle = FailureThrottle(settings)
        self._clock = clock
        self.counters = {"api_auth_failures": 0, "api_auth_refused_throttled": 0}
        self._log_budget = LogBudget(per_second=20)  # a guessing flood cannot flood the log
        self.sharing: ThrottleSharing | None = None

    def share(self, shared: ClusterThrottle) -> None:
        """Count failures with the other nodes too (the cluster state's ``api`` throttle,
        with this throttle's settings)."""
        self.sharing = ThrottleSharing(self.throttle, shared, what="API", clock=self._clock)

    def statistics(self) -> dict[str, int]:
        shared = self.sharing.counters if self.sharing is not None else {}
        return {**self.counters, **{f"api_auth_{k}": v for k, v in shared.items()}}

    async def unshare(self) -> None:
        """Count failures on this node only again (leaving the cluster)."""
        if self.sharing is not None:
            await self.sharing.aclose()

    def domain(self, source: str, authorization: str) -> DomainConfig:
        """The caller's domain from its ``Authorization`` header, or ApiError."""
        self.check_not_blocked(source)
        try:
            user, token = basic_credentials(authorization)
            return domain_for_token(self.directory, user, token)
        except ApiError:
            self.failed(source)
            raise

    def check_not_blocked(self, source: str) -> None:
        now = self._clock()
        if self.throttle.is_blocked(source, now):
            self.counters["api_auth_refused_throttled"] += 1
            retry = math.ceil(self.throttle.blocked_for(source, now))
            raise ApiError(
                "too_many_failures",
                f"too many failed authentications from {source}; retry in {retry} s",
                http_status=429,
                headers={"Retry-After": str(retry)},
            )

    def failed(self, source: str, what: str = "API") -> None:
        """Count and log a failed authentication (also a refused ``ws_cti`` ticket)."""
        self.counters["api_auth_failures"] += 1
        left_out = self._log_budget.take(self._clock())
        if left_out is not None:
            more = f" ({left_out} more not logged)" if left_out else ""
            log.warning("%s authentication failed from %s%s", what, source, more)
        if self.throttle.record_failure(source, self._clock()):
            block = self.throttle.settings.block_seconds
            log.warning("API authentication: %s failed too often, refused for %g s", source, block)
