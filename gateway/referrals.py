"""GraphQL for the referrals service (`services/referrals/`): the ledger of
word of mouth — referral slips and their lifecycle, thanks for closed
business, one-to-ones, needs posted to the network first — and the reports
of results and engagement per member, hub and network.

Money is an exact decimal written as a string (`"1200.50"`) with its ISO
4217 currency, never a float. Who sees what is the service's decision: a
slip, its prospect and its value are shown to its giver, its receiver, the
admins of its hub and tenant admins; to anyone else the slip does not exist
(`null`, or `NotFound` for a mutation), like another network's. A value the
caller may not see is `null`. Profiles come through identity's DataLoader,
hubs and meetups through theirs (`gateway/events/`), and are nullable (see
docs/api.md, "Partial data").

By convention (see `gateway.kit`): `Query`, `Mutation`, `types`, `nodes`."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.events.meetups import Meetup, load_hub_of, load_meetup
from gateway.identity import Member, load_member, load_members
from gateway.kit import (
    Connection,
    NodeLoader,
    ask,
    command,
    connection,
    public_errors,
    require_member,
    result_union,
)
from gateway.nodes import Node, from_global_id, parse_page, split_raw_id, to_global_id
from services.referrals import contract as c
from services.runtime.errors import InvalidInput

if TYPE_CHECKING:
    from gateway.hubs import Hub

HubRef = Annotated["Hub", strawberry.lazy("gateway.hubs")]

AMOUNT = re.compile(r"[0-9]+(\.[0-9]+)?", re.ASCII)
MAX_AMOUNT_TEXT = 40  # characters of an amount: "1000000000.000" and then some


# -- enums -----------------------------------------------------------------------


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


@strawberry.enum(description="logged by one → confirmed (or declined) by the other.")
class OneToOneStatus(Enum):
    LOGGED = "logged"
    CONFIRMED = "confirmed"
    DECLINED = "declined"


@strawberry.enum(description="open → met (inside the network) or released (free to look outside).")
class NeedStatus(Enum):
    OPEN = "open"
    MET = "met"
    RELEASED = "released"


@strawberry.enum(description="What a report is about.")
class ResultsScope(Enum):
    MEMBER = "member"
    HUB = "hub"
    TENANT = "tenant"


@strawberry.enum
class TrafficLight(Enum):
    GREEN = "green"
    AMBER = "amber"
    RED = "red"


@strawberry.enum(description="A measure of the traffic light (over its window of months).")
class EngagementMeasure(Enum):
    MEETUPS = "meetups"  # meetups of the hub attended (present or late)
    REFERRALS_GIVEN = "referrals_given"
    ONE_TO_ONES = "one_to_ones"  # confirmed


# -- types -----------------------------------------------------------------------


@strawberry.type(description="An exact amount in an ISO 4217 currency.")
class Money:
    amount: str = strawberry.field(
        description='A decimal string with the currency\'s decimals, e.g. "1200.50" (never a float).'
    )
    currency: str = strawberry.field(description="ISO 4217 code, e.g. EUR.")

    @classmethod
    def from_contract(cls, m: c.Money) -> Money:
        return cls(amount=str(m.amount), currency=m.currency)


def _money(m: c.Money | None) -> Money | None:
    return Money.from_contract(m) if m is not None else None


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
            value=_money(s.value),
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
            value=_money(t.value),
            at=t.at,
            giver_id=t.giver_id,
            receiver_id=t.receiver_id,
            referral_id_raw=t.referral_id,
            hub_id_raw=t.hub_id,
        )


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


@strawberry.type(
    description="What a member, a hub or the network did over a period. Values are totals "
    "per currency (never summed across currencies)."
)
class Results:
    scope: ResultsScope
    subject_id: strawberry.ID = strawberry.field(
        description="The member's, the hub's or the network's UUID."
    )
    since: datetime
    until: datetime
    meetups_attended: int = strawberry.field(
        description="A member: meetups attended; a hub or the network: attendances."
    )
    referrals_given: int
    referrals_received: int
    referrals_won: int
    value_given: list[Money] = strawberry.field(description="Business brought to others (thanked).")
    value_received: list[Money] = strawberry.field(description="Business received (thanked).")
    one_to_ones: int = strawberry.field(description="Confirmed ones.")
    missions_done: int
    needs_posted: int
    needs_met_inside: int

    @strawberry.field(description="The member, for a member's report.")
    async def member(self, info: Info[Context, Any]) -> Member | None:
        if self.scope is not ResultsScope.MEMBER:
            return None
        return await load_member(info, self.subject_id)

    @strawberry.field(description="The hub, for a hub's report.")
    async def hub(self, info: Info[Context, Any]) -> HubRef | None:
        if self.scope is not ResultsScope.HUB:
            return None
        return await load_hub_of(info, self.subject_id)

    @classmethod
    def from_contract(cls, r: c.Results) -> Results:
        return cls(
            scope=ResultsScope(r.scope),
            subject_id=strawberry.ID(r.subject_id),
            since=r.since,
            until=r.until,
            meetups_attended=r.meetups_attended,
            referrals_given=r.referrals_given,
            referrals_received=r.referrals_received,
            referrals_won=r.referrals_won,
            value_given=[Money.from_contract(m) for m in r.value_given.items],
            value_received=[Money.from_contract(m) for m in r.value_received.items],
            one_to_ones=r.one_to_ones,
            missions_done=r.missions_done,
            needs_posted=r.needs_posted,
            needs_met_inside=r.needs_met_inside,
        )


@strawberry.type(description="One measure of a traffic light and the colour it gave.")
class LightMeasure:
    measure: EngagementMeasure
    value: int
    light: TrafficLight


@strawberry.type(description="A member's engagement in a hub.")
class Engagement:
    light: TrafficLight = strawberry.field(description="The worst of its measures' lights.")
    measures: list[LightMeasure]
    meetups_in_core_window: int
    in_core: bool
    drifting: bool = strawberry.field(description="No meetup in the last `driftingWeeks`.")
    last_meetup_at: datetime | None
    member_id: strawberry.ID

    @strawberry.field(description="The measures that set the light (those of its colour).")
    def set_by(self) -> list[EngagementMeasure]:
        return [m.measure for m in self.measures if m.light == self.light]

    @strawberry.field
    async def member(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, self.member_id)

    @classmethod
    def from_contract(cls, e: c.Engagement) -> Engagement:
        return cls(
            light=TrafficLight(e.light),
            measures=[
                LightMeasure(
                    measure=EngagementMeasure(m.measure), value=m.value, light=TrafficLight(m.light)
                )
                for m in e.measures
            ],
            meetups_in_core_window=e.meetups_in_core_window,
            in_core=e.in_core,
            drifting=e.drifting,
            last_meetup_at=e.last_meetup_at,
            member_id=strawberry.ID(e.member_id),
        )


@strawberry.type(
    description="A hub's engagement now: its core (present at `coreMeetups` meetups in "
    "`coreDays` days), the members drifting away, and each member's traffic light."
)
class HubEngagement:
    members: list[Engagement]
    hub_id: strawberry.ID
    core_ids: strawberry.Private[list[str]]
    drifting_ids: strawberry.Private[list[str]]

    @strawberry.field
    async def hub(self, info: Info[Context, Any]) -> HubRef | None:
        return await load_hub_of(info, self.hub_id)

    @strawberry.field
    async def core(self, info: Info[Context, Any]) -> list[Member] | None:
        return await load_members(info, self.core_ids)

    @strawberry.field
    async def drifting(self, info: Info[Context, Any]) -> list[Member] | None:
        return await load_members(info, self.drifting_ids)

    @classmethod
    def from_contract(cls, h: c.HubEngagement) -> HubEngagement:
        return cls(
            members=[Engagement.from_contract(e) for e in h.members],
            hub_id=strawberry.ID(h.hub_id),
            core_ids=list(h.core),
            drifting_ids=list(h.drifting),
        )


@strawberry.type(
    description="A network's engagement settings (tenant admins set them). Each light's "
    "measure is green at or above its green threshold, amber at or above its amber one, red "
    "below, over the last `lightMonths` months (of 30 days)."
)
class EngagementSettings:
    core_meetups: int = strawberry.field(description="The core: present at this many meetups …")
    core_days: int = strawberry.field(description="… in this many days.")
    drifting_weeks: int = strawberry.field(description="Drifting: no meetup in this many weeks.")
    need_window_days: int = strawberry.field(
        description="A need goes to the network first for this many days."
    )
    light_months: int
    green_meetups: int
    amber_meetups: int
    green_referrals: int
    amber_referrals: int
    green_one_to_ones: int
    amber_one_to_ones: int

    @classmethod
    def from_contract(cls, s: c.EngagementSettings) -> EngagementSettings:
        return cls(**{name: getattr(s, name) for name in c.EngagementSettings.__struct_fields__})


@strawberry.type
class SlipPayload:
    slip: Slip


@strawberry.type
class ThanksPayload:
    thanks: Thanks


@strawberry.type
class OneToOnePayload:
    one_to_one: OneToOne


@strawberry.type
class NeedPayload:
    need: Need


@strawberry.type
class EngagementSettingsPayload:
    settings: EngagementSettings


SlipResult = result_union("SlipResult", SlipPayload)
ThanksResult = result_union("ThanksResult", ThanksPayload)
OneToOneResult = result_union("OneToOneResult", OneToOnePayload)
NeedResult = result_union("NeedResult", NeedPayload)
EngagementSettingsResult = result_union("EngagementSettingsResult", EngagementSettingsPayload)


# -- inputs ----------------------------------------------------------------------


@strawberry.input(description="An exact amount: a decimal string, never a float.")
class MoneyInput:
    amount: str = strawberry.field(description='e.g. "1200.50"; at most the currency\'s decimals.')
    currency: str = strawberry.field(default="EUR", description="ISO 4217 code.")

    def to_contract(self, field: str = "value") -> c.Money:
        """Plain decimal notation only ("1200.50", "1200"): no exponent, sign,
        spaces, separators or non-ASCII digits, which `Decimal` would take."""
        text = self.amount
        if len(text) > MAX_AMOUNT_TEXT or not AMOUNT.fullmatch(text):
            raise InvalidInput(
                'not an amount: digits, and a point before the decimals ("1200.50")',
                field=f"{field}.amount",
            )
        try:
            amount = Decimal(text)
        except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
            raise InvalidInput("not an amount", field=f"{field}.amount") from None
        return c.Money(amount=amount, currency=self.currency)


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


@strawberry.input(description="Thanks for business that came from a member without a slip.")
class RecordThanksInput:
    giver_id: strawberry.ID = strawberry.field(description="The member who brought it.")
    value: MoneyInput
    about: str
    hub_id: strawberry.ID | None = None


@strawberry.input
class LogOneToOneInput:
    other_id: strawberry.ID
    met_on: date = strawberry.field(description="The day you met (today or before).")


@strawberry.input
class OneToOneInput:
    one_to_one_id: strawberry.ID = strawberry.field(description="A OneToOne's id.")


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


@strawberry.input(
    description="A network's engagement settings; left out, a field takes its default."
)
class EngagementSettingsInput:
    core_meetups: int = 3
    core_days: int = 90
    drifting_weeks: int = 6
    need_window_days: int = 7
    light_months: int = 6
    green_meetups: int = 12
    amber_meetups: int = 6
    green_referrals: int = 6
    amber_referrals: int = 2
    green_one_to_ones: int = 6
    amber_one_to_ones: int = 2

    def to_contract(self) -> c.EngagementSettings:
        return c.EngagementSettings(
            **{name: getattr(self, name) for name in c.EngagementSettings.__struct_fields__}
        )


# -- ids -------------------------------------------------------------------------


def _id(value: str, type_name: str, field: str) -> str:
    return from_global_id(value, type_name, field=field)


def _opt_id(value: str | None, type_name: str, field: str) -> str | None:
    return None if value is None else from_global_id(value, type_name, field=field)


def _subject(scope: ResultsScope, subject_id: str | None) -> str | None:
    """A report's subject: a Member id (member), a Hub id (hub), none (network)."""
    if subject_id is None:
        return None
    if scope is ResultsScope.TENANT:
        raise InvalidInput("a report of the network has no subject", field="subjectId")
    expected = "Member" if scope is ResultsScope.MEMBER else "Hub"
    return from_global_id(subject_id, expected, field="subjectId")


# -- loaders ---------------------------------------------------------------------


async def load_slip(info: Info[Context, Any], referral_id: str | None) -> Slip | None:
    """A slip the caller may see, or None (missing, another's, another network's)."""
    if not referral_id:
        return None
    found = await ask(
        info, c.GetSlip(referral_id=referral_id), require_member(info), missing_as_none=True
    )
    return Slip.from_contract(found) if found else None


async def load_need(info: Info[Context, Any], need_id: str) -> Need | None:
    found = await ask(info, c.GetNeed(need_id=need_id), require_member(info), missing_as_none=True)
    return Need.from_contract(found) if found else None


# -- queries ---------------------------------------------------------------------


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
        rctx = require_member(info)
        with public_errors():
            offset, limit = parse_page(first, after)
            hub = _opt_id(hub_id, "Hub", "hubId")
        found = await ask(
            info,
            c.ListSlips(
                direction=direction.value,  # type: ignore[arg-type]
                hub_id=hub,
                status=status.value if status else None,  # type: ignore[arg-type]
                offset=offset,
                limit=limit,
            ),
            rctx,
        )
        return connection(found.items, offset, found.total, Slip.from_contract)

    @strawberry.field(
        description="A slip and its history, or null (missing, another network's, or one you "
        "are neither the giver, the receiver nor an admin of)."
    )
    async def slip(self, info: Info[Context, Any], id: strawberry.ID) -> Slip | None:
        require_member(info)
        with public_errors():
            raw = _id(id, "Slip", "id")
        return await load_slip(info, raw)

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
        rctx = require_member(info)
        with public_errors():
            offset, limit = parse_page(first, after)
        found = await ask(
            info,
            c.ListThanks(direction=direction.value, offset=offset, limit=limit),  # type: ignore[arg-type]
            rctx,
        )
        return connection(found.items, offset, found.total, Thanks.from_contract)

    @strawberry.field(description="Your one-to-ones, logged by you or by the other member.")
    async def one_to_ones(self, info: Info[Context, Any]) -> list[OneToOne]:
        found = await ask(info, c.ListOneToOnes(), require_member(info))
        return [OneToOne.from_contract(o) for o in found]

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
        rctx = require_member(info)
        with public_errors():
            offset, limit = parse_page(first, after)
        found = await ask(info, c.ListNeeds(mine=mine, offset=offset, limit=limit), rctx)
        return connection(found.items, offset, found.total, Need.from_contract)

    @strawberry.field(description="A need of your network, or null.")
    async def need(self, info: Info[Context, Any], id: strawberry.ID) -> Need | None:
        require_member(info)
        with public_errors():
            raw = _id(id, "Need", "id")
        return await load_need(info, raw)

    @strawberry.field(
        description="Results over a period (default: the 90 days before `until`, itself "
        "default now; at most three years). `MEMBER`: yours, or (`subjectId`, a Member id) "
        "a member of a hub you administer; `HUB`: a hub (`subjectId`, a Hub id); `TENANT`: "
        "the network. Values are totals."
    )
    async def results(
        self,
        info: Info[Context, Any],
        scope: ResultsScope,
        subject_id: strawberry.ID | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Results:
        rctx = require_member(info)
        with public_errors():
            subject = _subject(scope, subject_id)
        found = await ask(
            info,
            c.GetResults(scope=scope.value, subject_id=subject, since=since, until=until),  # type: ignore[arg-type]
            rctx,
        )
        return Results.from_contract(found)

    @strawberry.field(
        description="A hub's engagement now (its members and admins): core, drifting, lights."
    )
    async def hub_engagement(
        self, info: Info[Context, Any], hub_id: strawberry.ID
    ) -> HubEngagement:
        rctx = require_member(info)
        with public_errors():
            raw = _id(hub_id, "Hub", "hubId")
        found = await ask(info, c.GetHubEngagement(hub_id=raw), rctx)
        return HubEngagement.from_contract(found)

    @strawberry.field(description="The network's engagement settings.")
    async def engagement_settings(self, info: Info[Context, Any]) -> EngagementSettings:
        found = await ask(info, c.GetEngagementSettings(), require_member(info))
        return EngagementSettings.from_contract(found)


# -- mutations -------------------------------------------------------------------


def _slip(reply: c.Slip) -> SlipPayload:
    return SlipPayload(slip=Slip.from_contract(reply))


def _need(reply: c.Need) -> NeedPayload:
    return NeedPayload(need=Need.from_contract(reply))


def _one_to_one(reply: c.OneToOne) -> OneToOnePayload:
    return OneToOnePayload(one_to_one=OneToOne.from_contract(reply))


def _referral_id(value: str) -> str:
    return _id(value, "Slip", "referral_id")


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
                receiver_id=_id(input.receiver_id, "Member", "receiver_id"),
                about=input.about,
                warmth=input.warmth,
                prospect=input.prospect.to_contract() if input.prospect else None,
                prospect_member_id=_opt_id(
                    input.prospect_member_id, "Member", "prospect_member_id"
                ),
                hub_id=_opt_id(input.hub_id, "Hub", "hub_id"),
                meetup_id=_opt_id(input.meetup_id, "Meetup", "meetup_id"),
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

    @strawberry.mutation(
        description="Thank a member for business that came from them without a slip."
    )
    async def record_thanks(
        self, info: Info[Context, Any], input: RecordThanksInput
    ) -> ThanksResult:
        return await command(
            info,
            lambda: c.RecordThanks(
                giver_id=_id(input.giver_id, "Member", "giver_id"),
                value=input.value.to_contract(),
                about=input.about,
                hub_id=_opt_id(input.hub_id, "Hub", "hub_id"),
            ),
            lambda t: ThanksPayload(thanks=Thanks.from_contract(t)),
        )

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
                other_id=_id(input.other_id, "Member", "other_id"), met_on=input.met_on
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
                one_to_one_id=_id(input.one_to_one_id, "OneToOne", "one_to_one_id")
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
                one_to_one_id=_id(input.one_to_one_id, "OneToOne", "one_to_one_id")
            ),
            _one_to_one,
        )

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
                need_id=_id(input.need_id, "Need", "need_id"), message=input.message
            ),
            _need,
        )

    @strawberry.mutation(description="The poster: the need was met by a member of the network.")
    async def mark_need_met(self, info: Info[Context, Any], input: MarkNeedMetInput) -> NeedResult:
        return await command(
            info,
            lambda: c.MarkNeedMet(
                need_id=_id(input.need_id, "Need", "need_id"),
                member_id=_id(input.member_id, "Member", "member_id"),
            ),
            _need,
        )

    @strawberry.mutation(
        description="The poster, once the window has passed: free to look outside."
    )
    async def release_need(self, info: Info[Context, Any], input: NeedInput) -> NeedResult:
        return await command(
            info, lambda: c.ReleaseNeed(need_id=_id(input.need_id, "Need", "need_id")), _need
        )

    @strawberry.mutation(description="Tenant admins: the network's engagement settings.")
    async def set_engagement_settings(
        self, info: Info[Context, Any], input: EngagementSettingsInput
    ) -> EngagementSettingsResult:
        return await command(
            info,
            lambda: c.SetEngagementSettings(settings=input.to_contract()),
            lambda s: EngagementSettingsPayload(settings=EngagementSettings.from_contract(s)),
        )


# -- Node types and their loaders (node(id:)) ------------------------------------
# What the caller may see through the type's own field, in their own network.


async def slip_node(info: Info[Context, Any], raw_id: str) -> Slip | None:
    """A slip, like `slip(id:)`."""
    parts = split_raw_id(raw_id)
    return None if parts is None else await load_slip(info, parts[0])


async def need_node(info: Info[Context, Any], raw_id: str) -> Need | None:
    """A need, like `need(id:)`."""
    parts = split_raw_id(raw_id)
    return None if parts is None else await load_need(info, parts[0])


async def one_to_one_node(info: Info[Context, Any], raw_id: str) -> OneToOne | None:
    """One of the caller's one-to-ones, like `oneToOnes` (the service has no
    query for one by id: the caller's list is searched)."""
    parts = split_raw_id(raw_id)
    if parts is None:
        return None
    found = await ask(info, c.ListOneToOnes(), require_member(info))
    match = next((o for o in found if o.one_to_one_id == parts[0]), None)
    return OneToOne.from_contract(match) if match else None


types: list[type] = [Slip, OneToOne, Need]
nodes: dict[str, NodeLoader] = {"Slip": slip_node, "OneToOne": one_to_one_node, "Need": need_node}
