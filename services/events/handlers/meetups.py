"""Series and meetups: the hub's agenda settings, rhythms, scheduling,
rescheduling, cancelling, and closing with the next date fixed."""

from __future__ import annotations

from typing import Any

import msgspec

from services.events import contract as c
from services.events.domain import Card, Meetup, MeetupSeries, Venue
from services.events.domain.agenda import HubAgenda
from services.events.domain.calendar import to_local
from services.events.handlers.base import EventsHandlers
from services.events.views import directory, meetups, planning
from services.runtime.errors import InvalidInput, NotFound
from services.runtime.handlers import handles
from services.runtime.i18n import t
from services.runtime.messages import given_fields
from services.runtime.tenancy import RequestContext
from services.runtime.views import check_page


def venue_from(v: c.Venue, field: str = "venue") -> Venue:
    return Venue.checked(v.name, v.address, field)


def to_deck(agenda: HubAgenda) -> c.Deck:
    return c.Deck(
        hub_id=agenda.hub_id,
        cards=[
            c.Card(card_id=x.card_id, title=x.title, single_holder=x.single_holder)
            for x in agenda.cards
        ],
        timezone=agenda.timezone,
    )


class MeetupHandlers(EventsHandlers):
    # -- the hub's agenda ------------------------------------------------------------

    @handles(c.SetHubAgenda)
    def set_hub_agenda(self, cmd: c.SetHubAgenda, ctx: RequestContext) -> c.Deck:
        self.require_admin(ctx, cmd.hub_id)
        tenant_id = ctx.require_tenant()

        def unit() -> tuple[list[Any], HubAgenda]:
            agenda = self.app.agenda(tenant_id, cmd.hub_id)
            if not isinstance(cmd.timezone, msgspec.UnsetType):
                agenda.set_timezone(cmd.timezone)
            if not isinstance(cmd.cards, msgspec.UnsetType):
                agenda.set_deck(Card(x.card_id, x.title, x.single_holder) for x in cmd.cards)
            return [agenda], agenda

        return to_deck(self.write(lambda: self.app.transact(unit)))

    @handles(c.GetHubAgenda)
    def get_hub_agenda(self, q: c.GetHubAgenda, ctx: RequestContext) -> c.Deck:
        ctx.require_member()
        self.hub(ctx, q.hub_id)
        return to_deck(self.app.agenda(ctx.require_tenant(), q.hub_id))

    # -- series ------------------------------------------------------------------------

    def _series_reply(self, ctx: RequestContext, series_id: str) -> c.Series:
        tenant_id = ctx.require_tenant()
        row = self.read(lambda conn: planning.series_row(conn, tenant_id, series_id))
        if row is None:
            raise NotFound(t("series not found"))
        return planning.to_series(row, to_local(self.now(), row.timezone))

    @handles(c.CreateSeries)
    def create_series(self, cmd: c.CreateSeries, ctx: RequestContext) -> c.Series:
        by = self.require_organiser(ctx, cmd.hub_id)
        tenant_id = ctx.require_tenant()
        timezone = self.timezone_of(tenant_id, cmd.hub_id)
        series = MeetupSeries.new(
            tenant_id,
            cmd.hub_id,
            cmd.name,
            cmd.rrule,
            cmd.starts_on,
            cmd.start_time,
            timezone,
            venue_from(cmd.venue),
            by,
            duration_minutes=cmd.duration_minutes,
            capacity=cmd.capacity,
            rsvp_deadline_hours=cmd.rsvp_deadline_hours,
            reminder_hours=cmd.reminder_hours,
            today=to_local(self.now(), timezone).date(),
        )
        self.write(lambda: self.app.save(series))
        return self._series_reply(ctx, str(series.id))

    @handles(c.ChangeSeries)
    def change_series(self, cmd: c.ChangeSeries, ctx: RequestContext) -> c.Series:
        tenant_id = ctx.require_tenant()
        changes = given_fields(cmd.changes)
        if isinstance(changes.get("venue"), c.Venue):
            changes["venue"] = venue_from(changes["venue"])

        def change(series: MeetupSeries) -> None:
            self.require_organiser(ctx, series.hub_id)
            series.change(changes)

        self.write(lambda: self.app.update(tenant_id, cmd.series_id, MeetupSeries, change))
        return self._series_reply(ctx, cmd.series_id)

    @handles(c.ListSeries)
    def list_series(self, q: c.ListSeries, ctx: RequestContext) -> list[c.Series]:
        ctx.require_member()
        tenant_id = ctx.require_tenant()
        self.hub(ctx, q.hub_id)
        rows = self.read(lambda conn: planning.list_series(conn, tenant_id, q.hub_id))
        return [planning.to_series(r, to_local(self.now(), r.timezone)) for r in rows]

    # -- meetups -----------------------------------------------------------------------

    @handles(c.ScheduleMeetup)
    def schedule(self, cmd: c.ScheduleMeetup, ctx: RequestContext) -> c.Meetup:
        by = self.require_organiser(ctx, cmd.hub_id)
        meetup = self.new_meetup(
            ctx.require_tenant(),
            cmd.hub_id,
            cmd.local_start,
            by,
            series_id=cmd.series_id,
            title=cmd.title,
            duration_minutes=cmd.duration_minutes,
            venue=venue_from(cmd.venue) if cmd.venue else None,
            capacity=cmd.capacity,
        )
        self.write(lambda: self.app.save(meetup))
        return self.meetup_reply(ctx, str(meetup.id))

    @handles(c.RescheduleMeetup)
    def reschedule(self, cmd: c.RescheduleMeetup, ctx: RequestContext) -> c.Meetup:
        tenant_id = ctx.require_tenant()
        changes = {k: v for k, v in given_fields(cmd).items() if k != "meetup_id"}
        if isinstance(changes.get("venue"), c.Venue):
            changes["venue"] = venue_from(changes["venue"])

        def change(meetup: Meetup) -> None:
            self.require_organiser(ctx, meetup.hub_id)
            meetup.reschedule(changes, self.now())

        self.write(lambda: self.app.update(tenant_id, cmd.meetup_id, Meetup, change))
        if "capacity" in changes:  # a bigger room: the first in line get the new seats
            self.write(
                lambda: self.app.fill_seats(
                    tenant_id, cmd.meetup_id, self.now(), self._line(tenant_id)
                )
            )
        return self.meetup_reply(ctx, cmd.meetup_id)

    def _line(self, tenant_id: str) -> Any:
        def next_in_line(meetup_id: str, exclude: str) -> str | None:
            self.catch_up()
            return self.read(
                lambda conn: meetups.first_in_line(conn, tenant_id, meetup_id, exclude)
            )

        return next_in_line

    @handles(c.CancelMeetup)
    def cancel(self, cmd: c.CancelMeetup, ctx: RequestContext) -> c.Meetup:
        tenant_id = ctx.require_tenant()

        def change(meetup: Meetup) -> None:
            meetup.cancel(cmd.reason, self.require_organiser(ctx, meetup.hub_id))

        self.write(lambda: self.app.update(tenant_id, cmd.meetup_id, Meetup, change))
        return self.meetup_reply(ctx, cmd.meetup_id)

    @handles(c.CloseMeetup)
    def close(self, cmd: c.CloseMeetup, ctx: RequestContext) -> c.CloseResult:
        tenant_id = ctx.require_tenant()
        member_id = ctx.require_member()
        if cmd.next_meetup_id is not None and cmd.next_local_start is not None:
            raise InvalidInput(
                t("give the next meetup, or the next date, not both"), field="next_meetup_id"
            )

        def make_next(meetup: Meetup) -> Meetup | None:
            if cmd.next_local_start is None:
                return None
            return self.new_meetup(
                tenant_id,
                meetup.hub_id,
                cmd.next_local_start,
                member_id,
                series_id=meetup.series_id,
                title=meetup.title if meetup.kind == "meetup" else None,
                venue=venue_from(cmd.next_venue, "next_venue") if cmd.next_venue else None,
                previous=meetup,
            )

        def held_cards(hub_id: str) -> set[str]:
            self.catch_up()
            return self.read(lambda conn: meetups.held_cards(conn, tenant_id, hub_id, self.now()))

        closed, successor = self.write(
            lambda: self.app.close_meetup(
                tenant_id,
                cmd.meetup_id,
                member_id,
                self.now(),
                cmd.next_meetup_id,
                make_next,
                held_cards,
                lambda m: self.require_organiser(ctx, m.hub_id),
            )
        )
        return c.CloseResult(
            closed=self.meetup_reply(ctx, str(closed.id)),
            next=self.meetup_reply(ctx, str(successor.id)),
            draws=self.read(lambda conn: meetups.draws_of(conn, tenant_id, str(closed.id))),
        )

    # -- queries -----------------------------------------------------------------------

    @handles(c.GetMeetup)
    def get_meetup(self, q: c.GetMeetup, ctx: RequestContext) -> c.Meetup:
        ctx.require_member()
        return self.meetup_reply(ctx, q.meetup_id)

    @handles(c.ListMeetups)
    def list_meetups(self, q: c.ListMeetups, ctx: RequestContext) -> c.MeetupPage:
        member_id = ctx.require_member()
        tenant_id = ctx.require_tenant()
        check_page(q.limit, q.offset, t("meetups"))
        self.hub(ctx, q.hub_id)
        return self._page(tenant_id, member_id, [q.hub_id], q.when, q.offset, q.limit)

    @handles(c.MyAgenda)
    def my_agenda(self, q: c.MyAgenda, ctx: RequestContext) -> c.MeetupPage:
        member_id = ctx.require_member()
        tenant_id = ctx.require_tenant()
        check_page(q.limit, q.offset, t("meetups"))
        hubs = self.read(lambda conn: directory.member_hubs(conn, tenant_id, member_id))
        return self._page(tenant_id, member_id, hubs, "upcoming", q.offset, q.limit)

    def _page(
        self, tenant_id: str, member_id: str, hub_ids: list[str], when: str, offset: int, limit: int
    ) -> c.MeetupPage:
        def query(conn: Any) -> c.MeetupPage:
            rows, total = meetups.list_meetups(
                conn, tenant_id, hub_ids, when, self.now(), offset, limit
            )
            mine = meetups.my_rsvps(conn, tenant_id, member_id, [r.meetup_id for r in rows])
            return c.MeetupPage(
                items=[meetups.to_meetup(r, mine.get(r.meetup_id)) for r in rows], total=total
            )

        return self.read(query)

    @handles(c.ListRsvps)
    def list_rsvps(self, q: c.ListRsvps, ctx: RequestContext) -> list[c.Rsvp]:
        ctx.require_member()
        tenant_id = ctx.require_tenant()
        self.meetup_row(ctx, q.meetup_id)
        return self.read(lambda conn: meetups.list_rsvps(conn, tenant_id, q.meetup_id))

    @handles(c.ListDraws)
    def list_draws(self, q: c.ListDraws, ctx: RequestContext) -> list[c.CardDraw]:
        ctx.require_member()
        tenant_id = ctx.require_tenant()
        self.meetup_row(ctx, q.meetup_id)
        return self.read(lambda conn: meetups.draws_of(conn, tenant_id, q.meetup_id))

    @handles(c.ListOpenCards)
    def list_open_cards(self, q: c.ListOpenCards, ctx: RequestContext) -> list[c.OpenCard]:
        ctx.require_member()
        tenant_id = ctx.require_tenant()
        self.hub(ctx, q.hub_id)
        return self.read(lambda conn: meetups.open_cards(conn, tenant_id, q.hub_id, self.now()))
