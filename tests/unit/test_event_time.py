"""The time domain events record (`services.runtime.clock.event_timestamp`):
the system's, moved by the development clock's offset (`quartier clock`, the
demo's history), so that a moved system's stream agrees with its services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.identity.domain import Tenant
from services.runtime import clock


def recorded_age(tenant: Tenant) -> timedelta:
    (registered,) = tenant.collect_events()
    return datetime.now(UTC) - registered.timestamp


def test_events_record_the_development_clocks_time_and_follow_its_moves() -> None:
    shifted = clock.ShiftedClock(timedelta(days=-100))
    assert timedelta(days=100) <= recorded_age(Tenant("t", "s", "n")) < timedelta(days=100, hours=1)
    shifted.advance(days=40)
    assert timedelta(days=60) <= recorded_age(Tenant("t", "s", "n")) < timedelta(days=60, hours=1)
    # the event's time is the clock's now, as the services see it
    tenant = Tenant("t", "s", "n")
    (registered,) = tenant.collect_events()
    assert abs(registered.timestamp - shifted.now()) < timedelta(hours=1)


def test_without_a_development_clock_events_record_the_systems_time() -> None:
    clock.ShiftedClock()
    assert timedelta(0) <= recorded_age(Tenant("t", "s", "n")) < timedelta(hours=1)
    # the tests' standing clock moves business time, not the events' time
    standing = clock.MovableClock(datetime(2030, 1, 1, tzinfo=UTC))
    standing.advance(days=3)
    assert timedelta(0) <= recorded_age(Tenant("t", "s", "n")) < timedelta(hours=1)
