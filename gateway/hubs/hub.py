"""A hub as the API shows it: its area, its rules and their versions, its
members, its nominations, its co-admins and facilitator roster (and, from
the meetups service, its meetup fields); and the queries that read hubs."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import msgspec
import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.events.hub_fields import HubMeetupFields
from gateway.identity.members import Member, load_member, load_members
from gateway.kit import Connection, ask, ask_by_id, ask_node, ask_page, require_member, result_union
from gateway.nodes import Node, to_global_id
from services.hubs import contract as c


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
        return await ask_page(
            info,
            first,
            after,
            lambda offset, limit: c.ListHubMembers(hub_id=self.hub_id, offset=offset, limit=limit),
            HubMember.from_contract,
        )

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


@strawberry.input
class HubInput:
    hub_id: strawberry.ID


HubResult = result_union("HubResult", HubPayload)


def hub_payload(reply: c.Hub) -> HubPayload:
    return HubPayload(hub=Hub.from_contract(reply))


@strawberry.type
class Query:
    @strawberry.field(description="The hubs of your network (or only those you belong to).")
    async def hubs(self, info: Info[Context, Any], mine: bool = False) -> list[Hub]:
        rctx = require_member(info)
        found = await ask(info, c.ListHubs(member_id=rctx.actor.member_id if mine else None), rctx)
        return [Hub.from_contract(h) for h in found]

    @strawberry.field(description="A hub of your network by global id, or null.")
    async def hub(self, info: Info[Context, Any], id: strawberry.ID) -> Hub | None:
        return await ask_by_id(info, id, "Hub", lambda raw: c.GetHub(hub_id=raw), Hub.from_contract)


# -- its Node loader (node(id:)): what the caller may see through `hub(id:)`


async def hub_node(info: Info[Context, Any], raw: str) -> Hub | None:
    """A hub of your network, like `hub(id:)`."""
    return await ask_node(info, raw, lambda i: c.GetHub(hub_id=i), Hub.from_contract)
