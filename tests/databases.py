"""Databases for tests: a SQLite file, and a throwaway PostgreSQL cluster.

The PostgreSQL cluster is started once per test session from Debian's ``postgresql``
binaries (installed by ``scripts/setup --test``), in a temporary directory, on a free port,
with trust authentication on loopback only. It is stopped at the end of the session.
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.interop.sipp import free_port


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise RuntimeError(
            "PostgreSQL binaries not found: run scripts/setup --test (Debian package postgresql)"
        )
    return Path(found[-1]).parent


def _as_postgres(command: list[str]) -> list[str]:
    """initdb refuses to run as root: run the cluster as the postgres system user then."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """Yield a ``postgresql+asyncpg://`` URL of a fresh cluster."""
    binaries = _pg_bin()
    workdir = Path(tempfile.mkdtemp(prefix="switchboard-pg-"))
    data = workdir / "data"
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(workdir, user.pw_uid, user.pw_gid)
    port = free_port()
    subprocess.run(
        _as_postgres([str(binaries / "initdb"), "-D", str(data), "-U", "postgres",
                      "--auth=trust", "-E", "UTF8"]),
        check=True, capture_output=True,
    )  # fmt: skip
    options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_postgres([str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-w",
                      "-l", str(workdir / "log"), "start"]),
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            check=False, capture_output=True,
        )  # fmt: skip
        time.sleep(0.1)
        shutil.rmtree(workdir, ignore_errors=True)


def create_database(admin_url: str, name: str) -> str:
    """A new empty database in the cluster, so each test starts from nothing."""

    async def create() -> None:
        engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            await engine.dispose()

    asyncio.run(create())
    return admin_url.rsplit("/", 1)[0] + f"/{name}"
