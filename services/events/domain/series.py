"""A hub's series of meetups: a rhythm (an RFC 5545 recurrence rule in the
hub's time zone), a default venue, start time, duration, capacity, RSVP
deadline and reminder lead times. Source: DOMAIN.md, "Regularity" (lunch every
week, afterwork once a month)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, ClassVar

from eventsourcing.domain import event

from services.events.domain.calendar import check_rhythm, occurrences_after, parse_rrule, zone
from services.events.domain.values import (
    Venue,
    check_capacity,
    check_deadline_hours,
    check_duration,
    check_reminders,
)
from services.runtime.errors import InvalidInput
from services.runtime.eventstore import TenantAggregate
from services.runtime.i18n import t
from services.runtime.text import single_line

# A rhythm starts at most this long ago (its next date is searched from its
# start) and at most this far ahead.
STARTS_AFTER = timedelta(days=366)
STARTS_BEFORE = timedelta(days=2 * 366)

FIELDS = (
    "name",
    "rrule",
    "start_time",
    "duration_minutes",
    "venue",
    "capacity",
    "rsvp_deadline_hours",
    "reminder_hours",
    "active",
)


class MeetupSeries(TenantAggregate):
    noun = "series"
    not_found = t("series not found")
    event_context = ("tenant_id", "hub_id")

    class Event(TenantAggregate.Event):
        hub_id: str

    Created: ClassVar[type[Any]]
    Changed: ClassVar[type[Any]]

    @event("Created")
    def __init__(
        self,
        tenant_id: str,
        hub_id: str,
        name: str,
        rrule: str,
        starts_on: date,
        start_time: time,
        timezone: str,
        duration_minutes: int,
        venue: dict[str, str],
        capacity: int | None,
        rsvp_deadline_hours: int,
        reminder_hours: list[int],
        created_by: str,
    ):
        self.tenant_id = tenant_id
        self.hub_id = hub_id
        self.name = name
        self.rrule = rrule
        self.starts_on = starts_on
        self.start_time = start_time
        self.timezone = timezone
        self.duration_minutes = duration_minutes
        self.venue = Venue.from_dict(venue)
        self.capacity = capacity
        self.rsvp_deadline_hours = rsvp_deadline_hours
        self.reminder_hours = list(reminder_hours)
        self.active = True

    @staticmethod
    def new(
        tenant_id: str,
        hub_id: str,
        name: str,
        rrule: str,
        starts_on: date,
        start_time: time,
        timezone: str,
        venue: Venue,
        created_by: str,
        duration_minutes: int = 120,
        capacity: int | None = None,
        rsvp_deadline_hours: int = 24,
        reminder_hours: list[int] | None = None,
        today: date | None = None,
    ) -> MeetupSeries:
        """A series, its values checked; with `today` (in its zone), its first
        day is within a year before and two years after."""
        zone(timezone)
        if today is not None and not (today - STARTS_AFTER <= starts_on <= today + STARTS_BEFORE):
            raise InvalidInput(
                t("a rhythm starts within a year before today and two years after"),
                field="starts_on",
            )
        start_time = start_time.replace(second=0, microsecond=0, tzinfo=None)
        rule = parse_rrule(rrule)
        check_rhythm(rule, starts_on, start_time)
        return MeetupSeries(
            tenant_id=tenant_id,
            hub_id=hub_id,
            name=single_line(name, "name", 120, required=True),
            rrule=rule,
            starts_on=starts_on,
            start_time=start_time,
            timezone=timezone,
            duration_minutes=check_duration(duration_minutes),
            venue=venue.to_dict(),
            capacity=check_capacity(capacity),
            rsvp_deadline_hours=check_deadline_hours(rsvp_deadline_hours),
            reminder_hours=check_reminders([48, 2] if reminder_hours is None else reminder_hours),
            created_by=created_by,
        )

    def next_local_start(self, after: datetime) -> datetime | None:
        """What the rhythm proposes after the local time `after`."""
        found = occurrences_after(self.rrule, self.starts_on, self.start_time, after)
        return found[0] if found else None

    def change(self, changes: dict[str, Any]) -> bool:
        unknown = set(changes) - set(FIELDS)
        if unknown:
            raise InvalidInput(
                t("unknown fields {fields}", fields=sorted(unknown)), field=sorted(unknown)[0]
            )
        checked: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "name":
                value = single_line(value, "name", 120, required=True)
            elif name == "rrule":
                value = parse_rrule(value)
            elif name == "start_time":
                value = value.replace(second=0, microsecond=0, tzinfo=None)
            elif name == "duration_minutes":
                value = check_duration(value)
            elif name == "venue":
                value = value.to_dict()
            elif name == "capacity":
                value = check_capacity(value)
            elif name == "rsvp_deadline_hours":
                value = check_deadline_hours(value)
            elif name == "reminder_hours":
                value = check_reminders(value)
            current = getattr(self, name)
            if isinstance(current, Venue):
                current = current.to_dict()
            if value != current:
                checked[name] = value
        if not checked:
            return False
        if "rrule" in checked or "start_time" in checked:
            check_rhythm(
                checked.get("rrule", self.rrule),
                self.starts_on,
                checked.get("start_time", self.start_time),
            )
        self._changed(changes=checked)
        return True

    @event("Changed")
    def _changed(self, changes: dict[str, Any]) -> None:
        for name, value in changes.items():
            setattr(self, name, Venue.from_dict(value) if name == "venue" else value)
