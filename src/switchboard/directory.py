"""Look-ups in the directory (domains, users, groups, trunks) as it is in force now.

Pure and in memory: the registrar and the PBX ask it on every request, so it never waits
for the database. It starts from the config file (or the database's provisioned copy) and
is replaced whole when the provisioning API, ``switchboard apply`` or another node changes
it (``replace``): look-ups from then on see the new directory, and each listener is told
once. A call in progress keeps the ``DomainConfig`` it started with.
"""

from __future__ import annotations

from collections.abc import Callable

from switchboard.config import Config, DomainConfig, GroupConfig, UserConfig

Listener = Callable[[Config, Config], None]  # (before, after)


class Directory:
    def __init__(self, config: Config) -> None:
        self.listeners: list[Listener] = []
        self._index(config)

    @property
    def config(self) -> Config:
        return self._config

    def replace(self, config: Config) -> None:
        before = self._config
        self._index(config)
        for listener in self.listeners:
            listener(before, config)

    def _index(self, config: Config) -> None:
        self._config = config
        self._domains = {d.name: d for d in config.domains}
        self._users = {(d.name, u.name): u for d in config.domains for u in d.users}
        self._groups = {(d.name, g.name): g for d in config.domains for g in d.groups}

    def domain(self, name: str) -> DomainConfig | None:
        return self._domains.get(name.lower())

    def user(self, domain: str, name: str) -> UserConfig | None:
        return self._users.get((domain.lower(), name))

    def group(self, domain: str, name: str) -> GroupConfig | None:
        return self._groups.get((domain.lower(), name))

    def users_with_static_contacts(self) -> list[tuple[str, UserConfig]]:
        return [(domain, user) for (domain, _), user in self._users.items() if user.contacts]
