"""GraphQL for the meetups service (`services/events/`): a hub's series (its
rhythm) and meetups, RSVPs with a waitlist, date polls, attendance, mission
cards, workshops, visitors, reminders and calendar feeds. Profiles come
through identity's DataLoader, hubs through hubs' module (lazily: it imports
this one to give `Hub` its meetup fields, `HubMeetupFields`).

Times: a meetup keeps its **local** start in its hub's IANA time zone; the
API shows it as a `LocalDateTime` (ISO 8601 without an offset,
`2026-03-12T12:30:00`) with the zone beside it (`timezone`), and the instants
derived from it (`startsAt`, `endsAt`, `rsvpDeadline`) as `DateTime` (UTC).
Inputs take local times the same way: in the hub's time zone.

One module per concern: `meetups` (the object types and their loaders),
`scheduling` (series, meetups, closing), `answers` (RSVPs, e-mail links),
`polls`, `attendance` (and visitors), `cards`, `workshops`, `agenda` (a
hub's time zone and deck), `calendar` (a member's agenda, reminders, feeds),
`hub_fields` (what `Hub` shows of them), `local_time` (the scalar).

By convention (see `gateway.kit`): `Query`, `Mutation`, `types`, `nodes`,
`scalars`."""

from __future__ import annotations

from strawberry.tools import merge_types

from gateway.events import (
    agenda,
    answers,
    attendance,
    calendar,
    cards,
    polls,
    scheduling,
    workshops,
)
from gateway.events.local_time import scalars
from gateway.events.meetups import CardDraw, DatePoll, Meetup, MeetupSeries, WorkshopProposal
from gateway.kit import NodeLoader

__all__ = ["Mutation", "Query", "nodes", "scalars", "types"]

# The parts in the order of their fields in schema.graphql.
Query = merge_types("Query", (scheduling.Query, polls.Query, calendar.Query, answers.Query))
Mutation = merge_types(
    "Mutation",
    (
        agenda.Mutation,
        scheduling.Mutation,
        answers.Mutation,
        polls.Mutation,
        attendance.Mutation,
        cards.Mutation,
        workshops.Mutation,
        calendar.Mutation,
    ),
)

types: list[type] = [Meetup, DatePoll, MeetupSeries, WorkshopProposal, CardDraw]
nodes: dict[str, NodeLoader] = {
    "Meetup": scheduling.meetup_node,
    "DatePoll": polls.poll_node,
    "MeetupSeries": scheduling.series_node,
    "WorkshopProposal": workshops.proposal_node,
    "CardDraw": cards.draw_node,
}
