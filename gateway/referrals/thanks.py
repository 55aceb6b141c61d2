"""Thanks for closed business: the receiver credits the giver with its value,
from a won slip or for business that came by other means."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.events.meetups import HubRef, load_hub_of
from gateway.identity.members import Member, load_member
from gateway.kit import Connection, ask_page, command, optional_raw_id, raw_id, result_union
from gateway.referrals.money import Money, MoneyInput, money_or_none
from gateway.referrals.slips import LedgerDirection, Slip, load_slip
from services.referrals import contract as c


@strawberry.type(
    description="Thanks for closed business: the receiver credits the giver with its value "
    "(from a won slip, or business that came by other means)."
)
class Thanks:
    thanks_id: strawberry.ID
    about: str
    value: Money | None = strawberry.field(
        description="Seen by the giver, the receiver and the hub's admins; others see totals "
        "in reports only."
    )
    at: datetime
    giver_id: strawberry.Private[str]
    receiver_id: strawberry.Private[str]
    referral_id_raw: strawberry.Private[str | None]
    hub_id_raw: strawberry.Private[str | None]

    @strawberry.field(description="Who brought the business.")
    async def giver(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, self.giver_id)

    @strawberry.field(description="Who closed it and says thanks.")
    async def receiver(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, self.receiver_id)

    @strawberry.field(description="The slip it closed, if any.")
    async def referral(self, info: Info[Context, Any]) -> Slip | None:
        return await load_slip(info, self.referral_id_raw)

    @strawberry.field
    async def hub(self, info: Info[Context, Any]) -> HubRef | None:
        return await load_hub_of(info, self.hub_id_raw) if self.hub_id_raw else None

    @classmethod
    def from_contract(cls, t: c.Thanks) -> Thanks:
        return cls(
            thanks_id=strawberry.ID(t.thanks_id),
            about=t.about,
            value=money_or_none(t.value),
            at=t.at,
            giver_id=t.giver_id,
            receiver_id=t.receiver_id,
            referral_id_raw=t.referral_id,
            hub_id_raw=t.hub_id,
        )


@strawberry.type
class ThanksPayload:
    thanks: Thanks


ThanksResult = result_union("ThanksResult", ThanksPayload)


@strawberry.input(description="Thanks for business that came from a member without a slip.")
class RecordThanksInput:
    giver_id: strawberry.ID = strawberry.field(description="The member who brought it.")
    value: MoneyInput
    about: str
    hub_id: strawberry.ID | None = None


@strawberry.type
class Query:
    @strawberry.field(
        description="The direction follows the business, as for slips: `RECEIVED` "
        "(default), thanks for business you received (you thanked its giver); `GIVEN`, "
        "thanks for business you brought (you were thanked); `ALL`: the network's (tenant "
        "admins). Newest first."
    )
    async def thanks(
        self,
        info: Info[Context, Any],
        direction: LedgerDirection = LedgerDirection.RECEIVED,
        first: int = 20,
        after: str | None = None,
    ) -> Connection[Thanks]:
        return await ask_page(
            info,
            first,
            after,
            lambda offset, limit: c.ListThanks(
                direction=direction.value,  # type: ignore[arg-type]
                offset=offset,
                limit=limit,
            ),
            Thanks.from_contract,
        )


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Thank a member for business that came from them without a slip."
    )
    async def record_thanks(
        self, info: Info[Context, Any], input: RecordThanksInput
    ) -> ThanksResult:
        return await command(
            info,
            lambda: c.RecordThanks(
                giver_id=raw_id(input.giver_id, "Member", "giver_id"),
                value=input.value.to_contract(),
                about=input.about,
                hub_id=optional_raw_id(input.hub_id, "Hub", "hub_id"),
            ),
            lambda t: ThanksPayload(thanks=Thanks.from_contract(t)),
        )
