"""iCalendar (RFC 5545) for feeds and mail attachments, made with the
`icalendar` library: one VEVENT per meetup with a stable UID, SEQUENCE bumped
by every change (so calendar clients replace, not duplicate), STATUS
CANCELLED for a cancelled meetup, local times with their TZID and the
matching VTIMEZONE."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar

from services.events import contract as c

PRODID = "-//Quartier//Meetups//EN"


def uid(meetup_id: str) -> str:
    return f"meetup-{meetup_id}@quartier"


def calendar(
    meetups: Iterable[c.Meetup], name: str, now: datetime, hub_names: dict[str, str] | None = None
) -> str:
    """A VCALENDAR of `meetups` (text, CRLF line ends as RFC 5545 wants)."""
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    for m in meetups:
        cal.add_component(_event(m, now, (hub_names or {}).get(m.hub_id)))
    cal.add_missing_timezones()
    ics: bytes = cal.to_ical()
    return ics.decode()


def _event(m: c.Meetup, now: datetime, hub_name: str | None) -> icalendar.Event:
    tz = ZoneInfo(m.timezone)
    start = m.local_start.replace(tzinfo=tz)
    event = icalendar.Event()
    event.add("uid", uid(m.meetup_id))
    event.add("dtstamp", now)
    event.add("dtstart", start)
    event.add("dtend", start + timedelta(minutes=m.duration_minutes))
    summary = m.title if not hub_name else f"{m.title} — {hub_name}"
    if m.kind == "workshop" and m.topic:
        summary = f"{summary} : {m.topic}"
    event.add("summary", summary)
    location = ", ".join(part for part in (m.venue.name, m.venue.address) if part)
    if location:
        event.add("location", location)
    event.add("sequence", m.sequence)
    event.add("status", "CANCELLED" if m.state == "cancelled" else "CONFIRMED")
    return event
