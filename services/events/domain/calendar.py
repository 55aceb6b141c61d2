"""Local times, IANA zones and RFC 5545 rhythms (python-dateutil's rrule).

A meetup keeps its local start and its zone; UTC is derived, so a weekly
12:30 lunch stays at 12:30 local time across daylight-saving changes. A local
time that exists twice (the autumn overlap) is resolved as `zoneinfo` does
with `fold=0`: the earlier offset. A time that does not exist (the spring
gap) is refused where a person types it (a meetup's start, a poll's slots):
the calendar would show a time no clock reads; a rhythm's occurrence that
falls in the gap is read with the offset before it (RFC 5545, 3.3.5).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rrulestr

from services.runtime.errors import InvalidInput
from services.runtime.i18n import t

DEFAULT_TIMEZONE = "Europe/Paris"
FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
# The parts of a rule a meetup's rhythm may use: the time of day is the
# series' own (BYHOUR and the like would make hourly meetups of a daily rule).
PARTS = ("FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYSETPOS", "WKST")
MAX_RRULE = 200  # characters
MAX_INTERVAL = 99
MAX_COUNT = 1000
# How far ahead a rhythm is searched for its next date (bounds the cost).
HORIZON = timedelta(days=2 * 366)
# The Gregorian calendar repeats every 400 years (146,097 days, whole weeks).
CYCLE_YEARS = 400
CHECK_FROM_YEAR = 9600  # a rhythm is checked in its calendar-identical year from here on


def zone(name: str, field: str = "timezone") -> ZoneInfo:
    """The IANA zone called `name`, or InvalidInput."""
    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        raise InvalidInput(t("unknown time zone {zone}", zone=repr(name[:64])), field=field)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            t("unknown time zone {zone}", zone=repr(name[:64])), field=field
        ) from None


def to_utc(local: datetime, timezone: str) -> datetime:
    """The UTC instant of a naive local time in `timezone`."""
    return local.replace(tzinfo=zone(timezone)).astimezone(UTC)


def to_local(instant: datetime, timezone: str) -> datetime:
    """The naive local time of an aware instant in `timezone`."""
    return instant.astimezone(zone(timezone)).replace(tzinfo=None)


def check_local(
    value: datetime, timezone: str | None = None, field: str = "local_start"
) -> datetime:
    """A local start: naive (the zone is the hub's), to the minute; with
    `timezone`, one that its clocks read (InvalidInput in the spring gap)."""
    if value.tzinfo is not None:
        value = value.replace(tzinfo=None)  # the wall-clock reading is what counts
    value = value.replace(second=0, microsecond=0)
    if timezone is not None and to_local(to_utc(value, timezone), timezone) != value:
        raise InvalidInput(
            t(
                "{local} does not exist in {zone}: the clocks go forward then; choose another time",
                local=value.isoformat(timespec="minutes"),
                zone=timezone,
            ),
            field=field,
        )
    return value


def parse_rrule(text: str, field: str = "rrule") -> str:
    """An RFC 5545 RRULE value (`FREQ=WEEKLY;BYDAY=TH`), checked; returns it
    normalised (upper case, no `RRULE:` prefix). Frequencies finer than a day
    are refused: meetups are not hourly."""
    value = (text or "").strip().upper().removeprefix("RRULE:")
    if not value or len(value) > MAX_RRULE or "\n" in value:
        raise InvalidInput(t("give a recurrence rule like FREQ=WEEKLY;BYDAY=TH"), field=field)
    try:
        rule = rrulestr(value, dtstart=datetime(2026, 1, 1))
    except (ValueError, TypeError, KeyError, IndexError):
        raise InvalidInput(
            t(
                "not an RFC 5545 recurrence rule (e.g. FREQ=WEEKLY;BYDAY=TH, "
                "or FREQ=MONTHLY;BYDAY=1TU)"
            ),
            field=field,
        ) from None
    freq = re.search(r"(?:^|;)FREQ=([A-Z]+)", value)
    if not isinstance(rule, rrule) or freq is None or freq.group(1) not in FREQUENCIES:
        raise InvalidInput(t("a rhythm repeats daily at most"), field=field)
    parts = dict(part.partition("=")[::2] for part in value.split(";"))
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise InvalidInput(
            t(
                "{part} is not used in a meetup's rhythm (its time is the series' start time): "
                "use {parts}",
                part=unknown[0][:20],
                parts=", ".join(PARTS),
            ),
            field=field,
        )
    for name, top in (("INTERVAL", MAX_INTERVAL), ("COUNT", MAX_COUNT)):
        if name in parts and not (parts[name].isdigit() and 1 <= int(parts[name]) <= top):
            raise InvalidInput(t("{part} is 1 to {limit}", part=name, limit=top), field=field)
    return value


def check_rhythm(rule: str, starts_on: date, start_time: time, field: str = "rrule") -> None:
    """A rhythm (a rule `parse_rrule` accepted) gives a first date within
    HORIZON of its start, and ends after it starts; else InvalidInput.

    A rule whose parts never meet (30 February) would make every reading of
    the series search year after year up to 9999, for seconds: it is refused
    here. The search runs in the calendar-identical year at least
    CHECK_FROM_YEAR (a whole number of 400-year cycles later: same weekdays,
    same leap years), so that even a rule that never matches stops soon; the
    rule's UNTIL is checked apart."""
    dtstart = datetime.combine(starts_on, start_time)
    try:
        recurrence = rrulestr(rule, dtstart=dtstart)
        assert isinstance(recurrence, rrule)
        until = getattr(recurrence, "_until", None)  # dateutil keeps the parsed UNTIL there
        if until is not None and until.replace(tzinfo=None) < dtstart:
            raise InvalidInput(t("this rhythm ends before it starts (UNTIL)"), field=field)
        cycles = max(0, -(-(CHECK_FROM_YEAR - starts_on.year) // CYCLE_YEARS))
        shifted = dtstart.replace(year=starts_on.year + cycles * CYCLE_YEARS)
        first = recurrence.replace(dtstart=shifted, until=None).after(shifted, inc=True)
    except (ValueError, TypeError, OverflowError):
        raise InvalidInput(t("this rhythm gives no date"), field=field) from None
    limit = shifted + HORIZON if shifted.year < 9997 else datetime.max
    if first is None or first > limit:
        raise InvalidInput(
            t("this rhythm gives no date in the two years after it starts"), field=field
        )


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
