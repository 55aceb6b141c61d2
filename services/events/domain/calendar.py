"""Local times, IANA zones and RFC 5545 rhythms (python-dateutil's rrule).

A meetup keeps its local start and its zone; UTC is derived, so a weekly
12:30 lunch stays at 12:30 local time across daylight-saving changes. A local
time that does not exist (the spring gap) or exists twice (the autumn
overlap) is resolved as `zoneinfo` does with `fold=0`: the earlier offset.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rrulestr

from services.runtime.errors import InvalidInput

DEFAULT_TIMEZONE = "Europe/Paris"
FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
MAX_RRULE = 200  # characters
# How far ahead a rhythm is searched for its next date (bounds the cost).
HORIZON = timedelta(days=2 * 366)


def zone(name: str, field: str = "timezone") -> ZoneInfo:
    """The IANA zone called `name`, or InvalidInput."""
    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        raise InvalidInput(f"unknown time zone {name[:64]!r}", field=field)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name[:64]!r}", field=field) from None


def to_utc(local: datetime, timezone: str) -> datetime:
    """The UTC instant of a naive local time in `timezone`."""
    return local.replace(tzinfo=zone(timezone)).astimezone(UTC)


def to_local(instant: datetime, timezone: str) -> datetime:
    """The naive local time of an aware instant in `timezone`."""
    return instant.astimezone(zone(timezone)).replace(tzinfo=None)


def check_local(value: datetime, field: str = "local_start") -> datetime:
    """A local start: naive (the zone is the hub's), to the minute."""
    if value.tzinfo is not None:
        value = value.replace(tzinfo=None)  # the wall-clock reading is what counts
    return value.replace(second=0, microsecond=0)


def parse_rrule(text: str, field: str = "rrule") -> str:
    """An RFC 5545 RRULE value (`FREQ=WEEKLY;BYDAY=TH`), checked; returns it
    normalised (upper case, no `RRULE:` prefix). Frequencies finer than a day
    are refused: meetups are not hourly."""
    value = (text or "").strip().upper().removeprefix("RRULE:")
    if not value or len(value) > MAX_RRULE or "\n" in value:
        raise InvalidInput("give a recurrence rule like FREQ=WEEKLY;BYDAY=TH", field=field)
    try:
        rule = rrulestr(value, dtstart=datetime(2026, 1, 1))
    except (ValueError, TypeError, KeyError, IndexError):
        raise InvalidInput(
            "not an RFC 5545 recurrence rule (e.g. FREQ=WEEKLY;BYDAY=TH, "
            "or FREQ=MONTHLY;BYDAY=1TU)",
            field=field,
        ) from None
    freq = re.search(r"(?:^|;)FREQ=([A-Z]+)", value)
    if not isinstance(rule, rrule) or freq is None or freq.group(1) not in FREQUENCIES:
        raise InvalidInput("a rhythm repeats daily at most", field=field)
    return value


def occurrences_after(
    rule: str, starts_on: date, start_time: time, after: datetime, count: int = 1
) -> list[datetime]:
    """The next `count` local starts of a rhythm strictly after the local time
    `after`, within HORIZON (fewer if the rule ends)."""
    dtstart = datetime.combine(starts_on, start_time)
    recurrence = rrulestr(rule, dtstart=dtstart)
    found: list[datetime] = []
    cursor = max(after, dtstart - timedelta(seconds=1))
    limit = after + HORIZON
    while len(found) < count:
        nxt = recurrence.after(cursor, inc=False)
        if nxt is None or nxt > limit:
            break
        found.append(nxt)
        cursor = nxt
    return found
