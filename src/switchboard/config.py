"""The TOML config file (DESIGN §4): the declarative source of the directory.

Every key of DESIGN §4 is validated here with its type and range; unknown keys are errors.
Errors name the key path and the offending value (``domains[0].users[1].extension: duplicate
extension '1001' (also users[0])``), so an operator can fix the file without guessing.

Rules checked across entries of one domain:
- user and group names, extensions, DIDs and ids are unique (a destination string must
  resolve to one thing, DESIGN §5);
- group members are user names of the same domain, each listed once;
- trunk names are unique; addresses are ``HOST:PORT`` with an IP address or a host name;
- static contacts are SIP URIs with an IP address for host.
Domain names are unique in the file; ``server.default_domain``, when set, names one of them.

Phones often take the server's own address as their SIP domain (``sip:alice@192.0.2.1``).
Such a host (``ServerConfig.own_hosts``) stands for the effective default domain
(``effective_default_domain``): ``server.default_domain``, else the only domain, else none.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from switchboard.sip.errors import ParseError
from switchboard.sip.uri import SipUri, parse_uri


class ConfigError(Exception):
    """The config file is missing, not TOML, or breaks a rule; the message says where."""


_HOSTNAME = re.compile(r"(?=.{1,253}\Z)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+\Z")
Digits = Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{1,20}$")]
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")]


def canonical_host(host: str) -> str:
    """One spelling per host, so addresses compare as strings: lower case, no brackets or
    trailing dot, IP literals in their compressed form, IPv4-mapped IPv6 as IPv4 (what a
    dual-stack socket reports for an IPv4 peer)."""
    text = host.strip().strip("[]").rstrip(".").lower()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def split_hostport(value: str, *, require_ip: bool = False) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536 or not host:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if require_ip and host != "localhost":
            raise ValueError(f"expected an IP address or localhost, got {host!r}") from None
        if not _HOSTNAME.match(host):
            raise ValueError(f"malformed host {host!r}") from None
    return host, int(port)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Strict):
    sip_listen: str = "127.0.0.1:5060"
    sip_advertised_host: str = "127.0.0.1"
    http_listen: str = "127.0.0.1:8080"
    database: str = "sqlite:///switchboard.db"
    rtp_ports: tuple[int, int] = (20000, 29999)
    rtp_timeout: int = Field(default=60, gt=0)
    ringback_tone: Literal["jp", "us", "eu"] = "jp"
    max_call_seconds: int = Field(default=21600, gt=0)
    # How long a user or a PSTN number is rung as a call's destination before the caller
    # hears 480 (a group rings by its own answer_timeout).
    ring_timeout: int = Field(default=120, gt=0, le=3600)
    callback_allow_private: bool = False
    # Hardening limits (docs/security.md says which attack each one answers).
    max_contacts: int = Field(default=10, gt=0, le=100)
    sip_tcp_connections_per_source: int = Field(default=32, gt=0)
    sip_tcp_idle_timeout: int = Field(default=3900, gt=0)
    http_max_connections: int = Field(default=256, gt=0)
    http_connections_per_source: int = Field(default=64, gt=0)
    http_max_body: int = Field(default=65536, ge=1024)
    admin_max_body: int = Field(default=8 * 1024 * 1024, ge=1024)  # /admin/api/ (a directory)
    callback_max_response: int = Field(default=65536, ge=1024)
    callback_deadline: float = Field(default=10.0, gt=0)
    callback_concurrency_per_domain: int = Field(default=4, gt=0)
    # The domain of phones that use the server's address as their SIP domain.
    default_domain: str | None = None
    # SIP over TLS (RFC 3261 §26.2, RFC 5630) on its own address, and HTTPS for the API
    # and ws_cti, with one certificate chain and key (PEM files).
    sip_tls_listen: str | None = None
    http_tls: bool = False
    tls_certificate: str | None = None
    tls_key: str | None = None
    # Trunk health: an OPTIONS to each trunk every trunk_ping_seconds (0: never); no answer
    # within trunk_ping_timeout marks it down (PSTN calls then fail at once), an answer up.
    trunk_ping_seconds: float = Field(default=10.0, ge=0, le=3600)
    trunk_ping_timeout: float = Field(default=2.0, gt=0, le=60)
    # GET /metrics (Prometheus) takes this bearer token; without one it is off.
    metrics_token: str | None = Field(default=None, min_length=16)
    # The provisioning API (/admin/api/) takes this bearer token; without one it is off.
    admin_token: str | None = Field(default=None, min_length=16)
    # How often a node looks for directory changes another node (or ``switchboard apply``)
    # wrote to the shared database.
    directory_poll_seconds: float = Field(default=2.0, gt=0, le=3600)

    @field_validator("sip_listen", "http_listen", "sip_tls_listen")
    @classmethod
    def _listen_address(cls, value: str | None) -> str | None:
        if value is not None:
            split_hostport(value, require_ip=True)
        return value

    @field_validator("database")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgresql+asyncpg://")):
            raise ValueError("expected sqlite:///PATH or postgresql+asyncpg://…")
        return value

    @field_validator("rtp_ports")
    @classmethod
    def _port_range(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = value
        if not 1024 <= low < high <= 65535:
            raise ValueError("expected [LOW, HIGH] with 1024 <= LOW < HIGH <= 65535")
        return value

    @field_validator("default_domain")
    @classmethod
    def _default_domain(cls, value: str | None) -> str | None:
        if value is not None and not _HOSTNAME.match(value):
            raise ValueError(f"malformed domain name {value!r}")
        return value.lower() if value is not None else None

    @property
    def sip_address(self) -> tuple[str, int]:
        return split_hostport(self.sip_listen)

    @property
    def own_hosts(self) -> frozenset[str]:
        """The hosts that name this server (``canonical_host`` spelling): the advertised
        host and the listening one, unless that is a wildcard (0.0.0.0, ::), which names no
        one address; ``localhost`` too when one of them is a loopback address."""
        hosts = {canonical_host(self.sip_advertised_host)}
        listen = canonical_host(self.sip_address[0])
        if not is_ip(listen) or not ipaddress.ip_address(listen).is_unspecified:
            hosts.add(listen)
        if any(is_ip(h) and ipaddress.ip_address(h).is_loopback for h in hosts):
            hosts.add("localhost")
        return frozenset(hosts)

    @property
    def http_address(self) -> tuple[str, int]:
        return split_hostport(self.http_listen)

    @property
    def sip_tls_address(self) -> tuple[str, int] | None:
        return split_hostport(self.sip_tls_listen) if self.sip_tls_listen else None


class UserConfig(_Strict):
    id: int = Field(gt=0)
    name: Name
    label: str = ""
    extension: Digits | None = None
    did: Digits | None = None
    email: str | None = None
    sip_password: str | None = Field(default=None, min_length=1)
    contacts: list[str] = []

    @field_validator("contacts")
    @classmethod
    def _sip_uris(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                uri = parse_uri(value)
            except ParseError as exc:
                raise ValueError(f"malformed contact {value!r}: {exc.reason}") from None
            if not isinstance(uri, SipUri):
                raise ValueError(f"contact {value!r} is not a sip: or sips: URI")
            try:  # rung as is, with no DNS on the call path
                ipaddress.ip_address(uri.host_port[0])
            except ValueError:
                raise ValueError(f"contact {value!r}: the host must be an IP address") from None
        return values


class GroupConfig(_Strict):
    id: int = Field(gt=0)
    name: Name
    label: str = ""
    extension: Digits | None = None
    did: Digits | None = None
    strategy: Literal["hunt", "ring"] = "hunt"
    answer_timeout: int = Field(default=60, gt=0, le=3600)
    member_answer_timeout: int = Field(default=15, gt=0, le=3600)
    members: list[Name] = []


class TrunkConfig(_Strict):
    name: Name
    address: str
    transport: Literal["udp", "tcp", "tls"] = "udp"
    username: str = ""
    password: str = ""
    # TLS trunks: their certificate is checked against the system's CAs, or this file's;
    # tls_verify = false checks nothing (only where the trunk's operator says so)
    tls_verify: bool = True
    tls_ca_file: str | None = None

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        split_hostport(value)
        return value


class DomainConfig(_Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=253)]
    api_token: str = Field(min_length=8)
    channel_limit: int = Field(default=50, gt=0)
    calling_number: Digits | None = None
    callback_secret: str | None = Field(default=None, min_length=16)
    # Where every call of the domain posts its end-of-call event (API §3b); a request's
    # call_events_url overrides it.
    call_events_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    calling_numbers: list[Digits] = []
    pstn_prefixes: list[Digits] = ["0"]
    # Japanese international access codes (010, carrier codes 00xx) and premium-rate 0990:
    # refused unless the operator narrows this list (toll fraud, docs/security.md).
    pstn_denied_prefixes: list[Digits] = ["00", "010", "0990"]
    pstn_channel_limit: int = Field(default=30, gt=0)
    users: list[UserConfig] = []
    groups: list[GroupConfig] = []
    trunks: list[TrunkConfig] = []

    @field_validator("name")
    @classmethod
    def _domain_name(cls, value: str) -> str:
        if not _HOSTNAME.match(value):
            raise ValueError(f"malformed domain name {value!r}")
        return value.lower()

    @model_validator(mode="after")
    def _unique_within_domain(self) -> DomainConfig:
        problems: list[str] = []
        entries: list[tuple[str, int, UserConfig | GroupConfig]] = [
            ("users", i, u) for i, u in enumerate(self.users)
        ]
        entries += [("groups", i, g) for i, g in enumerate(self.groups)]
        for key in ("name", "extension", "did"):
            seen: dict[str, str] = {}
            for table, index, entry in entries:
                value = getattr(entry, key)
                if value is None:
                    continue
                here = f"{table}[{index}]"
                if value in seen:
                    problems.append(f"{here}.{key}: duplicate {key} {value!r} (also {seen[value]})")
                seen.setdefault(value, here)
        for table in ("users", "groups"):
            ids: dict[int, int] = {}
            for t, index, row in entries:
                if t != table:
                    continue
                if row.id in ids:
                    problems.append(
                        f"{table}[{index}].id: duplicate id {row.id} (also {table}[{ids[row.id]}])"
                    )
                ids.setdefault(row.id, index)
        user_names = {u.name for u in self.users}
        for index, group in enumerate(self.groups):
            for position, member in enumerate(group.members):
                where = f"groups[{index}].members[{position}]"
                if member not in user_names:
                    problems.append(f"{where}: {member!r} is not a user of this domain")
                elif group.members.index(member) != position:
                    problems.append(f"{where}: {member!r} is listed twice")
        trunks: dict[str, int] = {}
        for index, trunk in enumerate(self.trunks):
            if trunk.name in trunks:
                problems.append(f"trunks[{index}].name: duplicate trunk {trunk.name!r}")
            trunks.setdefault(trunk.name, index)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class ClusterConfig(_Strict):
    """Several nodes behind one SIP front (DESIGN §7, docs/cluster.md). Alone, a node needs
    none of it."""

    node: Name = "node-1"  # unique among the nodes
    redis: str | None = Field(default=None, pattern=r"^rediss?://\S+$")  # shared state
    # The SIP front (Kamailio) every phone and trunk talks to: only requests from its
    # address may carry a Path (RFC 3327) or say where they really came from.
    front: str | None = None
    # A node silent this long is dead to the others: they release what it held and end
    # its calls as node_failed. It renews every third of it (two heartbeats may be lost).
    lease_seconds: float = Field(default=15.0, ge=0.3, le=300.0)

    @field_validator("front")
    @classmethod
    def _front(cls, value: str | None) -> str | None:
        if value is not None:
            split_hostport(value, require_ip=True)
        return value

    @property
    def front_host(self) -> str | None:
        return canonical_host(split_hostport(self.front)[0]) if self.front else None

    @property
    def front_port(self) -> int | None:
        return split_hostport(self.front)[1] if self.front else None


class Config(_Strict):
    server: ServerConfig = Field(default_factory=ServerConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    domains: list[DomainConfig] = []

    @model_validator(mode="after")
    def _unique_domains(self) -> Config:
        seen: dict[str, int] = {}
        for index, domain in enumerate(self.domains):
            if domain.name in seen:
                raise ValueError(
                    f"domains[{index}].name: duplicate domain {domain.name!r} "
                    f"(also domains[{seen[domain.name]}])"
                )
            seen[domain.name] = index
        server = self.server
        if self.cluster.redis is not None and not server.database.startswith("postgresql"):
            raise ValueError(
                "cluster.redis: the nodes of a cluster share a PostgreSQL database"
                " (server.database = postgresql://…)"
            )
        if (server.sip_tls_listen or server.http_tls) and not (
            server.tls_certificate and server.tls_key
        ):
            raise ValueError(
                "server.tls_certificate: sip_tls_listen and http_tls need tls_certificate"
                " and tls_key (PEM files)"
            )
        for index, domain in enumerate(self.domains):
            for place, trunk in enumerate(domain.trunks):
                if trunk.transport == "tls" and server.sip_tls_listen is None:
                    raise ValueError(
                        f"domains[{index}].trunks[{place}].transport: a TLS trunk needs"
                        " server.sip_tls_listen (our TLS connections are the listener's)"
                    )
        default = self.server.default_domain
        if default is not None and default not in seen:
            raise ValueError(f"server.default_domain: {default!r} is not a configured domain")
        return self

    def domain(self, name: str) -> DomainConfig | None:
        name = name.lower()
        return next((d for d in self.domains if d.name == name), None)

    @property
    def own_hosts(self) -> frozenset[str]:
        """The hosts that name this PBX: the server's own, and the cluster's front (phones
        behind it use its address as their domain)."""
        front = self.cluster.front_host
        return self.server.own_hosts | ({front} if front else set())


def effective_default_domain(config: Config) -> DomainConfig | None:
    """The domain of phones that name the server's address instead of a domain:
    ``server.default_domain``, else the only domain, else none (with several domains and
    no default, such a phone could belong to any of them)."""
    if config.server.default_domain is not None:
        return config.domain(config.server.default_domain)
    return config.domains[0] if len(config.domains) == 1 else None


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def bundled_example() -> Path:
    return Path(str(resources.files("switchboard") / "examples" / "switchboard.toml"))


def load_config(path: Path | None) -> Config:
    source = path or bundled_example()
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{source}: {exc.strerror}") from None
    return parse_config(text, str(source))


def parse_config(text: str, source: str = "config") -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    return validate_config(data, source)


def validate_config(data: object, source: str = "config") -> Config:
    """A config from its TOML-shaped data, with the file's rules and error messages (the
    provisioning API validates every change this way)."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: " + _describe(exc)) from None


def with_domains(config: Config, domains: list[dict[str, object]], source: str) -> Config:
    """``config``'s server settings with another directory (TOML-shaped domain tables)."""
    server = config.server.model_dump(exclude_unset=True)
    cluster = config.cluster.model_dump(exclude_unset=True)
    return validate_config({"server": server, "cluster": cluster, "domains": domains}, source)


def directory_data(config: Config) -> list[dict[str, object]]:
    """The directory as TOML-shaped tables: what ``with_domains`` takes back."""
    return [domain.model_dump(exclude_defaults=True) for domain in config.domains]


# Cross-entry checks (duplicates, members) name the entries themselves, relative to the
# table they run on: "users[1].extension: …".
_ENTRY_PREFIXES = ("users[", "groups[", "trunks[", "domains[", "server.", "cluster.")


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        path = _path(error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        value = error.get("input")
        if error["type"] == "value_error":
            if message.startswith(_ENTRY_PREFIXES):
                # a cross-entry check: its messages already name entries relative to ``path``
                problems += [f"{path}.{m}" if path else m for m in message.split("; ")]
            else:
                problems.append(f"{path}: {message}")  # our checks quote the value themselves
            continue
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        shown = "" if isinstance(value, dict | list) or value is None else f" (got {value!r})"
        problems.append(f"{path}: {message}{shown}")
    return "; ".join(problems)


def _path(location: tuple[int | str, ...]) -> str:
    out = ""
    for part in location:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def summary(config: Config) -> list[str]:
    """What ``check-config`` prints: listeners and the directory, one line per entry."""
    server = config.server
    lines = [
        f"sip_listen  {server.sip_listen} (udp, tcp), advertised as {server.sip_advertised_host}",
        f"http_listen {server.http_listen}",
        f"database    {server.database}",
    ]
    default = effective_default_domain(config)
    if default is not None:
        lines.append(f"default domain {default.name} (phones that use the server's address)")
    for domain in config.domains:
        lines.append(
            f"domain {domain.name}: {len(domain.users)} users, {len(domain.groups)} groups, "
            f"{len(domain.trunks)} trunks, channel_limit {domain.channel_limit}"
        )
        for user in domain.users:
            lines.append(f"  user  {user.name} (id {user.id}, ext {user.extension or '-'})")
        for group in domain.groups:
            members = ", ".join(group.members) or "no members"
            lines.append(
                f"  group {group.name} (id {group.id}, ext {group.extension or '-'}, "
                f"{group.strategy}): {members}"
            )
        for trunk in domain.trunks:
            lines.append(f"  trunk {trunk.name} → {trunk.address}/{trunk.transport}")
    return lines
