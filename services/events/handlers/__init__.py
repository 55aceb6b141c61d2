"""Meetups' endpoints, one module per area: `meetups` (the hub's agenda,
series, scheduling, closing, queries), `answers` (RSVPs, links, date polls),
`people` (attendance, visitors, cards, workshops, reminders, calendar feeds)."""

from __future__ import annotations

from services.events.application import Meetups
from services.events.handlers.answers import AnswerHandlers
from services.events.handlers.base import EventsHandlers
from services.events.handlers.meetups import MeetupHandlers
from services.events.handlers.people import PeopleHandlers
from services.runtime.host import ServiceHost


def all_handlers(host: ServiceHost, app: Meetups) -> list[EventsHandlers]:
    return [cls(host, app) for cls in (MeetupHandlers, AnswerHandlers, PeopleHandlers)]
