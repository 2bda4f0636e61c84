"""Switchboard servers for tests: built from a config text, on free ports, in-process."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from switchboard.app import Server
from switchboard.config import parse_config
from tests.interop.sipp import free_port


def users_config(count: int, *, domain: str = "example.com") -> str:
    """A domain with users user0000… (password ``pw-userNNNN``)."""
    lines = [f'[[domains]]\nname = "{domain}"\napi_token = "token-for-tests"\n']
    for n in range(count):
        lines.append(
            f'[[domains.users]]\nid = {n + 1}\nname = "user{n:04d}"\n'
            f'sip_password = "pw-user{n:04d}"\n'
        )
    return "\n".join(lines)


def injection_file(path: Path, users: list[str], *, password: str | None = None) -> Path:
    """SIPp -inf lines: user;domain;[authentication …];expires (see uac_register.xml)."""
    rows = ["SEQUENTIAL"]
    for user in users:
        secret = password or f"pw-{user}"
        rows.append(f"{user};example.com;[authentication username={user} password={secret}];3600")
    path.write_text("\n".join(rows) + "\n")
    return path


@asynccontextmanager
async def running_server(
    config_text: str, database: Path | str, server_extra: str = ""
) -> AsyncIterator[Server]:
    """``database``: a SQLite file path, or a database URL; ``server_extra``: more
    ``[server]`` lines."""
    sip_port, http_port = free_port(), free_port(socket.SOCK_STREAM)
    url = database if isinstance(database, str) else f"sqlite:///{database}"
    if "trunk_ping_seconds" not in server_extra:  # SIPp trunks run scenarios, not OPTIONS
        server_extra += "\ntrunk_ping_seconds = 0"
    server_table = (
        f'[server]\nsip_listen = "127.0.0.1:{sip_port}"\n'
        f'http_listen = "127.0.0.1:{http_port}"\ndatabase = "{url}"\n{server_extra}\n'
    )
    server = Server(parse_config(server_table + config_text))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
