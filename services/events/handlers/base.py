"""What every meetups endpoint shares: who the caller is to a hub (from the
local hub directory — current state, learnt from hubs' events), and the
replies read back from the views."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.events import contract as c
from services.events.application import Meetups
from services.events.domain import Meetup, MeetupSeries, Venue
from services.events.links import link_key
from services.events.views import directory, meetups
from services.runtime.errors import Forbidden, InvalidInput, NotFound
from services.runtime.handlers import Handlers
from services.runtime.host import ServiceHost
from services.runtime.i18n import t
from services.runtime.tenancy import RequestContext


class EventsHandlers(Handlers):
    def __init__(self, host: ServiceHost, app: Meetups):
        super().__init__(host)
        self.app = app
        self.link_key = link_key(host.settings.jwt_secret)

    def now(self) -> datetime:
        return self.clock.now()

    def catch_up(self) -> None:
        """Bring the read models up to every recorded event (a question that
        decides a command, like who is first in line, must not read stale rows)."""
        for projector in self.host.projectors:
            projector.catch_up()

    # -- who the caller is to a hub (inside a unit of work) ------------------------------

    def hub(self, ctx: RequestContext, hub_id: str) -> Any:
        """The hub (as the directory knows it) of the caller's tenant, or NotFound."""
        tenant_id = ctx.require_tenant()
        row = self.read(lambda conn: directory.hub_row(conn, tenant_id, hub_id))
        if row is None:
            raise NotFound(t("hub not found"))
        return row

    def is_hub_member(self, ctx: RequestContext, hub_id: str) -> bool:
        member_id = ctx.require_member()
        tenant_id = ctx.require_tenant()
        return self.read(lambda conn: directory.is_member(conn, tenant_id, hub_id, member_id))

    def require_hub_member(self, ctx: RequestContext, hub_id: str) -> str:
        member_id = ctx.require_member()
        self.hub(ctx, hub_id)
        if not self.is_hub_member(ctx, hub_id):
            raise Forbidden(t("only members of the hub may do this"))
        return member_id

    def is_admin(self, ctx: RequestContext, hub: Any) -> bool:
        return ctx.actor.member_id in hub.co_admins or ctx.actor.is_tenant_admin

    def require_admin(self, ctx: RequestContext, hub_id: str) -> str:
        member_id = ctx.require_member()
        if not self.is_admin(ctx, self.hub(ctx, hub_id)):
            raise Forbidden(t("only the hub's co-admins may do this"))
        return member_id

    def require_organiser(self, ctx: RequestContext, hub_id: str) -> str:
        """The facilitator of the hub, one of its co-admins, or a tenant admin:
        they schedule, take attendance and close (DOMAIN.md: the facilitator
        fixes dates and chairs the meetup)."""
        member_id = ctx.require_member()
        hub = self.hub(ctx, hub_id)
        if not (self.is_admin(ctx, hub) or hub.facilitator_id == member_id):
            raise Forbidden(t("only the hub's facilitator or co-admins may do this"))
        return member_id

    def timezone_of(self, tenant_id: str, hub_id: str) -> str:
        return self.app.agenda(tenant_id, hub_id).timezone

    def new_meetup(
        self,
        tenant_id: str,
        hub_id: str,
        local_start: datetime,
        by: str,
        *,
        series_id: str | None = None,
        title: str | None = None,
        duration_minutes: int | None = None,
        venue: Venue | None = None,
        capacity: int | None = None,
        previous: Meetup | None = None,
        poll_id: str | None = None,
        kind: str = "meetup",
        topic: str | None = None,
        host_id: str | None = None,
    ) -> Meetup:
        """A meetup of the hub, what is not given taken from its series (if
        any), else from the meetup it follows, else defaults."""
        series = self.app.get(tenant_id, series_id, MeetupSeries) if series_id else None
        if series is not None and series.hub_id != hub_id:
            raise NotFound(t("series not found"))
        base_venue = series.venue if series else previous.venue if previous else None
        chosen_venue = venue or base_venue
        if chosen_venue is None:
            raise InvalidInput(t("say where the meetup takes place"), field="venue")
        return Meetup.new(
            tenant_id,
            hub_id,
            local_start,
            series.timezone if series else self.timezone_of(tenant_id, hub_id),
            title=title or (series.name if series else previous.title if previous else ""),
            venue=chosen_venue,
            now=self.now(),
            series_id=series_id,
            kind=kind,
            topic=topic,
            host_id=host_id,
            duration_minutes=duration_minutes
            if duration_minutes is not None
            else (
                series.duration_minutes
                if series
                else previous.duration_minutes
                if previous
                else 120
            ),
            capacity=capacity
            if capacity is not None
            else (series.capacity if series else previous.capacity if previous else None),
            rsvp_deadline_hours=series.rsvp_deadline_hours
            if series
            else (previous.rsvp_deadline_hours if previous else 2),
            reminder_hours=series.reminder_hours
            if series
            else (previous.reminder_hours if previous else [24]),
            previous_meetup_id=str(previous.id) if previous else None,
            poll_id=poll_id,
            scheduled_by=by,
        )

    # -- replies -------------------------------------------------------------------------

    def meetup_reply(self, ctx: RequestContext, meetup_id: str) -> c.Meetup:
        tenant_id = ctx.require_tenant()
        member_id = ctx.actor.member_id

        def query(conn: Any) -> c.Meetup | None:
            row = meetups.meetup_row(conn, tenant_id, meetup_id)
            if row is None:
                return None
            mine = meetups.rsvp_of(conn, tenant_id, meetup_id, member_id) if member_id else None
            return meetups.to_meetup(row, mine)

        found = self.read(query)
        if found is None:
            raise NotFound(t("meetup not found"))
        return found

    def meetup_row(self, ctx: RequestContext, meetup_id: str) -> Any:
        tenant_id = ctx.require_tenant()
        row = self.read(lambda conn: meetups.meetup_row(conn, tenant_id, meetup_id))
        if row is None:
            raise NotFound(t("meetup not found"))
        return row
