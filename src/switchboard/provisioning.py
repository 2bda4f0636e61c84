"""``switchboard apply`` and ``switchboard export``: the config file and the database's
directory, reconciled offline (a running node follows an applied file by polling)."""

from __future__ import annotations

import logging

import tomli_w

from switchboard.config import Config, with_domains
from switchboard.store.database import create_engine, migrate
from switchboard.store.directory import load_directory, save_directory, source_hash

log = logging.getLogger("switchboard.directory")


async def apply(config: Config) -> int:
    """Make the database's directory ``config``'s; the new version."""
    database = create_engine(config.server.database)
    try:
        await migrate(database)
        version = await save_directory(
            database, config, source_hash=source_hash(config), expected=None
        )
        log.info("directory: version %d applied (running nodes follow within their poll)", version)
        return version
    finally:
        await database.dispose()


async def export(config: Config) -> str:
    """``config``'s [server] table and the directory in force, as a config file."""
    database = create_engine(config.server.database)
    try:
        await migrate(database)
        stored = await load_directory(database)
    finally:
        await database.dispose()
    current = config if stored is None else with_domains(config, stored.domains, "database")
    document = {
        "server": current.server.model_dump(exclude_unset=True),
        "domains": [d.model_dump(exclude_defaults=True) for d in current.domains],
    }
    return tomli_w.dumps(document)
