"""Shared fixtures: databases on both backends (SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.databases import create_database, postgres_cluster

_counter = itertools.count()


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
