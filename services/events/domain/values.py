"""Meetups' values: venues, attendance marks, card draws. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.runtime.errors import InvalidInput
from services.runtime.i18n import t
from services.runtime.text import single_line

KINDS = ("meetup", "workshop")
ANSWERS = ("yes", "maybe", "no")
ATTENDANCE = ("present", "late", "absent", "excused", "replaced")
PRESENT = ("present", "late")
VOTES = ("yes", "if_need_be", "no")
MAX_CAPACITY = 10_000
MAX_DURATION = 24 * 60  # minutes
MAX_REMINDERS = 5
MAX_LEAD_HOURS = 24 * 30


@dataclass(frozen=True)
class Venue:
    name: str
    address: str = ""

    @classmethod
    def checked(cls, name: str, address: str = "", field: str = "venue") -> Venue:
        return cls(
            name=single_line(name, f"{field}.name", 120, required=True),
            address=single_line(address, f"{field}.address", 300),
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Venue:
        return cls(name=d["name"], address=d.get("address", ""))

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "address": self.address}


def check_capacity(capacity: int | None, field: str = "capacity") -> int | None:
    if capacity is not None and not 1 <= capacity <= MAX_CAPACITY:
        raise InvalidInput(
            t("a capacity is 1 to {limit} seats (or none)", limit=MAX_CAPACITY), field=field
        )
    return capacity


def check_duration(minutes: int, field: str = "duration_minutes") -> int:
    if not 15 <= minutes <= MAX_DURATION:
        raise InvalidInput(t("a meetup lasts 15 minutes to 24 hours"), field=field)
    return minutes


def check_deadline_hours(hours: int, field: str = "rsvp_deadline_hours") -> int:
    if not 0 <= hours <= MAX_LEAD_HOURS:
        raise InvalidInput(
            t("answers close 0 to {limit} hours before", limit=MAX_LEAD_HOURS), field=field
        )
    return hours


def check_reminders(hours: list[int], field: str = "reminder_hours") -> list[int]:
    if len(hours) > MAX_REMINDERS or any(not 1 <= h <= MAX_LEAD_HOURS for h in hours):
        raise InvalidInput(
            t(
                "up to {count} reminders, each 1 to {limit} hours before",
                count=MAX_REMINDERS,
                limit=MAX_LEAD_HOURS,
            ),
            field=field,
        )
    return sorted(set(hours), reverse=True)


@dataclass
class Mark:
    """One line of a meetup's attendance."""

    member_id: str | None
    visitor_id: str | None
    status: str  # one of ATTENDANCE, or "visitor"
    substitute: str | None
    recorded_at: datetime
    self_checked_in: bool

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Mark:
        return cls(**d)


@dataclass
class Draw:
    """A mission card drawn by a member at a meetup's close."""

    draw_id: str
    member_id: str
    card_id: str
    title: str
    single_holder: bool
    done_at: datetime | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Draw:
        return cls(**d)
