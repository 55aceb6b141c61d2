"""Series and meetups: a hub's rhythms of meetups, meetups scheduled,
moved, cancelled, and closed with the next one fixed (the members present
draw their mission cards)."""

from __future__ import annotations

from datetime import date, time
from typing import Any

import msgspec
import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.events.local_time import LocalDateTime
from gateway.events.meetups import CardDraw, Meetup, MeetupSeries, VenueInput
from gateway.kit import (
    ask_by_id,
    ask_listed,
    ask_node,
    command,
    given,
    id_with_context,
    optional_raw_id,
    raw_id,
    result_union,
)
from services.events import contract as c
from services.runtime.messages import Request


@strawberry.type
class MeetupSeriesPayload:
    series: MeetupSeries


@strawberry.type
class MeetupPayload:
    meetup: Meetup


@strawberry.type(description="The meetup is closed, its successor fixed, the cards drawn.")
class MeetupClosed:
    closed: Meetup
    next: Meetup
    cards: list[CardDraw]


@strawberry.input
class CreateSeriesInput:
    hub_id: strawberry.ID
    name: str
    rrule: str = strawberry.field(description="RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=TH.")
    starts_on: date
    start_time: time = strawberry.field(description="Local, in the hub's time zone.")
    venue: VenueInput
    duration_minutes: int = 120
    capacity: int | None = None
    rsvp_deadline_hours: int = 24
    reminder_hours: list[int] = strawberry.field(default_factory=lambda: [48, 2])


@strawberry.input(description="Changes to a series: fields left out are unchanged.")
class SeriesChangesInput:
    name: str | None = strawberry.UNSET
    rrule: str | None = strawberry.UNSET
    start_time: time | None = strawberry.UNSET
    duration_minutes: int | None = strawberry.UNSET
    venue: VenueInput | None = strawberry.UNSET
    capacity: int | None = strawberry.field(default=strawberry.UNSET, description="null: no limit.")
    rsvp_deadline_hours: int | None = strawberry.UNSET
    reminder_hours: list[int] | None = strawberry.UNSET
    active: bool | None = strawberry.UNSET

    def to_contract(self) -> c.SeriesChanges:
        values: dict[str, Any] = {}
        for name in c.SeriesChanges.__struct_fields__:
            value = getattr(self, name)
            if value is strawberry.UNSET or (value is None and name != "capacity"):
                continue  # only the capacity may be cleared
            values[name] = value.to_contract() if isinstance(value, VenueInput) else value
        return c.SeriesChanges(**values)


@strawberry.input
class ChangeSeriesInput:
    series_id: strawberry.ID
    changes: SeriesChangesInput


@strawberry.input(
    description="In a series, what is left out comes from the series (title, venue, duration, "
    "capacity); `localStart` is in the hub's time zone."
)
class ScheduleMeetupInput:
    hub_id: strawberry.ID
    local_start: LocalDateTime
    series_id: strawberry.ID | None = None
    title: str | None = None
    duration_minutes: int | None = None
    venue: VenueInput | None = None
    capacity: int | None = None


@strawberry.input(description="Fields left out are unchanged; `capacity: null` lifts the limit.")
class RescheduleMeetupInput:
    meetup_id: strawberry.ID
    local_start: LocalDateTime | None = strawberry.UNSET
    duration_minutes: int | None = strawberry.UNSET
    venue: VenueInput | None = strawberry.UNSET
    capacity: int | None = strawberry.UNSET


@strawberry.input
class CancelMeetupInput:
    meetup_id: strawberry.ID
    reason: str


@strawberry.input(
    description="Close with the successor fixed: a meetup already scheduled "
    "(`nextMeetupId`), or a new one at `nextLocalStart` (the series proposes one: "
    "`MeetupSeries.nextLocalStart`), at `nextVenue` (the series' or this meetup's by default)."
)
class CloseMeetupInput:
    meetup_id: strawberry.ID
    next_meetup_id: strawberry.ID | None = None
    next_local_start: LocalDateTime | None = None
    next_venue: VenueInput | None = None


MeetupSeriesResult = result_union("MeetupSeriesResult", MeetupSeriesPayload)


MeetupResult = result_union("MeetupResult", MeetupPayload)


CloseMeetupResult = result_union("CloseMeetupResult", MeetupClosed)


def meetup_payload(reply: c.Meetup) -> MeetupPayload:
    return MeetupPayload(meetup=Meetup.from_contract(reply))


def _series(reply: c.Series) -> MeetupSeriesPayload:
    return MeetupSeriesPayload(series=MeetupSeries.from_contract(reply))


def _closed(reply: c.CloseResult) -> MeetupClosed:
    return MeetupClosed(
        closed=Meetup.from_contract(reply.closed),
        next=Meetup.from_contract(reply.next),
        cards=[CardDraw.from_contract(d, reply.closed.meetup_id) for d in reply.draws],
    )


# A change's field is named as hubs' rules changes are (`rules: {maxVisits}` →
# `maxVisits`), whether the service's text policy or its own checks refuse it.
CHANGES_FIELDS = {
    f"changes.{name}": name for name in ("name", "rrule", "venue.name", "venue.address")
}


@strawberry.type
class Query:
    @strawberry.field(description="A meetup of your network by global id, or null.")
    async def meetup(self, info: Info[Context, Any], id: strawberry.ID) -> Meetup | None:
        return await ask_by_id(
            info, id, "Meetup", lambda raw: c.GetMeetup(meetup_id=raw), Meetup.from_contract
        )


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Hub admin or the facilitator: a rhythm of meetups.")
    async def create_series(
        self, info: Info[Context, Any], input: CreateSeriesInput
    ) -> MeetupSeriesResult:
        return await command(
            info,
            lambda: c.CreateSeries(
                hub_id=raw_id(input.hub_id, "Hub", "hub_id"),
                name=input.name,
                rrule=input.rrule,
                starts_on=input.starts_on,
                start_time=input.start_time,
                venue=input.venue.to_contract(),
                duration_minutes=input.duration_minutes,
                capacity=input.capacity,
                rsvp_deadline_hours=input.rsvp_deadline_hours,
                reminder_hours=list(input.reminder_hours),
            ),
            _series,
        )

    @strawberry.mutation(description="Hub admin or the facilitator: change a series.")
    async def change_series(
        self, info: Info[Context, Any], input: ChangeSeriesInput
    ) -> MeetupSeriesResult:
        return await command(
            info,
            lambda: c.ChangeSeries(
                series_id=raw_id(input.series_id, "MeetupSeries", "series_id"),
                changes=input.changes.to_contract(),
            ),
            _series,
            fields=CHANGES_FIELDS,
        )

    @strawberry.mutation(description="Hub admin or the facilitator: schedule a meetup.")
    async def schedule_meetup(
        self, info: Info[Context, Any], input: ScheduleMeetupInput
    ) -> MeetupResult:
        return await command(
            info,
            lambda: c.ScheduleMeetup(
                hub_id=raw_id(input.hub_id, "Hub", "hub_id"),
                local_start=input.local_start,
                series_id=optional_raw_id(input.series_id, "MeetupSeries", "series_id"),
                title=input.title,
                duration_minutes=input.duration_minutes,
                venue=input.venue.to_contract() if input.venue else None,
                capacity=input.capacity,
            ),
            meetup_payload,
        )

    @strawberry.mutation(
        description="Hub admin or the facilitator: move a meetup, change its length, venue or "
        "capacity (a bigger capacity seats the first in line)."
    )
    async def reschedule_meetup(
        self, info: Info[Context, Any], input: RescheduleMeetupInput
    ) -> MeetupResult:
        def build() -> Request[Any]:
            venue = given(input.venue)
            return c.RescheduleMeetup(
                meetup_id=raw_id(input.meetup_id, "Meetup", "meetup_id"),
                local_start=given(input.local_start),
                duration_minutes=given(input.duration_minutes),
                venue=venue if venue is msgspec.UNSET else venue.to_contract(),
                # null lifts the limit; left out, it stays
                capacity=msgspec.UNSET if input.capacity is strawberry.UNSET else input.capacity,
            )

        return await command(info, build, meetup_payload)

    @strawberry.mutation(
        description="Hub admin or the facilitator: cancel a meetup, with a reason."
    )
    async def cancel_meetup(
        self, info: Info[Context, Any], input: CancelMeetupInput
    ) -> MeetupResult:
        return await command(
            info,
            lambda: c.CancelMeetup(
                meetup_id=raw_id(input.meetup_id, "Meetup", "meetup_id"), reason=input.reason
            ),
            meetup_payload,
        )

    @strawberry.mutation(
        description="The facilitator or a hub admin closes a meetup that has begun, with the "
        "next one fixed (refused otherwise: RuleViolation `next_date_required`); the members "
        "present draw their mission cards."
    )
    async def close_meetup(
        self, info: Info[Context, Any], input: CloseMeetupInput
    ) -> CloseMeetupResult:
        return await command(
            info,
            lambda: c.CloseMeetup(
                meetup_id=raw_id(input.meetup_id, "Meetup", "meetup_id"),
                next_meetup_id=optional_raw_id(input.next_meetup_id, "Meetup", "next_meetup_id"),
                next_local_start=input.next_local_start,
                next_venue=input.next_venue.to_contract() if input.next_venue else None,
            ),
            _closed,
            fields={
                "local_start": "next_local_start",
                "venue": "next_venue",
                "next": "next_meetup_id",
            },
        )


# -- Node types and their loaders (node(id:)) -------------------------------------
# As their own fields answer them, in the caller's own network: another
# network's id is null, like a missing one.


async def meetup_node(info: Info[Context, Any], raw: str) -> Meetup | None:
    """A meetup of your network, like `meetup(id:)`."""
    return await ask_node(info, raw, lambda i: c.GetMeetup(meetup_id=i), Meetup.from_contract)


async def series_node(info: Info[Context, Any], raw: str) -> MeetupSeries | None:
    """A series, like `Hub.series` (its id carries its hub)."""
    found = id_with_context(raw)
    if found is None:
        return None
    series_id, hub_id = found
    return await ask_listed(
        info,
        c.ListSeries(hub_id=hub_id),
        lambda s: s.series_id == series_id,
        MeetupSeries.from_contract,
    )
