"""The meetups service's part of a member's erasure (docs/erasure.md): on
identity's `MemberErased`, the member's key is destroyed (their workshop
descriptions, the names of those who stood in for them), and so are the
keys of the visitors they invited (a visitor's name and address); the read
models' copies are blanked. Their answers to the meetups still open to
answers become "no" (`release`): a seat they held goes to the first in
line, as when a member declines, and a place on a waitlist is freed. Past
attendance, answers, counts and draws stay."""

from __future__ import annotations

import sqlalchemy as sa

from services.events import contract as c
from services.events.application import Meetups
from services.events.domain.people import Visitor
from services.events.handlers.base import EventsHandlers
from services.events.views.meetups import attendance, first_in_line, meetups, rsvps
from services.events.views.planning import proposals, visitor_names, visits
from services.identity import contract as idc
from services.runtime.erasure import clear_replies, erasure_reaction
from services.runtime.errors import NotFound, RuleViolation
from services.runtime.handlers import handles
from services.runtime.host import ServiceHost
from services.runtime.logging import get_logger
from services.runtime.messages import Done
from services.runtime.personal import checkpoint, clear_mail_drop
from services.runtime.reactions import Reaction
from services.runtime.tenancy import RequestContext

ERASED_VISITOR = "former visitor"

log = get_logger("quartier.events.erasure")


def _visitors(conn: sa.Connection, tenant_id: str, member_id: str) -> list[str]:
    rows = conn.execute(
        sa.select(visits.c.visitor_id)
        .where(visits.c.tenant_id == tenant_id, visits.c.invited_by == member_id)
        .distinct()
    )
    return sorted(r.visitor_id for r in rows)


def scrub_visitors(conn: sa.Connection, tenant_id: str, visitor_ids: list[str]) -> None:
    for table in (visits, visitor_names):
        conn.execute(
            table.update()
            .where(table.c.tenant_id == tenant_id, table.c.visitor_id.in_(visitor_ids))
            .values(name=ERASED_VISITOR)
        )


class VisitorErasure(EventsHandlers):
    """`EraseVisitor`: one visitor alone (a visitor's own request, passed on
    by an admin), without erasing the member who invited them."""

    @handles(c.EraseVisitor)
    def erase_visitor(self, cmd: c.EraseVisitor, ctx: RequestContext) -> Done:
        tenant_id = ctx.require_tenant()
        visitor = self.app.get(tenant_id, cmd.visitor_id, Visitor)
        self.require_admin(ctx, visitor.hub_id)
        words = [visitor.email, visitor.name]
        clear_mail_drop(self.settings.mail_dir, words)
        clear_replies(self.engine, words)
        self.app.forget(tenant_id, [str(visitor.id)])
        with self.engine.connect().execution_options(write_lock=True) as conn, conn.begin():
            scrub_visitors(conn, tenant_id, [str(visitor.id)])
        checkpoint(self.engine)
        return Done()


def reaction(host: ServiceHost, app: Meetups) -> Reaction:
    def needles(conn: sa.Connection, tenant_id: str, member_id: str) -> list[str]:
        found: list[str] = []
        for visitor_id in _visitors(conn, tenant_id, member_id):
            visitor = app.find(visitor_id, Visitor)
            if visitor is not None and visitor.tenant_id == tenant_id:
                found += [visitor.email, visitor.name]
        rows = conn.execute(
            sa.select(proposals.c.description).where(
                proposals.c.tenant_id == tenant_id, proposals.c.host_id == member_id
            )
        )
        found += [r.description for r in rows]
        rows = conn.execute(
            sa.select(attendance.c.substitute).where(
                attendance.c.tenant_id == tenant_id, attendance.c.member_id == member_id
            )
        )
        return found + [r.substitute for r in rows if r.substitute]

    def scrub(conn: sa.Connection, tenant_id: str, member_id: str) -> None:
        visitor_ids = _visitors(conn, tenant_id, member_id)
        if visitor_ids:
            scrub_visitors(conn, tenant_id, visitor_ids)
        conn.execute(
            proposals.update()
            .where(proposals.c.tenant_id == tenant_id, proposals.c.host_id == member_id)
            .values(description="")
        )
        conn.execute(
            attendance.update()
            .where(
                attendance.c.tenant_id == tenant_id,
                attendance.c.member_id == member_id,
                attendance.c.substitute.is_not(None),
            )
            .values(substitute="")
        )

    def catch_up() -> None:
        for projector in host.projectors:
            projector.catch_up()

    def release(tenant_id: str, member_id: str) -> None:
        """Their answers to meetups still to come become "no" (each a no-op
        when it already is, or when answers are closed)."""
        now = host.clock.now()
        catch_up()  # every answer recorded so far
        with host.engine.connect() as conn:
            rows = conn.execute(
                sa.select(rsvps.c.meetup_id)
                .join(
                    meetups,
                    sa.and_(
                        meetups.c.tenant_id == rsvps.c.tenant_id,
                        meetups.c.meetup_id == rsvps.c.meetup_id,
                    ),
                )
                .where(
                    rsvps.c.tenant_id == tenant_id,
                    rsvps.c.member_id == member_id,
                    rsvps.c.answer != "no",
                    meetups.c.state == "scheduled",
                    meetups.c.starts_at > now,
                )
            )
            meetup_ids = sorted(r.meetup_id for r in rows)

        def next_in_line(meetup_id: str, exclude: str) -> str | None:
            catch_up()
            with host.engine.connect() as conn:
                return first_in_line(conn, tenant_id, meetup_id, exclude)

        released = 0
        for meetup_id in meetup_ids:
            try:
                app.answer(tenant_id, meetup_id, member_id, "no", now, next_in_line)
                released += 1
            except (RuleViolation, NotFound):
                continue  # answers closed meanwhile (the deadline passed), or none
        catch_up()
        log.info("erasure.answers_released", meetups=released, member_id=member_id)

    return erasure_reaction(
        host,
        app,
        idc.MemberErased,
        subjects=_visitors,
        needles=needles,
        scrub=scrub,
        release=release,
    )
