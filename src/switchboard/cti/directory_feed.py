"""The directory as CTI elements (API §4): domains, users, groups and their members from the
config, terminals from the registrar; kept current in the hub as phones come and go.

- At start-up every element is seeded into the hub (no event: nobody is connected yet).
- A binding ``added``, ``updated`` or ``removed`` is an ``info_event`` on ``terminal``;
  when it flips the user's presence (``available`` ⇄ ``offline``), an ``updated`` on
  ``user`` follows.
- A static contact (config ``contacts``) is a terminal that is always there; a binding for
  the same contact shadows it while it lives.
- A directory change (provisioning) is the difference between the two directories, element
  by element: ``removed`` first (terminals, members, groups, users, domains), then
  ``added`` and ``updated`` in the opposite order, so a client never holds a member whose
  user or group it does not know.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from switchboard.config import Config, DomainConfig, GroupConfig, TrunkConfig, UserConfig
from switchboard.cti.elements import (
    GROUP_TYPES,
    DomainRow,
    GroupMemberRow,
    GroupRow,
    TerminalRow,
    TrunkRow,
    UserRow,
    domain_uuid,
    terminal_id,
    trunk_uuid,
)
from switchboard.cti.hub import CtiHub
from switchboard.directory import Directory
from switchboard.registrar.location import Binding, contact_key

Contacts = Callable[[str, str], list[str]]  # (domain, user) → what the PBX would ring


class DirectoryFeed:
    def __init__(
        self,
        hub: CtiHub,
        directory: Directory,
        contacts: Contacts,
        trunk_state: Callable[[str, str], str] = lambda _domain, _trunk: "unknown",
    ) -> None:
        self.hub = hub
        self.directory = directory
        self.contacts = contacts
        self.trunk_state = trunk_state
        # the presence this feed last published per user: in a cluster the hub's rows
        # change only when the event comes back from the shared state, so two changes in a
        # row would both compare with the row before the first
        self._published: dict[tuple[str, int], str] = {}

    def seed(self, bindings: list[Binding]) -> None:
        for row in self._elements(self.directory.config).values():
            self.hub.seed(row)
        for binding in bindings:
            owner = self.directory.user(binding.domain, binding.user)
            if owner is not None:
                self.hub.seed(_terminal(binding, owner))

    def binding_changed(self, change: str, binding: Binding) -> None:
        user = self.directory.user(binding.domain, binding.user)
        if user is None:
            return
        before = self.hub.items.get(binding.domain, {}).get(("user", user.id))
        row = _terminal(binding, user)
        static = next((c for c in user.contacts if contact_key(c) == binding.key), None)
        if change == "removed" and static is not None:
            self.hub.publish("updated", _static_terminal(binding.domain, user, static))
        elif change == "removed":
            self.hub.publish("removed", replace(row, registered=False))
        else:
            self.hub.publish(change, row)
        after = self._user_row(binding.domain, user)
        if not isinstance(before, UserRow):
            return
        key = (binding.domain, user.id)
        told = self._published.get(key, before.presence)
        if after.presence != before.presence or after.presence != told:
            self.hub.publish("updated", after)
            self._published[key] = after.presence

    def reconfigured(self, before: Config, after: Config) -> None:
        """Publish what a directory change changed (a ``Directory`` listener)."""
        old, new = self._elements(before), self._elements(after)
        gone_users = {
            (row.domain, row.id)
            for key, row in old.items()
            if isinstance(row, UserRow) and key not in new
        }
        for domain, items in list(self.hub.items.items()):  # a gone user's live bindings
            for item in list(items.values()):
                if isinstance(item, TerminalRow) and (domain, item.assoc_user_id) in gone_users:
                    old.setdefault(("terminal", domain, item.id), item)
        for key in sorted(old, key=_removal_order):
            if key not in new:
                self.hub.publish("removed", old[key])
        for key in sorted(new, key=_addition_order):
            before_row = old.get(key)
            if before_row is None:
                self.hub.publish("added", new[key])
            elif before_row != new[key]:
                self.hub.publish("updated", new[key])

    def _elements(self, config: Config) -> dict[tuple[str, str, Any], Any]:
        """Every directory element of ``config``, by (element, domain, id)."""
        rows: list[Any] = []
        for domain in config.domains:
            rows.append(_domain_row(domain))
            for user in domain.users:
                rows.append(self._user_row(domain.name, user))
                rows += [_static_terminal(domain.name, user, c) for c in user.contacts]
            for group in domain.groups:
                rows.append(_group_row(domain.name, group))
                rows += _member_rows(domain, group)
            rows += [self.trunk_row(domain.name, trunk) for trunk in domain.trunks]
        return {(row.ELEMENT, row.domain, row.key): row for row in rows}

    def trunk_row(self, domain: str, trunk: TrunkConfig) -> TrunkRow:
        state = self.trunk_state(domain, trunk.name)
        uuid = trunk_uuid(domain, trunk.name)
        return TrunkRow(domain, uuid, trunk.name, trunk.name, trunk.address, state)

    def trunk_changed(self, domain: str, name: str) -> None:
        """A trunk went up or down (``trunks.TrunkMonitor`` listener)."""
        config = self.directory.domain(domain)
        trunk = next((t for t in config.trunks if t.name == name), None) if config else None
        if trunk is not None:
            self.hub.publish("updated", self.trunk_row(domain, trunk))

    def _user_row(self, domain: str, user: UserConfig) -> UserRow:
        presence = "available" if self.contacts(domain, user.name) else "offline"
        return UserRow(
            domain,
            user.id,
            user.name,
            user.label or None,
            user.extension,
            user.email,
            user.did,
            presence,
        )


def _domain_row(domain: DomainConfig) -> DomainRow:
    return DomainRow(
        domain.name,
        domain_uuid(domain.name),
        domain.name,
        domain.channel_limit,
        domain.calling_number,
    )


def _group_row(domain: str, group: GroupConfig) -> GroupRow:
    return GroupRow(
        domain,
        group.id,
        group.name,
        GROUP_TYPES[group.strategy],
        group.extension,
        group.label or None,
        group.did,
        group.answer_timeout,
        group.member_answer_timeout,
    )


def _member_rows(domain: DomainConfig, group: GroupConfig) -> list[GroupMemberRow]:
    ids = {user.name: user.id for user in domain.users}
    return [
        GroupMemberRow(domain.name, f"{group.id}:{ids[name]}", group.id, ids[name], place, 1)
        for place, name in enumerate(group.members, start=1)
    ]


def _terminal(binding: Binding, user: UserConfig) -> TerminalRow:
    return TerminalRow(
        binding.domain,
        terminal_id(binding.domain, binding.user, binding.key),
        binding.contact,
        user.id,
        "sip",
        binding.user_agent or None,
        True,
        binding.received or None,
    )


def _static_terminal(domain: str, user: UserConfig, contact: str) -> TerminalRow:
    return TerminalRow(
        domain,
        terminal_id(domain, user.name, contact_key(contact)),
        contact,
        user.id,
        "static",
        None,
        True,
        None,
    )


_ORDER = ("domain", "user", "group", "group_member", "terminal", "trunk")


def _addition_order(key: tuple[str, str, Any]) -> int:
    return _ORDER.index(key[0])


def _removal_order(key: tuple[str, str, Any]) -> int:
    return -_ORDER.index(key[0])
