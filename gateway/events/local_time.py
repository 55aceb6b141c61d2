"""The local time scalar: a meetup keeps its **local** start in its hub's IANA
time zone; the API shows it as a `LocalDateTime` (ISO 8601 without an
offset, `2026-03-12T12:30:00`) with the zone beside it, and inputs take local
times the same way."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, NewType

import strawberry

LocalDateTime = NewType("LocalDateTime", datetime)
"""A wall-clock reading without an offset: in the time zone given beside it."""

LOCAL = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$")


def _serialize_local(value: datetime) -> str:
    return value.replace(tzinfo=None).isoformat()


def _parse_local(value: object) -> datetime:
    if not isinstance(value, str) or not LOCAL.fullmatch(value):
        raise ValueError(
            "a LocalDateTime is a local date and time without an offset, "
            "like 2026-03-12T12:30 (its time zone is the hub's)"
        )
    return datetime.fromisoformat(value)


scalars: dict[object, Any] = {
    LocalDateTime: strawberry.scalar(
        name="LocalDateTime",
        description="A local date and time, ISO 8601 without an offset "
        "(`2026-03-12T12:30:00`), read in the time zone given beside it "
        "(the hub's IANA zone, e.g. `Europe/Paris`).",
        serialize=_serialize_local,
        parse_value=_parse_local,
    )
}
