"""Date polls: members vote on candidate dates; closing the poll schedules
the meetup on the chosen one."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.events.local_time import LocalDateTime
from gateway.events.meetups import DatePoll, PollVote, VenueInput
from gateway.kit import ask_by_id, ask_node, command, optional_raw_id, raw_id, result_union
from services.events import contract as c
from services.runtime import errors as e
from services.runtime.i18n import t
from services.runtime.messages import Request


@strawberry.type
class DatePollPayload:
    poll: DatePoll


@strawberry.input
class OpenDatePollInput:
    hub_id: strawberry.ID
    title: str
    slots: list[LocalDateTime] = strawberry.field(
        description="2 to 20 candidate local starts, in the hub's time zone."
    )
    venue: VenueInput
    series_id: strawberry.ID | None = None
    duration_minutes: int = 120


@strawberry.input
class SlotVoteInput:
    slot_id: str
    vote: PollVote


@strawberry.input(description="Votes on some or all slots; a later vote on a slot replaces it.")
class VoteOnPollInput:
    poll_id: strawberry.ID
    votes: list[SlotVoteInput]


@strawberry.input
class CloseDatePollInput:
    poll_id: strawberry.ID
    slot_id: str


DatePollResult = result_union("DatePollResult", DatePollPayload)


def _poll(reply: c.DatePoll) -> DatePollPayload:
    return DatePollPayload(poll=DatePoll.from_contract(reply))


@strawberry.type
class Query:
    @strawberry.field(description="A date poll of your network by global id, or null.")
    async def date_poll(self, info: Info[Context, Any], id: strawberry.ID) -> DatePoll | None:
        return await ask_by_id(
            info, id, "DatePoll", lambda raw: c.GetDatePoll(poll_id=raw), DatePoll.from_contract
        )


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Hub admin or the facilitator: members vote on candidate dates."
    )
    async def open_date_poll(
        self, info: Info[Context, Any], input: OpenDatePollInput
    ) -> DatePollResult:
        return await command(
            info,
            lambda: c.OpenDatePoll(
                hub_id=raw_id(input.hub_id, "Hub", "hub_id"),
                title=input.title,
                slots=list(input.slots),
                venue=input.venue.to_contract(),
                series_id=optional_raw_id(input.series_id, "MeetupSeries", "series_id"),
                duration_minutes=input.duration_minutes,
            ),
            _poll,
        )

    @strawberry.mutation(description="Members of the hub: vote on some or all slots.")
    async def vote_on_poll(
        self, info: Info[Context, Any], input: VoteOnPollInput
    ) -> DatePollResult:
        def build() -> Request[Any]:
            votes: dict[str, Any] = {}
            for v in input.votes:
                if v.slot_id in votes:
                    raise e.InvalidInput(t("one vote per slot"), field="votes")
                votes[v.slot_id] = v.vote.value
            return c.VoteOnPoll(poll_id=raw_id(input.poll_id, "DatePoll", "poll_id"), votes=votes)

        return await command(info, build, _poll)

    @strawberry.mutation(
        description="Hub admin or the facilitator: choose a slot; the meetup is scheduled on it."
    )
    async def close_date_poll(
        self, info: Info[Context, Any], input: CloseDatePollInput
    ) -> DatePollResult:
        return await command(
            info,
            lambda: c.CloseDatePoll(
                poll_id=raw_id(input.poll_id, "DatePoll", "poll_id"), slot_id=input.slot_id
            ),
            _poll,
        )


async def poll_node(info: Info[Context, Any], raw: str) -> DatePoll | None:
    """A date poll of your network, like `datePoll(id:)`."""
    return await ask_node(info, raw, lambda i: c.GetDatePoll(poll_id=i), DatePoll.from_contract)
