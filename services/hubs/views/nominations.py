"""The nominations read model: candidates on their way into a hub, the
objections raised against them (for co-admins' eyes), the decisions, and the
scheduler's work list of windows due to close."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from services.hubs import contract as c
from services.hubs.domain import Hub
from services.runtime.tenancy import scoped
from services.runtime.views import UTCDateTime, keyed_update

metadata = sa.MetaData()

nominations = sa.Table(
    "nominations",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("nomination_id", sa.String(36), primary_key=True),
    sa.Column("hub_id", sa.String(36), nullable=False),
    sa.Column("candidate_id", sa.String(36)),
    sa.Column("invitation_id", sa.String(36)),
    sa.Column("sponsor_id", sa.String(36), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("nominated_at", UTCDateTime, nullable=False),
    sa.Column("window_closes_at", UTCDateTime),
    sa.Column("objection_count", sa.Integer, nullable=False),
    sa.Column("exception_reason", sa.Text),
    sa.Column("decided_at", UTCDateTime),
    sa.Column("decision_reason", sa.Text),
    sa.Column("rule", sa.String(40)),
    sa.Index("ix_nominations_hub", "tenant_id", "hub_id", "status"),
    sa.Index("ix_nominations_invitation", "tenant_id", "invitation_id"),
    sa.Index("ix_nominations_due", "status", "window_closes_at"),
)

objections = sa.Table(
    "objections",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("nomination_id", sa.String(36), primary_key=True),
    sa.Column("objector_id", sa.String(36), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("raised_at", UTCDateTime, nullable=False),
)


def apply(conn: sa.Connection, e: Any) -> None:
    tenant_id = e.tenant_id
    nomination = {"tenant_id": tenant_id, "nomination_id": getattr(e, "nomination_id", None)}
    match e:
        case Hub.CandidateNominated():
            conn.execute(
                nominations.insert().values(
                    **nomination,
                    hub_id=str(e.originator_id),
                    candidate_id=e.candidate_id,
                    invitation_id=e.invitation_id,
                    sponsor_id=e.sponsor_id,
                    status="invited" if e.candidate_id is None else "open",
                    note=e.note,
                    nominated_at=e.at,
                    window_closes_at=e.window_closes_at,
                    objection_count=0,
                    exception_reason=e.exception_reason,
                )
            )
        case Hub.CandidateJoinedNetwork():
            keyed_update(
                conn,
                nominations,
                nomination,
                candidate_id=e.member_id,
                window_closes_at=e.window_closes_at,
                status="open",
            )
        case Hub.ObjectionRaised():
            conn.execute(
                objections.insert().values(
                    **nomination, objector_id=e.objector_id, reason=e.reason, raised_at=e.at
                )
            )
            keyed_update(
                conn, nominations, nomination, objection_count=nominations.c.objection_count + 1
            )
        case Hub.ObjectionWindowClosed():
            if e.outcome == "awaiting_decision":
                keyed_update(conn, nominations, nomination, status="awaiting_decision")
        case Hub.MemberAdmitted():
            if e.nomination_id is not None:
                keyed_update(
                    conn,
                    nominations,
                    nomination,
                    status="admitted",
                    decided_at=e.at,
                    exception_reason=e.exception_reason,
                )
        case Hub.AdmissionRejected():
            keyed_update(
                conn,
                nominations,
                nomination,
                status="rejected",
                decided_at=e.at,
                decision_reason=e.reason,
                rule=e.rule,
            )


# -- queries -------------------------------------------------------------------


def list_nominations(
    conn: sa.Connection,
    tenant_id: str,
    hub_id: str,
    statuses: Iterable[str],
    with_objections: bool,
    nomination_id: str | None = None,
) -> list[c.Nomination]:
    query = scoped(nominations, tenant_id).where(nominations.c.hub_id == hub_id)
    statuses = list(statuses)
    if statuses:
        query = query.where(nominations.c.status.in_(statuses))
    if nomination_id is not None:
        query = query.where(nominations.c.nomination_id == nomination_id)
    rows = conn.execute(
        query.order_by(nominations.c.nominated_at, nominations.c.nomination_id)
    ).all()
    by_nomination: dict[str, list[c.Objection]] = {}
    if with_objections and rows:
        found = conn.execute(
            scoped(objections, tenant_id)
            .where(objections.c.nomination_id.in_([r.nomination_id for r in rows]))
            .order_by(objections.c.raised_at)
        )
        for o in found:
            by_nomination.setdefault(o.nomination_id, []).append(
                c.Objection(objector_id=o.objector_id, reason=o.reason, raised_at=o.raised_at)
            )
    return [
        c.Nomination(
            nomination_id=r.nomination_id,
            hub_id=r.hub_id,
            candidate_id=r.candidate_id,
            sponsor_id=r.sponsor_id,
            status=r.status,
            note=r.note,
            nominated_at=r.nominated_at,
            window_closes_at=r.window_closes_at,
            objection_count=r.objection_count,
            objections=by_nomination.get(r.nomination_id, []),
            exception_reason=r.exception_reason,
            decided_at=r.decided_at,
            decision_reason=r.decision_reason,
            rule=r.rule,
        )
        for r in rows
    ]


def invited_by_invitation(conn: sa.Connection, tenant_id: str, invitation_id: str) -> list[Any]:
    """The nominations still waiting for this invitation to be accepted: one
    invitation may stand for the same address nominated to several hubs."""
    return list(
        conn.execute(
            scoped(nominations, tenant_id)
            .where(nominations.c.invitation_id == invitation_id)
            .where(nominations.c.status == "invited")
            .order_by(nominations.c.hub_id, nominations.c.nomination_id)
        )
    )


def due_nominations(conn: sa.Connection, now: datetime, limit: int = 200) -> list[Any]:
    """Open nominations whose objection window has closed, in every tenant
    (the scheduler's work list)."""
    return list(
        conn.execute(
            sa.select(nominations.c.tenant_id, nominations.c.hub_id, nominations.c.nomination_id)
            .where(nominations.c.status == "open", nominations.c.window_closes_at <= now)
            .order_by(nominations.c.window_closes_at)
            .limit(limit)
        ).all()
    )


def next_deadline(conn: sa.Connection) -> datetime | None:
    deadline: datetime | None = conn.execute(
        sa.select(sa.func.min(nominations.c.window_closes_at)).where(nominations.c.status == "open")
    ).scalar()
    if deadline is not None and deadline.tzinfo is None:  # an aggregate loses the column type
        deadline = deadline.replace(tzinfo=UTC)
    return deadline
