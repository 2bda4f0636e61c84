"""The location service: ordering, refresh, loading, expiry on time."""

from __future__ import annotations

from switchboard.registrar.location import Binding, LocationService, contact_key


def _binding(contact: str, expires_at: float, q: str | None = None) -> Binding:
    return Binding("example.com", "alice", contact, expires_at, "c", 1, q)


def test_expire_removes_exactly_what_is_due_in_order() -> None:
    location = LocationService()
    location.put(_binding("sip:a@h1", 100.0))
    location.put(_binding("sip:a@h2", 50.0))
    location.put(_binding("sip:a@h1", 200.0))  # refreshed: the 100 s deadline is stale
    assert location.next_expiry() == 50.0
    assert [b.contact for b in location.expire(150.0)] == ["sip:a@h2"]
    assert location.next_expiry() == 200.0
    assert [b.contact for b in location.expire(200.0)] == ["sip:a@h1"]
    assert location.next_expiry() is None and location.count() == 0


def test_load_leaves_out_expired_bindings() -> None:
    location = LocationService()
    loaded = location.load([_binding("sip:a@h1", 10.0), _binding("sip:a@h2", 99.0)], now=50.0)
    assert loaded == 1
    assert [b.contact for b in location.bindings(("example.com", "alice"), 50.0)] == ["sip:a@h2"]


def test_contacts_compare_with_escapes_and_host_case_undone() -> None:
    assert contact_key("sip:%61lice@EXAMPLE.com") == contact_key("sip:alice@example.com")
