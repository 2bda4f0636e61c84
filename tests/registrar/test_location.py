"""The location service: ordering, refresh, loading, expiry on time."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

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


def _from(contact: str, received: str, expires_at: float = 100.0) -> Binding:
    return Binding("example.com", "alice", contact, expires_at, "c", 1, received=received)


def test_the_source_index_follows_put_refresh_remove_and_expiry() -> None:
    location = LocationService()
    location.put(_from("sip:a@h1", "UDP:192.0.2.50:5062", 100.0))
    location.put(_from("sip:a@h2", "TCP:192.0.2.50:40000", 200.0))
    assert location.registered_from("192.0.2.50")
    assert not location.registered_from("192.0.2.51")
    location.put(_from("sip:a@h1", "UDP:192.0.2.51:5062", 300.0))  # the phone moved
    assert location.registered_from("192.0.2.50") and location.registered_from("192.0.2.51")
    location.remove(("example.com", "alice"), "sip:a@h2")
    assert not location.registered_from("192.0.2.50")
    location.expire(300.0)
    assert not location.registered_from("192.0.2.51") and location.count() == 0


def test_the_source_index_ignores_spelling_and_bindings_without_a_source() -> None:
    location = LocationService()
    location.put(_from("sip:a@h1", "UDP:[2001:DB8::0:1]:5062"))
    location.put(_from("sip:a@h2", ""))  # stored before sources were recorded
    assert location.registered_from("2001:db8::1")
    assert location.registered_from("[2001:db8:0::1]")
    location.load([_from("sip:b@h3", "UDP:192.0.2.9:5060")], now=0.0)
    assert location.registered_from("::ffff:192.0.2.9")  # IPv4 through a dual-stack socket


_SOURCES = ["UDP:192.0.2.1:5060", "UDP:192.0.2.2:5060", "TCP:192.0.2.1:40000", ""]
_OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["put", "remove", "expire"]),
        st.integers(0, 3),  # which contact
        st.sampled_from(_SOURCES),
        st.integers(1, 5),  # expiry, or the time of an ``expire``
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(_OPERATIONS)
def test_the_source_index_always_agrees_with_a_scan_of_the_bindings(
    operations: list[tuple[str, int, str, int]],
) -> None:
    location = LocationService()
    for operation, contact, received, time in operations:
        if operation == "put":
            location.put(_from(f"sip:a@h{contact}", received, float(time)))
        elif operation == "remove":
            location.remove(("example.com", "alice"), f"sip:a@h{contact}")
        else:
            location.expire(float(time))
        for host in ("192.0.2.1", "192.0.2.2"):
            scanned = any(
                b.source is not None and b.source.host == host for b in location.all_bindings()
            )
            assert location.registered_from(host) == scanned
