"""Referral slips: the giver passes a prospect to the receiver, who moves
the slip on (given → accepted or declined → contacted → won or lost). A slip,
its prospect and its value are shown to its giver, its receiver, the admins
of its hub and tenant admins; to anyone else it does not exist."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.events.meetups import HubRef, Meetup, load_hub_of, load_meetup
from gateway.identity.members import Member, load_member
from gateway.kit import (
    Connection,
    ask,
    ask_by_id,
    ask_node,
    ask_page,
    command,
    optional_raw_id,
    raw_id,
    require_member,
    result_union,
)
from gateway.nodes import Node, to_global_id
from gateway.referrals.money import Money, MoneyInput, money_or_none
from services.referrals import contract as c


@strawberry.enum(
    description="A slip's lifecycle: given → accepted or declined → contacted → won or lost."
)
class ReferralStatus(Enum):
    GIVEN = "given"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    CONTACTED = "contacted"
    WON = "won"
    LOST = "lost"


@strawberry.enum(description="Which of the caller's slips or thanks.")
class LedgerDirection(Enum):
    GIVEN = "given"
    RECEIVED = "received"
    ALL = "all"  # a hub's (its admins) or the network's (tenant admins)


@strawberry.type(
    description="Who the business is with (personal data: shown to the giver, the "
    "receiver and the hub's admins only)."
)
class Prospect:
    name: str
    company: str
    email: str
    phone: str


@strawberry.type(description="One step of a slip's lifecycle.")
class StatusChange:
    status: ReferralStatus
    at: datetime
    reason: str | None = strawberry.field(description="Why it was declined or lost, if said.")
    by_id: strawberry.Private[str]

    @strawberry.field(description="Who moved it (the giver gave it, the receiver moves it on).")
    async def by(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, self.by_id)


@strawberry.type(
    description="A referral slip: the giver passes a prospect (a person or company, or a "
    "member of the network) to the receiver."
)
class Slip(Node):
    referral_id: strawberry.ID
    about: str
    warmth: int = strawberry.field(description="1 (a name) to 5 (they expect the call).")
    inside: bool = strawberry.field(description="The prospect is a member of the network.")
    prospect: Prospect | None = strawberry.field(
        description="An outside prospect's details; null for an inside one."
    )
    status: ReferralStatus
    value: Money | None = strawberry.field(
        description="The business value once won (seen by the giver, the receiver, the hub's "
        "admins)."
    )
    given_at: datetime
    updated_at: datetime
    history: list[StatusChange] = strawberry.field(description="Every step, oldest first.")
    giver_id: strawberry.Private[str]
    receiver_id: strawberry.Private[str]
    hub_id_raw: strawberry.Private[str | None]
    meetup_id_raw: strawberry.Private[str | None]
    prospect_member_id: strawberry.Private[str | None]

    @strawberry.field
    async def giver(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, self.giver_id)

    @strawberry.field
    async def receiver(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, self.receiver_id)

    @strawberry.field(description="An inside prospect: the member of the network.")
    async def prospect_member(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, self.prospect_member_id)

    @strawberry.field(description="The hub it was given in, if one was named.")
    async def hub(self, info: Info[Context, Any]) -> HubRef | None:
        return await load_hub_of(info, self.hub_id_raw) if self.hub_id_raw else None

    @strawberry.field(description="The meetup where the giver and receiver met, if named.")
    async def meetup(self, info: Info[Context, Any]) -> Meetup | None:
        return await load_meetup(info, self.meetup_id_raw)

    @classmethod
    def from_contract(cls, s: c.Slip) -> Slip:
        p = s.prospect
        return cls(
            id=to_global_id("Slip", s.referral_id),
            referral_id=strawberry.ID(s.referral_id),
            about=s.about,
            warmth=s.warmth,
            inside=s.inside,
            prospect=Prospect(name=p.name, company=p.company, email=p.email, phone=p.phone)
            if p
            else None,
            status=ReferralStatus(s.status),
            value=money_or_none(s.value),
            given_at=s.given_at,
            updated_at=s.updated_at,
            history=[
                StatusChange(status=ReferralStatus(h.status), at=h.at, reason=h.reason, by_id=h.by)
                for h in s.history
            ],
            giver_id=s.giver_id,
            receiver_id=s.receiver_id,
            hub_id_raw=s.hub_id,
            meetup_id_raw=s.meetup_id,
            prospect_member_id=s.prospect_member_id,
        )


@strawberry.type
class SlipPayload:
    slip: Slip


SlipResult = result_union("SlipResult", SlipPayload)


@strawberry.input(description="An outside prospect (personal data, kept by referrals only).")
class ProspectInput:
    name: str
    company: str = ""
    email: str = ""
    phone: str = ""

    def to_contract(self) -> c.Prospect:
        return c.Prospect(name=self.name, company=self.company, email=self.email, phone=self.phone)


@strawberry.input(
    description="Name the prospect: an outside person or company (`prospect`), or a member "
    "of the network (`prospectMemberId`)."
)
class GiveReferralInput:
    receiver_id: strawberry.ID
    about: str
    warmth: int = strawberry.field(description="1 (a name) to 5 (they expect the call).")
    prospect: ProspectInput | None = None
    prospect_member_id: strawberry.ID | None = None
    hub_id: strawberry.ID | None = strawberry.field(
        default=None, description="The hub it is given in (one of yours)."
    )
    meetup_id: strawberry.ID | None = strawberry.field(
        default=None, description="The meetup where you met."
    )


@strawberry.input
class ReferralInput:
    referral_id: strawberry.ID = strawberry.field(description="A Slip's id.")


@strawberry.input
class DeclineReferralInput:
    referral_id: strawberry.ID
    reason: str


@strawberry.input
class MarkReferralWonInput:
    referral_id: strawberry.ID
    value: MoneyInput = strawberry.field(description="The business value, thanked to the giver.")


@strawberry.input
class MarkReferralLostInput:
    referral_id: strawberry.ID
    reason: str = ""


async def load_slip(info: Info[Context, Any], referral_id: str | None) -> Slip | None:
    """A slip the caller may see, or None (missing, another's, another network's)."""
    if not referral_id:
        return None
    found = await ask(
        info, c.GetSlip(referral_id=referral_id), require_member(info), missing_as_none=True
    )
    return Slip.from_contract(found) if found else None


@strawberry.type
class Query:
    @strawberry.field(
        description="Referral slips: those you received (default) or gave; `ALL`, a hub's "
        "(`hubId`, its admins) or the network's (tenant admins; others: FORBIDDEN). Newest "
        "first."
    )
    async def slips(
        self,
        info: Info[Context, Any],
        direction: LedgerDirection = LedgerDirection.RECEIVED,
        hub_id: strawberry.ID | None = None,
        status: ReferralStatus | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> Connection[Slip]:
        def build(offset: int, limit: int) -> c.ListSlips:
            return c.ListSlips(
                direction=direction.value,  # type: ignore[arg-type]
                hub_id=optional_raw_id(hub_id, "Hub", "hubId"),
                status=status.value if status else None,  # type: ignore[arg-type]
                offset=offset,
                limit=limit,
            )

        return await ask_page(info, first, after, build, Slip.from_contract)

    @strawberry.field(
        description="A slip and its history, or null (missing, another network's, or one you "
        "are neither the giver, the receiver nor an admin of)."
    )
    async def slip(self, info: Info[Context, Any], id: strawberry.ID) -> Slip | None:
        return await ask_by_id(
            info, id, "Slip", lambda raw: c.GetSlip(referral_id=raw), Slip.from_contract
        )


def _slip(reply: c.Slip) -> SlipPayload:
    return SlipPayload(slip=Slip.from_contract(reply))


def _referral_id(value: str) -> str:
    return raw_id(value, "Slip", "referral_id")


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Give a referral to another member of the network (not yourself, not a "
        "former member). In a hub with the rule `referralsMeetingDays`, only to a member you "
        "met: RuleViolation `referrals_between_members_who_met` says what is missing."
    )
    async def give_referral(self, info: Info[Context, Any], input: GiveReferralInput) -> SlipResult:
        return await command(
            info,
            lambda: c.GiveReferral(
                receiver_id=raw_id(input.receiver_id, "Member", "receiver_id"),
                about=input.about,
                warmth=input.warmth,
                prospect=input.prospect.to_contract() if input.prospect else None,
                prospect_member_id=optional_raw_id(
                    input.prospect_member_id, "Member", "prospect_member_id"
                ),
                hub_id=optional_raw_id(input.hub_id, "Hub", "hub_id"),
                meetup_id=optional_raw_id(input.meetup_id, "Meetup", "meetup_id"),
            ),
            _slip,
        )

    @strawberry.mutation(description="The receiver accepts a slip (given → accepted).")
    async def accept_referral(self, info: Info[Context, Any], input: ReferralInput) -> SlipResult:
        return await command(
            info, lambda: c.AcceptReferral(referral_id=_referral_id(input.referral_id)), _slip
        )

    @strawberry.mutation(description="The receiver declines a slip, with the reason.")
    async def decline_referral(
        self, info: Info[Context, Any], input: DeclineReferralInput
    ) -> SlipResult:
        return await command(
            info,
            lambda: c.DeclineReferral(
                referral_id=_referral_id(input.referral_id), reason=input.reason
            ),
            _slip,
        )

    @strawberry.mutation(description="The receiver contacted the prospect (accepted → contacted).")
    async def mark_referral_contacted(
        self, info: Info[Context, Any], input: ReferralInput
    ) -> SlipResult:
        return await command(
            info, lambda: c.MarkContacted(referral_id=_referral_id(input.referral_id)), _slip
        )

    @strawberry.mutation(
        description="The receiver closed the business (contacted → won): its value is thanked "
        "to the giver."
    )
    async def mark_referral_won(
        self, info: Info[Context, Any], input: MarkReferralWonInput
    ) -> SlipResult:
        return await command(
            info,
            lambda: c.MarkWon(
                referral_id=_referral_id(input.referral_id), value=input.value.to_contract()
            ),
            _slip,
        )

    @strawberry.mutation(description="The business did not happen (contacted → lost).")
    async def mark_referral_lost(
        self, info: Info[Context, Any], input: MarkReferralLostInput
    ) -> SlipResult:
        return await command(
            info,
            lambda: c.MarkLost(referral_id=_referral_id(input.referral_id), reason=input.reason),
            _slip,
        )


# -- its Node loader (node(id:)): what the caller may see through `slip(id:)`


async def slip_node(info: Info[Context, Any], raw: str) -> Slip | None:
    """A slip, like `slip(id:)`."""
    return await ask_node(info, raw, lambda i: c.GetSlip(referral_id=i), Slip.from_contract)
