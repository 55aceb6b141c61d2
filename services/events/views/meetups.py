"""The meetups read model: each meetup with its counters, the members'
answers (with the waitlist order), the attendance and the card draws."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from services.events import contract as c
from services.events.domain import Meetup, Rsvp
from services.events.domain.calendar import to_utc
from services.runtime.tenancy import scoped
from services.runtime.views import UTCDateTime, keyed_update

metadata = sa.MetaData()

meetups = sa.Table(
    "meetups",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("meetup_id", sa.String(36), primary_key=True),
    sa.Column("hub_id", sa.String(36), nullable=False),
    sa.Column("series_id", sa.String(36)),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("title", sa.String(120), nullable=False),
    sa.Column("topic", sa.String(200)),
    sa.Column("host_id", sa.String(36)),
    sa.Column("local_start", sa.DateTime(timezone=False), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("ends_at", UTCDateTime, nullable=False),
    sa.Column("duration_minutes", sa.Integer, nullable=False),
    sa.Column("venue", sa.JSON, nullable=False),
    sa.Column("capacity", sa.Integer),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("cancel_reason", sa.Text),
    sa.Column("rsvp_deadline", UTCDateTime, nullable=False),
    sa.Column("rsvp_deadline_hours", sa.Integer, nullable=False),
    sa.Column("reminder_hours", sa.JSON, nullable=False),
    sa.Column("reminders_sent", sa.JSON, nullable=False),
    sa.Column("seated", sa.Integer, nullable=False),
    sa.Column("waiting", sa.Integer, nullable=False),
    sa.Column("maybe", sa.Integer, nullable=False),
    sa.Column("declined", sa.Integer, nullable=False),
    sa.Column("previous_meetup_id", sa.String(36)),
    sa.Column("next_meetup_id", sa.String(36)),
    sa.Column("poll_id", sa.String(36)),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("closed_at", UTCDateTime),
    sa.Index("ix_meetups_hub_start", "tenant_id", "hub_id", "starts_at"),
    sa.Index("ix_meetups_state_start", "state", "starts_at"),
)

rsvps = sa.Table(
    "rsvps",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("meetup_id", sa.String(36), primary_key=True),
    sa.Column("member_id", sa.String(36), primary_key=True),
    sa.Column("rsvp_id", sa.String(36), nullable=False, unique=True),
    sa.Column("answer", sa.String(10), nullable=False),
    sa.Column("seat", sa.String(10), nullable=False),
    sa.Column("ticket", sa.Integer),
    sa.Column("answered_at", UTCDateTime, nullable=False),
    sa.Index("ix_rsvps_line", "tenant_id", "meetup_id", "seat", "ticket"),
    sa.Index("ix_rsvps_member", "tenant_id", "member_id"),
)

attendance = sa.Table(
    "attendance",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("meetup_id", sa.String(36), primary_key=True),
    sa.Column("key", sa.String(60), primary_key=True),
    sa.Column("hub_id", sa.String(36), nullable=False),
    sa.Column("member_id", sa.String(36)),
    sa.Column("visitor_id", sa.String(36)),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("substitute", sa.String(80)),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
    sa.Column("self_checked_in", sa.Boolean, nullable=False),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Index("ix_attendance_member", "tenant_id", "hub_id", "member_id", "starts_at"),
)

draws = sa.Table(
    "card_draws",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("draw_id", sa.String(36), primary_key=True),
    sa.Column("hub_id", sa.String(36), nullable=False),
    sa.Column("meetup_id", sa.String(36), nullable=False),
    sa.Column("member_id", sa.String(36), nullable=False),
    sa.Column("card_id", sa.String(40), nullable=False),
    sa.Column("title", sa.String(120), nullable=False),
    sa.Column("single_holder", sa.Boolean, nullable=False),
    sa.Column("drawn_at", UTCDateTime, nullable=False),
    sa.Column("done_at", UTCDateTime),
    sa.Index("ix_card_draws_meetup", "tenant_id", "meetup_id"),
    sa.Index("ix_card_draws_hub_open", "tenant_id", "hub_id", "done_at"),
)


def _meetup_key(e: Any) -> dict[str, str]:
    return {"tenant_id": e.tenant_id, "meetup_id": str(e.originator_id)}


def _times(
    local_start: datetime, timezone: str, duration: int, deadline_hours: int
) -> dict[str, Any]:
    starts = to_utc(local_start, timezone)
    return {
        "local_start": local_start,
        "starts_at": starts,
        "ends_at": starts + timedelta(minutes=duration),
        "rsvp_deadline": starts - timedelta(hours=deadline_hours),
    }


def apply(conn: sa.Connection, e: Any) -> None:
    key = _meetup_key(e)
    match e:
        case Meetup.Scheduled():
            conn.execute(
                meetups.insert().values(
                    **key,
                    hub_id=e.hub_id,
                    series_id=e.series_id,
                    kind=e.kind,
                    title=e.title,
                    topic=e.topic,
                    host_id=e.host_id,
                    timezone=e.timezone,
                    duration_minutes=e.duration_minutes,
                    venue=e.venue,
                    capacity=e.capacity,
                    state="scheduled",
                    rsvp_deadline_hours=e.rsvp_deadline_hours,
                    reminder_hours=list(e.reminder_hours),
                    reminders_sent=[],
                    seated=0,
                    waiting=0,
                    maybe=0,
                    declined=0,
                    previous_meetup_id=e.previous_meetup_id,
                    poll_id=e.poll_id,
                    sequence=0,
                    **_times(e.local_start, e.timezone, e.duration_minutes, e.rsvp_deadline_hours),
                )
            )
        case Meetup.Rescheduled():
            row = _row(conn, key)
            keyed_update(
                conn,
                meetups,
                key,
                duration_minutes=e.duration_minutes,
                venue=e.venue,
                capacity=e.capacity,
                sequence=e.sequence,
                **_times(e.local_start, row.timezone, e.duration_minutes, row.rsvp_deadline_hours),
            )
        case Meetup.Cancelled():
            keyed_update(
                conn, meetups, key, state="cancelled", cancel_reason=e.reason, sequence=e.sequence
            )
        case Meetup.AnswerCounted():
            values: dict[str, Any] = {}
            for answer, delta in ((e.old, -1), (e.new, 1)):
                if answer == "maybe":
                    values["maybe"] = values.get("maybe", meetups.c.maybe) + delta
                elif answer == "no":
                    values["declined"] = values.get("declined", meetups.c.declined) + delta
            if values:
                keyed_update(conn, meetups, key, **values)
        case Meetup.SeatTaken():
            keyed_update(conn, meetups, key, seated=meetups.c.seated + 1)
        case Meetup.Waitlisted():
            keyed_update(conn, meetups, key, waiting=meetups.c.waiting + 1)
        case Meetup.SeatReleased():
            keyed_update(conn, meetups, key, seated=meetups.c.seated - 1)
        case Meetup.Promoted():
            keyed_update(
                conn, meetups, key, seated=meetups.c.seated + 1, waiting=meetups.c.waiting - 1
            )
        case Meetup.LeftWaitlist():
            keyed_update(conn, meetups, key, waiting=meetups.c.waiting - 1)
        case Meetup.Held():
            keyed_update(conn, meetups, key, state="held")
        case Meetup.AttendanceMarked():
            values = {
                "hub_id": e.hub_id,
                "member_id": e.member_id,
                "visitor_id": e.visitor_id,
                "status": e.status,
                "substitute": e.substitute,
                "recorded_at": e.at,
                "self_checked_in": e.self_checked_in,
                "starts_at": e.starts_at,
            }
            if keyed_update(conn, attendance, {**key, "key": e.key}, **values) == 0:
                conn.execute(attendance.insert().values(**key, key=e.key, **values))
        case Meetup.Closed():
            keyed_update(
                conn, meetups, key, state="closed", next_meetup_id=e.next_meetup_id, closed_at=e.at
            )
        case Meetup.CardDrawn():
            conn.execute(
                draws.insert().values(
                    tenant_id=e.tenant_id,
                    hub_id=e.hub_id,
                    meetup_id=key["meetup_id"],
                    draw_id=e.draw_id,
                    member_id=e.member_id,
                    card_id=e.card_id,
                    title=e.title,
                    single_holder=e.single_holder,
                    drawn_at=e.at,
                    done_at=None,
                )
            )
        case Meetup.CardCompleted():
            keyed_update(
                conn, draws, {"tenant_id": e.tenant_id, "draw_id": e.draw_id}, done_at=e.at
            )
        case Meetup.ReminderSent():
            row = _row(conn, key)
            keyed_update(conn, meetups, key, reminders_sent=[*row.reminders_sent, e.lead_hours])
        case Rsvp.Answered():
            conn.execute(
                rsvps.insert().values(
                    tenant_id=e.tenant_id,
                    meetup_id=e.meetup_id,
                    member_id=e.member_id,
                    rsvp_id=str(e.originator_id),
                    answer=e.answer,
                    seat=e.seat,
                    ticket=e.ticket,
                    answered_at=e.at,
                )
            )
        case Rsvp.Changed():
            keyed_update(
                conn,
                rsvps,
                {"rsvp_id": str(e.originator_id)},
                answer=e.answer,
                seat=e.seat,
                ticket=e.ticket,
                answered_at=e.at,
            )
        case Rsvp.Promoted():
            keyed_update(conn, rsvps, {"rsvp_id": str(e.originator_id)}, seat="seated")


def _row(conn: sa.Connection, key: dict[str, str]) -> Any:
    return conn.execute(
        scoped(meetups, key["tenant_id"]).where(meetups.c.meetup_id == key["meetup_id"])
    ).one()


# -- queries -------------------------------------------------------------------


def meetup_row(conn: sa.Connection, tenant_id: str, meetup_id: str) -> Any:
    return conn.execute(scoped(meetups, tenant_id).where(meetups.c.meetup_id == meetup_id)).first()


def to_rsvp(r: Any, position: int | None = None) -> c.Rsvp:
    return c.Rsvp(
        member_id=r.member_id,
        answer=r.answer,
        seat=r.seat,
        answered_at=r.answered_at,
        waitlist_position=position,
    )


def to_meetup(row: Any, my_rsvp: c.Rsvp | None = None) -> c.Meetup:
    return c.Meetup(
        meetup_id=row.meetup_id,
        hub_id=row.hub_id,
        series_id=row.series_id,
        kind=row.kind,
        title=row.title,
        topic=row.topic,
        host_id=row.host_id,
        local_start=row.local_start,
        timezone=row.timezone,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        duration_minutes=row.duration_minutes,
        venue=c.Venue(**row.venue),
        capacity=row.capacity,
        state=row.state,
        cancel_reason=row.cancel_reason,
        rsvp_deadline=row.rsvp_deadline,
        seated=row.seated,
        waiting=row.waiting,
        maybe=row.maybe,
        declined=row.declined,
        previous_meetup_id=row.previous_meetup_id,
        next_meetup_id=row.next_meetup_id,
        sequence=row.sequence,
        poll_id=row.poll_id,
        my_rsvp=my_rsvp,
    )


def rsvp_of(conn: sa.Connection, tenant_id: str, meetup_id: str, member_id: str) -> c.Rsvp | None:
    r = conn.execute(
        scoped(rsvps, tenant_id).where(
            rsvps.c.meetup_id == meetup_id, rsvps.c.member_id == member_id
        )
    ).first()
    if r is None:
        return None
    return to_rsvp(
        r, waitlist_position(conn, tenant_id, meetup_id, r.ticket) if r.seat == "waiting" else None
    )


def waitlist_position(conn: sa.Connection, tenant_id: str, meetup_id: str, ticket: int) -> int:
    ahead = conn.execute(
        sa.select(sa.func.count())
        .select_from(rsvps)
        .where(
            rsvps.c.tenant_id == tenant_id,
            rsvps.c.meetup_id == meetup_id,
            rsvps.c.seat == "waiting",
            rsvps.c.ticket < ticket,
        )
    ).scalar_one()
    return int(ahead) + 1


def first_in_line(conn: sa.Connection, tenant_id: str, meetup_id: str, exclude: str) -> str | None:
    """Who takes the next free seat: the waiting member with the lowest ticket."""
    row = conn.execute(
        sa.select(rsvps.c.member_id)
        .where(
            rsvps.c.tenant_id == tenant_id,
            rsvps.c.meetup_id == meetup_id,
            rsvps.c.seat == "waiting",
            rsvps.c.member_id != exclude,
        )
        .order_by(rsvps.c.ticket)
        .limit(1)
    ).first()
    return row.member_id if row else None


def list_rsvps(conn: sa.Connection, tenant_id: str, meetup_id: str) -> list[c.Rsvp]:
    """Seated first (by answer time), then the waitlist in order, then maybe and no."""
    rows = list(conn.execute(scoped(rsvps, tenant_id).where(rsvps.c.meetup_id == meetup_id)))
    order = {"seated": 0, "waiting": 1, "none": 2}
    rows.sort(key=lambda r: (order[r.seat], r.ticket or 0, r.answer != "maybe", r.answered_at))
    found: list[c.Rsvp] = []
    position = 0
    for r in rows:
        if r.seat == "waiting":
            position += 1
        found.append(to_rsvp(r, position if r.seat == "waiting" else None))
    return found


def list_meetups(
    conn: sa.Connection,
    tenant_id: str,
    hub_ids: list[str],
    when: str,
    now: datetime,
    offset: int,
    limit: int,
) -> tuple[list[Any], int]:
    """Upcoming (not yet ended, soonest first) or past (latest first)."""
    query = scoped(meetups, tenant_id).where(meetups.c.hub_id.in_(hub_ids))
    if when == "upcoming":
        query = query.where(meetups.c.ends_at > now, meetups.c.state.in_(("scheduled", "held")))
        order: list[Any] = [meetups.c.starts_at, meetups.c.meetup_id]
    else:
        query = query.where(
            sa.or_(meetups.c.ends_at <= now, meetups.c.state.in_(("closed", "cancelled")))
        )
        order = [meetups.c.starts_at.desc(), meetups.c.meetup_id]
    total = conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
    rows = conn.execute(query.order_by(*order).offset(offset).limit(limit)).all()
    return list(rows), int(total)


def my_rsvps(
    conn: sa.Connection, tenant_id: str, member_id: str, meetup_ids: list[str]
) -> dict[str, c.Rsvp]:
    if not meetup_ids:
        return {}
    rows = conn.execute(
        scoped(rsvps, tenant_id).where(
            rsvps.c.member_id == member_id, rsvps.c.meetup_id.in_(meetup_ids)
        )
    )
    found = {}
    for r in rows:
        position = (
            waitlist_position(conn, tenant_id, r.meetup_id, r.ticket)
            if r.seat == "waiting"
            else None
        )
        found[r.meetup_id] = to_rsvp(r, position)
    return found


def attendance_of(conn: sa.Connection, tenant_id: str, meetup_id: str) -> list[c.AttendanceEntry]:
    rows = conn.execute(
        scoped(attendance, tenant_id)
        .where(attendance.c.meetup_id == meetup_id)
        .order_by(attendance.c.recorded_at, attendance.c.key)
    )
    return [
        c.AttendanceEntry(
            member_id=r.member_id,
            visitor_id=r.visitor_id,
            status=r.status,
            substitute=r.substitute,
            recorded_at=r.recorded_at,
            self_checked_in=r.self_checked_in,
        )
        for r in rows
    ]


def draws_of(conn: sa.Connection, tenant_id: str, meetup_id: str) -> list[c.CardDraw]:
    rows = conn.execute(
        scoped(draws, tenant_id).where(draws.c.meetup_id == meetup_id).order_by(draws.c.member_id)
    )
    return [
        c.CardDraw(
            draw_id=r.draw_id,
            member_id=r.member_id,
            card_id=r.card_id,
            title=r.title,
            done_at=r.done_at,
        )
        for r in rows
    ]


def _open_draws(tenant_id: str, hub_id: str, now: datetime) -> sa.Select[Any]:
    """Draws not done of meetups whose next meetup has not ended yet."""
    drawing = meetups.alias("drawing")
    following = meetups.alias("following")
    return (
        sa.select(draws)
        .join(
            drawing,
            sa.and_(
                drawing.c.tenant_id == draws.c.tenant_id, drawing.c.meetup_id == draws.c.meetup_id
            ),
        )
        .join(
            following,
            sa.and_(
                following.c.tenant_id == drawing.c.tenant_id,
                following.c.meetup_id == drawing.c.next_meetup_id,
            ),
        )
        .where(
            draws.c.tenant_id == tenant_id,
            draws.c.hub_id == hub_id,
            draws.c.done_at.is_(None),
            following.c.ends_at > now,
        )
    )


def open_cards(conn: sa.Connection, tenant_id: str, hub_id: str, now: datetime) -> list[c.OpenCard]:
    rows = conn.execute(
        _open_draws(tenant_id, hub_id, now).order_by(draws.c.drawn_at, draws.c.member_id)
    )
    return [
        c.OpenCard(
            draw_id=r.draw_id,
            meetup_id=r.meetup_id,
            member_id=r.member_id,
            card_id=r.card_id,
            title=r.title,
            drawn_at=r.drawn_at,
        )
        for r in rows
    ]


def held_cards(conn: sa.Connection, tenant_id: str, hub_id: str, now: datetime) -> set[str]:
    """Single-holder cards someone still holds (not to be dealt again)."""
    rows = conn.execute(_open_draws(tenant_id, hub_id, now).where(draws.c.single_holder.is_(True)))
    return {r.card_id for r in rows}


def draw_row(conn: sa.Connection, tenant_id: str, draw_id: str) -> Any:
    return conn.execute(scoped(draws, tenant_id).where(draws.c.draw_id == draw_id)).first()


def due_reminders(
    conn: sa.Connection, now: datetime, horizon_hours: int = 24 * 30
) -> list[tuple[Any, int]]:
    """(meetup row, lead hours) of every reminder due and not sent, in every tenant."""
    rows = conn.execute(
        sa.select(meetups).where(
            meetups.c.state == "scheduled",
            meetups.c.starts_at > now,
            meetups.c.starts_at <= now + timedelta(hours=horizon_hours),
        )
    )
    due = []
    for row in rows:
        for lead in row.reminder_hours:
            if lead not in row.reminders_sent and row.starts_at - timedelta(hours=lead) <= now:
                due.append((row, lead))
    return due


def next_reminder_at(conn: sa.Connection, now: datetime) -> datetime | None:
    rows = conn.execute(
        sa.select(meetups.c.starts_at, meetups.c.reminder_hours, meetups.c.reminders_sent).where(
            meetups.c.state == "scheduled", meetups.c.starts_at > now
        )
    )
    times = [
        r.starts_at - timedelta(hours=lead)
        for r in rows
        for lead in r.reminder_hours
        if lead not in r.reminders_sent
    ]
    return min(times) if times else None


def attended(
    conn: sa.Connection, tenant_id: str, hub_id: str, member_id: str, since: datetime
) -> list[str]:
    rows = conn.execute(
        sa.select(attendance.c.meetup_id).where(
            attendance.c.tenant_id == tenant_id,
            attendance.c.hub_id == hub_id,
            attendance.c.member_id == member_id,
            attendance.c.status.in_(("present", "late")),
            attendance.c.starts_at >= since,
        )
    )
    return [r.meetup_id for r in rows]
