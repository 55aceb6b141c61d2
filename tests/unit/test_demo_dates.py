"""The demo's lunch dates (infra/demo_meetups.py), for any moment it is loaded:
Thursdays at 12:30 in Paris, one a week, the last one over before the load
(with time to write it), the next one far enough ahead that its answers are
open and its reminder not yet due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from infra.demo_meetups import (
    ATTENDANCE,
    LUNCH_MINUTES,
    LUNCH_REMINDER_HOURS,
    LUNCH_TIME,
    THURSDAY,
    first_lunch_day,
    lunches_from,
    utc,
)

MOMENTS = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)


@given(MOMENTS)
def test_the_lunches_fit_around_the_moment_of_the_load(now: datetime) -> None:
    lunches = lunches_from(first_lunch_day(now), now)
    assert len(lunches.past) == len(ATTENDANCE)
    for start in (*lunches.past, lunches.next):
        assert start.weekday() == THURSDAY and start.time() == LUNCH_TIME
    for before, after in zip(lunches.past, lunches.past[1:], strict=False):
        assert after - before == timedelta(weeks=1)
    assert utc(lunches.past[-1]) + timedelta(minutes=LUNCH_MINUTES) < now
    assert utc(lunches.past[0]) > now - timedelta(weeks=len(ATTENDANCE) + 1)
    assert utc(lunches.next) - timedelta(hours=LUNCH_REMINDER_HOURS) > now
    assert lunches.next - lunches.past[-1] in (timedelta(weeks=1), timedelta(weeks=2))


@given(MOMENTS, st.integers(min_value=0, max_value=6 * 24))
def test_a_later_load_finds_the_same_lunches(now: datetime, hours: int) -> None:
    """Dates derive from the series' first day: a load resumed later (hours
    after) writes the same lunches."""
    first = first_lunch_day(now)
    later = now + timedelta(hours=hours)
    assert lunches_from(first, later).past == lunches_from(first, now).past
