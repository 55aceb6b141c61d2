"""Hubs' NATS endpoints: who may do what; gather what the aggregate needs
(places from identity, activities from the local directory); run the command
off the event loop; bring the read models up to date; answer from them."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import sqlalchemy as sa

from services.hubs import contract as c
from services.hubs import views
from services.hubs.application import Hubs
from services.hubs.domain import Area, Candidate, CandidatePlaces, Hub, Rules
from services.identity import contract as idc
from services.runtime.bus import Bus, Endpoint, Offloader
from services.runtime.clock import Clock
from services.runtime.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.runtime.messages import Actor, Done, given_fields
from services.runtime.projection import Projector
from services.runtime.tenancy import RequestContext

MAX_PAGE = 50


def as_service(ctx: RequestContext) -> RequestContext:
    """Hubs asking identity, within the caller's tenant and correlation."""
    return RequestContext(
        tenant_id=ctx.tenant_id, actor=Actor(kind="service"), correlation_id=ctx.correlation_id
    )


def area_from(contract_area: c.Area) -> Area:
    centre = contract_area.centre
    return Area(
        lat=centre.lat if centre else None,
        lon=centre.lon if centre else None,
        radius_km=contract_area.radius_km,
        postcodes=tuple(p.strip() for p in contract_area.postcodes),
    )


def rules_from(contract_rules: c.Rules) -> Rules:
    return Rules(**msgspec.structs.asdict(contract_rules))


class HubsHandlers:
    def __init__(
        self,
        app: Hubs,
        projector: Projector,
        engine: sa.Engine,
        bus: Bus,
        clock: Clock,
        offload: Offloader,
    ):
        self.app = app
        self.projector = projector
        self.engine = engine
        self.bus = bus
        self.clock = clock
        self.offload = offload

    def endpoints(self) -> list[Endpoint]:
        table: dict[type[Any], Callable[[Any, RequestContext], Awaitable[Any]]] = {
            c.CreateHub: self.create_hub,
            c.ChangeRules: self.change_rules,
            c.NominateCandidate: self.nominate,
            c.JoinHub: self.join,
            c.RaiseObjection: self.raise_objection,
            c.AdmitCandidate: self.admit,
            c.RejectCandidate: self.reject,
            c.LeaveHub: self.leave,
            c.RemoveMember: self.remove_member,
            c.AddCoAdmin: self.add_co_admin,
            c.RemoveCoAdmin: self.remove_co_admin,
            c.VolunteerAsFacilitator: self.volunteer,
            c.WithdrawFromRoster: self.withdraw,
            c.HandOverFacilitation: self.hand_over,
            c.SwapFacilitatorTurns: self.swap_turns,
            c.ListHubs: self.list_hubs,
            c.GetHub: self.get_hub,
            c.ListHubMembers: self.list_members,
            c.ListNominations: self.list_nominations,
            c.GetNomination: self.get_nomination,
            c.RulesHistory: self.rules_history,
        }
        return [Endpoint(request, handle) for request, handle in table.items()]

    # -- plumbing --------------------------------------------------------------

    async def _write(self, fn: Callable[[], Any]) -> Any:
        def run() -> Any:
            result = fn()
            self.projector.after_write()
            return result

        return await self.offload(run)

    async def _read(self, fn: Callable[[sa.Connection], Any]) -> Any:
        def run() -> Any:
            with self.engine.connect() as conn:
                return fn(conn)

        return await self.offload(run)

    async def _hub(self, ctx: RequestContext, hub_id: str) -> Hub:
        return await self.offload(self.app.hub, ctx.require_tenant(), hub_id)

    async def _hub_view(self, ctx: RequestContext, hub_id: str) -> c.Hub:
        found = await self._read(lambda conn: views.get_hub(conn, ctx.require_tenant(), hub_id))
        if found is None:
            raise NotFound("hub not found")
        return found

    async def _nomination(
        self, ctx: RequestContext, hub_id: str, nomination_id: str, admin: bool
    ) -> c.Nomination:
        found = await self._read(
            lambda conn: views.list_nominations(
                conn, ctx.require_tenant(), hub_id, (), admin, nomination_id
            )
        )
        if not found:
            raise NotFound("nomination not found")
        return found[0]

    @staticmethod
    def _is_admin(hub: Hub, ctx: RequestContext) -> bool:
        return hub.is_co_admin(ctx.actor.member_id) or ctx.actor.is_tenant_admin

    def _require_admin(self, hub: Hub, ctx: RequestContext) -> str:
        member_id = ctx.require_member()
        if not self._is_admin(hub, ctx):
            raise Forbidden("only the hub's co-admins may do this")
        return member_id

    async def _activities(self, tenant_id: str, member_ids: list[str]) -> dict[str, str | None]:
        return await self._read(lambda conn: views.activities(conn, tenant_id, member_ids))

    async def _activity(self, ctx: RequestContext, member_id: str) -> str | None:
        """From the local directory; from identity if the directory has not
        heard of this member yet."""
        known = await self._activities(ctx.require_tenant(), [member_id])
        if member_id in known:
            return known[member_id]
        cards = await self.bus.request(idc.GetMembers(member_ids=[member_id]), as_service(ctx))
        return cards[0].activity_code if cards else None

    async def _candidate(self, ctx: RequestContext, hub: Hub, member_id: str) -> Candidate:
        """The candidate's activity (local directory, else identity) and places
        relative to the hub's centre (identity: distances, never coordinates)."""
        try:
            uuid.UUID(member_id)
        except ValueError:
            raise InvalidInput("not a valid member id", field="candidate_id") from None
        area = hub.area
        centre = idc.Point(lat=area.lat, lon=area.lon) if area.has_centre else None  # type: ignore[arg-type]
        places = await self.bus.request(
            idc.MemberPlaces(member_ids=[member_id], centre=centre), as_service(ctx)
        )
        if not places.items:
            raise NotFound("member not found")
        p = places.items[0]
        return Candidate(
            member_id=member_id,
            activity_code=await self._activity(ctx, member_id),
            places=CandidatePlaces(p.work_km, p.home_km, p.work_postcode, p.home_postcode),
        )

    # -- hubs and rules --------------------------------------------------------

    async def create_hub(self, cmd: c.CreateHub, ctx: RequestContext) -> c.Hub:
        founder = ctx.require_tenant_admin()
        tenant_id = ctx.require_tenant()
        activity = await self._activity(ctx, founder)
        hub = await self._write(
            lambda: self.app.create_hub(
                tenant_id,
                cmd.name,
                cmd.kind,
                area_from(cmd.area),
                rules_from(cmd.rules),
                founder,
                activity,
                self.clock.now(),
            )
        )
        return await self._hub_view(ctx, str(hub.id))

    async def change_rules(self, cmd: c.ChangeRules, ctx: RequestContext) -> c.Hub:
        hub = await self._hub(ctx, cmd.hub_id)
        by = self._require_admin(hub, ctx)
        changes = given_fields(cmd.changes)
        activities = await self._activities(hub.tenant_id, list(hub.members))
        await self._write(
            lambda: self.app.change_rules(
                hub.tenant_id, cmd.hub_id, changes, by, cmd.reason, activities, self.clock.now()
            )
        )
        return await self._hub_view(ctx, cmd.hub_id)

    # -- admission -------------------------------------------------------------

    async def nominate(self, cmd: c.NominateCandidate, ctx: RequestContext) -> c.Nomination:
        sponsor = ctx.require_member()
        hub = await self._hub(ctx, cmd.hub_id)
        hub.check_nomination(sponsor, cmd.note, cmd.exception_reason)
        if cmd.exception_reason and not self._is_admin(hub, ctx):
            raise Forbidden("only the hub's co-admins may admit with an exception")
        if (cmd.candidate_id is None) == (cmd.email is None):
            raise InvalidInput(
                "name either a member of the network or an e-mail address", field="candidate_id"
            )
        if cmd.candidate_id is not None:
            candidate = await self._candidate(ctx, hub, cmd.candidate_id)
        else:
            try:
                sent = await self.bus.request(
                    idc.InviteMember(email=cmd.email or "", on_behalf_of=sponsor), as_service(ctx)
                )
            except Conflict:
                raise Conflict(
                    "this address already belongs to a member of the network: nominate them by name",
                    field="email",
                ) from None
            candidate = Candidate(invitation_id=sent.invitation_id)
        activities = await self._activities(hub.tenant_id, list(hub.members))
        nomination_id = str(uuid.uuid4())
        await self._write(
            lambda: self.app.nominate(
                hub.tenant_id,
                cmd.hub_id,
                nomination_id,
                sponsor,
                candidate,
                cmd.note,
                activities,
                cmd.exception_reason,
                self.clock.now(),
            )
        )
        return await self._nomination(ctx, cmd.hub_id, nomination_id, self._is_admin(hub, ctx))

    async def join(self, cmd: c.JoinHub, ctx: RequestContext) -> c.HubMember:
        member_id = ctx.require_member()
        hub = await self._hub(ctx, cmd.hub_id)
        candidate = await self._candidate(ctx, hub, member_id)
        activities = await self._activities(hub.tenant_id, list(hub.members))
        assert candidate.places is not None
        await self._write(
            lambda: self.app.join(
                hub.tenant_id,
                cmd.hub_id,
                member_id,
                candidate.activity_code,
                candidate.places,  # type: ignore[arg-type]
                activities,
                self.clock.now(),
            )
        )
        found = await self._read(
            lambda conn: views.hub_member(conn, hub.tenant_id, cmd.hub_id, member_id)
        )
        assert found is not None
        return found

    async def raise_objection(self, cmd: c.RaiseObjection, ctx: RequestContext) -> c.Nomination:
        member_id = ctx.require_member()
        hub = await self._hub(ctx, cmd.hub_id)
        await self._write(
            lambda: self.app.raise_objection(
                hub.tenant_id,
                cmd.hub_id,
                cmd.nomination_id,
                member_id,
                cmd.reason,
                self.clock.now(),
            )
        )
        return await self._nomination(ctx, cmd.hub_id, cmd.nomination_id, self._is_admin(hub, ctx))

    async def admit(self, cmd: c.AdmitCandidate, ctx: RequestContext) -> c.Nomination:
        hub = await self._hub(ctx, cmd.hub_id)
        by = self._require_admin(hub, ctx)
        activities = await self._activities(hub.tenant_id, list(hub.members))
        await self._write(
            lambda: self.app.admit(
                hub.tenant_id,
                cmd.hub_id,
                cmd.nomination_id,
                by,
                activities,
                cmd.exception_reason,
                self.clock.now(),
            )
        )
        return await self._nomination(ctx, cmd.hub_id, cmd.nomination_id, True)

    async def reject(self, cmd: c.RejectCandidate, ctx: RequestContext) -> c.Nomination:
        hub = await self._hub(ctx, cmd.hub_id)
        by = self._require_admin(hub, ctx)
        await self._write(
            lambda: self.app.reject(
                hub.tenant_id, cmd.hub_id, cmd.nomination_id, by, cmd.reason, self.clock.now()
            )
        )
        return await self._nomination(ctx, cmd.hub_id, cmd.nomination_id, True)

    async def leave(self, cmd: c.LeaveHub, ctx: RequestContext) -> Done:
        member_id = ctx.require_member()
        tenant_id = ctx.require_tenant()
        await self._write(
            lambda: self.app.leave(tenant_id, cmd.hub_id, member_id, self.clock.now())
        )
        return Done()

    async def remove_member(self, cmd: c.RemoveMember, ctx: RequestContext) -> Done:
        hub = await self._hub(ctx, cmd.hub_id)
        by = self._require_admin(hub, ctx)
        await self._write(
            lambda: self.app.remove(
                hub.tenant_id, cmd.hub_id, cmd.member_id, by, cmd.reason, self.clock.now()
            )
        )
        return Done()

    # -- roles -----------------------------------------------------------------

    async def add_co_admin(self, cmd: c.AddCoAdmin, ctx: RequestContext) -> c.Hub:
        hub = await self._hub(ctx, cmd.hub_id)
        by = self._require_admin(hub, ctx)
        await self._write(
            lambda: self.app.add_co_admin(hub.tenant_id, cmd.hub_id, cmd.member_id, by)
        )
        return await self._hub_view(ctx, cmd.hub_id)

    async def remove_co_admin(self, cmd: c.RemoveCoAdmin, ctx: RequestContext) -> c.Hub:
        hub = await self._hub(ctx, cmd.hub_id)
        by = self._require_admin(hub, ctx)
        await self._write(
            lambda: self.app.remove_co_admin(hub.tenant_id, cmd.hub_id, cmd.member_id, by)
        )
        return await self._hub_view(ctx, cmd.hub_id)

    async def volunteer(self, cmd: c.VolunteerAsFacilitator, ctx: RequestContext) -> c.Hub:
        member_id = ctx.require_member()
        tenant_id = ctx.require_tenant()
        await self._write(lambda: self.app.volunteer(tenant_id, cmd.hub_id, member_id))
        return await self._hub_view(ctx, cmd.hub_id)

    async def withdraw(self, cmd: c.WithdrawFromRoster, ctx: RequestContext) -> c.Hub:
        member_id = ctx.require_member()
        tenant_id = ctx.require_tenant()
        await self._write(lambda: self.app.withdraw(tenant_id, cmd.hub_id, member_id))
        return await self._hub_view(ctx, cmd.hub_id)

    async def hand_over(self, cmd: c.HandOverFacilitation, ctx: RequestContext) -> c.Hub:
        member_id = ctx.require_member()
        hub = await self._hub(ctx, cmd.hub_id)
        if not (self._is_admin(hub, ctx) or hub.facilitator_id == member_id):
            raise Forbidden("only a co-admin or the current facilitator may hand over")
        await self._write(lambda: self.app.hand_over(hub.tenant_id, cmd.hub_id, self.clock.now()))
        return await self._hub_view(ctx, cmd.hub_id)

    async def swap_turns(self, cmd: c.SwapFacilitatorTurns, ctx: RequestContext) -> c.Hub:
        member_id = ctx.require_member()
        hub = await self._hub(ctx, cmd.hub_id)
        if not self._is_admin(hub, ctx) and not _gives_own_turn(hub, member_id, cmd):
            raise Forbidden(
                "only a co-admin may swap turns; a volunteer may give their own turn to "
                "someone after them"
            )
        await self._write(
            lambda: self.app.swap_turns(hub.tenant_id, cmd.hub_id, cmd.first_id, cmd.second_id)
        )
        return await self._hub_view(ctx, cmd.hub_id)

    # -- queries (any member of the network) -----------------------------------

    async def list_hubs(self, q: c.ListHubs, ctx: RequestContext) -> list[c.Hub]:
        ctx.require_member()
        tenant_id = ctx.require_tenant()
        return await self._read(lambda conn: views.list_hubs(conn, tenant_id, q.member_id))

    async def get_hub(self, q: c.GetHub, ctx: RequestContext) -> c.Hub:
        ctx.require_member()
        return await self._hub_view(ctx, q.hub_id)

    async def list_members(self, q: c.ListHubMembers, ctx: RequestContext) -> c.HubMemberPage:
        ctx.require_member()
        if not 1 <= q.limit <= MAX_PAGE or q.offset < 0:
            raise InvalidInput(f"a page has 1 to {MAX_PAGE} members", field="first")
        hub = await self._hub_view(ctx, q.hub_id)
        return await self._read(
            lambda conn: views.list_members(conn, hub.tenant_id, q.hub_id, q.offset, q.limit)
        )

    async def _nomination_reader(self, ctx: RequestContext, hub_id: str) -> tuple[c.Hub, bool]:
        """Nominations (and their notes) are for the hub's members; objections
        and their authors for its co-admins. Returns the hub and whether the
        reader is an admin."""
        member_id = ctx.require_member()
        hub = await self._hub_view(ctx, hub_id)
        admin = member_id in hub.co_admin_ids or ctx.actor.is_tenant_admin
        if not admin:
            found = await self._read(
                lambda conn: views.hub_member(conn, hub.tenant_id, hub_id, member_id)
            )
            if found is None:
                raise Forbidden("only members of the hub see its nominations")
        return hub, admin

    async def list_nominations(
        self, q: c.ListNominations, ctx: RequestContext
    ) -> list[c.Nomination]:
        hub, admin = await self._nomination_reader(ctx, q.hub_id)
        statuses = q.statuses or ["invited", "open", "awaiting_decision"]
        return await self._read(
            lambda conn: views.list_nominations(conn, hub.tenant_id, q.hub_id, statuses, admin)
        )

    async def get_nomination(self, q: c.GetNomination, ctx: RequestContext) -> c.Nomination:
        _, admin = await self._nomination_reader(ctx, q.hub_id)
        return await self._nomination(ctx, q.hub_id, q.nomination_id, admin)

    async def rules_history(self, q: c.RulesHistory, ctx: RequestContext) -> list[c.RulesVersion]:
        ctx.require_member()
        hub = await self._hub_view(ctx, q.hub_id)
        return await self._read(
            lambda conn: views.rules_versions(conn, hub.tenant_id, q.hub_id, q.at)
        )


def _gives_own_turn(hub: Hub, member_id: str, cmd: c.SwapFacilitatorTurns) -> bool:
    """A volunteer may move later in the roster (giving their turn away), never
    jump ahead of someone who has not agreed."""
    if member_id not in (cmd.first_id, cmd.second_id):
        return False
    other = cmd.second_id if member_id == cmd.first_id else cmd.first_id
    roster = hub.roster
    return member_id in roster and other in roster and roster.index(member_id) < roster.index(other)
