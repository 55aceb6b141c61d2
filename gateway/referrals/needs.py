"""Ask the network first: a member posts a need, told to the members whose
offer or activity matches; it is met inside, or released (free to look
outside) once its window has passed."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.identity.members import Member, load_member, load_members
from gateway.kit import (
    Connection,
    ask_by_id,
    ask_node,
    ask_page,
    command,
    raw_id,
    require_member,
    result_union,
)
from gateway.nodes import Node, to_global_id
from services.referrals import contract as c


@strawberry.enum(description="open → met (inside the network) or released (free to look outside).")
class NeedStatus(Enum):
    OPEN = "open"
    MET = "met"
    RELEASED = "released"


@strawberry.type(description='"I can help": a member\'s answer to a need.')
class NeedAnswer:
    message: str
    at: datetime
    member_id: strawberry.Private[str]

    @strawberry.field
    async def member(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, self.member_id)


@strawberry.type(
    description="Ask the network first: what a member looks for, told to the members whose "
    "offer or activity matches; met inside, or released once its window has passed."
)
class Need(Node):
    need_id: strawberry.ID
    activity_codes: list[str]
    words: str
    description: str
    deadline: date | None
    status: NeedStatus
    window_ends_at: datetime = strawberry.field(
        description="The poster may release it (look outside) after this."
    )
    match_count: int = strawberry.field(description="How many members it was told to.")
    answers: list[NeedAnswer] = strawberry.field(
        description="All of them for the poster; for another member, their own answer only."
    )
    posted_at: datetime
    poster_id: strawberry.Private[str]
    match_ids: strawberry.Private[list[str]]
    met_by_id: strawberry.Private[str | None]

    @strawberry.field
    async def poster(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, self.poster_id)

    @strawberry.field(description="Members whose offer or activity matches, best first.")
    async def matches(self, info: Info[Context, Any]) -> list[Member] | None:
        return await load_members(info, self.match_ids)

    @strawberry.field(description="Who met it, inside the network, once met.")
    async def met_by(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, self.met_by_id)

    @strawberry.field(description="Whether the caller is one of its matches.")
    def matches_me(self, info: Info[Context, Any]) -> bool:
        return require_member(info).actor.member_id in self.match_ids

    @classmethod
    def from_contract(cls, n: c.Need) -> Need:
        return cls(
            id=to_global_id("Need", n.need_id),
            need_id=strawberry.ID(n.need_id),
            activity_codes=list(n.activity_codes),
            words=n.words,
            description=n.description,
            deadline=n.deadline,
            status=NeedStatus(n.status),
            window_ends_at=n.window_ends_at,
            match_count=len(n.matches),
            answers=[
                NeedAnswer(message=a.message, at=a.at, member_id=a.member_id) for a in n.answers
            ],
            posted_at=n.posted_at,
            poster_id=n.poster_id,
            match_ids=list(n.matches),
            met_by_id=n.met_by,
        )


@strawberry.type
class NeedPayload:
    need: Need


NeedResult = result_union("NeedResult", NeedPayload)


@strawberry.input(description="What you look for: activities of the taxonomy and/or words.")
class PostNeedInput:
    activity_codes: list[str] = strawberry.field(default_factory=list)
    words: str = ""
    description: str = ""
    deadline: date | None = None


@strawberry.input
class AnswerNeedInput:
    need_id: strawberry.ID
    message: str


@strawberry.input
class MarkNeedMetInput:
    need_id: strawberry.ID
    member_id: strawberry.ID = strawberry.field(description="Who met it, inside the network.")


@strawberry.input
class NeedInput:
    need_id: strawberry.ID


@strawberry.type
class Query:
    @strawberry.field(
        description="Needs: with `mine`, those you posted; else the network's open needs of "
        "others, those that match you first."
    )
    async def needs(
        self,
        info: Info[Context, Any],
        mine: bool = False,
        first: int = 20,
        after: str | None = None,
    ) -> Connection[Need]:
        return await ask_page(
            info,
            first,
            after,
            lambda offset, limit: c.ListNeeds(mine=mine, offset=offset, limit=limit),
            Need.from_contract,
        )

    @strawberry.field(description="A need of your network, or null.")
    async def need(self, info: Info[Context, Any], id: strawberry.ID) -> Need | None:
        return await ask_by_id(
            info, id, "Need", lambda raw: c.GetNeed(need_id=raw), Need.from_contract
        )


def _need(reply: c.Need) -> NeedPayload:
    return NeedPayload(need=Need.from_contract(reply))


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Ask the network first: the members whose offer or activity matches are "
        "told (by e-mail and in `needs`)."
    )
    async def post_need(self, info: Info[Context, Any], input: PostNeedInput) -> NeedResult:
        return await command(
            info,
            lambda: c.PostNeed(
                activity_codes=list(input.activity_codes),
                words=input.words,
                description=input.description,
                deadline=input.deadline,
            ),
            _need,
        )

    @strawberry.mutation(description='"I can help": answer a need, with a message.')
    async def answer_need(self, info: Info[Context, Any], input: AnswerNeedInput) -> NeedResult:
        return await command(
            info,
            lambda: c.AnswerNeed(
                need_id=raw_id(input.need_id, "Need", "need_id"), message=input.message
            ),
            _need,
        )

    @strawberry.mutation(description="The poster: the need was met by a member of the network.")
    async def mark_need_met(self, info: Info[Context, Any], input: MarkNeedMetInput) -> NeedResult:
        return await command(
            info,
            lambda: c.MarkNeedMet(
                need_id=raw_id(input.need_id, "Need", "need_id"),
                member_id=raw_id(input.member_id, "Member", "member_id"),
            ),
            _need,
        )

    @strawberry.mutation(
        description="The poster, once the window has passed: free to look outside."
    )
    async def release_need(self, info: Info[Context, Any], input: NeedInput) -> NeedResult:
        return await command(
            info, lambda: c.ReleaseNeed(need_id=raw_id(input.need_id, "Need", "need_id")), _need
        )


# -- its Node loader (node(id:))


async def need_node(info: Info[Context, Any], raw: str) -> Need | None:
    """A need, like `need(id:)`."""
    return await ask_node(info, raw, lambda i: c.GetNeed(need_id=i), Need.from_contract)
