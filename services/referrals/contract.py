"""Referrals' published language: the only module of this service that the
gateway and other services may import.

The ledger of word of mouth (DOMAIN.md, "Referrals", "Deontology: ask the
network first", "Concrete results and engagement"): referral slips from a
giver to a receiver, through their lifecycle (given → accepted or declined →
contacted → won, with the business value thanked, or lost); thanks for closed
business without a slip; one-to-ones (logged by one member, confirmed by the
other); needs posted to the network first; and reports of results and
engagement per member, hub and network.

Money is an exact `Decimal` with an ISO 4217 currency (EUR by default), never
a float. The prospect's details (a person or a company) are personal data:
kept only here, shown to the giver, the receiver and the hub's admins, never
on the stream. Business values are private to the giver, the receiver and the
hub's admins; other members see totals in reports.

Requests go to `quartier.cmd.referrals.<Name>` / `quartier.qry.referrals.<Name>`;
public events to `quartier.evt.<tenant>.referrals.<Name>`.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import ClassVar, Literal

from services.runtime.messages import Command, Done, Message, PublicEvent, Query, R

SERVICE = "referrals"

ReferralStatus = Literal["given", "accepted", "declined", "contacted", "won", "lost"]
OneToOneStatus = Literal["logged", "confirmed", "declined"]
NeedStatus = Literal["open", "met", "released"]
Direction = Literal["given", "received", "all"]
Scope = Literal["member", "hub", "tenant"]
Light = Literal["green", "amber", "red"]


class ReferralsCommand(Command[R]):
    service: ClassVar[str] = SERVICE


class ReferralsQuery(Query[R]):
    service: ClassVar[str] = SERVICE


class ReferralsEvent(PublicEvent):
    service: ClassVar[str] = SERVICE


# -- values --------------------------------------------------------------------


class Money(Message):
    """An exact amount (as a decimal string on the wire) in an ISO 4217 currency."""

    amount: Decimal
    currency: str = "EUR"


class Prospect(Message):
    """Who the business is with: a person or a company (personal data)."""

    name: str
    company: str = ""
    email: str = ""
    phone: str = ""


class StatusChange(Message):
    status: ReferralStatus
    at: datetime
    by: str
    reason: str | None = None  # shown to those who see the slip


class Slip(Message):
    referral_id: str
    giver_id: str
    receiver_id: str
    hub_id: str | None
    meetup_id: str | None  # where giver and receiver met
    about: str
    warmth: int  # 1 (a name) to 5 (they expect the call)
    inside: bool  # the prospect is a member of the network
    prospect_member_id: str | None
    prospect: Prospect | None  # None for those who may not see it
    status: ReferralStatus
    value: Money | None  # when won; None for those who may not see it
    given_at: datetime
    updated_at: datetime
    history: list[StatusChange]


class SlipPage(Message):
    items: list[Slip]
    total: int


class Thanks(Message):
    """Thanks for closed business: `receiver_id` thanks `giver_id`."""

    thanks_id: str
    giver_id: str
    receiver_id: str
    referral_id: str | None
    hub_id: str | None
    about: str
    value: Money | None  # None for those who may not see it
    at: datetime


class ThanksPage(Message):
    items: list[Thanks]
    total: int


class OneToOne(Message):
    one_to_one_id: str
    logged_by: str
    other_id: str
    met_on: date
    status: OneToOneStatus
    logged_at: datetime
    answered_at: datetime | None


class NeedAnswer(Message):
    member_id: str
    message: str
    at: datetime


class Need(Message):
    need_id: str
    poster_id: str
    activity_codes: list[str]
    words: str
    description: str
    deadline: date | None
    status: NeedStatus
    window_ends_at: datetime  # free to look outside after this
    matches: list[str]  # members whose offer or activity matches, best first
    answers: list[NeedAnswer]
    met_by: str | None
    posted_at: datetime


class NeedPage(Message):
    items: list[Need]
    total: int


class Amounts(Message):
    """Totals per currency."""

    items: list[Money]


class Results(Message):
    """What a member, a hub or the network did over a period."""

    scope: Scope
    subject_id: str
    since: datetime
    until: datetime
    meetups_attended: int  # member: meetups; hub/tenant: attendances
    referrals_given: int
    referrals_received: int
    referrals_won: int
    value_given: Amounts  # business brought to others (thanked)
    value_received: Amounts  # business received (thanked)
    one_to_ones: int  # confirmed
    missions_done: int
    needs_posted: int
    needs_met_inside: int


class LightMeasure(Message):
    """One measure of the traffic light and the colour it gave."""

    measure: str  # meetups | referrals_given | one_to_ones
    value: int
    light: Light


class Engagement(Message):
    member_id: str
    light: Light  # the worst of the measures
    measures: list[LightMeasure]  # each says which measure set the light
    meetups_in_core_window: int
    in_core: bool
    drifting: bool  # no meetup in the last `drifting_weeks`
    last_meetup_at: datetime | None


class HubEngagement(Message):
    hub_id: str
    core: list[str]
    drifting: list[str]
    members: list[Engagement]


class EngagementSettings(Message):
    """Per network (tenant admins set them). The traffic light looks at the
    last `light_months` months; each measure is green at or above its green
    threshold, amber at or above its amber one, red below."""

    core_meetups: int = 3  # the core: present at this many meetups ...
    core_days: int = 90  # ... in this many days
    drifting_weeks: int = 6  # drifting: no meetup in this many weeks
    need_window_days: int = 7  # a need goes to the network first for this long
    light_months: int = 6
    green_meetups: int = 12
    amber_meetups: int = 6
    green_referrals: int = 6
    amber_referrals: int = 2
    green_one_to_ones: int = 6
    amber_one_to_ones: int = 2


# -- commands: referrals and thanks -----------------------------------------------


class GiveReferral(ReferralsCommand[Slip]):
    """A member gives a referral to another member of the network: an outside
    prospect (`prospect`) or a member of the network (`prospect_member_id`)."""

    idempotent: ClassVar[bool] = True
    receiver_id: str
    about: str
    warmth: int
    prospect: Prospect | None = None
    prospect_member_id: str | None = None
    hub_id: str | None = None
    meetup_id: str | None = None


class AcceptReferral(ReferralsCommand[Slip]):
    referral_id: str


class DeclineReferral(ReferralsCommand[Slip]):
    referral_id: str
    reason: str


class MarkContacted(ReferralsCommand[Slip]):
    referral_id: str


class MarkWon(ReferralsCommand[Slip]):
    """The receiver closed the business: its value is thanked to the giver."""

    referral_id: str
    value: Money


class MarkLost(ReferralsCommand[Slip]):
    referral_id: str
    reason: str = ""


class RecordThanks(ReferralsCommand[Thanks]):
    """Thanks for business that came from a member by other means than a slip."""

    idempotent: ClassVar[bool] = True
    giver_id: str
    value: Money
    about: str
    hub_id: str | None = None


# -- commands: one-to-ones and needs ----------------------------------------------


class LogOneToOne(ReferralsCommand[OneToOne]):
    idempotent: ClassVar[bool] = True
    other_id: str
    met_on: date


class ConfirmOneToOne(ReferralsCommand[OneToOne]):
    one_to_one_id: str


class DeclineOneToOne(ReferralsCommand[OneToOne]):
    one_to_one_id: str


class PostNeed(ReferralsCommand[Need]):
    """Ask the network first: members whose offer or activity matches are told."""

    idempotent: ClassVar[bool] = True
    activity_codes: list[str] = []
    words: str = ""
    description: str = ""
    deadline: date | None = None


class AnswerNeed(ReferralsCommand[Need]):
    need_id: str
    message: str


class MarkNeedMet(ReferralsCommand[Need]):
    need_id: str
    member_id: str  # who met it, inside the network


class ReleaseNeed(ReferralsCommand[Need]):
    """Once the window has passed: free to look outside."""

    need_id: str


class SetEngagementSettings(ReferralsCommand[EngagementSettings]):
    settings: EngagementSettings


# -- queries -----------------------------------------------------------------------


class ListSlips(ReferralsQuery[SlipPage]):
    """The asking member's slips (given, received); `all`: a hub's (its
    admins) or the network's (tenant admins)."""

    direction: Direction = "received"
    hub_id: str | None = None
    status: ReferralStatus | None = None
    offset: int = 0
    limit: int = 20


class GetSlip(ReferralsQuery[Slip]):
    referral_id: str


class ListThanks(ReferralsQuery[ThanksPage]):
    direction: Direction = "received"
    offset: int = 0
    limit: int = 20


class ListOneToOnes(ReferralsQuery[list[OneToOne]]):
    pass


class ListNeeds(ReferralsQuery[NeedPage]):
    """`mine`: posted by the asking member; else those it matches, open first."""

    mine: bool = False
    offset: int = 0
    limit: int = 20


class GetNeed(ReferralsQuery[Need]):
    need_id: str


class GetResults(ReferralsQuery[Results]):
    scope: Scope
    subject_id: str | None = None  # the member or hub; None: the asker, or the network
    since: datetime | None = None  # default: 90 days before `until`
    until: datetime | None = None  # default: now


class GetHubEngagement(ReferralsQuery[HubEngagement]):
    hub_id: str


class GetEngagementSettings(ReferralsQuery[EngagementSettings]):
    pass


# -- public events (no prospect, no value's owner details beyond ids, no text) ---------


class ReferralGiven(ReferralsEvent):
    referral_id: str
    giver_id: str
    receiver_id: str
    hub_id: str | None
    meetup_id: str | None
    warmth: int
    inside: bool


class ReferralAccepted(ReferralsEvent):
    referral_id: str
    giver_id: str
    receiver_id: str


class ReferralDeclined(ReferralsEvent):
    referral_id: str
    giver_id: str
    receiver_id: str


class ReferralContacted(ReferralsEvent):
    referral_id: str
    giver_id: str
    receiver_id: str


class ReferralWon(ReferralsEvent):
    """With its value: business totals are what analytics consumers chart
    (values are not personal data; the prospect stays private)."""

    referral_id: str
    giver_id: str
    receiver_id: str
    value: Money


class ReferralLost(ReferralsEvent):
    referral_id: str
    giver_id: str
    receiver_id: str


class ThanksRecorded(ReferralsEvent):
    thanks_id: str
    giver_id: str
    receiver_id: str
    referral_id: str | None
    hub_id: str | None
    value: Money


class OneToOneLogged(ReferralsEvent):
    one_to_one_id: str
    logged_by: str
    other_id: str
    met_on: date


class OneToOneConfirmed(ReferralsEvent):
    one_to_one_id: str
    logged_by: str
    other_id: str
    met_on: date


class NeedPosted(ReferralsEvent):
    need_id: str
    poster_id: str
    activity_codes: list[str]
    matches: int


class NeedAnswered(ReferralsEvent):
    need_id: str
    member_id: str


class NeedMet(ReferralsEvent):
    need_id: str
    poster_id: str
    met_by: str


class NeedReleased(ReferralsEvent):
    need_id: str
    poster_id: str


# -- exports' queries (services/referrals/exports.py) --------------------------------


class OneToOnePage(Message):
    items: list[OneToOne]
    total: int


class ListNetworkOneToOnes(ReferralsQuery[OneToOnePage]):
    """Tenant admins (the exports service asks as them): every one-to-one of
    the network, oldest first, a page at a time."""

    offset: int = 0
    limit: int = 50


class ListNetworkNeeds(ReferralsQuery[NeedPage]):
    """Tenant admins (the exports service asks as them): every need of the
    network with all its answers, oldest first, a page at a time."""

    offset: int = 0
    limit: int = 50


__all__ = ["Done"]


class EraseProspect(ReferralsCommand[Done]):
    """The slip's giver, a co-admin of its hub or a tenant admin: erase the
    slip's outside prospect (name, company, e-mail, phone; docs/erasure.md).
    The slip, its status and value stay. Asked again: nothing more."""

    referral_id: str
