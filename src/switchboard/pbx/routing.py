"""Who sent an incoming INVITE and where it goes (DESIGN §6), pure: a request, where it came
from and ``now`` in, a decision out (``Routed``, ``Challenge`` or ``Refusal``); nothing is
sent, nothing is read from a clock.

Rules:
- The source address decides what kind of caller this is (``Router.classify_source``): the
  host of a configured trunk's address is that trunk; an address a phone registered from,
  or a static contact's host, is a phone; anything else is a stranger (403). A trunk wins
  over a phone: the configuration's word is worth more than a REGISTER (a gateway that
  also registers, phones behind the gateway's NAT). Addresses are compared as IP literals:
  a trunk configured by host name never matches (no DNS on the INVITE path).
- A phone's INVITE is authenticated like a REGISTER (``registrar.registrar``), but as a
  proxy would (RFC 3261 §22.3): no or stale credentials earn 407 with Proxy-Authenticate,
  answered in Proxy-Authorization; the realm is the caller's domain; a wrong password costs
  the same throttles as a REGISTER's (so guessing through INVITE gains nothing), and a
  throttled source or user gets 403 without a challenge. The authenticated user must be
  the From user (403 otherwise: nobody calls as someone else).
- The caller's domain is the one the From host names, else the Request-URI host's; the
  server's own address names the effective default domain (``config``). A Request-URI
  naming another of our domains is refused (403): domains do not call each other.
- A phone dials a destination of its domain (DESIGN §5): a user, a group, an extension, a
  DID, or a PSTN number through the domain's trunk. The ``{…}`` prefix of the API is not
  for phones (it would let a phone choose its caller ID). Toward the PSTN the caller ID is
  the user's ``did``, else the domain's ``calling_number``.
- A trunk's INVITE names a DID in its Request-URI (``user=phone`` or ``tel:`` numbers lose
  their visual separators, RFC 3966 §5.1.1); the DID must be a user's or group's of a
  domain reached through that gateway. The caller ID shown is P-Asserted-Identity's
  number (RFC 3325 §9.1), else the From user; the name is From's display name.

Status codes (RFC 3261 §21): 403 for a stranger, a throttled or failed authentication,
another user's credentials, a call across domains and a PSTN number outside the domain's
prefixes (§21.4.4: understood, refused, no point in authenticating again); 404 for an
unknown domain, destination or DID, and for a number with no trunk to carry it (§21.4.5;
Q.850 cause 3 "no route to destination" maps to 404, RFC 3398 §7.2.4.1); 484 for a
Request-URI without a user part (§21.4.22); 416 for a URI that is neither sip: nor tel:
(§21.4.15). Dialling yourself is 486 Busy Here (§21.4.24): the line you call is the one
you are using, which is what a telephone line answers; ringing your other terminals would
also ring, or loop back to, the phone that is calling.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from switchboard.config import (
    Config,
    DomainConfig,
    TrunkConfig,
    UserConfig,
    canonical_host,
    effective_default_domain,
    is_ip,
    split_hostport,
)
from switchboard.pbx.destinations import (
    Destination,
    GroupTarget,
    InvalidDestinationError,
    PstnTarget,
    Target,
    UserTarget,
    resolve,
)
from switchboard.registrar.registrar import Registrar, credentials_for_realm, throttle_key
from switchboard.sip.address import parse_address
from switchboard.sip.digest import DigestServer
from switchboard.sip.errors import ParseError
from switchboard.sip.headers import Header
from switchboard.sip.message import Request
from switchboard.sip.transaction.base import Peer
from switchboard.sip.uri import SipUri, TelUri, Uri, parse_uri, unescape
from switchboard.throttle import FailureThrottle

CallKind = Literal["internal", "outbound", "inbound"]
_VISUAL_SEPARATORS = str.maketrans("", "", "-.()")


@dataclass(frozen=True, slots=True)
class TrunkSource:
    """The INVITE came from this trunk's host."""

    domain: DomainConfig
    trunk: TrunkConfig


@dataclass(frozen=True, slots=True)
class PhoneSource:
    """A phone registered from (or is configured at) the INVITE's source address."""


@dataclass(frozen=True, slots=True)
class Stranger:
    """Neither a trunk nor a phone: refused with 403."""


Source = TrunkSource | PhoneSource | Stranger


@dataclass(frozen=True, slots=True)
class CallerId:
    """Who is calling, as shown to the called side."""

    number: str | None  # a phone's extension (else its user name); a trunk caller's number
    name: str | None  # a phone's label (else its user name); the trunk caller's display name


@dataclass(frozen=True, slots=True)
class Routed:
    """Ring ``destination`` for this call.

    ``kind``: ``internal`` (a phone calls a user or group), ``outbound`` (a phone calls the
    PSTN; ``destination.calling_number`` is the caller ID to send), ``inbound`` (a trunk
    calls a DID)."""

    kind: CallKind
    domain: DomainConfig
    destination: Destination
    caller: CallerId
    user: UserConfig | None = None  # the authenticated calling user (phone calls)
    trunk: TrunkConfig | None = None  # the trunk the call came in from (inbound calls)


@dataclass(frozen=True, slots=True)
class Challenge:
    """Answer 407 with these headers (one Proxy-Authenticate per algorithm, §22.3)."""

    headers: tuple[Header, ...]
    status: int = 407
    reason: str = "Proxy Authentication Required"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Answer with ``status`` and ``reason``; ``log`` says why for the log line, and
    ``warning`` marks an authentication failure (worth a warning, like a REGISTER's)."""

    status: int
    reason: str
    log: str = ""
    warning: bool = False


Decision = Routed | Challenge | Refusal


@dataclass(frozen=True, slots=True)
class PhoneAuth:
    """What authenticating a phone shares with the registrar: the realm's digest server
    (realm = domain name) and the two failure throttles (per source, per user and source)."""

    digest_for: Callable[[str], DigestServer]
    throttle: FailureThrottle
    user_throttle: FailureThrottle

    @classmethod
    def of(cls, registrar: Registrar) -> PhoneAuth:
        return cls(registrar.digest_for, registrar.throttle, registrar.user_throttle)


class Router:
    """Routing tables built once from the config; every method is pure."""

    def __init__(self, config: Config) -> None:
        self._domains = {d.name: d for d in config.domains}
        self._default = effective_default_domain(config)
        self._own_hosts = config.own_hosts
        self._users = {(d.name, u.name): u for d in config.domains for u in d.users}
        self._trunks: dict[str, list[TrunkSource]] = {}
        for domain in config.domains:
            for trunk in domain.trunks:
                host = canonical_host(split_hostport(trunk.address)[0])
                if is_ip(host):  # a name never equals a source address
                    self._trunks.setdefault(host, []).append(TrunkSource(domain, trunk))
        self._dids: dict[tuple[str, str], Target] = {}
        for domain in config.domains:
            for user in domain.users:
                if user.did is not None:
                    self._dids[(domain.name, user.did)] = UserTarget(user)
            for group in domain.groups:
                if group.did is not None:
                    self._dids[(domain.name, group.did)] = GroupTarget(group)
        self._static_hosts = frozenset(
            canonical_host(uri.host_port[0])
            for d in config.domains
            for u in d.users
            for uri in map(parse_uri, u.contacts)
            if isinstance(uri, SipUri)
        )

    def domain_for_host(self, host: str) -> DomainConfig | None:
        """A configured domain, else the default domain when ``host`` is our address."""
        domain = self._domains.get(canonical_host(host))
        if domain is None and canonical_host(host) in self._own_hosts:
            return self._default
        return domain

    def classify_source(self, peer_host: str, registered_from: Callable[[str], bool]) -> Source:
        host = canonical_host(peer_host)
        trunks = self._trunks.get(host)
        if trunks:
            return trunks[0]
        if host in self._static_hosts or registered_from(host):
            return PhoneSource()
        return Stranger()

    def route(
        self,
        request: Request,
        peer: Peer,
        registered_from: Callable[[str], bool],
        auth: PhoneAuth,
        now: float,
    ) -> Decision:
        """The whole decision for a new INVITE: classify its source, then route it."""
        source = self.classify_source(peer.host, registered_from)
        if isinstance(source, TrunkSource):
            return self.route_from_trunk(request, source)
        if isinstance(source, PhoneSource):
            return self.route_from_phone(request, peer, auth, now)
        return Refusal(403, "Forbidden", log=f"INVITE from a stranger at {peer.host}")

    # -- from a phone ---------------------------------------------------------------------

    def route_from_phone(
        self, request: Request, peer: Peer, auth: PhoneAuth, now: float
    ) -> Decision:
        try:
            return self._from_phone(request, peer.host, auth, now)
        except ParseError as exc:
            return Refusal(400, exc.reason, log=exc.reason)

    def _from_phone(self, request: Request, source: str, auth: PhoneAuth, now: float) -> Decision:
        caller_uri, target_uri = request.from_.uri, request.uri
        if not isinstance(caller_uri, SipUri) or not caller_uri.user:
            return Refusal(403, "From is not a user of ours")
        domain = self.domain_for_host(caller_uri.host)
        if domain is None and isinstance(target_uri, SipUri):
            domain = self.domain_for_host(target_uri.host)
        if domain is None:
            return Refusal(404, "Domain not served here")
        if isinstance(target_uri, SipUri):
            named = self._domains.get(canonical_host(target_uri.host))
            if named is not None and named is not domain:
                return Refusal(403, "Calls between domains are not routed")
        verdict = self._authenticate(
            request, domain, caller_uri.user, source=source, auth=auth, now=now
        )
        if not isinstance(verdict, UserConfig):
            return verdict
        return self._dialled(request.uri, domain, verdict)

    def _authenticate(
        self,
        request: Request,
        domain: DomainConfig,
        caller: str,
        *,
        source: str,
        auth: PhoneAuth,
        now: float,
    ) -> UserConfig | Challenge | Refusal:
        realm = domain.name
        key = throttle_key(caller, realm, source)
        if auth.throttle.is_blocked(source, now) or auth.user_throttle.is_blocked(key, now):
            return Refusal(403, "Too many failed attempts", log=f"{caller}@{realm} blocked")
        digest = auth.digest_for(realm)
        credentials = credentials_for_realm(request, realm, "Proxy-Authorization")
        if credentials is None:
            return _challenge(digest, now, source, stale=False)
        user = self._users.get((realm, caller))
        password = user.sip_password if user is not None else None
        verdict = digest.verify(credentials, "INVITE", password, now, source)
        if verdict.ok and verdict.username == caller and user is not None:
            return user
        if verdict.stale or verdict.reason in ("forged nonce", "replayed nonce count"):
            # Not a password failure (a nonce too old, from another address, or reused):
            # a fresh challenge lets an honest phone through, as for REGISTER.
            return _challenge(digest, now, source, stale=verdict.stale)
        if verdict.reason == "qop=auth required":
            return Refusal(403, "qop=auth required", log=verdict.reason)
        reason = verdict.reason if not verdict.ok else "credentials of another user"
        blocked = auth.user_throttle.record_failure(key, now)
        blocked = auth.throttle.record_failure(source, now) or blocked
        note = f"; {caller}@{realm} from {source} blocked" if blocked else ""
        log = f"INVITE authentication failed for {caller}@{realm} from {source}: {reason}{note}"
        return Refusal(403, "Forbidden", log=log, warning=True)

    def _dialled(self, uri: Uri, domain: DomainConfig, caller: UserConfig) -> Routed | Refusal:
        text = _dialled_text(uri)
        if isinstance(text, Refusal):
            return text
        if text.startswith("{"):
            return Refusal(404, "Not Found", log="a {…} prefix is for the API, not for phones")
        try:
            destination = resolve(text, domain)
        except InvalidDestinationError as exc:
            return _unroutable(text, domain, str(exc))
        target = destination.target
        shown = CallerId(caller.extension or caller.name, caller.label or caller.name)
        if isinstance(target, UserTarget) and target.user.name == caller.name:
            return Refusal(486, "Busy Here", log=f"{caller.name}@{domain.name} dialled itself")
        if isinstance(target, PstnTarget):
            calling = caller.did or domain.calling_number
            destination = replace(destination, calling_number=calling)
            return Routed("outbound", domain, destination, shown, user=caller)
        return Routed("internal", domain, destination, shown, user=caller)

    # -- from a trunk ---------------------------------------------------------------------

    def route_from_trunk(self, request: Request, source: TrunkSource) -> Routed | Refusal:
        try:
            return self._from_trunk(request, source)
        except ParseError as exc:
            return Refusal(400, exc.reason, log=exc.reason)

    def _from_trunk(self, request: Request, source: TrunkSource) -> Routed | Refusal:
        number = _dialled_text(request.uri)
        if isinstance(number, Refusal):
            return number
        host = canonical_host(split_hostport(source.trunk.address)[0])
        # A gateway shared by several domains reaches each domain's DIDs; its own first.
        others = (s for s in self._trunks.get(host, ()) if s.trunk is not source.trunk)
        sharing = [source, *others]
        for candidate in sharing:
            target = self._dids.get((candidate.domain.name, number))
            if target is not None:
                caller = _trunk_caller(request)
                return Routed(
                    "inbound", candidate.domain, Destination(target), caller, trunk=candidate.trunk
                )
        return Refusal(404, "Not Found", log=f"{number} is not a DID of ours")


def _challenge(digest: DigestServer, now: float, source: str, *, stale: bool) -> Challenge:
    values = digest.challenges(now, source, stale=stale)
    return Challenge(tuple(Header("Proxy-Authenticate", value) for value in values))


def _dialled_text(uri: Uri) -> str | Refusal:
    """The Request-URI's user part, unescaped (§19.1.4), as a number when it is one."""
    if isinstance(uri, TelUri):
        return uri.number.translate(_VISUAL_SEPARATORS)
    if not isinstance(uri, SipUri):
        return Refusal(416, "Unsupported URI Scheme")
    if not uri.user:
        return Refusal(484, "Address Incomplete", log="no user part in the Request-URI")
    text = unescape(uri.user)
    if uri.params.get("user") == "phone":  # a telephone-subscriber (§19.1.6)
        text = text.split(";", 1)[0].translate(_VISUAL_SEPARATORS)
    return text


def _unroutable(text: str, domain: DomainConfig, why: str) -> Refusal:
    """An unknown name is 404; a number is refused for its prefix (403) or, with no trunk
    to carry it, is unroutable (404) — the only two reasons ``resolve`` refuses a number."""
    if not _is_number(text) or not domain.trunks:
        return Refusal(404, "Not Found", log=why)
    return Refusal(403, "Forbidden", log=why)


def _is_number(text: str) -> bool:
    digits = text.removeprefix("+")
    return 0 < len(digits) <= 32 and digits.isascii() and digits.isdigit()


def _trunk_caller(request: Request) -> CallerId:
    sender = request.from_
    number = None
    for value in request.get_all("P-Asserted-Identity"):
        try:
            number = _number_of(parse_address(value).uri)
        except ParseError:
            continue  # a gateway's malformed identity: From still names the caller
        if number:
            break
    return CallerId(number or _number_of(sender.uri), sender.display_name or None)


def _number_of(uri: Uri | None) -> str | None:
    if isinstance(uri, TelUri):
        return uri.number.translate(_VISUAL_SEPARATORS)
    if isinstance(uri, SipUri) and uri.user:
        return unescape(uri.user).split(";", 1)[0]
    return None
