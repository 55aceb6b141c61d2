"""A member's own calendar: their agenda across hubs, their e-mail
reminders, and the secret addresses of the iCalendar feeds (a hub's, or
their own)."""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.events.meetups import Meetup
from gateway.kit import (
    Connection,
    ask,
    ask_page,
    command,
    optional_raw_id,
    require_member,
    result_union,
)
from gateway.nodes import to_global_id
from services.events import contract as c


@strawberry.enum(description="A hub's calendar, or a member's own (every hub of theirs).")
class FeedScope(Enum):
    HUB = "hub"
    MEMBER = "member"


@strawberry.type(
    description="A calendar feed's secret address token: the iCalendar feed is served at "
    "that token without signing in. Shown to its owner only; `revokeCalendarFeed` makes a "
    "new one and the old address stops working."
)
class CalendarFeed:
    scope: FeedScope
    token: str
    hub_id: strawberry.ID | None = strawberry.field(description="A hub's feed: the hub.")


@strawberry.type
class ReminderSettings:
    reminders: bool = strawberry.field(description="E-mail reminders before your meetups.")


@strawberry.type
class CalendarFeedPayload:
    feed: CalendarFeed


@strawberry.input
class SetRemindersInput:
    reminders: bool


@strawberry.input(description="A hub's feed (`hubId`), or your own (scope MEMBER, no hub).")
class CalendarFeedInput:
    scope: FeedScope
    hub_id: strawberry.ID | None = None


ReminderSettingsResult = result_union("ReminderSettingsResult", ReminderSettings)


CalendarFeedResult = result_union("CalendarFeedResult", CalendarFeedPayload)


def _feed(reply: c.CalendarFeed) -> CalendarFeedPayload:
    return CalendarFeedPayload(
        feed=CalendarFeed(
            scope=FeedScope(reply.scope),
            token=reply.token,
            hub_id=to_global_id("Hub", reply.hub_id) if reply.hub_id else None,
        )
    )


@strawberry.type
class Query:
    @strawberry.field(
        description="Your upcoming meetups in every hub of yours, soonest first, each with "
        "your own answer (`myRsvp`)."
    )
    async def my_agenda(
        self, info: Info[Context, Any], first: int = 20, after: str | None = None
    ) -> Connection[Meetup]:
        return await ask_page(
            info,
            first,
            after,
            lambda offset, limit: c.MyAgenda(offset=offset, limit=limit),
            Meetup.from_contract,
        )

    @strawberry.field(description="Your reminder settings.")
    async def my_reminder_settings(self, info: Info[Context, Any]) -> ReminderSettings:
        found = await ask(info, c.GetReminderSettings(), require_member(info))
        return ReminderSettings(reminders=found.reminders)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="E-mail reminders before your meetups, on or off.")
    async def set_reminders(
        self, info: Info[Context, Any], input: SetRemindersInput
    ) -> ReminderSettingsResult:
        return await command(
            info,
            lambda: c.SetReminders(reminders=input.reminders),
            lambda r: ReminderSettings(reminders=r.reminders),
        )

    @strawberry.mutation(
        description="The secret address token of a hub's calendar feed (members of the hub) or "
        "of your own; made on first use, the same afterwards."
    )
    async def calendar_feed(
        self, info: Info[Context, Any], input: CalendarFeedInput
    ) -> CalendarFeedResult:
        return await command(
            info,
            lambda: c.GetCalendarFeed(
                scope=input.scope.value,
                hub_id=optional_raw_id(input.hub_id, "Hub", "hub_id"),
            ),
            _feed,
        )

    @strawberry.mutation(
        description="A new secret address for the feed: the old one stops working."
    )
    async def revoke_calendar_feed(
        self, info: Info[Context, Any], input: CalendarFeedInput
    ) -> CalendarFeedResult:
        return await command(
            info,
            lambda: c.RevokeCalendarFeed(
                scope=input.scope.value,
                hub_id=optional_raw_id(input.hub_id, "Hub", "hub_id"),
            ),
            _feed,
        )
