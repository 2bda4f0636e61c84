"""The TOML config file (DESIGN §4).

The ``[server]`` table is validated here, every key with its type and range; unknown keys
are errors that name their path. The directory tables (``[[domains]]`` with users, groups
and trunks) are read as they are for now: the registrar work validates them fully.
"""

from __future__ import annotations

import ipaddress
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class ConfigError(Exception):
    """The config file is missing, not TOML, or breaks a rule; the message says where."""


def _split_hostport(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536 or not host:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise ValueError(f"expected an IP address or localhost, got {host!r}") from None
    return host, int(port)


class ServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sip_listen: str = "127.0.0.1:5060"
    sip_advertised_host: str = "127.0.0.1"
    http_listen: str = "127.0.0.1:8080"
    database: str = "sqlite:///switchboard.db"
    rtp_ports: tuple[int, int] = (20000, 29999)
    rtp_timeout: int = Field(default=60, gt=0)
    ringback_tone: Literal["jp", "us", "eu"] = "jp"
    max_call_seconds: int = Field(default=21600, gt=0)
    callback_allow_private: bool = False

    @field_validator("sip_listen", "http_listen")
    @classmethod
    def _hostport(cls, value: str) -> str:
        _split_hostport(value)
        return value

    @field_validator("rtp_ports")
    @classmethod
    def _port_range(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = value
        if not 1024 <= low < high <= 65535:
            raise ValueError("expected [LOW, HIGH] with 1024 <= LOW < HIGH <= 65535")
        return value

    @property
    def sip_address(self) -> tuple[str, int]:
        return _split_hostport(self.sip_listen)

    @property
    def http_address(self) -> tuple[str, int]:
        return _split_hostport(self.http_listen)


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    server: ServerConfig = Field(default_factory=ServerConfig)
    domains: list[dict[str, Any]] = []


def bundled_example() -> Path:
    return Path(str(resources.files("switchboard") / "examples" / "switchboard.toml"))


def load_config(path: Path | None) -> Config:
    source = path or bundled_example()
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: " + _describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        path = ".".join(str(part) for part in error["loc"])
        value = error.get("input")
        shown = f" (got {value!r})" if not isinstance(value, dict) else ""
        problems.append(f"{path}: {error['msg']}{shown}")
    return "; ".join(problems)
