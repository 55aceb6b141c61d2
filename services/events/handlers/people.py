"""The meetup itself and the people at it: attendance (taken by the
facilitator, or checked in by members while it runs), visitors, mission
cards, workshops; members' reminder settings and calendar feeds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.events import calendars
from services.events import contract as c
from services.events.domain import CalendarFeed, Meetup, MemberSettings, Visitor, WorkshopProposal
from services.events.domain.feeds import feed_id, split_token
from services.events.domain.people import normalise_email, settings_id, visitor_id
from services.events.handlers.base import EventsHandlers
from services.events.handlers.meetups import venue_from
from services.events.views import directory, meetups, planning
from services.runtime.errors import Forbidden, InvalidInput, InvalidToken, NotFound
from services.runtime.handlers import handles
from services.runtime.i18n import t
from services.runtime.tenancy import RequestContext

CALENDAR_PAST = timedelta(days=90)  # a feed shows meetups from this long ago on
MAX_ENTRIES = 200


class PeopleHandlers(EventsHandlers):
    # -- attendance -------------------------------------------------------------------------

    def _attendance(self, ctx: RequestContext, meetup_id: str) -> list[c.AttendanceEntry]:
        tenant_id = ctx.require_tenant()
        return self.read(lambda conn: meetups.attendance_of(conn, tenant_id, meetup_id))

    @handles(c.RecordAttendance)
    def record_attendance(
        self, cmd: c.RecordAttendance, ctx: RequestContext
    ) -> list[c.AttendanceEntry]:
        tenant_id = ctx.require_tenant()
        if not 1 <= len(cmd.entries) <= MAX_ENTRIES:
            raise InvalidInput(
                t("record 1 to {limit} entries at once", limit=MAX_ENTRIES), field="entries"
            )

        def change(meetup: Meetup) -> None:
            self.require_organiser(ctx, meetup.hub_id)
            members = set(
                self.read(lambda conn: directory.hub_members(conn, tenant_id, meetup.hub_id))
            )
            for entry in cmd.entries:
                if entry.member_id is not None and entry.member_id not in members:
                    raise NotFound(t("member not found in this hub"))
                if entry.visitor_id is not None:
                    visitor = self.app.find(entry.visitor_id, Visitor)
                    if (
                        visitor is None
                        or visitor.tenant_id != tenant_id
                        or str(meetup.id) not in visitor.visits
                    ):
                        raise NotFound(t("visitor not found for this meetup"))
                meetup.record(
                    entry.member_id, entry.visitor_id, entry.status, entry.substitute, self.now()
                )

        self.write(lambda: self.app.update(tenant_id, cmd.meetup_id, Meetup, change))
        return self._attendance(ctx, cmd.meetup_id)

    @handles(c.CheckIn)
    def check_in(self, cmd: c.CheckIn, ctx: RequestContext) -> list[c.AttendanceEntry]:
        tenant_id = ctx.require_tenant()

        def change(meetup: Meetup) -> None:
            member_id = self.require_hub_member(ctx, meetup.hub_id)
            meetup.check_in(member_id, self.now())

        self.write(lambda: self.app.update(tenant_id, cmd.meetup_id, Meetup, change))
        return self._attendance(ctx, cmd.meetup_id)

    @handles(c.GetAttendance)
    def get_attendance(self, q: c.GetAttendance, ctx: RequestContext) -> list[c.AttendanceEntry]:
        ctx.require_member()
        self.meetup_row(ctx, q.meetup_id)
        return self._attendance(ctx, q.meetup_id)

    @handles(c.MeetupsAttended)
    def meetups_attended(self, q: c.MeetupsAttended, ctx: RequestContext) -> list[str]:
        if ctx.actor.kind != "service":
            raise Forbidden(t("only Quartier's services may ask this"))
        tenant_id = ctx.require_tenant()
        return self.read(
            lambda conn: meetups.attended(conn, tenant_id, q.hub_id, q.member_id, q.since)
        )

    # -- visitors ----------------------------------------------------------------------------

    @handles(c.InviteVisitor)
    def invite_visitor(self, cmd: c.InviteVisitor, ctx: RequestContext) -> c.VisitorInvitation:
        tenant_id = ctx.require_tenant()
        email = normalise_email(cmd.email)

        def unit() -> tuple[list[Any], c.VisitorInvitation]:
            meetup = self.app.get(tenant_id, cmd.meetup_id, Meetup)
            member_id = self.require_hub_member(ctx, meetup.hub_id)
            meetup.check_answerable(self.now())
            hub = self.hub(ctx, meetup.hub_id)
            visitor = self.app.find(visitor_id(tenant_id, meetup.hub_id, email), Visitor)
            if visitor is None:
                visitor = Visitor.new(tenant_id, meetup.hub_id, email, cmd.name)
            visitor.invite(str(meetup.id), member_id, hub.max_visits, self.now())
            reply = c.VisitorInvitation(
                visitor_id=str(visitor.id),
                meetup_id=str(meetup.id),
                visits=visitor.counted_visits(),
                max_visits=hub.max_visits,
            )
            return [visitor], reply

        return self.write(lambda: self.app.transact(unit))

    # -- mission cards ---------------------------------------------------------------------------

    @handles(c.CompleteCard)
    def complete_card(self, cmd: c.CompleteCard, ctx: RequestContext) -> c.OpenCard:
        member_id = ctx.require_member()
        tenant_id = ctx.require_tenant()
        self.catch_up()
        row = self.read(lambda conn: meetups.draw_row(conn, tenant_id, cmd.draw_id))
        if row is None:
            raise NotFound(t("card not found"))
        _, draw = self.write(
            lambda: self.app.update(
                tenant_id,
                row.meetup_id,
                Meetup,
                lambda m: m.complete_card(cmd.draw_id, member_id, self.now()),
            )
        )
        return c.OpenCard(
            draw_id=draw.draw_id,
            meetup_id=row.meetup_id,
            member_id=draw.member_id,
            card_id=draw.card_id,
            title=draw.title,
            drawn_at=row.drawn_at,
        )

    # -- workshops -----------------------------------------------------------------------------

    @handles(c.ProposeWorkshop)
    def propose_workshop(self, cmd: c.ProposeWorkshop, ctx: RequestContext) -> c.WorkshopProposal:
        member_id = self.require_hub_member(ctx, cmd.hub_id)
        tenant_id = ctx.require_tenant()
        proposal = WorkshopProposal.new(
            tenant_id, cmd.hub_id, member_id, cmd.topic, cmd.description, self.now()
        )
        self.write(lambda: self.app.save(proposal))
        row = self.read(lambda conn: planning.proposal_row(conn, tenant_id, str(proposal.id)))
        return planning.to_proposal(row)

    @handles(c.ScheduleWorkshop)
    def schedule_workshop(self, cmd: c.ScheduleWorkshop, ctx: RequestContext) -> c.Meetup:
        tenant_id = ctx.require_tenant()

        def unit() -> tuple[list[Any], Meetup]:
            proposal = self.app.get(tenant_id, cmd.proposal_id, WorkshopProposal)
            by = self.require_organiser(ctx, proposal.hub_id)
            meetup = self.new_meetup(
                tenant_id,
                proposal.hub_id,
                cmd.local_start,
                by,
                title=proposal.topic,
                duration_minutes=cmd.duration_minutes,
                venue=venue_from(cmd.venue),
                capacity=cmd.capacity,
                kind="workshop",
                topic=proposal.topic,
                host_id=proposal.host_id,
            )
            proposal.schedule(str(meetup.id))
            return [proposal, meetup], meetup

        meetup = self.write(lambda: self.app.transact(unit))
        return self.meetup_reply(ctx, str(meetup.id))

    @handles(c.ListWorkshopProposals)
    def list_proposals(
        self, q: c.ListWorkshopProposals, ctx: RequestContext
    ) -> list[c.WorkshopProposal]:
        ctx.require_member()
        tenant_id = ctx.require_tenant()
        self.hub(ctx, q.hub_id)
        return self.read(lambda conn: planning.list_proposals(conn, tenant_id, q.hub_id))

    # -- reminders ------------------------------------------------------------------------------

    def _settings(self, tenant_id: str, member_id: str) -> MemberSettings:
        found = self.app.find(settings_id(tenant_id, member_id), MemberSettings)
        return (
            found if found is not None else MemberSettings(tenant_id=tenant_id, member_id=member_id)
        )

    @handles(c.SetReminders)
    def set_reminders(self, cmd: c.SetReminders, ctx: RequestContext) -> c.ReminderSettings:
        member_id = ctx.require_member()
        tenant_id = ctx.require_tenant()

        def unit() -> tuple[list[Any], bool]:
            settings = self._settings(tenant_id, member_id)
            settings.set_reminders(cmd.reminders, by_link=False)
            return [settings], settings.reminders

        return c.ReminderSettings(reminders=self.write(lambda: self.app.transact(unit)))

    @handles(c.GetReminderSettings)
    def get_reminders(self, q: c.GetReminderSettings, ctx: RequestContext) -> c.ReminderSettings:
        member_id = ctx.require_member()
        return c.ReminderSettings(
            reminders=self._settings(ctx.require_tenant(), member_id).reminders
        )

    # -- calendar feeds --------------------------------------------------------------------------

    def _feed_owner(self, ctx: RequestContext, scope: str, hub_id: str | None) -> str:
        member_id = ctx.require_member()
        if scope == "hub":
            if not hub_id:
                raise InvalidInput(t("name the hub"), field="hub_id")
            self.require_hub_member(ctx, hub_id)
            return hub_id
        if hub_id is not None:
            raise InvalidInput(t("a member's own feed names no hub"), field="hub_id")
        return member_id

    @handles(c.GetCalendarFeed)
    def get_feed(self, cmd: c.GetCalendarFeed, ctx: RequestContext) -> c.CalendarFeed:
        tenant_id = ctx.require_tenant()
        owner = self._feed_owner(ctx, cmd.scope, cmd.hub_id)

        def unit() -> tuple[list[Any], CalendarFeed]:
            feed = self.app.find(feed_id(tenant_id, cmd.scope, owner), CalendarFeed)
            if feed is not None:
                return [], feed
            feed = CalendarFeed.new(tenant_id, cmd.scope, owner)
            return [feed], feed

        feed = self.write(lambda: self.app.transact(unit))
        return c.CalendarFeed(scope=cmd.scope, hub_id=cmd.hub_id, token=feed.token)

    @handles(c.RevokeCalendarFeed)
    def revoke_feed(self, cmd: c.RevokeCalendarFeed, ctx: RequestContext) -> c.CalendarFeed:
        tenant_id = ctx.require_tenant()
        owner = self._feed_owner(ctx, cmd.scope, cmd.hub_id)

        def unit() -> tuple[list[Any], CalendarFeed]:
            feed = self.app.find(feed_id(tenant_id, cmd.scope, owner), CalendarFeed)
            if feed is None:
                feed = CalendarFeed.new(tenant_id, cmd.scope, owner)
            else:
                feed.renew()
            return [feed], feed

        feed = self.write(lambda: self.app.transact(unit))
        return c.CalendarFeed(scope=cmd.scope, hub_id=cmd.hub_id, token=feed.token)

    @handles(c.GetCalendar)
    def get_calendar(self, q: c.GetCalendar, ctx: RequestContext) -> c.Calendar:
        """No login: the token is the credential."""
        aggregate_id, secret = split_token(q.token)
        feed = self.app.find(aggregate_id, CalendarFeed)
        if feed is None:
            raise InvalidToken(t("this calendar address is not valid"))
        feed.check(secret)
        tenant_id, now = feed.tenant_id, self.now()

        def query(conn: Any) -> str:
            if feed.scope == "hub":
                hub_ids = [feed.owner_id]
            else:
                hub_ids = directory.member_hubs(conn, tenant_id, feed.owner_id)
            rows = [
                r
                for r in meetups.list_meetups(conn, tenant_id, hub_ids, "upcoming", now, 0, 500)[0]
            ] + [
                r
                for r in meetups.list_meetups(conn, tenant_id, hub_ids, "past", now, 0, 200)[0]
                if r.starts_at >= now - CALENDAR_PAST
            ]
            names = {h: (directory.hub_row(conn, tenant_id, h).name) for h in hub_ids}
            title = names.get(feed.owner_id, "Quartier") if feed.scope == "hub" else "Quartier"
            return calendars.calendar((meetups.to_meetup(r) for r in rows), title, now, names)

        return c.Calendar(ics=self.read(query))
