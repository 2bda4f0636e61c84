"""Shared fixtures: databases on both backends (SQLite and PostgreSQL); the collector
between tests."""

from __future__ import annotations

import gc
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.databases import create_database, postgres_cluster

_counter = itertools.count()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Each test starts with what earlier tests left collected and frozen, as a server
    freezes its heap once started (``Server.run``). Without it, the whole session's heap
    (1.1 million objects by the security tests) was re-scanned by every full collection,
    which then paused the event loop of a test's in-process server 1.0-1.3 s: its overload
    guard refused calls (``overloaded``, "behind by 109 ms"), and a timing promise could
    not be kept. A collection here scans only what the last test left unfrozen."""
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    with postgres_cluster() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs once per backend, on an empty database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/switchboard.db"
    admin: str = request.getfixturevalue("postgres_admin_url")
    return create_database(admin, f"test_{next(_counter)}")
