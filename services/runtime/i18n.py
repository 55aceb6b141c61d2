"""The languages Quartier writes to people in (a network's locale: French by
default, or English), and dates and times as each writes them. No locale
database: the few names needed are here, so that the output is the same on
every machine.

    >>> format_local(datetime(2026, 1, 8, 12, 30), "fr")
    'jeudi 8 janvier 2026 à 12 h 30'
    >>> format_local(datetime(2026, 1, 8, 12, 30), "en")
    'Thursday 8 January 2026 at 12:30'
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Literal
from zoneinfo import ZoneInfo

Locale = Literal["fr", "en"]
LOCALES: tuple[Locale, ...] = ("fr", "en")
DEFAULT_LOCALE: Locale = "fr"

_WEEKDAYS = {
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
_MONTHS = {
    "fr": (
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
}


def locale_of(value: str | None) -> Locale:
    """A supported locale, or the default one."""
    return "en" if value == "en" else DEFAULT_LOCALE


def format_date(d: date, locale: str) -> str:
    lang = locale_of(locale)
    day = "1er" if lang == "fr" and d.day == 1 else str(d.day)
    return f"{_WEEKDAYS[lang][d.weekday()]} {day} {_MONTHS[lang][d.month - 1]} {d.year}"


def format_time(t: time, locale: str) -> str:
    if locale_of(locale) == "fr":
        return f"{t.hour} h {t.minute:02d}"
    return f"{t.hour}:{t.minute:02d}"


def format_local(dt: datetime, locale: str) -> str:
    """A wall-clock date and time (naive, or aware in the zone it is shown in)."""
    joiner = " à " if locale_of(locale) == "fr" else " at "
    return format_date(dt.date(), locale) + joiner + format_time(dt.time(), locale)


def format_instant(at: datetime, locale: str, timezone: str = "UTC") -> str:
    """An instant (aware) in a time zone, the zone named after it."""
    local = at.astimezone(UTC if timezone == "UTC" else ZoneInfo(timezone))
    return f"{format_local(local, locale)} ({timezone})"
