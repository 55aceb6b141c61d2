"""Hubs' published language: the only module of this service that the gateway
and other services may import.

A hub is a club inside a network (a neighbourhood circle, a trade club, a
regional club) with an area, versioned rules, members admitted by co-optation,
co-admins and a rotating facilitator. Requests go to
`quartier.cmd.hubs.<Name>` / `quartier.qry.hubs.<Name>`; public events to
`quartier.evt.<tenant>.hubs.<Name>` as `quartier.hubs.<Name>.v<version>`.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from msgspec import UNSET, UnsetType

from services.runtime.messages import Command, Done, Message, PublicEvent, Query, R

SERVICE = "hubs"

HubKind = Literal["neighbourhood", "trade_club", "regional_club"]
AdmissionMode = Literal["cooptation", "approval", "open"]
NominationStatus = Literal[
    "invited",  # an e-mail candidate has not yet accepted identity's invitation
    "open",  # the objection window is open
    "awaiting_decision",  # objections were raised, or the mode wants an admin's decision
    "admitted",
    "rejected",
]


class HubsCommand(Command[R]):
    service: ClassVar[str] = SERVICE


class HubsQuery(Query[R]):
    service: ClassVar[str] = SERVICE


class HubsEvent(PublicEvent):
    service: ClassVar[str] = SERVICE


# -- values --------------------------------------------------------------------


class Point(Message):
    lat: float
    lon: float


class Area(Message):
    """Where members must live or work: within `radius_km` of `centre`, and/or
    in one of `postcodes`."""

    centre: Point | None = None
    radius_km: float | None = None
    postcodes: list[str] = []


class Rules(Message):
    admission_mode: AdmissionMode = "cooptation"
    non_competition: bool = True
    non_competition_lift_at: int | None = None  # lifted automatically at N members
    non_competition_lifted: bool = False
    objection_window_days: int = 7
    max_visits: int = 3  # visits a visitor may make before applying
    facilitator_term_days: int = 28
    # None: a term counts in days only; N: it ends after N closed meetups of the
    # hub, or at `facilitator_term_days`, whichever comes first
    facilitator_term_meetups: int | None = None
    # None: off; N: a referral between two members of the hub only if both were
    # present at one of its meetups, or confirmed a one-to-one, in the last N days
    referrals_meeting_days: int | None = None


class RulesChanges(Message):
    admission_mode: AdmissionMode | UnsetType = UNSET
    non_competition: bool | UnsetType = UNSET
    non_competition_lift_at: int | UnsetType | None = UNSET
    non_competition_lifted: bool | UnsetType = UNSET
    objection_window_days: int | UnsetType = UNSET
    max_visits: int | UnsetType = UNSET
    facilitator_term_days: int | UnsetType = UNSET
    facilitator_term_meetups: int | UnsetType | None = UNSET
    referrals_meeting_days: int | UnsetType | None = UNSET


class RulesVersion(Message):
    version: int
    rules: Rules
    changed_by: str | None  # None: changed automatically (the lift threshold)
    reason: str | None
    changed_at: datetime


class Hub(Message):
    hub_id: str
    tenant_id: str
    name: str
    kind: HubKind
    area: Area
    rules: Rules
    rules_version: int
    member_count: int
    co_admin_ids: list[str]
    facilitator_id: str | None
    facilitator_term_ends_at: datetime | None
    roster: list[str]
    created_at: datetime
    non_competition_in_force: bool


class HubMember(Message):
    member_id: str
    sponsor_id: str | None  # the godparent ("parrain")
    admitted_at: datetime
    rules_version: int
    exception_reason: str | None
    is_co_admin: bool


class HubMemberPage(Message):
    items: list[HubMember]
    total: int


class Objection(Message):
    objector_id: str
    reason: str
    raised_at: datetime


class Nomination(Message):
    nomination_id: str
    hub_id: str
    candidate_id: str | None  # None until an e-mail candidate has joined the network
    sponsor_id: str
    status: NominationStatus
    note: str
    nominated_at: datetime
    window_closes_at: datetime | None
    objection_count: int
    objections: list[Objection]  # filled for hub admins only
    exception_reason: str | None
    decided_at: datetime | None
    decision_reason: str | None
    rule: str | None  # the rule that refused it, if one did


# -- commands ------------------------------------------------------------------


class CreateHub(HubsCommand[Hub]):
    """Tenant admin. The creator becomes the hub's first member and co-admin."""

    idempotent: ClassVar[bool] = True
    name: str
    kind: HubKind
    area: Area
    rules: Rules = Rules()


class ChangeRules(HubsCommand[Hub]):
    """Hub admin: a new version of the rules (lifting the one-per-profession
    rule is `non_competition_lifted=True` with a reason)."""

    hub_id: str
    changes: RulesChanges
    reason: str | None = None


class NominateCandidate(HubsCommand[Nomination]):
    """A member co-opts a candidate: an existing member of the network
    (`candidate_id`) or a new person (`email`, invited by identity). A hub
    admin may pass `exception_reason` to admit past the one-per-profession rule."""

    idempotent: ClassVar[bool] = True
    hub_id: str
    candidate_id: str | None = None
    email: str | None = None
    note: str = ""
    exception_reason: str | None = None


class JoinHub(HubsCommand[HubMember]):
    """A member of the network joins an open hub by themself."""

    hub_id: str


class RaiseObjection(HubsCommand[Nomination]):
    hub_id: str
    nomination_id: str
    reason: str


class AdmitCandidate(HubsCommand[Nomination]):
    """Hub admin decides: admit (with an exception reason if the
    one-per-profession rule would refuse)."""

    hub_id: str
    nomination_id: str
    exception_reason: str | None = None


class RejectCandidate(HubsCommand[Nomination]):
    hub_id: str
    nomination_id: str
    reason: str


class LeaveHub(HubsCommand[Done]):
    hub_id: str


class RemoveMember(HubsCommand[Done]):
    hub_id: str
    member_id: str
    reason: str


class AddCoAdmin(HubsCommand[Hub]):
    hub_id: str
    member_id: str


class RemoveCoAdmin(HubsCommand[Hub]):
    hub_id: str
    member_id: str


class VolunteerAsFacilitator(HubsCommand[Hub]):
    """The member joins the end of the facilitator roster."""

    hub_id: str


class WithdrawFromRoster(HubsCommand[Hub]):
    hub_id: str


class HandOverFacilitation(HubsCommand[Hub]):
    """Hub admin or the current facilitator: the next volunteer takes over for
    a term; the previous one goes to the end of the roster."""

    hub_id: str


class SwapFacilitatorTurns(HubsCommand[Hub]):
    """Hub admin, or a volunteer giving their own turn to someone after them:
    exchange two places in the roster."""

    hub_id: str
    first_id: str
    second_id: str


# -- queries -------------------------------------------------------------------


class ListHubs(HubsQuery[list[Hub]]):
    member_id: str | None = None  # only the hubs this member belongs to


class GetHub(HubsQuery[Hub]):
    hub_id: str


class ListHubMembers(HubsQuery[HubMemberPage]):
    hub_id: str
    offset: int = 0
    limit: int = 50


class ListNominations(HubsQuery[list[Nomination]]):
    """Pending admissions by default (invited, open, awaiting_decision)."""

    hub_id: str
    statuses: list[NominationStatus] = []


class GetNomination(HubsQuery[Nomination]):
    hub_id: str
    nomination_id: str


class RulesHistory(HubsQuery[list[RulesVersion]]):
    """Every version of a hub's rules; with `at`, the version in force then."""

    hub_id: str
    at: datetime | None = None


# -- public events -------------------------------------------------------------


class HubCreated(HubsEvent):
    hub_id: str
    name: str
    kind: str
    founder_id: str
    # the rules it starts with (version 1); absent from events published
    # before the field was added: those hubs started on the default rules
    # unless a HubRulesChanged follows
    rules: Rules | None = None


class HubRulesChanged(HubsEvent):
    hub_id: str
    version: int
    rules: Rules
    changed_by: str | None
    automatic: bool
    grandfathered: list[str] = []  # members kept as exceptions when the rule came back


class CandidateNominated(HubsEvent):
    hub_id: str
    nomination_id: str
    sponsor_id: str
    candidate_id: str | None
    invitation_id: str | None
    window_closes_at: datetime | None


class CandidateJoinedNetwork(HubsEvent):
    """An e-mail candidate accepted identity's invitation: the window opens."""

    hub_id: str
    nomination_id: str
    candidate_id: str
    window_closes_at: datetime | None


class ObjectionRaised(HubsEvent):
    """Who objected stays inside hubs (only the hub's co-admins see it)."""

    hub_id: str
    nomination_id: str


class ObjectionWindowClosed(HubsEvent):
    hub_id: str
    nomination_id: str
    objection_count: int
    outcome: str


class MemberAdmitted(HubsEvent):
    hub_id: str
    member_id: str
    sponsor_id: str | None
    nomination_id: str | None
    rules_version: int
    with_exception: bool
    decided_by: str | None  # None: admitted automatically


class AdmissionRejected(HubsEvent):
    hub_id: str
    nomination_id: str
    candidate_id: str | None
    rule: str | None
    decided_by: str | None


class MemberLeft(HubsEvent):
    hub_id: str
    member_id: str


class MemberRemoved(HubsEvent):
    hub_id: str
    member_id: str
    removed_by: str


class CoAdminAdded(HubsEvent):
    hub_id: str
    member_id: str
    added_by: str


class CoAdminRemoved(HubsEvent):
    hub_id: str
    member_id: str
    removed_by: str


class FacilitatorRosterChanged(HubsEvent):
    hub_id: str
    roster: list[str]


class FacilitatorChanged(HubsEvent):
    """A new facilitator's term: handed over on demand (`automatic` false), or
    because the previous term ended (`term_ended_by`: its meetups were done,
    or its days). When a term ends and nobody has volunteered, the same
    facilitator begins a new term (`facilitator_id` equals `previous_id`).
    The term ends at `term_ends_at`, or after `term_meetups` closed meetups of
    the hub if that is set, whichever comes first."""

    hub_id: str
    facilitator_id: str | None
    previous_id: str | None
    term_ends_at: datetime | None
    term_meetups: int | None = None
    automatic: bool = False
    term_ended_by: str | None = None  # "meetups" or "days"; None when handed over on demand
