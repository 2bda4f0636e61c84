"""REGISTER processing (RFC 3261 §10.3), pure: a request and ``now`` in, a decision out.

The steps, in the RFC's order where it matters:
1. The address-of-record is the To URI; its host must be a domain we serve (else 404).
   The server's own address (``ServerConfig.own_hosts``) stands for the default domain
   (``effective_default_domain``): phones configured with the PBX's address as their
   domain bind there, under the domain's name, so ``user@domain`` rings them.
2. ``Require`` with anything is refused with 420 (§10.3 step 2: we support no extension).
3. Authentication (§22): the realm is the domain. No credentials → 401 with an MD5
   challenge (``DEFAULT_ALGORITHMS`` says why not SHA-256 too). A stale or unknown nonce
   (e.g. after a restart, or a nonce fetched from another address) → 401 again, not a
   failure. ``qop=auth`` is required (403 without it). A wrong password or unknown user →
   403, counted against (user, source) and, at a higher limit, the source; either over
   its limit gets 403 at once, without a challenge. Nonces name the address they were
   sent to, so nobody can spend another address's failures.
4. The authenticated user must be the AOR's user (§10.3 step 4), else 403.
5. Contacts (§10.3 steps 6–7): ``*`` removes every binding and needs ``Expires: 0`` and no
   other contact. Each contact's expiry comes from its ``expires`` parameter, else the
   Expires header, else the default; below ``min_expires`` (but not 0) the request fails
   with 423 and Min-Expires; above ``max_expires`` it is shortened. For an existing binding
   with the same Call-ID, a CSeq not above the stored one is out of order: 500.
   A Contact we would never send to is refused: an ``.invalid`` host (RFC 6761 §6.4, as
   WebRTC clients register) 400, one naming a trunk's address 403 (toll fraud: the PBX
   would INVITE the trunk itself). A user keeps at most ``max_contacts`` bindings (403
   beyond): one REGISTER with hundreds of Contacts must not turn a call into an INVITE
   flood. Phones are rung at the address the REGISTER came from (``received``), not at
   their Contact's host (RFC 3261 §10.3 with RFC 5626's flows; the service resolves a
   Contact host name before storing, and refuses one that does not resolve).
6. The 200 lists every binding of the AOR with its remaining ``expires`` (§10.3 step 8).

Nothing is stored here: ``RegisterDecision`` says what to upsert and remove, and the service
answers only once that is stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from switchboard.config import (
    Config,
    DomainConfig,
    canonical_host,
    effective_default_domain,
    split_hostport,
)
from switchboard.directory import Directory
from switchboard.registrar.location import Binding, LocationService, path_received
from switchboard.sip.address import Address
from switchboard.sip.builders import make_response
from switchboard.sip.digest import DigestServer, parse_auth_params
from switchboard.sip.errors import ParseError
from switchboard.sip.grammar import bounded_int
from switchboard.sip.headers import Header
from switchboard.sip.message import Request, Response, headers
from switchboard.sip.transaction.base import Peer
from switchboard.sip.uri import SipUri
from switchboard.throttle import FailureThrottle, ThrottleSettings

# Measured here: baresip 1.0.0 (libre) aborts registration when any challenge names an
# algorithm it lacks (SHA-256), and SIPp 3.6 reads only the first challenge. Deployed phones
# overwhelmingly know only MD5, so MD5 alone is the default; ("MD5", "SHA-256") or
# ("SHA-256",) can be configured per deployment.
DEFAULT_ALGORITHMS = ("MD5",)
# A source as a whole (one scanner trying many users) is blocked after more failures than
# one user from one source (a phone with a wrong password, ``ThrottleSettings``' default).
SOURCE_THROTTLE = ThrottleSettings(max_failures=20)
_QVALUE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")


@dataclass(frozen=True, slots=True)
class RegistrarSettings:
    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 3600
    digest_algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    max_contacts: int = 10
    trunk_addresses: frozenset[tuple[str, int]] = frozenset()  # (lower-case host, port)
    server_hosts: frozenset[str] = frozenset()  # ``canonical_host`` spellings of our address
    default_domain: str | None = None  # where a REGISTER to ``server_hosts`` lands
    front_host: str | None = None  # the cluster's SIP front: the only source of a Path

    @classmethod
    def for_config(cls, config: Config) -> RegistrarSettings:
        """What the config file decides: contacts per user, trunks, our address."""
        default = effective_default_domain(config)
        return cls(
            max_contacts=config.server.max_contacts,
            trunk_addresses=trunk_addresses(config),
            server_hosts=config.own_hosts,
            default_domain=default.name if default else None,
            front_host=config.cluster.front_host,
        )


@dataclass(frozen=True, slots=True)
class RegisterDecision:
    response: Response
    upserts: tuple[Binding, ...] = ()
    removals: tuple[Binding, ...] = ()
    log: str = ""
    warning: bool = False  # an authentication failure or a block: worth a warning line


class RefusalError(Exception):
    """A REGISTER that ends in an error response (internal control flow)."""

    def __init__(self, status: int, reason: str | None = None, extra: tuple[Header, ...] = ()):
        super().__init__(reason)
        self.status, self.reason, self.extra = status, reason, extra


class Registrar:
    def __init__(
        self,
        directory: Directory,
        location: LocationService,
        *,
        digest_key: bytes,
        new_tag: Callable[[], str],
        throttle: FailureThrottle | None = None,
        user_throttle: FailureThrottle | None = None,
        settings: RegistrarSettings | None = None,
    ) -> None:
        self.directory = directory
        self.location = location
        self.throttle = throttle or FailureThrottle(SOURCE_THROTTLE)
        self.user_throttle = user_throttle or FailureThrottle()
        self.settings = settings or RegistrarSettings()
        self._digest_key = digest_key
        self._digest: dict[str, DigestServer] = {}
        self._new_tag = new_tag

    def handle(self, request: Request, source: Peer, now: float) -> RegisterDecision:
        try:
            return self._handle(request, source, now)
        except RefusalError as refusal:
            response = self._response(request, refusal.status, refusal.reason, refusal.extra)
            return RegisterDecision(response, log=f"{refusal.status} {refusal.reason or ''}")
        except ParseError as exc:
            return RegisterDecision(self._response(request, 400, exc.reason), log=exc.reason)

    def _handle(self, request: Request, source: Peer, now: float) -> RegisterDecision:
        to_uri = request.to.uri
        if not isinstance(to_uri, SipUri) or not to_uri.user:
            raise RefusalError(400, "To is not a SIP address-of-record")
        domain = self.domain_for(to_uri.host)
        if domain is None:
            raise RefusalError(404, "Domain not served here")
        if request.get("Require"):
            unsupported = headers(("Unsupported", ", ".join(request.get_all("Require"))))
            raise RefusalError(420, None, unsupported)
        user = self.directory.user(domain.name, to_uri.user)
        # behind the cluster's front, the phone's own address (its Path's received): one
        # phone's failures must not block every phone behind the front
        origin = _path_origin(request, source, self.settings.front_host) or source.host
        if self._blocked(to_uri.user, domain.name, origin, now):
            raise RefusalError(403, "Too many failed attempts")
        denied = self._authenticate(request, domain.name, user, now, origin)
        if denied is not None:
            return denied
        return self._update_bindings(request, domain.name, to_uri.user, source, now)

    def domain_for(self, host: str) -> DomainConfig | None:
        """The domain a host names: a configured domain first, else our own address names
        the default domain (a configured domain spelt like our address stays itself)."""
        domain = self.directory.domain(host)
        default = self.settings.default_domain
        if domain is None and default and canonical_host(host) in self.settings.server_hosts:
            return self.directory.domain(default)
        return domain

    # -- authentication -------------------------------------------------------------------

    def digest_for(self, realm: str) -> DigestServer:
        """The realm's digest server, shared with whoever else challenges in that realm (an
        INVITE from a phone): nonces and nonce counts are the same for both."""
        server = self._digest.get(realm)
        if server is None:
            server = DigestServer(
                realm,
                self._digest_key,
                nonce_salt=self._new_tag,
                algorithms=self.settings.digest_algorithms,
            )
            self._digest[realm] = server
        return server

    def _blocked(self, user: str, realm: str, source: str, now: float) -> bool:
        return self.throttle.is_blocked(source, now) or self.user_throttle.is_blocked(
            throttle_key(user, realm, source), now
        )

    def _authenticate(
        self, request: Request, realm: str, user: object, now: float, source: str
    ) -> RegisterDecision | None:
        digest = self.digest_for(realm)
        credentials = credentials_for_realm(request, realm)
        if credentials is None:
            return self._challenge(request, digest, now, source, stale=False)
        password = getattr(user, "sip_password", None)
        verdict = digest.verify(credentials, "REGISTER", password, now, source)
        aor_user = request.to.uri.user if isinstance(request.to.uri, SipUri) else None
        if verdict.ok and verdict.username == aor_user:
            return None
        if verdict.stale or verdict.reason in ("forged nonce", "replayed nonce count"):
            # Not a password failure: a restart forgot the key, the phone reused a nonce
            # count or moved, or someone else's nonce was used (it names another address).
            # A fresh challenge lets honest phones through and costs attackers nothing.
            return self._challenge(request, digest, now, source, stale=verdict.stale)
        reason = verdict.reason if not verdict.ok else "credentials of another user"
        if verdict.reason == "qop=auth required":
            return RegisterDecision(self._response(request, 403, "qop=auth required"), log=reason)
        # Only the address that fetched this nonce can have sent this answer (the nonce's
        # MAC names it), so a failure is charged to that source, for that user, and to the
        # source as a whole at a higher limit (one scanner trying many users).
        blocked = self.user_throttle.record_failure(
            throttle_key(aor_user or "", realm, source), now
        )
        blocked = self.throttle.record_failure(source, now) or blocked
        note = f"; {aor_user}@{realm} from {source} blocked" if blocked else ""
        return RegisterDecision(
            self._response(request, 403),
            log=f"authentication failed for {aor_user}@{realm} from {source}: {reason}{note}",
            warning=True,
        )

    def _challenge(
        self, request: Request, digest: DigestServer, now: float, source: str, *, stale: bool
    ) -> RegisterDecision:
        values = digest.challenges(now, source, stale=stale)
        extra = tuple(Header("WWW-Authenticate", v) for v in values)
        return RegisterDecision(self._response(request, 401, None, extra), log="challenged")

    # -- bindings -------------------------------------------------------------------------

    def _update_bindings(
        self, request: Request, domain: str, user: str, source: Peer, now: float
    ) -> RegisterDecision:
        aor = (domain, user)
        current = {b.key: b for b in self.location.bindings(aor, now)}
        contacts = request.contacts
        upserts: list[Binding] = []
        removals: list[Binding] = []
        if any(c.is_wildcard for c in contacts):
            if len(contacts) != 1 or request.get("Expires") != "0":
                raise RefusalError(400, "Contact * needs Expires: 0 and no other contact")
            removals = list(current.values())
            current = {}
        for contact in contacts if not removals else ():
            binding, expires = self._binding(request, contact, aor, source, now)
            existing = current.get(binding.key)
            if existing and existing.call_id == binding.call_id and binding.cseq <= existing.cseq:
                raise RefusalError(500, "Out of order REGISTER")
            if expires == 0:
                if existing:
                    removals.append(existing)
                    del current[binding.key]
            else:
                upserts.append(binding)
                current[binding.key] = binding
        if len(current) > self.settings.max_contacts:
            limit = self.settings.max_contacts
            raise RefusalError(403, f"Too many contacts (at most {limit} per user)")
        listed = tuple(
            Header("Contact", _contact_value(b, now))
            for b in sorted(current.values(), key=lambda b: -float(b.q or "1"))
        )
        path = _path(request, source, self.settings.front_host)
        if path and "path" in request.get_all("Supported"):  # RFC 3327 §5.3
            listed += tuple(Header("Path", hop) for hop in path)
        response = self._response(request, 200, None, listed)
        summary = f"{user}@{domain}: {len(current)} binding(s) (+{len(upserts)} -{len(removals)})"
        return RegisterDecision(response, tuple(upserts), tuple(removals), log=summary)

    def _binding(
        self, request: Request, contact: Address, aor: tuple[str, str], source: Peer, now: float
    ) -> tuple[Binding, int]:
        domain, user = aor
        if contact.uri is None or not isinstance(contact.uri, SipUri):
            raise RefusalError(400, "Contact is not a SIP URI")
        self._check_contact_host(contact.uri)
        expires = self._expires(request, contact)
        q = contact.params.get("q")
        if q is not None and not _valid_q(q):
            raise RefusalError(400, "Malformed q value")
        binding = Binding(
            domain=domain,
            user=user,
            contact=str(contact.uri),
            expires_at=now + expires,
            call_id=request.call_id,
            cseq=request.cseq.number,
            q=q,
            received=f"{source.transport}:{source.host}:{source.port}",
            user_agent=(request.get("User-Agent") or "")[:255],
            path=_path(request, source, self.settings.front_host),
        )
        return binding, expires

    def _check_contact_host(self, uri: SipUri) -> None:
        host, port = uri.host_port
        host = host.lower().rstrip(".")
        if host == "invalid" or host.endswith(".invalid"):
            raise RefusalError(400, "Contact host is .invalid: no address to reach")
        if self.names_trunk(host, port):
            raise RefusalError(403, "Contact names a trunk")

    def names_trunk(self, host: str, port: int | None) -> bool:
        return (host.lower().rstrip("."), port or 5060) in self.settings.trunk_addresses

    def refuse(self, request: Request, status: int, reason: str) -> RegisterDecision:
        """A refusal decided at the edge (a Contact host that does not resolve)."""
        return RegisterDecision(self._response(request, status, reason), log=f"{status} {reason}")

    def _expires(self, request: Request, contact: Address) -> int:
        settings = self.settings
        text = contact.params.get("expires") or request.get("Expires")
        value = bounded_int(text, 2**32 - 1) if text is not None else None
        expires = settings.default_expires if value is None else value
        if 0 < expires < settings.min_expires:
            raise RefusalError(423, None, headers(("Min-Expires", str(settings.min_expires))))
        return min(expires, settings.max_expires)

    def _response(
        self,
        request: Request,
        status: int,
        reason: str | None = None,
        extra: tuple[Header, ...] = (),
    ) -> Response:
        tag = request.to.tag or self._new_tag()
        return make_response(request, status, reason, to_tag=tag, extra=extra)


def apply(location: LocationService, decision: RegisterDecision) -> None:
    """Make the in-memory location service say what was just stored."""
    for binding in decision.removals:
        location.remove(binding.aor, binding.contact)
    for binding in decision.upserts:
        location.put(binding)


def throttle_key(user: str, realm: str, source: str) -> str:
    """The key of the per-(user, source) throttle: one key for REGISTER and INVITE, so
    guessing a password through either counts toward the same block."""
    return f"{user}@{realm} {source}"


MAX_PATH = 4  # proxies between a phone and us: the front, and a few of its own


def _path(request: Request, source: Peer, front: str | None) -> tuple[str, ...]:
    """The REGISTER's Path (RFC 3327), kept only when it came from the cluster's front: a
    stranger's Path would make us send INVITEs wherever it says."""
    if front is None or canonical_host(source.host) != front:
        return ()
    return tuple(hop[:512] for hop in request.get_all("Path")[:MAX_PATH])


def _path_origin(request: Request, source: Peer, front: str | None) -> str | None:
    path = _path(request, source, front)
    return path_received(path[0]) if path else None


def trunk_addresses(config: Config) -> frozenset[tuple[str, int]]:
    """Every trunk's (host, port): no phone may register one as its Contact."""
    found = set()
    for domain in config.domains:
        for trunk in domain.trunks:
            host, port = split_hostport(trunk.address)
            found.add((host.lower().rstrip("."), port))
    return frozenset(found)


def credentials_for_realm(
    request: Request, realm: str, header: str = "Authorization"
) -> str | None:
    """The request's digest credentials for ``realm`` (``Proxy-Authorization`` answers a
    407, RFC 3261 §22.3); a phone may carry credentials for other realms too."""
    for value in request.get_all(header):
        try:
            scheme, params = parse_auth_params(value)
        except ParseError:
            continue
        if scheme.lower() == "digest" and params.get("realm", "").lower() == realm:
            return value
    return None


def _contact_value(binding: Binding, now: float) -> str:
    q = f";q={binding.q}" if binding.q else ""
    return f"<{binding.contact}>;expires={binding.expires_in(now)}{q}"


def _valid_q(text: str) -> bool:
    """RFC 3261 §25.1: ``qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )``."""
    return _QVALUE.fullmatch(text) is not None
