"""A user's presence as the directory feed publishes it when the hub applies events later
than they are published (a cluster node: its hub's rows change when the event comes back
from the shared state): two binding changes in a row each compare with what the feed
last told, not with a row the first change has not reached yet."""

from __future__ import annotations

from switchboard.config import parse_config
from switchboard.cti.directory_feed import DirectoryFeed
from switchboard.cti.elements import UserRow
from switchboard.cti.hub import CtiHub, Element
from switchboard.directory import Directory
from switchboard.registrar.location import Binding

CONFIG = parse_config(
    """
[[domains]]
name = "example.com"
api_token = "token-for-tests"
  [[domains.users]]
  id = 1
  name = "alice"
  sip_password = "alice-secret"
"""
)


def _binding() -> Binding:
    return Binding("example.com", "alice", "sip:alice@192.0.2.10:5060", 1e12, "call-1", 1)


def _presences(published: list[tuple[str, Element]]) -> list[str]:
    return [item.presence for _, item in published if isinstance(item, UserRow)]


def test_register_then_unregister_before_the_hub_applies_either_ends_offline() -> None:
    hub = CtiHub()
    contacts: list[str] = []
    feed = DirectoryFeed(hub, Directory(CONFIG), lambda _domain, _user: list(contacts))
    feed.seed([])
    published: list[tuple[str, Element]] = []
    hub.sink = lambda event, item: published.append((event, item))  # applied later

    contacts.append("sip:alice@192.0.2.10:5060")
    feed.binding_changed("added", _binding())
    contacts.clear()
    feed.binding_changed("removed", _binding())
    assert _presences(published) == ["available", "offline"]


async def test_a_node_alone_tells_each_presence_change_once() -> None:
    hub = CtiHub()
    contacts: list[str] = []
    feed = DirectoryFeed(hub, Directory(CONFIG), lambda _domain, _user: list(contacts))
    feed.seed([])
    subscriber = hub.subscribe("example.com", "crm", "tests", forced=False)

    contacts.append("sip:alice@192.0.2.10:5060")
    feed.binding_changed("added", _binding())
    feed.binding_changed("updated", _binding())  # still available: no user event
    contacts.clear()
    feed.binding_changed("removed", _binding())
    events = []
    while not subscriber.queue.empty():
        events.append(subscriber.queue.get_nowait())
    assert [e.item.presence for e in events if isinstance(e.item, UserRow)] == [
        "available",
        "offline",
    ]
