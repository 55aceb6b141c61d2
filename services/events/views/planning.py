"""The planning read models: series (with what their rhythm proposes next),
date polls (slots, tallies, votes) and workshop proposals; and the visitors
invited to each meetup (their names, for the facilitator's attendance list)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from services.events import contract as c
from services.events.domain import DatePoll, MeetupSeries, Visitor, WorkshopProposal
from services.events.domain.calendar import occurrences_after
from services.runtime.tenancy import scoped
from services.runtime.views import UTCDateTime, keyed_update

metadata = sa.MetaData()

series = sa.Table(
    "series",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("series_id", sa.String(36), primary_key=True),
    sa.Column("hub_id", sa.String(36), nullable=False),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("rrule", sa.String(200), nullable=False),
    sa.Column("starts_on", sa.Date, nullable=False),
    sa.Column("start_time", sa.Time, nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("duration_minutes", sa.Integer, nullable=False),
    sa.Column("venue", sa.JSON, nullable=False),
    sa.Column("capacity", sa.Integer),
    sa.Column("rsvp_deadline_hours", sa.Integer, nullable=False),
    sa.Column("reminder_hours", sa.JSON, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Index("ix_series_hub", "tenant_id", "hub_id"),
)

polls = sa.Table(
    "date_polls",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("poll_id", sa.String(36), primary_key=True),
    sa.Column("hub_id", sa.String(36), nullable=False),
    sa.Column("title", sa.String(120), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("duration_minutes", sa.Integer, nullable=False),
    sa.Column("venue", sa.JSON, nullable=False),
    sa.Column("series_id", sa.String(36)),
    sa.Column("slots", sa.JSON, nullable=False),  # slot id -> local start (ISO)
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("chosen_slot_id", sa.String(10)),
    sa.Column("meetup_id", sa.String(36)),
    sa.Column("opened_at", UTCDateTime, nullable=False),
    sa.Index("ix_date_polls_hub", "tenant_id", "hub_id", "state"),
)

votes = sa.Table(
    "poll_votes",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("poll_id", sa.String(36), primary_key=True),
    sa.Column("member_id", sa.String(36), primary_key=True),
    sa.Column("slot_id", sa.String(10), primary_key=True),
    sa.Column("vote", sa.String(12), nullable=False),
)

proposals = sa.Table(
    "workshop_proposals",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("proposal_id", sa.String(36), primary_key=True),
    sa.Column("hub_id", sa.String(36), nullable=False),
    sa.Column("host_id", sa.String(36), nullable=False),
    sa.Column("topic", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("proposed_at", UTCDateTime, nullable=False),
    sa.Column("meetup_id", sa.String(36)),
)

visits = sa.Table(
    "visits",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("meetup_id", sa.String(36), primary_key=True),
    sa.Column("visitor_id", sa.String(36), primary_key=True),
    sa.Column("hub_id", sa.String(36), nullable=False),
    sa.Column("name", sa.String(80), nullable=False),
    sa.Column("invited_by", sa.String(36), nullable=False),
    sa.Column("invited_at", UTCDateTime, nullable=False),
)


def apply(conn: sa.Connection, e: Any) -> None:
    tenant_id, aggregate_id = e.tenant_id, str(e.originator_id)
    match e:
        case MeetupSeries.Created():
            conn.execute(
                series.insert().values(
                    tenant_id=tenant_id,
                    series_id=aggregate_id,
                    hub_id=e.hub_id,
                    name=e.name,
                    rrule=e.rrule,
                    starts_on=e.starts_on,
                    start_time=e.start_time,
                    timezone=e.timezone,
                    duration_minutes=e.duration_minutes,
                    venue=e.venue,
                    capacity=e.capacity,
                    rsvp_deadline_hours=e.rsvp_deadline_hours,
                    reminder_hours=list(e.reminder_hours),
                    active=True,
                )
            )
        case MeetupSeries.Changed():
            keyed_update(
                conn, series, {"tenant_id": tenant_id, "series_id": aggregate_id}, **e.changes
            )
        case DatePoll.Opened():
            conn.execute(
                polls.insert().values(
                    tenant_id=tenant_id,
                    poll_id=aggregate_id,
                    hub_id=e.hub_id,
                    title=e.title,
                    timezone=e.timezone,
                    duration_minutes=e.duration_minutes,
                    venue=e.venue,
                    series_id=e.series_id,
                    slots={k: v.isoformat() for k, v in e.slots.items()},
                    state="open",
                    opened_at=e.timestamp,
                )
            )
        case DatePoll.Voted():
            for slot_id, vote in e.votes.items():
                key = {
                    "tenant_id": tenant_id,
                    "poll_id": aggregate_id,
                    "member_id": e.member_id,
                    "slot_id": slot_id,
                }
                if keyed_update(conn, votes, key, vote=vote) == 0:
                    conn.execute(votes.insert().values(**key, vote=vote))
        case DatePoll.Closed():
            keyed_update(
                conn,
                polls,
                {"tenant_id": tenant_id, "poll_id": aggregate_id},
                state="closed",
                chosen_slot_id=e.slot_id,
                meetup_id=e.meetup_id,
            )
        case WorkshopProposal.Proposed():
            conn.execute(
                proposals.insert().values(
                    tenant_id=tenant_id,
                    proposal_id=aggregate_id,
                    hub_id=e.hub_id,
                    host_id=e.host_id,
                    topic=e.topic,
                    description=e.description,
                    proposed_at=e.at,
                )
            )
        case WorkshopProposal.Scheduled():
            keyed_update(
                conn,
                proposals,
                {"tenant_id": tenant_id, "proposal_id": aggregate_id},
                meetup_id=e.meetup_id,
            )
        case Visitor.Invited():
            visitor = conn.execute(
                scoped(visitor_names, tenant_id).where(visitor_names.c.visitor_id == aggregate_id)
            ).one()
            conn.execute(
                visits.insert().values(
                    tenant_id=tenant_id,
                    meetup_id=e.meetup_id,
                    visitor_id=aggregate_id,
                    hub_id=visitor.hub_id,
                    name=visitor.name,
                    invited_by=e.by,
                    invited_at=e.at,
                )
            )
        case Visitor.Registered():
            conn.execute(
                visitor_names.insert().values(
                    tenant_id=tenant_id, visitor_id=aggregate_id, hub_id=e.hub_id, name=e.name
                )
            )


visitor_names = sa.Table(
    "visitors",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("visitor_id", sa.String(36), primary_key=True),
    sa.Column("hub_id", sa.String(36), nullable=False),
    sa.Column("name", sa.String(80), nullable=False),
)


# -- queries -------------------------------------------------------------------


def to_series(r: Any, now_local: datetime | None) -> c.Series:
    proposed = None
    if r.active and now_local is not None:
        found = occurrences_after(r.rrule, r.starts_on, r.start_time, now_local)
        proposed = found[0] if found else None
    return c.Series(
        series_id=r.series_id,
        hub_id=r.hub_id,
        name=r.name,
        rrule=r.rrule,
        starts_on=r.starts_on,
        start_time=r.start_time,
        timezone=r.timezone,
        duration_minutes=r.duration_minutes,
        venue=c.Venue(**r.venue),
        capacity=r.capacity,
        rsvp_deadline_hours=r.rsvp_deadline_hours,
        reminder_hours=list(r.reminder_hours),
        active=r.active,
        next_local_start=proposed,
    )


def series_row(conn: sa.Connection, tenant_id: str, series_id: str) -> Any:
    return conn.execute(scoped(series, tenant_id).where(series.c.series_id == series_id)).first()


def list_series(conn: sa.Connection, tenant_id: str, hub_id: str) -> list[Any]:
    return list(
        conn.execute(
            scoped(series, tenant_id).where(series.c.hub_id == hub_id).order_by(series.c.name)
        ).all()
    )


def to_poll(conn: sa.Connection, r: Any, member_id: str | None) -> c.DatePoll:
    rows = conn.execute(scoped(votes, r.tenant_id).where(votes.c.poll_id == r.poll_id)).all()
    counts = {slot: {"yes": 0, "if_need_be": 0, "no": 0} for slot in r.slots}
    mine: dict[str, Any] = {}
    for v in rows:
        if v.slot_id in counts:
            counts[v.slot_id][v.vote] += 1
        if v.member_id == member_id:
            mine[v.slot_id] = v.vote
    return c.DatePoll(
        poll_id=r.poll_id,
        hub_id=r.hub_id,
        title=r.title,
        timezone=r.timezone,
        duration_minutes=r.duration_minutes,
        venue=c.Venue(**r.venue),
        series_id=r.series_id,
        slots=[
            c.PollSlot(
                slot_id=slot,
                local_start=datetime.fromisoformat(start),
                yes=counts[slot]["yes"],
                if_need_be=counts[slot]["if_need_be"],
                no=counts[slot]["no"],
            )
            for slot, start in sorted(r.slots.items(), key=lambda item: item[1])
        ],
        state=r.state,
        chosen_slot_id=r.chosen_slot_id,
        meetup_id=r.meetup_id,
        voters=len({v.member_id for v in rows}),
        my_votes=mine,
    )


def poll_row(conn: sa.Connection, tenant_id: str, poll_id: str) -> Any:
    return conn.execute(scoped(polls, tenant_id).where(polls.c.poll_id == poll_id)).first()


def poll_votes(
    conn: sa.Connection, tenant_id: str, poll_id: str, offset: int, limit: int
) -> c.PollVotePage:
    query = scoped(votes, tenant_id).where(votes.c.poll_id == poll_id)
    total = conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
    rows = conn.execute(
        query.order_by(votes.c.member_id, votes.c.slot_id).offset(offset).limit(limit)
    ).all()
    items = [
        c.PollVote(poll_id=r.poll_id, slot_id=r.slot_id, member_id=r.member_id, vote=r.vote)
        for r in rows
    ]
    return c.PollVotePage(items=items, total=int(total))


def list_polls(conn: sa.Connection, tenant_id: str, hub_id: str, state: str | None) -> list[Any]:
    query = scoped(polls, tenant_id).where(polls.c.hub_id == hub_id)
    if state is not None:
        query = query.where(polls.c.state == state)
    return list(conn.execute(query.order_by(polls.c.opened_at.desc())).all())


def to_proposal(r: Any) -> c.WorkshopProposal:
    return c.WorkshopProposal(
        proposal_id=r.proposal_id,
        hub_id=r.hub_id,
        host_id=r.host_id,
        topic=r.topic,
        description=r.description,
        proposed_at=r.proposed_at,
        meetup_id=r.meetup_id,
    )


def list_proposals(conn: sa.Connection, tenant_id: str, hub_id: str) -> list[c.WorkshopProposal]:
    rows = conn.execute(
        scoped(proposals, tenant_id)
        .where(proposals.c.hub_id == hub_id)
        .order_by(proposals.c.proposed_at.desc())
    )
    return [to_proposal(r) for r in rows]


def proposal_row(conn: sa.Connection, tenant_id: str, proposal_id: str) -> Any:
    return conn.execute(
        scoped(proposals, tenant_id).where(proposals.c.proposal_id == proposal_id)
    ).first()


def visits_of(conn: sa.Connection, tenant_id: str, meetup_id: str) -> list[Any]:
    return list(
        conn.execute(
            scoped(visits, tenant_id)
            .where(visits.c.meetup_id == meetup_id)
            .order_by(visits.c.invited_at)
        ).all()
    )
