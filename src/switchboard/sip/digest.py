"""Digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 8760): MD5 and SHA-256, qop=auth.

Server side (``DigestServer``):
- Challenges offer MD5 first, then SHA-256, one header each. RFC 7616 §3.7 would put the
  preferred algorithm first, but clients that read only the first challenge exist (SIPp
  3.6 fails on a leading SHA-256 one, measured) and most deployed phones know only MD5;
  the order is a constructor argument so a deployment can prefer SHA-256.
- Nonces are stateless: ``<issued-at>.<salt>.<HMAC(key, issued-at.salt:realm:source)>`` in
  base64, so any node sharing the key can check them; the salt (from an injected source)
  makes every challenge's nonce unique. The MAC covers the address the challenge was sent
  to (RFC 7616 §3.3 allows a nonce to depend on the client's address): a nonce fetched from
  one address is forged when used from another, so a third party cannot spend a phone's
  failures (a spoofed source never sees its challenge). An expired nonce with a valid
  signature earns ``stale=true`` (RFC 7616 §3.3): the phone retries with the same password.
- ``qop=auth`` is required (RFC 7616 §3.4: the RFC 2069 form without it has no nonce
  count, so a captured answer replays for the nonce's whole life).
- ``nc`` must grow for a nonce (RFC 7616 §3.4.5); a bounded table remembers the last one.
- Comparison of responses is constant-time.

Client side (``answer_challenge``): builds Authorization / Proxy-Authorization values for
401/407 challenges, with ``qop=auth`` when offered, else the RFC 2069 form.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from switchboard.sip.errors import ParseError
from switchboard.sip.grammar import WSP, quote, read_quoted

_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
SUPPORTED_ALGORITHMS = ("MD5", "SHA-256")


def _h(algorithm: str, data: str) -> str:
    return _HASHES[algorithm](data.encode("utf-8", "surrogateescape")).hexdigest()


def parse_auth_params(value: str) -> tuple[str, dict[str, str]]:
    """Parse ``Digest a=b, c="d"`` into ("Digest", {a: b, c: d}); names are lower-cased."""
    scheme, _, rest = value.strip(WSP).partition(" ")
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in WSP + ",":
            i += 1
        if i >= n:
            break
        eq = rest.find("=", i)
        if eq < 0:
            raise ParseError("Malformed auth parameter")
        name = rest[i:eq].strip(WSP).lower()
        i = eq + 1
        while i < n and rest[i] in WSP:
            i += 1
        if i < n and rest[i] == '"':
            val, i = read_quoted(rest, i)
        else:
            end = rest.find(",", i)
            end = n if end < 0 else end
            val, i = rest[i:end].strip(WSP), end
        params[name] = val
    return scheme, params


def compute_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
) -> str:
    ha1 = _h(algorithm, f"{username}:{realm}:{password}")
    ha2 = _h(algorithm, f"{method}:{uri}")
    if qop:
        return _h(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _h(algorithm, f"{ha1}:{nonce}:{ha2}")


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    username: str | None = None
    stale: bool = False
    reason: str = ""


class DigestServer:
    def __init__(
        self,
        realm: str,
        key: bytes,
        *,
        nonce_salt: Callable[[], str],
        nonce_ttl: float = 300.0,
        algorithms: tuple[str, ...] = SUPPORTED_ALGORITHMS,
    ) -> None:
        if not algorithms or any(a not in _HASHES for a in algorithms):
            raise ValueError(f"digest algorithms must be among {sorted(_HASHES)}")
        self.algorithms = algorithms
        self.realm = realm
        self._key = key
        self._salt = nonce_salt
        self.nonce_ttl = nonce_ttl
        self._last_nc: OrderedDict[str, int] = OrderedDict()

    def _mac(self, issued: str, source: str) -> str:
        message = f"{issued}:{self.realm}:{source}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]

    def make_nonce(self, now: float, source: str) -> str:
        issued = f"{now:.3f}.{self._salt()}"
        return base64.b64encode(f"{issued}.{self._mac(issued, source)}".encode()).decode()

    def challenges(self, now: float, source: str, *, stale: bool = False) -> list[str]:
        """Challenges for a request from ``source`` (its IP address)."""
        nonce = self.make_nonce(now, source)
        tail = ", stale=true" if stale else ""
        return [
            f"Digest realm={quote(self.realm)}, nonce={quote(nonce)}, algorithm={alg}, "
            f'qop="auth"{tail}'
            for alg in self.algorithms
        ]

    def _nonce_age(self, nonce: str, now: float, source: str) -> float | None:
        if len(nonce) > 200:
            return None
        try:
            issued, _, mac = base64.b64decode(nonce, validate=True).decode().rpartition(".")
            if not hmac.compare_digest(mac, self._mac(issued, source)):
                return None
            stamp = issued.rsplit(".", 1)[0]  # "<time>.<salt>"; salts have no dot
            return now - float(stamp) if len(stamp) <= 20 else None
        except (ValueError, UnicodeDecodeError):
            return None

    def verify(
        self, authorization: str, method: str, password: str | None, now: float, source: str
    ) -> Verdict:
        """Check one Authorization value sent from ``source``; ``password`` is None for an
        unknown user."""
        try:
            scheme, p = parse_auth_params(authorization)
        except ParseError:
            return Verdict(False, reason="malformed credentials")
        if scheme.lower() != "digest":
            return Verdict(False, reason="not digest")
        username, nonce, response = p.get("username"), p.get("nonce"), p.get("response")
        uri, algorithm = p.get("uri"), p.get("algorithm", "MD5").upper()
        if not username or not nonce or not response or not uri:
            return Verdict(False, username, reason="missing parameter")
        if p.get("realm") != self.realm:
            return Verdict(False, username, reason="wrong realm")
        if algorithm not in _HASHES:
            return Verdict(False, username, reason="unsupported algorithm")
        age = self._nonce_age(nonce, now, source)
        if age is None or age < -1.0:
            return Verdict(False, username, reason="forged nonce")
        qop = p.get("qop")
        if qop is None:
            return Verdict(False, username, reason="qop=auth required")
        if qop != "auth":
            return Verdict(False, username, reason="unsupported qop")
        if password is None:
            return Verdict(False, username, reason="unknown user")
        expected = compute_response(
            algorithm=algorithm, username=username, realm=self.realm, password=password,
            method=method, uri=uri, nonce=nonce, qop=qop, nc=p.get("nc"), cnonce=p.get("cnonce"),
        )  # fmt: skip
        if not hmac.compare_digest(expected, response.lower()):
            return Verdict(False, username, reason="wrong password")
        if age > self.nonce_ttl:
            return Verdict(False, username, stale=True, reason="stale nonce")
        if not self._fresh_nc(nonce, p.get("nc", "")):
            return Verdict(False, username, reason="replayed nonce count")
        return Verdict(True, username)

    def _fresh_nc(self, nonce: str, nc_text: str) -> bool:
        if len(nc_text) != 8:  # RFC 7616 §3.4: 8LHEX
            return False
        try:
            nc = int(nc_text, 16)
        except ValueError:
            return False
        last = self._last_nc.get(nonce, 0)
        if nc <= last:
            return False
        self._last_nc[nonce] = nc
        self._last_nc.move_to_end(nonce)
        while len(self._last_nc) > 100_000:
            self._last_nc.popitem(last=False)
        return True


def answer_challenge(
    challenge: str,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    cnonce: str,
    nc: int = 1,
) -> str:
    """Build the credentials answering one WWW-Authenticate / Proxy-Authenticate value."""
    scheme, p = parse_auth_params(challenge)
    if scheme.lower() != "digest":
        raise ParseError("Not a digest challenge")
    algorithm = p.get("algorithm", "MD5").upper()
    if algorithm not in _HASHES:
        raise ParseError(f"Unsupported digest algorithm {algorithm}")
    realm, nonce = p.get("realm", ""), p.get("nonce", "")
    qops = [q.strip() for q in p.get("qop", "").split(",") if q.strip()]
    qop = "auth" if "auth" in qops else None
    nc_text = f"{nc:08x}"
    response = compute_response(
        algorithm=algorithm, username=username, realm=realm, password=password, method=method,
        uri=uri, nonce=nonce, qop=qop, nc=nc_text, cnonce=cnonce,
    )  # fmt: skip
    parts = [
        f"username={quote(username)}", f"realm={quote(realm)}", f"nonce={quote(nonce)}",
        f"uri={quote(uri)}", f"response={quote(response)}", f"algorithm={algorithm}",
    ]  # fmt: skip
    if qop:
        parts += [f"qop={qop}", f"nc={nc_text}", f"cnonce={quote(cnonce)}"]
    if "opaque" in p:
        parts.append(f"opaque={quote(p['opaque'])}")
    return "Digest " + ", ".join(parts)


def pick_challenge(values: list[str]) -> str | None:
    """The topmost challenge whose algorithm we support (RFC 8760 §2.4)."""
    for value in values:
        try:
            scheme, p = parse_auth_params(value)
        except ParseError:
            continue
        if scheme.lower() == "digest" and p.get("algorithm", "MD5").upper() in _HASHES:
            return value
    return None
