"""Answers to a meetup or a poll: RSVPs with a waitlist, and the links from
e-mails that record an answer without signing in (read, answered, revoked)."""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.errors import InvalidToken
from gateway.events.local_time import LocalDateTime
from gateway.events.meetups import RsvpAnswer, Seat, Venue
from gateway.events.scheduling import MeetupResult, meetup_payload
from gateway.kit import ask, command, optional_raw_id, raw_id, result_union
from gateway.nodes import to_global_id
from services.events import contract as c
from services.runtime.i18n import request_locale


@strawberry.enum
class LinkKind(Enum):
    RSVP = "rsvp"
    VOTE = "vote"
    VISITOR = "visitor"
    UNSUBSCRIBE = "unsubscribe"


@strawberry.type(
    description="What a link from an e-mail (RSVP, vote, visitor's answer) would record. "
    "Reading it changes nothing; `answerByLink` records it."
)
class LinkInfo:
    kind: LinkKind
    valid: bool
    reason: str | None = strawberry.field(description="Why the link is not valid, if it is not.")
    title: str
    hub_name: str
    local_start: LocalDateTime | None
    timezone: str | None
    venue: Venue | None
    answer: str | None = strawberry.field(description="What the link records.")
    slot_id: str | None
    current: str | None = strawberry.field(description="What was answered before, if anything.")

    @classmethod
    def from_contract(cls, i: c.LinkInfo) -> LinkInfo:
        return cls(
            kind=LinkKind(i.kind),
            valid=i.valid,
            reason=(i.reasons or {}).get(request_locale(), i.reason),  # Accept-Language
            title=i.title,
            hub_name=i.hub_name,
            local_start=LocalDateTime(i.local_start) if i.local_start else None,
            timezone=i.timezone,
            venue=Venue.from_contract(i.venue) if i.venue else None,
            answer=i.answer,
            slot_id=i.slot_id,
            current=i.current,
        )


@strawberry.type(description="A link's answer was recorded.")
class LinkAnswered:
    kind: LinkKind
    answer: str | None
    seat: Seat | None = strawberry.field(description='An RSVP "yes": a seat, or a place in line.')
    meetup_id: strawberry.ID | None
    poll_id: strawberry.ID | None


@strawberry.type
class LinksRevoked:
    ok: bool


@strawberry.input
class GiveRsvpInput:
    meetup_id: strawberry.ID
    answer: RsvpAnswer


@strawberry.input(description="The token of a link from an e-mail: no sign-in needed.")
class AnswerByLinkInput:
    token: str


@strawberry.input(
    description="A meetup's or a poll's links stop working: your own, or (the facilitator, "
    "a hub admin) a member's or everyone's (`memberId` left out)."
)
class RevokeLinksInput:
    meetup_id: strawberry.ID | None = None
    poll_id: strawberry.ID | None = None
    member_id: strawberry.ID | None = None


AnswerByLinkResult = result_union("AnswerByLinkResult", LinkAnswered, InvalidToken)


RevokeLinksResult = result_union("RevokeLinksResult", LinksRevoked)


@strawberry.type
class Query:
    @strawberry.field(
        description="What a link from an e-mail would record (no sign-in; changes nothing). "
        "An invalid link is described (`valid: false` and the reason), not refused."
    )
    async def link(self, info: Info[Context, Any], token: str) -> LinkInfo:
        found = await ask(info, c.DescribeLink(token=token), info.context.anonymous())
        return LinkInfo.from_contract(found)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description='Answer a meetup: a "yes" takes a seat, or a place on the waitlist when '
        "it is full; leaving a seat gives it to the first in line."
    )
    async def give_rsvp(self, info: Info[Context, Any], input: GiveRsvpInput) -> MeetupResult:
        return await command(
            info,
            lambda: c.GiveRsvp(
                meetup_id=raw_id(input.meetup_id, "Meetup", "meetup_id"),
                answer=input.answer.value,
            ),
            meetup_payload,
        )

    @strawberry.mutation(
        description="Record what a link from an e-mail says (an RSVP, a vote, a visitor's "
        "answer): no sign-in, the link's token is the credential."
    )
    async def answer_by_link(
        self, info: Info[Context, Any], input: AnswerByLinkInput
    ) -> AnswerByLinkResult:
        return await command(
            info,
            lambda: c.AnswerByLink(token=input.token),
            lambda a: LinkAnswered(
                kind=LinkKind(a.kind),
                answer=a.answer,
                seat=Seat(a.seat) if a.seat else None,
                meetup_id=to_global_id("Meetup", a.meetup_id) if a.meetup_id else None,
                poll_id=to_global_id("DatePoll", a.poll_id) if a.poll_id else None,
            ),
            caller="anonymous",
        )

    @strawberry.mutation(description="Links already sent for a meetup or a poll stop working.")
    async def revoke_links(
        self, info: Info[Context, Any], input: RevokeLinksInput
    ) -> RevokeLinksResult:
        return await command(
            info,
            lambda: c.RevokeLinks(
                meetup_id=optional_raw_id(input.meetup_id, "Meetup", "meetup_id"),
                poll_id=optional_raw_id(input.poll_id, "DatePoll", "poll_id"),
                member_id=optional_raw_id(input.member_id, "Member", "member_id"),
            ),
            lambda _: LinksRevoked(ok=True),
        )
