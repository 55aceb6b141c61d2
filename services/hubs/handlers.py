"""Hubs' endpoints: who may do what, and the calls.

A command is one unit of work on a worker thread: load the hub, check who
acts and the rules, change, save (retried on a version conflict, with the
checks run again on the fresh state), bring the read models up to it, and
read the reply. The commands that need identity (a candidate's places and
activity, an invitation by e-mail) ask it first, then run their unit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import msgspec
import sqlalchemy as sa

from services.hubs import contract as c
from services.hubs.application import Hubs
from services.hubs.domain import Area, Candidate, CandidatePlaces, Hub, Rules
from services.hubs.domain.values import text
from services.hubs.views import directory, hubs, nominations, rules
from services.identity import contract as idc
from services.runtime.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.runtime.handlers import Handlers, handles
from services.runtime.host import ServiceHost
from services.runtime.i18n import t
from services.runtime.messages import Done, given_fields
from services.runtime.tenancy import RequestContext, as_service
from services.runtime.views import check_page

PENDING_STATUSES = ["invited", "open", "awaiting_decision"]


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


def is_admin(hub: Hub, ctx: RequestContext) -> bool:
    return hub.is_co_admin(ctx.actor.member_id) or ctx.actor.is_tenant_admin


def require_admin(hub: Hub, ctx: RequestContext) -> str:
    member_id = ctx.require_member()
    if not is_admin(hub, ctx):
        raise Forbidden(t("only the hub's co-admins may do this"))
    return member_id


class HubsHandlers(Handlers):
    def __init__(self, host: ServiceHost, app: Hubs):
        super().__init__(host)
        self.app = app

    # -- inside a unit of work ----------------------------------------------------

    def _now(self) -> datetime:
        return self.clock.now()

    def _activities(self, hub: Hub, always: bool = False) -> dict[str, str | None]:
        """The hub's members' current activities, from the local directory:
        what the one-per-profession rule needs (nothing when it is not in
        force, unless `always`: a rule change may bring it back)."""
        if not always and not hub.non_competition_in_force():
            return {}
        return self.read(lambda conn: directory.activities(conn, hub.tenant_id, hub.members))

    def _update(self, ctx: RequestContext, hub_id: str, change: Callable[[Hub], object]) -> Hub:
        """Load the hub of the caller's tenant, change it, save it (retried on a
        version conflict), and bring the read models up to it."""
        return self.write(lambda: self.app.update(ctx.require_tenant(), hub_id, Hub, change))[0]

    def _hub_reply(self, ctx: RequestContext, hub_id: str) -> c.Hub:
        found = self.read(lambda conn: hubs.get_hub(conn, ctx.require_tenant(), hub_id))
        if found is None:
            raise NotFound(t("hub not found"))
        return found

    def _nomination_reply(
        self, ctx: RequestContext, hub_id: str, nomination_id: str, admin: bool
    ) -> c.Nomination:
        found = self.read(
            lambda conn: nominations.list_nominations(
                conn, ctx.require_tenant(), hub_id, (), admin, nomination_id
            )
        )
        if not found:
            raise NotFound(t("nomination not found"))
        return found[0]

    def _area(self, tenant_id: str, hub_id: str) -> Area:
        """The hub's area: from the views, else from the hub itself."""
        view = self.read(lambda conn: hubs.get_hub(conn, tenant_id, hub_id))
        return (
            area_from(view.area) if view is not None else self.app.get(tenant_id, hub_id, Hub).area
        )

    # -- gathering from identity (on the event loop) ------------------------------------

    async def _candidate(self, ctx: RequestContext, area: Area, member_id: str) -> Candidate:
        """The candidate's activity and places relative to the hub's centre,
        from identity (distances, never coordinates)."""
        try:
            uuid.UUID(member_id)
        except ValueError:
            raise InvalidInput(t("not a valid member id"), field="candidate_id") from None
        centre = (
            idc.Point(lat=area.lat, lon=area.lon)
            if area.lat is not None and area.lon is not None
            else None
        )
        places = await self.bus.request(
            idc.MemberPlaces(member_ids=[member_id], centre=centre), as_service(ctx)
        )
        if not places.items:
            raise NotFound(t("member not found"))
        p = places.items[0]
        return Candidate(
            member_id=member_id,
            activity_code=p.activity_code,
            places=CandidatePlaces(p.work_km, p.home_km, p.work_postcode, p.home_postcode),
        )

    async def _activity(self, ctx: RequestContext, member_id: str) -> str | None:
        found = await self.bus.request(idc.MemberPlaces(member_ids=[member_id]), as_service(ctx))
        return found.items[0].activity_code if found.items else None

    # -- hubs and rules --------------------------------------------------------------

    @handles(c.CreateHub)
    async def create_hub(self, cmd: c.CreateHub, ctx: RequestContext) -> c.Hub:
        founder = ctx.require_tenant_admin()
        tenant_id = ctx.require_tenant()
        activity = await self._activity(ctx, founder)

        def unit() -> c.Hub:
            hub = Hub.new(
                tenant_id,
                cmd.name,
                cmd.kind,
                area_from(cmd.area),
                rules_from(cmd.rules),
                founder,
                activity,
                self._now(),
            )
            self.write(lambda: self.app.save(hub))
            return self._hub_reply(ctx, str(hub.id))

        return await self.unit(unit)

    @handles(c.ChangeRules)
    def change_rules(self, cmd: c.ChangeRules, ctx: RequestContext) -> c.Hub:
        changes = given_fields(cmd.changes)

        def change(hub: Hub) -> None:
            by = require_admin(hub, ctx)
            hub.change_rules(
                changes, by, cmd.reason, self._now(), self._activities(hub, always=True)
            )

        self._update(ctx, cmd.hub_id, change)
        return self._hub_reply(ctx, cmd.hub_id)

    # -- admission -------------------------------------------------------------

    def _may_nominate(self, cmd: c.NominateCandidate, ctx: RequestContext) -> Area:
        """What can be refused before identity is asked anything (it would
        e-mail an e-mail candidate); returns the hub's area. Read from the
        views (loading the hub copies its whole state, and the command loads
        it again); when they do not allow it (a hub or a membership this
        replica has not projected yet), the hub itself decides."""
        sponsor = ctx.require_member()
        tenant_id = ctx.require_tenant()
        text(cmd.note, "note", 1000)
        text(cmd.exception_reason, "exception_reason", 500)

        def fast(conn: sa.Connection) -> c.Hub | None:
            found = hubs.get_hub(conn, tenant_id, cmd.hub_id)
            if found is None or hubs.hub_member(conn, tenant_id, cmd.hub_id, sponsor) is None:
                return None
            return found

        view = self.read(fast)
        if view is None:
            hub = self.app.get(tenant_id, cmd.hub_id, Hub)
            hub.check_nomination(sponsor, cmd.note, cmd.exception_reason)
            admin, area = is_admin(hub, ctx), hub.area
        else:
            admin = sponsor in view.co_admin_ids or ctx.actor.is_tenant_admin
            area = area_from(view.area)
        if cmd.exception_reason and not admin:
            raise Forbidden(t("only the hub's co-admins may admit with an exception"))
        return area

    @handles(c.NominateCandidate)
    async def nominate(self, cmd: c.NominateCandidate, ctx: RequestContext) -> c.Nomination:
        sponsor = ctx.require_member()
        if (cmd.candidate_id is None) == (cmd.email is None):
            raise InvalidInput(
                t("name either a member of the network or an e-mail address"),
                field="candidate_id",
            )
        area = await self.unit(lambda: self._may_nominate(cmd, ctx))
        if cmd.candidate_id is not None:
            candidate = await self._candidate(ctx, area, cmd.candidate_id)
        else:
            try:
                sent = await self.bus.request(
                    idc.InviteMember(email=cmd.email or "", on_behalf_of=sponsor), as_service(ctx)
                )
            except Conflict:
                raise Conflict(
                    t(
                        "this address already belongs to a member of the network: "
                        "nominate them by name"
                    ),
                    field="email",
                ) from None
            candidate = Candidate(invitation_id=sent.invitation_id)
        nomination_id = str(uuid.uuid4())

        def change(hub: Hub) -> None:
            if cmd.exception_reason and not is_admin(hub, ctx):
                raise Forbidden(t("only the hub's co-admins may admit with an exception"))
            hub.nominate(
                nomination_id,
                sponsor,
                candidate,
                cmd.note,
                self._activities(hub),
                cmd.exception_reason,
                self._now(),
            )

        def unit() -> c.Nomination:
            hub = self._update(ctx, cmd.hub_id, change)
            return self._nomination_reply(ctx, cmd.hub_id, nomination_id, is_admin(hub, ctx))

        return await self.unit(unit)

    @handles(c.JoinHub)
    async def join(self, cmd: c.JoinHub, ctx: RequestContext) -> c.HubMember:
        member_id = ctx.require_member()
        tenant_id = ctx.require_tenant()
        area = await self.unit(lambda: self._area(tenant_id, cmd.hub_id))
        candidate = await self._candidate(ctx, area, member_id)
        places = candidate.places or CandidatePlaces()

        def unit() -> c.HubMember:
            self._update(
                ctx,
                cmd.hub_id,
                lambda hub: hub.join(
                    member_id, candidate.activity_code, places, self._activities(hub), self._now()
                ),
            )
            found = self.read(lambda conn: hubs.hub_member(conn, tenant_id, cmd.hub_id, member_id))
            if found is None:
                raise NotFound(t("member not found in this hub"))
            return found

        return await self.unit(unit)

    @handles(c.RaiseObjection)
    def raise_objection(self, cmd: c.RaiseObjection, ctx: RequestContext) -> c.Nomination:
        member_id = ctx.require_member()
        hub = self._update(
            ctx,
            cmd.hub_id,
            lambda h: h.raise_objection(cmd.nomination_id, member_id, cmd.reason, self._now()),
        )
        return self._nomination_reply(ctx, cmd.hub_id, cmd.nomination_id, is_admin(hub, ctx))

    @handles(c.AdmitCandidate)
    def admit(self, cmd: c.AdmitCandidate, ctx: RequestContext) -> c.Nomination:
        def change(hub: Hub) -> None:
            by = require_admin(hub, ctx)
            hub.admit(
                cmd.nomination_id, by, self._activities(hub), cmd.exception_reason, self._now()
            )

        self._update(ctx, cmd.hub_id, change)
        return self._nomination_reply(ctx, cmd.hub_id, cmd.nomination_id, True)

    @handles(c.RejectCandidate)
    def reject(self, cmd: c.RejectCandidate, ctx: RequestContext) -> c.Nomination:
        def change(hub: Hub) -> None:
            hub.reject(cmd.nomination_id, require_admin(hub, ctx), cmd.reason, self._now())

        self._update(ctx, cmd.hub_id, change)
        return self._nomination_reply(ctx, cmd.hub_id, cmd.nomination_id, True)

    @handles(c.LeaveHub)
    def leave(self, cmd: c.LeaveHub, ctx: RequestContext) -> Done:
        member_id = ctx.require_member()
        self._update(ctx, cmd.hub_id, lambda hub: hub.leave(member_id, self._now()))
        return Done()

    @handles(c.RemoveMember)
    def remove_member(self, cmd: c.RemoveMember, ctx: RequestContext) -> Done:
        def change(hub: Hub) -> None:
            hub.remove(cmd.member_id, require_admin(hub, ctx), cmd.reason, self._now())

        self._update(ctx, cmd.hub_id, change)
        return Done()

    # -- roles -----------------------------------------------------------------

    @handles(c.AddCoAdmin)
    def add_co_admin(self, cmd: c.AddCoAdmin, ctx: RequestContext) -> c.Hub:
        self._update(
            ctx, cmd.hub_id, lambda hub: hub.add_co_admin(cmd.member_id, require_admin(hub, ctx))
        )
        return self._hub_reply(ctx, cmd.hub_id)

    @handles(c.RemoveCoAdmin)
    def remove_co_admin(self, cmd: c.RemoveCoAdmin, ctx: RequestContext) -> c.Hub:
        self._update(
            ctx,
            cmd.hub_id,
            lambda hub: hub.remove_co_admin(cmd.member_id, require_admin(hub, ctx)),
        )
        return self._hub_reply(ctx, cmd.hub_id)

    @handles(c.VolunteerAsFacilitator)
    def volunteer(self, cmd: c.VolunteerAsFacilitator, ctx: RequestContext) -> c.Hub:
        member_id = ctx.require_member()
        self._update(ctx, cmd.hub_id, lambda hub: hub.volunteer(member_id))
        return self._hub_reply(ctx, cmd.hub_id)

    @handles(c.WithdrawFromRoster)
    def withdraw(self, cmd: c.WithdrawFromRoster, ctx: RequestContext) -> c.Hub:
        member_id = ctx.require_member()
        self._update(ctx, cmd.hub_id, lambda hub: hub.withdraw(member_id))
        return self._hub_reply(ctx, cmd.hub_id)

    @handles(c.HandOverFacilitation)
    def hand_over(self, cmd: c.HandOverFacilitation, ctx: RequestContext) -> c.Hub:
        member_id = ctx.require_member()
        self._update(
            ctx,
            cmd.hub_id,
            lambda hub: hub.hand_over(self._now(), by=member_id, by_admin=is_admin(hub, ctx)),
        )
        return self._hub_reply(ctx, cmd.hub_id)

    @handles(c.SwapFacilitatorTurns)
    def swap_turns(self, cmd: c.SwapFacilitatorTurns, ctx: RequestContext) -> c.Hub:
        member_id = ctx.require_member()
        self._update(
            ctx,
            cmd.hub_id,
            lambda hub: hub.swap_turns(
                cmd.first_id, cmd.second_id, by=member_id, by_admin=is_admin(hub, ctx)
            ),
        )
        return self._hub_reply(ctx, cmd.hub_id)

    # -- queries (any member of the network) -----------------------------------

    @handles(c.ListHubs)
    def list_hubs(self, q: c.ListHubs, ctx: RequestContext) -> list[c.Hub]:
        ctx.require_member()
        tenant_id = ctx.require_tenant()
        return self.read(lambda conn: hubs.list_hubs(conn, tenant_id, q.member_id))

    @handles(c.GetHub)
    def get_hub(self, q: c.GetHub, ctx: RequestContext) -> c.Hub:
        ctx.require_member()
        return self._hub_reply(ctx, q.hub_id)

    @handles(c.ListHubMembers)
    def list_members(self, q: c.ListHubMembers, ctx: RequestContext) -> c.HubMemberPage:
        ctx.require_member()
        check_page(q.limit, q.offset, t("members"))
        hub = self._hub_reply(ctx, q.hub_id)
        return self.read(
            lambda conn: hubs.list_members(conn, hub.tenant_id, q.hub_id, q.offset, q.limit)
        )

    def _nomination_reader(self, ctx: RequestContext, hub_id: str) -> tuple[c.Hub, bool]:
        """Nominations (and their notes) are for the hub's members; objections
        and their authors for its co-admins. Returns the hub and whether the
        reader is an admin."""
        member_id = ctx.require_member()
        hub = self._hub_reply(ctx, hub_id)
        admin = member_id in hub.co_admin_ids or ctx.actor.is_tenant_admin
        if not admin and (
            self.read(lambda conn: hubs.hub_member(conn, hub.tenant_id, hub_id, member_id)) is None
        ):
            raise Forbidden(t("only members of the hub see its nominations"))
        return hub, admin

    @handles(c.ListNominations)
    def list_nominations(self, q: c.ListNominations, ctx: RequestContext) -> list[c.Nomination]:
        hub, admin = self._nomination_reader(ctx, q.hub_id)
        statuses = q.statuses or PENDING_STATUSES
        return self.read(
            lambda conn: nominations.list_nominations(
                conn, hub.tenant_id, q.hub_id, statuses, admin
            )
        )

    @handles(c.GetNomination)
    def get_nomination(self, q: c.GetNomination, ctx: RequestContext) -> c.Nomination:
        _, admin = self._nomination_reader(ctx, q.hub_id)
        return self._nomination_reply(ctx, q.hub_id, q.nomination_id, admin)

    @handles(c.RulesHistory)
    def rules_history(self, q: c.RulesHistory, ctx: RequestContext) -> list[c.RulesVersion]:
        ctx.require_member()
        hub = self._hub_reply(ctx, q.hub_id)
        return self.read(lambda conn: rules.rules_versions(conn, hub.tenant_id, q.hub_id, q.at))
