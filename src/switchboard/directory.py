"""Look-ups in the directory (domains, users, groups, trunks) as the config file defines it.

Pure and in memory: the registrar and the PBX ask it on every request, so it never waits
for the database. The database copy (``store.directory``) serves joins and other nodes.
"""

from __future__ import annotations

from switchboard.config import Config, DomainConfig, GroupConfig, UserConfig


class Directory:
    def __init__(self, config: Config) -> None:
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
