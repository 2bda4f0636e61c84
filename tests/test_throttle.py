"""Throttling of sources that fail authentication."""

from __future__ import annotations

from switchboard.throttle import FailureThrottle, ThrottleSettings


def test_failures_outside_the_window_do_not_add_up() -> None:
    throttle = FailureThrottle(ThrottleSettings(max_failures=3, window=10, block_seconds=60))
    assert not throttle.record_failure("192.0.2.1", 0.0)
    assert not throttle.record_failure("192.0.2.1", 5.0)
    assert not throttle.record_failure("192.0.2.1", 12.0)  # the first one left the window
    assert throttle.record_failure("192.0.2.1", 13.0)
    assert throttle.is_blocked("192.0.2.1", 14.0)
    assert not throttle.is_blocked("192.0.2.2", 14.0)
    assert not throttle.is_blocked("192.0.2.1", 73.0)


def test_the_table_of_sources_is_bounded() -> None:
    throttle = FailureThrottle(ThrottleSettings(max_sources=100))
    for n in range(1000):
        throttle.record_failure(f"10.0.{n // 256}.{n % 256}", float(n))
    assert len(throttle._failures) <= 100
