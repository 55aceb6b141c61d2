"""GraphQL for the hubs service: hubs and their members (profile fields
through identity's DataLoader: one request per page, not one per member),
admissions by co-optation with objections, versioned rules, co-admins and the
facilitator roster.

By convention (see `gateway.kit`): `Query`, `Mutation`, `types`, `nodes`."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import msgspec
import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.events.hub_fields import HubMeetupFields
from gateway.identity import GeoPointInput, Member, load_member, load_members
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
from services.hubs import contract as c
from services.runtime.tenancy import RequestContext


@strawberry.enum(description="What kind of club a hub is.")
class HubKind(Enum):
    NEIGHBOURHOOD = "neighbourhood"
    TRADE_CLUB = "trade_club"
    REGIONAL_CLUB = "regional_club"


@strawberry.enum(description="How candidates are admitted.")
class AdmissionMode(Enum):
    COOPTATION = "cooptation"  # nominated by a member; silence during the window means consent
    APPROVAL = "approval"  # nominated by a member; a hub admin decides
    OPEN = "open"  # any member of the network may join


@strawberry.enum
class NominationStatus(Enum):
    INVITED = "invited"
    OPEN = "open"
    AWAITING_DECISION = "awaiting_decision"
    ADMITTED = "admitted"
    REJECTED = "rejected"


# -- types ---------------------------------------------------------------------


@strawberry.type
class GeoPoint:
    lat: float
    lon: float


@strawberry.type(
    description="Where members must live or work: a radius around a centre, and/or postcodes."
)
class Area:
    centre: GeoPoint | None
    radius_km: float | None
    postcodes: list[str]


@strawberry.type(description="A hub's rules (one version).")
class HubRules:
    admission_mode: AdmissionMode
    non_competition: bool = strawberry.field(description="One member per activity.")
    non_competition_lift_at: int | None = strawberry.field(
        description="The rule lifts by itself when the hub reaches this many members."
    )
    non_competition_lifted: bool
    objection_window_days: int
    max_visits: int = strawberry.field(description="Visits a visitor may make before applying.")
    facilitator_term_days: int
    facilitator_term_meetups: int | None = strawberry.field(
        description="A facilitator's term also ends after this many closed meetups of the hub "
        "(whichever comes first: these or `facilitatorTermDays`); null: in days only."
    )
    referrals_meeting_days: int | None = strawberry.field(
        description="Referrals only between members who met: both present at one of the hub's "
        "meetups, or a confirmed one-to-one, in this many days; null: off."
    )

    @classmethod
    def from_contract(cls, r: c.Rules) -> HubRules:
        values = msgspec.structs.asdict(r)
        values["admission_mode"] = AdmissionMode(r.admission_mode)
        return cls(**values)


@strawberry.type
class RulesVersion:
    version: int
    rules: HubRules
    reason: str | None
    changed_at: datetime
    changed_by_id: strawberry.Private[str | None]

    @strawberry.field(description="Null when the change was automatic (the lift threshold).")
    async def changed_by(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, self.changed_by_id)


@strawberry.type
class HubMember:
    admitted_at: datetime
    rules_version: int = strawberry.field(
        description="The version of the rules under which they were admitted."
    )
    exception_reason: str | None = strawberry.field(
        description="Why they were admitted past the one-per-profession rule, if they were."
    )
    is_co_admin: bool
    member_id: strawberry.Private[str]
    sponsor_id: strawberry.Private[str | None]

    @strawberry.field
    async def member(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, self.member_id)

    @strawberry.field(description='The godparent ("parrain") who co-opted them.')
    async def godparent(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, self.sponsor_id)

    @classmethod
    def from_contract(cls, m: c.HubMember) -> HubMember:
        return cls(
            admitted_at=m.admitted_at,
            rules_version=m.rules_version,
            exception_reason=m.exception_reason,
            is_co_admin=m.is_co_admin,
            member_id=m.member_id,
            sponsor_id=m.sponsor_id,
        )


@strawberry.type
class Objection:
    reason: str
    raised_at: datetime
    objector_id: strawberry.Private[str]

    @strawberry.field
    async def objector(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, self.objector_id)


@strawberry.type(description="A candidate co-opted into a hub, and what became of it.")
class Nomination(Node):
    nomination_id: strawberry.ID
    status: NominationStatus
    note: str
    nominated_at: datetime
    window_closes_at: datetime | None
    objection_count: int
    objections: list[Objection] = strawberry.field(description="Shown to the hub's co-admins only.")
    exception_reason: str | None
    decided_at: datetime | None
    decision_reason: str | None
    rule: str | None = strawberry.field(
        description="The rule that refused the candidate, if one did."
    )
    candidate_id: strawberry.Private[str | None]
    sponsor_id: strawberry.Private[str]
    hub_id_raw: strawberry.Private[str]

    @strawberry.field(description="Null while an invited candidate has not joined the network.")
    async def candidate(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, self.candidate_id)

    @strawberry.field(description="The member who co-opted the candidate (their future godparent).")
    async def sponsor(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, self.sponsor_id)

    @strawberry.field
    def hub_id(self) -> strawberry.ID:
        return to_global_id("Hub", self.hub_id_raw)

    @classmethod
    def from_contract(cls, n: c.Nomination) -> Nomination:
        return cls(
            id=to_global_id("Nomination", n.nomination_id, n.hub_id),
            nomination_id=strawberry.ID(n.nomination_id),
            status=NominationStatus(n.status),
            note=n.note,
            nominated_at=n.nominated_at,
            window_closes_at=n.window_closes_at,
            objection_count=n.objection_count,
            objections=[
                Objection(reason=o.reason, raised_at=o.raised_at, objector_id=o.objector_id)
                for o in n.objections
            ],
            exception_reason=n.exception_reason,
            decided_at=n.decided_at,
            decision_reason=n.decision_reason,
            rule=n.rule,
            candidate_id=n.candidate_id,
            sponsor_id=n.sponsor_id,
            hub_id_raw=n.hub_id,
        )


@strawberry.type(
    description="A club of the network: a neighbourhood circle, a trade club, a regional club."
)
class Hub(Node, HubMeetupFields):  # its meetups, polls, cards: gateway/events/
    hub_id: strawberry.ID
    name: str
    kind: HubKind
    area: Area
    rules: HubRules
    rules_version: int
    member_count: int
    non_competition_in_force: bool
    facilitator_term_ends_at: datetime | None
    created_at: datetime
    co_admin_ids: strawberry.Private[list[str]]
    facilitator_id: strawberry.Private[str | None]
    roster_ids: strawberry.Private[list[str]]

    # Profiles come from identity: the lists are nullable so that, identity
    # unreachable, a mutation's payload still says the command succeeded
    # (partial data with a field error, not a null payload).
    @strawberry.field
    async def co_admins(self, info: Info[Context, Any]) -> list[Member] | None:
        return await load_members(info, self.co_admin_ids)

    @strawberry.field(description="The current facilitator (animateur), if any.")
    async def facilitator(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, self.facilitator_id)

    @strawberry.field(description="Volunteers for the facilitator role, next one first.")
    async def facilitator_roster(self, info: Info[Context, Any]) -> list[Member] | None:
        return await load_members(info, self.roster_ids)

    @strawberry.field
    async def members(
        self, info: Info[Context, Any], first: int = 20, after: str | None = None
    ) -> Connection[HubMember]:
        rctx = require_member(info)
        with public_errors():
            offset, limit = parse_page(first, after)
        found = await ask(
            info, c.ListHubMembers(hub_id=self.hub_id, offset=offset, limit=limit), rctx
        )
        return connection(found.items, offset, found.total, HubMember.from_contract)

    @strawberry.field(
        description="Nominations; by default the pending ones (invited, open, awaiting a "
        "decision). The hub's members see them; for others: null, with a FORBIDDEN error."
    )
    async def nominations(
        self, info: Info[Context, Any], status: list[NominationStatus] | None = None
    ) -> list[Nomination] | None:
        statuses = [s.value for s in status or ()]
        found = await ask(info, c.ListNominations(hub_id=self.hub_id, statuses=statuses))  # type: ignore[arg-type]
        return [Nomination.from_contract(n) for n in found]

    @strawberry.field(
        description="Every version of the rules; with `at`, the version in force then."
    )
    async def rules_history(
        self, info: Info[Context, Any], at: datetime | None = None
    ) -> list[RulesVersion]:
        found = await ask(info, c.RulesHistory(hub_id=self.hub_id, at=at))
        return [
            RulesVersion(
                version=v.version,
                rules=HubRules.from_contract(v.rules),
                reason=v.reason,
                changed_at=v.changed_at,
                changed_by_id=v.changed_by,
            )
            for v in found
        ]

    @classmethod
    def from_contract(cls, h: c.Hub) -> Hub:
        return cls(
            id=to_global_id("Hub", h.hub_id),
            hub_id=strawberry.ID(h.hub_id),
            name=h.name,
            kind=HubKind(h.kind),
            area=Area(
                centre=GeoPoint(lat=h.area.centre.lat, lon=h.area.centre.lon)
                if h.area.centre
                else None,
                radius_km=h.area.radius_km,
                postcodes=list(h.area.postcodes),
            ),
            rules=HubRules.from_contract(h.rules),
            rules_version=h.rules_version,
            member_count=h.member_count,
            non_competition_in_force=h.non_competition_in_force,
            facilitator_term_ends_at=h.facilitator_term_ends_at,
            created_at=h.created_at,
            co_admin_ids=list(h.co_admin_ids),
            facilitator_id=h.facilitator_id,
            roster_ids=list(h.roster),
        )


@strawberry.type
class HubPayload:
    hub: Hub


@strawberry.type
class NominationPayload:
    nomination: Nomination


@strawberry.type
class HubMembershipPayload:
    membership: HubMember


@strawberry.type
class LeftHub:
    hub_id: strawberry.ID


@strawberry.type
class HubMemberRemoved:
    hub_id: strawberry.ID
    member_id: strawberry.ID


# -- inputs --------------------------------------------------------------------


@strawberry.input
class AreaInput:
    centre: GeoPointInput | None = None
    radius_km: float | None = None
    postcodes: list[str] = strawberry.field(default_factory=list)

    def to_contract(self) -> c.Area:
        centre = c.Point(lat=self.centre.lat, lon=self.centre.lon) if self.centre else None
        return c.Area(centre=centre, radius_km=self.radius_km, postcodes=list(self.postcodes))


@strawberry.input(description="A hub's rules; left out, a field takes its default.")
class HubRulesInput:
    admission_mode: AdmissionMode = AdmissionMode.COOPTATION
    non_competition: bool = True
    non_competition_lift_at: int | None = None
    objection_window_days: int = 7
    max_visits: int = 3
    facilitator_term_days: int = 28
    facilitator_term_meetups: int | None = None
    referrals_meeting_days: int | None = None

    def to_contract(self) -> c.Rules:
        return c.Rules(
            admission_mode=self.admission_mode.value,  # type: ignore[arg-type]
            non_competition=self.non_competition,
            non_competition_lift_at=self.non_competition_lift_at,
            objection_window_days=self.objection_window_days,
            max_visits=self.max_visits,
            facilitator_term_days=self.facilitator_term_days,
            facilitator_term_meetups=self.facilitator_term_meetups,
            referrals_meeting_days=self.referrals_meeting_days,
        )


CLEARABLE_RULES = ("non_competition_lift_at", "facilitator_term_meetups", "referrals_meeting_days")


@strawberry.input(description="Changes to a hub's rules: fields left out are unchanged.")
class HubRulesChangesInput:
    admission_mode: AdmissionMode | None = strawberry.UNSET
    non_competition: bool | None = strawberry.UNSET
    non_competition_lift_at: int | None = strawberry.UNSET
    non_competition_lifted: bool | None = strawberry.UNSET
    objection_window_days: int | None = strawberry.UNSET
    max_visits: int | None = strawberry.UNSET
    facilitator_term_days: int | None = strawberry.UNSET
    facilitator_term_meetups: int | None = strawberry.field(
        default=strawberry.UNSET, description="null: terms count in days only."
    )
    referrals_meeting_days: int | None = strawberry.field(
        default=strawberry.UNSET, description="null: referrals between any members."
    )

    def to_contract(self) -> c.RulesChanges:
        values: dict[str, Any] = {}
        for name in c.RulesChanges.__struct_fields__:
            value = getattr(self, name)
            if value is strawberry.UNSET:
                continue
            if value is None and name not in CLEARABLE_RULES:
                continue  # only the lift threshold and the term in meetups may be cleared
            values[name] = value.value if isinstance(value, Enum) else value
        return c.RulesChanges(**values)


@strawberry.input
class CreateHubInput:
    name: str
    kind: HubKind
    area: AreaInput
    rules: HubRulesInput | None = None


@strawberry.input
class ChangeHubRulesInput:
    hub_id: strawberry.ID
    rules: HubRulesChangesInput
    reason: str | None = strawberry.field(
        default=None, description="Required when lifting the one-per-profession rule."
    )


@strawberry.input(
    description="Name a member of the network (`candidateId`) or a new person (`email`)."
)
class NominateCandidateInput:
    hub_id: strawberry.ID
    candidate_id: strawberry.ID | None = None
    email: str | None = None
    note: str = ""
    exception_reason: str | None = strawberry.field(
        default=None,
        description="Hub admins: admit past the one-per-profession rule, for this reason.",
    )


@strawberry.input
class HubInput:
    hub_id: strawberry.ID


@strawberry.input
class RaiseObjectionInput:
    hub_id: strawberry.ID
    nomination_id: strawberry.ID
    reason: str


@strawberry.input
class AdmitCandidateInput:
    hub_id: strawberry.ID
    nomination_id: strawberry.ID
    exception_reason: str | None = None


@strawberry.input
class RejectCandidateInput:
    hub_id: strawberry.ID
    nomination_id: strawberry.ID
    reason: str


@strawberry.input
class RemoveHubMemberInput:
    hub_id: strawberry.ID
    member_id: strawberry.ID
    reason: str


@strawberry.input
class HubMemberInput:
    hub_id: strawberry.ID
    member_id: strawberry.ID


@strawberry.input
class SwapFacilitatorTurnsInput:
    hub_id: strawberry.ID
    first_member_id: strawberry.ID
    second_member_id: strawberry.ID


HubResult = result_union("HubResult", HubPayload)
NominationResult = result_union("NominationResult", NominationPayload)
HubMembershipResult = result_union("HubMembershipResult", HubMembershipPayload)
LeaveHubResult = result_union("LeaveHubResult", LeftHub)
RemoveHubMemberResult = result_union("RemoveHubMemberResult", HubMemberRemoved)


# -- queries -------------------------------------------------------------------


def _hub_id(value: str, field: str = "hub_id") -> str:
    return from_global_id(value, "Hub", field=field)


def _member_id(value: str, field: str) -> str:
    return from_global_id(value, "Member", field=field)


@strawberry.type
class Query:
    @strawberry.field(description="The hubs of your network (or only those you belong to).")
    async def hubs(self, info: Info[Context, Any], mine: bool = False) -> list[Hub]:
        rctx = require_member(info)
        found = await ask(info, c.ListHubs(member_id=rctx.actor.member_id if mine else None), rctx)
        return [Hub.from_contract(h) for h in found]

    @strawberry.field(description="A hub of your network by global id, or null.")
    async def hub(self, info: Info[Context, Any], id: strawberry.ID) -> Hub | None:
        rctx = require_member(info)
        with public_errors():
            raw = _hub_id(id, "id")
        return await load_hub(info, raw, rctx)


async def load_hub(
    info: Info[Context, Any], hub_id: str, rctx: RequestContext | None = None
) -> Hub | None:
    found = await ask(info, c.GetHub(hub_id=hub_id), rctx, missing_as_none=True)
    return Hub.from_contract(found) if found else None


# -- mutations -----------------------------------------------------------------


def _hub(reply: c.Hub) -> HubPayload:
    return HubPayload(hub=Hub.from_contract(reply))


def _nomination(reply: c.Nomination) -> NominationPayload:
    return NominationPayload(nomination=Nomination.from_contract(reply))


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Tenant admin: create a hub; you become its first member and co-admin."
    )
    async def create_hub(self, info: Info[Context, Any], input: CreateHubInput) -> HubResult:
        rules = input.rules.to_contract() if input.rules else c.Rules()
        return await command(
            info,
            lambda: c.CreateHub(
                name=input.name,
                kind=input.kind.value,
                area=input.area.to_contract(),
                rules=rules,  # type: ignore[arg-type]
            ),
            _hub,
        )

    @strawberry.mutation(
        description="Hub admin: a new version of the rules (lift the one-per-profession rule here)."
    )
    async def change_hub_rules(
        self, info: Info[Context, Any], input: ChangeHubRulesInput
    ) -> HubResult:
        return await command(
            info,
            lambda: c.ChangeRules(
                hub_id=_hub_id(input.hub_id), changes=input.rules.to_contract(), reason=input.reason
            ),
            _hub,
        )

    @strawberry.mutation(
        description="Co-opt a candidate: a member of the network, or a new person by e-mail."
    )
    async def nominate_candidate(
        self,
        info: Info[Context, Any],
        input: NominateCandidateInput,
    ) -> NominationResult:
        return await command(
            info,
            lambda: c.NominateCandidate(
                hub_id=_hub_id(input.hub_id),
                candidate_id=_member_id(input.candidate_id, "candidate_id")
                if input.candidate_id
                else None,
                email=input.email,
                note=input.note,
                exception_reason=input.exception_reason,
            ),
            _nomination,
        )

    @strawberry.mutation(description="Join an open hub of your network.")
    async def join_hub(self, info: Info[Context, Any], input: HubInput) -> HubMembershipResult:
        return await command(
            info,
            lambda: c.JoinHub(hub_id=_hub_id(input.hub_id)),
            lambda m: HubMembershipPayload(membership=HubMember.from_contract(m)),
        )

    @strawberry.mutation(description="Object to a candidate while the objection window is open.")
    async def raise_objection(
        self,
        info: Info[Context, Any],
        input: RaiseObjectionInput,
    ) -> NominationResult:
        return await command(
            info,
            lambda: c.RaiseObjection(
                hub_id=_hub_id(input.hub_id),
                nomination_id=from_global_id(input.nomination_id, "Nomination", "nomination_id"),
                reason=input.reason,
            ),
            _nomination,
        )

    @strawberry.mutation(
        description="Hub admin: admit a candidate (with an exception reason if the rule requires it)."
    )
    async def admit_candidate(
        self,
        info: Info[Context, Any],
        input: AdmitCandidateInput,
    ) -> NominationResult:
        return await command(
            info,
            lambda: c.AdmitCandidate(
                hub_id=_hub_id(input.hub_id),
                nomination_id=from_global_id(input.nomination_id, "Nomination", "nomination_id"),
                exception_reason=input.exception_reason,
            ),
            _nomination,
        )

    @strawberry.mutation(description="Hub admin: refuse a candidate, with the reason.")
    async def reject_candidate(
        self,
        info: Info[Context, Any],
        input: RejectCandidateInput,
    ) -> NominationResult:
        return await command(
            info,
            lambda: c.RejectCandidate(
                hub_id=_hub_id(input.hub_id),
                nomination_id=from_global_id(input.nomination_id, "Nomination", "nomination_id"),
                reason=input.reason,
            ),
            _nomination,
        )

    @strawberry.mutation(description="Leave a hub.")
    async def leave_hub(self, info: Info[Context, Any], input: HubInput) -> LeaveHubResult:
        return await command(
            info,
            lambda: c.LeaveHub(hub_id=_hub_id(input.hub_id)),
            lambda _: LeftHub(hub_id=input.hub_id),
        )

    @strawberry.mutation(description="Hub admin: remove a member, with the reason.")
    async def remove_hub_member(
        self,
        info: Info[Context, Any],
        input: RemoveHubMemberInput,
    ) -> RemoveHubMemberResult:
        return await command(
            info,
            lambda: c.RemoveMember(
                hub_id=_hub_id(input.hub_id),
                member_id=_member_id(input.member_id, "member_id"),
                reason=input.reason,
            ),
            lambda _: HubMemberRemoved(hub_id=input.hub_id, member_id=input.member_id),
        )

    @strawberry.mutation(description="Hub admin: make a member co-admin.")
    async def add_hub_co_admin(self, info: Info[Context, Any], input: HubMemberInput) -> HubResult:
        return await command(
            info,
            lambda: c.AddCoAdmin(
                hub_id=_hub_id(input.hub_id), member_id=_member_id(input.member_id, "member_id")
            ),
            _hub,
        )

    @strawberry.mutation(description="Hub admin: a co-admin steps back (a hub keeps at least one).")
    async def remove_hub_co_admin(
        self, info: Info[Context, Any], input: HubMemberInput
    ) -> HubResult:
        return await command(
            info,
            lambda: c.RemoveCoAdmin(
                hub_id=_hub_id(input.hub_id), member_id=_member_id(input.member_id, "member_id")
            ),
            _hub,
        )

    @strawberry.mutation(description="Volunteer for the rotating facilitator role.")
    async def volunteer_as_facilitator(
        self, info: Info[Context, Any], input: HubInput
    ) -> HubResult:
        return await command(
            info, lambda: c.VolunteerAsFacilitator(hub_id=_hub_id(input.hub_id)), _hub
        )

    @strawberry.mutation(description="Leave the facilitator roster.")
    async def withdraw_from_facilitator_roster(
        self, info: Info[Context, Any], input: HubInput
    ) -> HubResult:
        return await command(info, lambda: c.WithdrawFromRoster(hub_id=_hub_id(input.hub_id)), _hub)

    @strawberry.mutation(
        description="Hub admin or the facilitator: the next volunteer takes over for a term."
    )
    async def hand_over_facilitation(self, info: Info[Context, Any], input: HubInput) -> HubResult:
        return await command(
            info, lambda: c.HandOverFacilitation(hub_id=_hub_id(input.hub_id)), _hub
        )

    @strawberry.mutation(
        description="Swap two turns of the roster: a hub admin, or a volunteer giving their "
        "own turn to someone after them."
    )
    async def swap_facilitator_turns(
        self,
        info: Info[Context, Any],
        input: SwapFacilitatorTurnsInput,
    ) -> HubResult:
        return await command(
            info,
            lambda: c.SwapFacilitatorTurns(
                hub_id=_hub_id(input.hub_id),
                first_id=_member_id(input.first_member_id, "first_member_id"),
                second_id=_member_id(input.second_member_id, "second_member_id"),
            ),
            _hub,
            fields={"first_id": "first_member_id", "second_id": "second_member_id"},
        )


# -- Node types and their loaders (node(id:)) -------------------------------------
# node(id:) answers what the caller may see through the type's own field, in
# their own network: another network's id is null, like a missing one.


async def hub_node(info: Info[Context, Any], raw_id: str) -> Hub | None:
    """A hub of your network, like `hub(id:)`."""
    parts = split_raw_id(raw_id)
    if parts is None:
        return None
    return await load_hub(info, parts[0], require_member(info))


async def nomination_node(info: Info[Context, Any], raw_id: str) -> Nomination | None:
    """A nomination, for the members of its hub, like `Hub.nominations`. Its
    id carries its hub (`Nomination:uuid:hub uuid`), which `GetNomination`
    needs; an id without one (issued before) is null."""
    parts = split_raw_id(raw_id)
    hub = split_raw_id(parts[1]) if parts and len(parts) == 2 else None
    if parts is None or hub is None:
        return None
    nomination_id, hub_id = parts[0], hub[0]
    rctx = require_member(info)
    found = await ask(
        info,
        c.GetNomination(hub_id=hub_id, nomination_id=nomination_id),
        rctx,
        missing_as_none=True,
    )
    return Nomination.from_contract(found) if found else None


types: list[type] = [Hub, Nomination]
nodes: dict[str, NodeLoader] = {"Hub": hub_node, "Nomination": nomination_node}
