"""One-to-ones: two members met to know each other's business, logged by
one and confirmed (or declined) by the other."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.identity.members import Member, load_member
from gateway.kit import ask, ask_listed, command, raw_id, require_member, result_union
from gateway.nodes import Node, split_raw_id, to_global_id
from services.referrals import contract as c


@strawberry.enum(description="logged by one → confirmed (or declined) by the other.")
class OneToOneStatus(Enum):
    LOGGED = "logged"
    CONFIRMED = "confirmed"
    DECLINED = "declined"


@strawberry.type(
    description="Two members met to know each other's business: logged by one, confirmed "
    "by the other (an unconfirmed one counts for nothing)."
)
class OneToOne(Node):
    one_to_one_id: strawberry.ID
    met_on: date
    status: OneToOneStatus
    logged_at: datetime
    answered_at: datetime | None
    logged_by_id: strawberry.Private[str]
    other_id: strawberry.Private[str]

    @strawberry.field
    async def logged_by(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, self.logged_by_id)

    @strawberry.field(description="The member who confirms it.")
    async def other(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, self.other_id)

    @classmethod
    def from_contract(cls, o: c.OneToOne) -> OneToOne:
        return cls(
            id=to_global_id("OneToOne", o.one_to_one_id),
            one_to_one_id=strawberry.ID(o.one_to_one_id),
            met_on=o.met_on,
            status=OneToOneStatus(o.status),
            logged_at=o.logged_at,
            answered_at=o.answered_at,
            logged_by_id=o.logged_by,
            other_id=o.other_id,
        )


@strawberry.type
class OneToOnePayload:
    one_to_one: OneToOne


OneToOneResult = result_union("OneToOneResult", OneToOnePayload)


@strawberry.input
class LogOneToOneInput:
    other_id: strawberry.ID
    met_on: date = strawberry.field(description="The day you met (today or before).")


@strawberry.input
class OneToOneInput:
    one_to_one_id: strawberry.ID = strawberry.field(description="A OneToOne's id.")


@strawberry.type
class Query:
    @strawberry.field(description="Your one-to-ones, logged by you or by the other member.")
    async def one_to_ones(self, info: Info[Context, Any]) -> list[OneToOne]:
        found = await ask(info, c.ListOneToOnes(), require_member(info))
        return [OneToOne.from_contract(o) for o in found]


def _one_to_one(reply: c.OneToOne) -> OneToOnePayload:
    return OneToOnePayload(one_to_one=OneToOne.from_contract(reply))


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Log a one-to-one with another member; the other confirms it (or logs the "
        "same day, which confirms it)."
    )
    async def log_one_to_one(
        self, info: Info[Context, Any], input: LogOneToOneInput
    ) -> OneToOneResult:
        return await command(
            info,
            lambda: c.LogOneToOne(
                other_id=raw_id(input.other_id, "Member", "other_id"), met_on=input.met_on
            ),
            _one_to_one,
        )

    @strawberry.mutation(description="The other member confirms a one-to-one.")
    async def confirm_one_to_one(
        self, info: Info[Context, Any], input: OneToOneInput
    ) -> OneToOneResult:
        return await command(
            info,
            lambda: c.ConfirmOneToOne(
                one_to_one_id=raw_id(input.one_to_one_id, "OneToOne", "one_to_one_id")
            ),
            _one_to_one,
        )

    @strawberry.mutation(description="The other member says the one-to-one did not happen.")
    async def decline_one_to_one(
        self, info: Info[Context, Any], input: OneToOneInput
    ) -> OneToOneResult:
        return await command(
            info,
            lambda: c.DeclineOneToOne(
                one_to_one_id=raw_id(input.one_to_one_id, "OneToOne", "one_to_one_id")
            ),
            _one_to_one,
        )


# -- its Node loader (node(id:))


async def one_to_one_node(info: Info[Context, Any], raw: str) -> OneToOne | None:
    """One of the caller's one-to-ones, like `oneToOnes` (the service has no
    query for one by id: the caller's list is searched)."""
    parts = split_raw_id(raw)
    if parts is None:
        return None
    return await ask_listed(
        info,
        c.ListOneToOnes(),
        lambda o: o.one_to_one_id == parts[0],
        OneToOne.from_contract,
        missing_as_none=False,
    )
