"""Keeping the directory in memory and the provisioned one in the database in step.

- At start the config file is applied when its directory differs from the one last
  applied (the operator edited the file: they mean it); otherwise the database's directory
  stands, with every change the provisioning API made since.
- A change (the provisioning API) is validated by the config file's rules, stored, then put
  in force: the next call sees it, a call in progress keeps what it started with.
- Every ``directory_poll_seconds`` the stored version is compared with ours: a change that
  ``switchboard apply`` or another node wrote is loaded and put in force here too.
Changes are serialised by a lock here and by the version in the database across nodes (a
change written against an older version is retried on the newer one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard.config import Config, ConfigError, with_domains
from switchboard.directory import Directory
from switchboard.store.directory import (
    DirectoryConflictError,
    directory_version,
    load_directory,
    save_directory,
    source_hash,
)

log = logging.getLogger("switchboard.directory")
_ATTEMPTS = 3


class DirectorySync:
    def __init__(self, database: AsyncEngine, directory: Directory, file_config: Config) -> None:
        self.database = database
        self.directory = directory
        self.file_config = file_config
        self.version = 0
        self._lock = asyncio.Lock()
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        stored = await load_directory(self.database)
        wanted = source_hash(self.file_config)
        config = None
        if stored is not None and stored.source_hash == wanted:
            try:
                config = with_domains(self.file_config, stored.domains, "stored directory")
                self.version = stored.version
            except ConfigError as exc:  # e.g. [server] now names a domain it deleted
                log.warning("the stored directory no longer fits the config file: %s", exc)
        if config is None:
            config = self.file_config
            self.version = await save_directory(
                self.database, config, source_hash=wanted, expected=None
            )
            log.info("directory: the config file applied (version %d)", self.version)
        else:
            log.info(
                "directory: version %d as provisioned (the config file is unchanged since"
                " it was applied)",
                self.version,
            )
        self.directory.replace(config)
        poll = self.file_config.server.directory_poll_seconds
        self._poller = asyncio.create_task(self._poll(poll))

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    async def change(self, edit: Callable[[Config], Config]) -> Config:
        """Put ``edit(current)`` in force; ``edit`` raises ``ConfigError`` (or the API's
        own errors) to refuse, and nothing changes."""
        async with self._lock:
            for _ in range(_ATTEMPTS):
                await self._catch_up()
                config = edit(self.directory.config)
                try:
                    version = await save_directory(
                        self.database, config, keep_source=True, expected=self.version
                    )
                except DirectoryConflictError:
                    continue  # another node changed it first: edit the newer one
                self.version = version
                self.directory.replace(config)
                log.info("directory: version %d in force", version)
                return config
            raise DirectoryConflictError("the directory kept changing under this change")

    async def _poll(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                async with self._lock:
                    await self._catch_up()
            except Exception:  # the database is away for a while: try at the next tick
                log.exception("directory: reading the stored version failed")

    async def _catch_up(self) -> None:
        if await directory_version(self.database) == self.version:
            return
        stored = await load_directory(self.database)
        if stored is None:
            return
        try:
            config = with_domains(self.directory.config, stored.domains, "stored directory")
        except ConfigError as exc:
            log.error("directory: version %d cannot be used here: %s", stored.version, exc)
            self.version = stored.version
            return
        self.version = stored.version
        self.directory.replace(config)
        log.info("directory: version %d loaded from the database", stored.version)
