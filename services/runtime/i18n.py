"""The languages Quartier writes to people in (a network's locale: French by
default, or English), and dates and times as each writes them. No locale
database: the few names needed are here, so that the output is the same on
every machine. Refusals are written in English with `t()` and translated from
gettext catalogues (`<package>/locale/fr.po`) into the language a request
asks for (`Accept-Language`; docs/api.md, "Errors").

    >>> format_local(datetime(2026, 1, 8, 12, 30), "fr")
    'jeudi 8 janvier 2026 à 12 h 30'
    >>> format_local(datetime(2026, 1, 8, 12, 30), "en")
    'Thursday 8 January 2026 at 12:30'
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import UTC, date, datetime, time
from functools import cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import polib

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


# -- messages in the requester's language ----------------------------------------------


class Text(str):
    """A message in English (the string itself) that can be said in another
    language: its template and values are kept, and each locale's catalogue
    (`<package>/locale/<locale>.po`, gettext's format) translates the
    template. Made by `t()`.

        >>> str(t("at most {limit} hubs", limit=3))
        'at most 3 hubs'
    """

    template: str
    params: dict[str, object]

    def __new__(cls, template: str, params: dict[str, object]) -> Text:
        text = super().__new__(cls, template.format(**params) if params else template)
        text.template = template
        text.params = params
        return text

    def __reduce__(self) -> tuple[object, ...]:
        return (Text, (self.template, self.params))


def t(template: str, /, **params: object) -> Text:
    """A translatable message: `template` in English with `{name}` fields
    (str.format), filled from `params`. Every refusal a person may read is
    written with it (tests/unit/test_messages_catalogue.py)."""
    return Text(template, params)


_REQUEST_LOCALE: ContextVar[Locale] = ContextVar("request_locale", default="en")


def request_locale() -> Locale:
    """The language the current request asked for (`Accept-Language`), English by default."""
    return _REQUEST_LOCALE.get()


def set_request_locale(locale: Locale) -> None:
    _REQUEST_LOCALE.set(locale)


def accepted_locale(header: str | None) -> Locale:
    """The first supported language of an `Accept-Language` header (RFC 9110
    §12.5.4, by weight), or English: the API's own language stays the default.

        >>> accepted_locale("fr-FR,fr;q=0.9,en;q=0.8")
        'fr'
        >>> accepted_locale("de, en;q=0.5")
        'en'
    """
    best: tuple[float, Locale] | None = None
    for position, item in enumerate((header or "")[:200].split(",")[:20]):
        tag, _, weight = item.strip().partition(";q=")
        lang = tag.split("-", 1)[0].strip().lower()
        if lang not in LOCALES:
            continue
        try:
            q = float(weight) if weight else 1.0
        except ValueError:
            continue
        if q > 0 and (best is None or q > best[0]):
            best = (q - position * 1e-6, locale_of(lang))
    return best[1] if best else "en"


def translations(message: str) -> dict[str, str] | None:
    """A message said in each other supported language (`{"fr": …}`), or
    None for a message that is not a `Text` (said in English only)."""
    if not isinstance(message, Text):
        return None
    said: dict[str, str] = {}
    for locale in LOCALES:
        if locale != "en":
            said[locale] = translate(message, locale)
    return said


def translate(message: str, locale: str) -> str:
    """`message` in `locale`: its catalogue's translation of the template,
    filled with the same values (a value made by `t()` translated too, e.g.
    a noun); English when there is none."""
    if not isinstance(message, Text) or locale_of(locale) == "en" or locale not in LOCALES:
        return str(message)
    template = catalogue(locale).get(message.template)
    if not template:
        return str(message)
    params = {
        k: translate(v, locale) if isinstance(v, Text) else v for k, v in message.params.items()
    }
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):
        return str(message)


@cache
def catalogue(locale: str) -> dict[str, str]:
    """Every translated template of `locale`: the `locale/<locale>.po`
    files of the runtime, each service and the gateway, merged (a template
    shared by two packages must be translated alike: the catalogue test)."""
    merged: dict[str, str] = {}
    for path in catalogue_files(locale):
        for entry in polib.pofile(str(path)):
            if entry.msgstr and not entry.obsolete and "fuzzy" not in entry.flags:
                merged[entry.msgid] = entry.msgstr
    return merged


def catalogue_files(locale: str) -> list[Path]:
    root = Path(__file__).resolve().parents[2]
    return sorted(
        [*root.glob(f"services/*/locale/{locale}.po"), *root.glob(f"gateway/locale/{locale}.po")]
    )
