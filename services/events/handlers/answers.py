"""Answers: RSVPs (signed in, or by a link from an e-mail, no login), date
polls and their votes, and revoking links."""

from __future__ import annotations

from typing import Any

from services.events import contract as c
from services.events.domain import DatePoll, Meetup, MeetupSeries, Visitor
from services.events.domain.poll import DatePoll as Poll
from services.events.handlers.base import EventsHandlers
from services.events.handlers.meetups import venue_from
from services.events.links import Link, verify
from services.events.views import directory, meetups, planning
from services.runtime.errors import Forbidden, InvalidInput, InvalidToken, NotFound
from services.runtime.handlers import handles
from services.runtime.i18n import t, translations
from services.runtime.messages import Done
from services.runtime.tenancy import RequestContext
from services.runtime.views import check_page


class AnswerHandlers(EventsHandlers):
    def _next_in_line(self, tenant_id: str) -> Any:
        def next_in_line(meetup_id: str, exclude: str) -> str | None:
            self.catch_up()  # the waitlist as of every recorded answer
            return self.read(
                lambda conn: meetups.first_in_line(conn, tenant_id, meetup_id, exclude)
            )

        return next_in_line

    def _answer(
        self, tenant_id: str, meetup_id: str, member_id: str, answer: str, by_link: bool
    ) -> tuple[Meetup, Any]:
        meetup, rsvp, _ = self.write(
            lambda: self.app.answer(
                tenant_id,
                meetup_id,
                member_id,
                answer,
                self.now(),
                self._next_in_line(tenant_id),
                by_link=by_link,
            )
        )
        return meetup, rsvp

    @handles(c.GiveRsvp)
    def give_rsvp(self, cmd: c.GiveRsvp, ctx: RequestContext) -> c.Meetup:
        tenant_id = ctx.require_tenant()
        meetup = self.app.get(tenant_id, cmd.meetup_id, Meetup)
        member_id = self.require_hub_member(ctx, meetup.hub_id)
        self._answer(tenant_id, cmd.meetup_id, member_id, cmd.answer, by_link=False)
        return self.meetup_reply(ctx, cmd.meetup_id)

    # -- links ------------------------------------------------------------------------------

    def _link(self, token: str, tenant_id: str | None = None) -> tuple[Link, Meetup | DatePoll]:
        """A valid link and its target: signature, expiry, version, and the
        holder still a member of the hub (a visitor: still invited). With
        `tenant_id` (the network whose address the link was opened at), a
        link of another network is not valid. The error's rule says why."""
        link = verify(self.link_key, token, self.now())
        if tenant_id is not None and link.tenant_id != tenant_id:
            raise InvalidToken(t("this link is not valid"), rule="link_invalid")
        target: Meetup | DatePoll | None
        if link.kind in ("rsvp", "visitor"):
            target = self.app.find(link.target_id, Meetup)
        elif link.kind == "vote":
            target = self.app.find(link.target_id, DatePoll)
        else:
            raise InvalidToken(t("this link is not valid here"), rule="link_invalid")
        if target is None or target.tenant_id != link.tenant_id:
            raise InvalidToken(t("this link is not valid"), rule="link_invalid")
        if link.version != target.link_version(link.holder_id):
            raise InvalidToken(
                t("this link has been revoked: use the one in a newer e-mail"), rule="link_revoked"
            )
        if link.kind == "visitor":
            visitor = self.app.find(link.holder_id, Visitor)
            if visitor is None or str(target.id) not in visitor.visits:
                raise InvalidToken(t("this link is not valid"), rule="link_invalid")
        elif not self.read(
            lambda conn: directory.is_member(conn, link.tenant_id, target.hub_id, link.holder_id)
        ):
            raise InvalidToken(
                t("this link is no longer valid: you are not a member of this hub"),
                rule="link_not_member",
            )
        return link, target

    @handles(c.DescribeLink)
    def describe_link(self, q: c.DescribeLink, ctx: RequestContext) -> c.LinkInfo:
        """What the link's page shows; an invalid link is described, not refused."""
        try:
            link, target = self._link(q.token, ctx.tenant_id)
        except InvalidToken as e:
            return c.LinkInfo(
                kind="rsvp",
                title="",
                hub_name="",
                local_start=None,
                timezone=None,
                venue=None,
                answer=None,
                slot_id=None,
                current=None,
                valid=False,
                reason=e.message,
                reason_code=e.rule or "link_invalid",
                reasons=e.all_translations(),
            )
        hub = self.read(lambda conn: directory.hub_row(conn, link.tenant_id, target.hub_id))
        if isinstance(target, Meetup):
            current = None
            if link.kind == "rsvp":
                mine = self.read(
                    lambda conn: meetups.rsvp_of(
                        conn, link.tenant_id, str(target.id), link.holder_id
                    )
                )
                current = mine.answer if mine else None
            over = None if target.is_open else t("this meetup is over or cancelled")
            return c.LinkInfo(
                kind=link.kind,  # type: ignore[arg-type]
                title=target.title,
                hub_name=hub.name if hub else "",
                local_start=target.local_start,
                timezone=target.timezone,
                venue=c.Venue(name=target.venue.name, address=target.venue.address),
                answer=link.answer,
                slot_id=None,
                current=current,
                valid=target.is_open,
                reason=None if over is None else str(over),
                reason_code=None if over is None else "closed",
                reasons=None if over is None else translations(over),
            )
        slot_start = target.slots.get(link.slot_id or "")
        closed = None if target.state == "open" else t("this poll is closed")
        return c.LinkInfo(
            kind="vote",
            title=target.title,
            hub_name=hub.name if hub else "",
            local_start=slot_start,
            timezone=target.timezone,
            venue=c.Venue(name=target.venue.name, address=target.venue.address),
            answer=link.answer,
            slot_id=link.slot_id,
            current=target.votes.get(link.holder_id, {}).get(link.slot_id or ""),
            valid=target.state == "open",
            reason=None if closed is None else str(closed),
            reason_code=None if closed is None else "closed",
            reasons=None if closed is None else translations(closed),
        )

    @handles(c.AnswerByLink)
    def answer_by_link(self, cmd: c.AnswerByLink, ctx: RequestContext) -> c.LinkAnswered:
        link, _ = self._link(cmd.token, ctx.tenant_id)
        if link.kind == "rsvp":
            _, rsvp = self._answer(
                link.tenant_id, link.target_id, link.holder_id, link.answer or "", by_link=True
            )
            return c.LinkAnswered(
                kind="rsvp",
                answer=rsvp.answer,
                seat=rsvp.seat,
                meetup_id=link.target_id,
                poll_id=None,
            )
        if link.kind == "vote":
            self.write(
                lambda: self.app.update(
                    link.tenant_id,
                    link.target_id,
                    DatePoll,
                    lambda poll: poll.vote(
                        link.holder_id, {link.slot_id or "": link.answer or ""}, self.now()
                    ),
                )
            )
            return c.LinkAnswered(
                kind="vote", answer=link.answer, seat=None, meetup_id=None, poll_id=link.target_id
            )
        # a visitor's answer: recorded on the visit (yes or no), not as a member's RSVP
        self.write(
            lambda: self.app.update(
                link.tenant_id,
                link.holder_id,
                Visitor,
                lambda v: v.answer(link.target_id, link.answer or "", self.now()),
            )
        )
        return c.LinkAnswered(
            kind="visitor", answer=link.answer, seat=None, meetup_id=link.target_id, poll_id=None
        )

    @handles(c.RevokeLinks)
    def revoke_links(self, cmd: c.RevokeLinks, ctx: RequestContext) -> Done:
        member_id = ctx.require_member()
        tenant_id = ctx.require_tenant()
        if (cmd.meetup_id is None) == (cmd.poll_id is None):
            raise InvalidInput(t("name a meetup or a poll"), field="meetup_id")
        kind: type[Meetup] | type[DatePoll] = Meetup if cmd.meetup_id else DatePoll
        target_id = cmd.meetup_id or cmd.poll_id or ""

        def change(target: Any) -> None:
            if cmd.member_id != member_id:  # everyone's, or someone else's
                self.require_organiser(ctx, target.hub_id)
            elif not self.is_hub_member(ctx, target.hub_id):
                raise Forbidden(t("only members of the hub may do this"))
            target.revoke_links(cmd.member_id)

        self.write(lambda: self.app.update(tenant_id, target_id, kind, change))
        return Done()

    # -- date polls -----------------------------------------------------------------------

    def _poll_reply(self, ctx: RequestContext, poll_id: str) -> c.DatePoll:
        tenant_id = ctx.require_tenant()

        def query(conn: Any) -> c.DatePoll | None:
            row = planning.poll_row(conn, tenant_id, poll_id)
            return planning.to_poll(conn, row, ctx.actor.member_id) if row else None

        found = self.read(query)
        if found is None:
            raise NotFound(t("date poll not found"))
        return found

    @handles(c.OpenDatePoll)
    def open_poll(self, cmd: c.OpenDatePoll, ctx: RequestContext) -> c.DatePoll:
        by = self.require_organiser(ctx, cmd.hub_id)
        tenant_id = ctx.require_tenant()
        # the series the meetup will join: this hub's (checked now, not when the
        # poll closes), whose zone the meetup will keep, so the slots are read in it
        series = self.app.get(tenant_id, cmd.series_id, MeetupSeries) if cmd.series_id else None
        if series is not None and series.hub_id != cmd.hub_id:
            raise NotFound(t("series not found"))
        poll = Poll.new(
            tenant_id,
            cmd.hub_id,
            cmd.title,
            cmd.slots,
            series.timezone if series else self.timezone_of(tenant_id, cmd.hub_id),
            cmd.duration_minutes,
            venue_from(cmd.venue),
            cmd.series_id,
            by,
            self.now(),
        )
        self.write(lambda: self.app.save(poll))
        return self._poll_reply(ctx, str(poll.id))

    @handles(c.VoteOnPoll)
    def vote(self, cmd: c.VoteOnPoll, ctx: RequestContext) -> c.DatePoll:
        tenant_id = ctx.require_tenant()

        def change(poll: DatePoll) -> None:
            member_id = self.require_hub_member(ctx, poll.hub_id)
            poll.vote(member_id, dict(cmd.votes), self.now())

        self.write(lambda: self.app.update(tenant_id, cmd.poll_id, DatePoll, change))
        return self._poll_reply(ctx, cmd.poll_id)

    @handles(c.CloseDatePoll)
    def close_poll(self, cmd: c.CloseDatePoll, ctx: RequestContext) -> c.DatePoll:
        tenant_id = ctx.require_tenant()

        def unit() -> tuple[list[Any], None]:
            poll = self.app.get(tenant_id, cmd.poll_id, DatePoll)
            by = self.require_organiser(ctx, poll.hub_id)
            # the poll's own rules first (closed, unknown or past slot), then the meetup's
            start = poll.closable_slot(cmd.slot_id, self.now())
            meetup = self.new_meetup(
                tenant_id,
                poll.hub_id,
                start,
                by,
                series_id=poll.series_id,
                title=poll.title,
                duration_minutes=poll.duration_minutes,
                venue=poll.venue,
                poll_id=str(poll.id),
            )
            poll.close(cmd.slot_id, str(meetup.id), by, self.now())
            return [poll, meetup], None

        self.write(lambda: self.app.transact(unit))
        return self._poll_reply(ctx, cmd.poll_id)

    @handles(c.GetDatePoll)
    def get_poll(self, q: c.GetDatePoll, ctx: RequestContext) -> c.DatePoll:
        ctx.require_member()
        return self._poll_reply(ctx, q.poll_id)

    @handles(c.ListPollVotes)
    def list_poll_votes(self, q: c.ListPollVotes, ctx: RequestContext) -> c.PollVotePage:
        ctx.require_tenant_admin()
        check_page(q.limit, q.offset, t("votes"))
        tenant_id = ctx.require_tenant()

        def query(conn: Any) -> c.PollVotePage | None:
            if planning.poll_row(conn, tenant_id, q.poll_id) is None:
                return None
            return planning.poll_votes(conn, tenant_id, q.poll_id, q.offset, q.limit)

        found = self.read(query)
        if found is None:
            raise NotFound(t("date poll not found"))
        return found

    @handles(c.ListDatePolls)
    def list_polls(self, q: c.ListDatePolls, ctx: RequestContext) -> list[c.DatePoll]:
        ctx.require_member()
        tenant_id = ctx.require_tenant()
        self.hub(ctx, q.hub_id)

        def query(conn: Any) -> list[c.DatePoll]:
            rows = planning.list_polls(conn, tenant_id, q.hub_id, q.state)
            return [planning.to_poll(conn, r, ctx.actor.member_id) for r in rows]

        return self.read(query)
