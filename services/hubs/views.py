"""Hubs' read models, projected from the Hub aggregate's events, and the local
directory of members' activities kept from identity's public events (the one
fact about members that the one-per-profession rule needs)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from services.hubs import contract as c
from services.hubs.domain import Hub, Rules, grandfathered_reason
from services.runtime.tenancy import scoped

metadata = sa.MetaData()

hubs = sa.Table(
    "hubs",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("hub_id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("area", sa.JSON, nullable=False),
    sa.Column("rules", sa.JSON, nullable=False),
    sa.Column("rules_version", sa.Integer, nullable=False),
    sa.Column("member_count", sa.Integer, nullable=False),
    sa.Column("co_admins", sa.JSON, nullable=False),
    sa.Column("roster", sa.JSON, nullable=False),
    sa.Column("facilitator_id", sa.String(36)),
    sa.Column("facilitator_term_ends_at", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

hub_members = sa.Table(
    "hub_members",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("hub_id", sa.String(36), primary_key=True),
    sa.Column("member_id", sa.String(36), primary_key=True),
    sa.Column("sponsor_id", sa.String(36)),
    sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("rules_version", sa.Integer, nullable=False),
    sa.Column("exception_reason", sa.Text),
    sa.Column("is_co_admin", sa.Boolean, nullable=False),
    sa.Index("ix_hub_members_member", "tenant_id", "member_id"),
)

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
    sa.Column("nominated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("window_closes_at", sa.DateTime(timezone=True)),
    sa.Column("objection_count", sa.Integer, nullable=False),
    sa.Column("exception_reason", sa.Text),
    sa.Column("decided_at", sa.DateTime(timezone=True)),
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
    sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
)

rules_history = sa.Table(
    "rules_history",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("hub_id", sa.String(36), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("rules", sa.JSON, nullable=False),
    sa.Column("changed_by", sa.String(36)),
    sa.Column("reason", sa.Text),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
)

# Kept by a reaction to identity's events, not by the projection above.
directory_metadata = sa.MetaData()
member_activities = sa.Table(
    "member_activities",
    directory_metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("member_id", sa.String(36), primary_key=True),
    sa.Column("activity_code", sa.String(40)),
)


# -- projection ----------------------------------------------------------------


class HubViews:
    name = "hubs-views"
    metadata = metadata

    def apply(self, conn: sa.Connection, e: Any) -> None:
        hub_id = str(e.originator_id)
        tenant_id = e.tenant_id
        match e:
            case Hub.Created():
                conn.execute(
                    hubs.insert().values(
                        tenant_id=tenant_id,
                        hub_id=hub_id,
                        name=e.name,
                        kind=e.kind,
                        area=e.area,
                        rules=e.rules,
                        rules_version=1,
                        member_count=1,
                        co_admins=[e.founder_id],
                        roster=[],
                        created_at=e.at,
                    )
                )
                conn.execute(
                    hub_members.insert().values(
                        tenant_id=tenant_id,
                        hub_id=hub_id,
                        member_id=e.founder_id,
                        sponsor_id=None,
                        admitted_at=e.at,
                        rules_version=1,
                        is_co_admin=True,
                    )
                )
                self._history(
                    conn, tenant_id, hub_id, 1, e.rules, e.founder_id, "hub created", e.at
                )
            case Hub.RulesChanged():
                _update_hub(conn, tenant_id, hub_id, rules=e.rules, rules_version=e.version)
                for member_id in e.grandfathered:
                    conn.execute(
                        hub_members.update()
                        .where(hub_members.c.tenant_id == tenant_id)
                        .where(hub_members.c.hub_id == hub_id)
                        .where(hub_members.c.member_id == member_id)
                        .values(exception_reason=grandfathered_reason(e.version))
                    )
                self._history(
                    conn, tenant_id, hub_id, e.version, e.rules, e.changed_by, e.reason, e.at
                )
            case Hub.CandidateNominated():
                conn.execute(
                    nominations.insert().values(
                        tenant_id=tenant_id,
                        nomination_id=e.nomination_id,
                        hub_id=hub_id,
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
                _update_nomination(
                    conn,
                    tenant_id,
                    e.nomination_id,
                    candidate_id=e.member_id,
                    window_closes_at=e.window_closes_at,
                    status="open",
                )
            case Hub.ObjectionRaised():
                conn.execute(
                    objections.insert().values(
                        tenant_id=tenant_id,
                        nomination_id=e.nomination_id,
                        objector_id=e.objector_id,
                        reason=e.reason,
                        raised_at=e.at,
                    )
                )
                _update_nomination(
                    conn,
                    tenant_id,
                    e.nomination_id,
                    objection_count=nominations.c.objection_count + 1,
                )
            case Hub.ObjectionWindowClosed():
                if e.outcome == "awaiting_decision":
                    _update_nomination(conn, tenant_id, e.nomination_id, status="awaiting_decision")
            case Hub.MemberAdmitted():
                conn.execute(
                    hub_members.insert().values(
                        tenant_id=tenant_id,
                        hub_id=hub_id,
                        member_id=e.member_id,
                        sponsor_id=e.sponsor_id,
                        admitted_at=e.at,
                        rules_version=e.rules_version,
                        exception_reason=e.exception_reason,
                        is_co_admin=False,
                    )
                )
                _update_hub(conn, tenant_id, hub_id, member_count=hubs.c.member_count + 1)
                if e.nomination_id is not None:
                    _update_nomination(
                        conn,
                        tenant_id,
                        e.nomination_id,
                        status="admitted",
                        decided_at=e.at,
                        exception_reason=e.exception_reason,
                    )
            case Hub.AdmissionRejected():
                _update_nomination(
                    conn,
                    tenant_id,
                    e.nomination_id,
                    status="rejected",
                    decided_at=e.at,
                    decision_reason=e.reason,
                    rule=e.rule,
                )
            case Hub.MemberLeft():
                conn.execute(
                    hub_members.delete()
                    .where(hub_members.c.tenant_id == tenant_id)
                    .where(hub_members.c.hub_id == hub_id)
                    .where(hub_members.c.member_id == e.member_id)
                )
                row = _hub_row(conn, tenant_id, hub_id)
                values: dict[str, Any] = {
                    "member_count": row.member_count - 1,
                    "co_admins": [m for m in row.co_admins if m != e.member_id],
                    "roster": [m for m in row.roster if m != e.member_id],
                }
                if row.facilitator_id == e.member_id:
                    values |= {"facilitator_id": None, "facilitator_term_ends_at": None}
                _update_hub(conn, tenant_id, hub_id, **values)
            case Hub.CoAdminAdded() | Hub.CoAdminRemoved():
                added = isinstance(e, Hub.CoAdminAdded)
                row = _hub_row(conn, tenant_id, hub_id)
                admins = [m for m in row.co_admins if m != e.member_id] + (
                    [e.member_id] if added else []
                )
                _update_hub(conn, tenant_id, hub_id, co_admins=admins)
                conn.execute(
                    hub_members.update()
                    .where(hub_members.c.tenant_id == tenant_id)
                    .where(hub_members.c.hub_id == hub_id)
                    .where(hub_members.c.member_id == e.member_id)
                    .values(is_co_admin=added)
                )
            case Hub.FacilitatorRosterChanged():
                _update_hub(conn, tenant_id, hub_id, roster=list(e.roster))
            case Hub.FacilitatorChanged():
                _update_hub(
                    conn,
                    tenant_id,
                    hub_id,
                    facilitator_id=e.facilitator_id,
                    facilitator_term_ends_at=e.term_ends_at,
                    roster=list(e.roster),
                )

    @staticmethod
    def _history(
        conn: sa.Connection,
        tenant_id: str,
        hub_id: str,
        version: int,
        rules: dict[str, Any],
        by: str | None,
        reason: str | None,
        at: datetime,
    ) -> None:
        conn.execute(
            rules_history.insert().values(
                tenant_id=tenant_id,
                hub_id=hub_id,
                version=version,
                rules=rules,
                changed_by=by,
                reason=reason,
                changed_at=at,
            )
        )


def _hub_row(conn: sa.Connection, tenant_id: str, hub_id: str) -> Any:
    return conn.execute(scoped(hubs, tenant_id).where(hubs.c.hub_id == hub_id)).one()


def _update_hub(conn: sa.Connection, tenant_id: str, hub_id: str, **values: Any) -> None:
    conn.execute(
        hubs.update()
        .where(hubs.c.tenant_id == tenant_id)
        .where(hubs.c.hub_id == hub_id)
        .values(**values)
    )


def _update_nomination(
    conn: sa.Connection, tenant_id: str, nomination_id: str, **values: Any
) -> None:
    conn.execute(
        nominations.update()
        .where(nominations.c.tenant_id == tenant_id)
        .where(nominations.c.nomination_id == nomination_id)
        .values(**values)
    )


# -- the members' activities (reaction to identity's events) ---------------------


def record_activity(
    conn: sa.Connection, tenant_id: str, member_id: str, activity_code: str | None
) -> None:
    updated = conn.execute(
        member_activities.update()
        .where(member_activities.c.tenant_id == tenant_id)
        .where(member_activities.c.member_id == member_id)
        .values(activity_code=activity_code)
    )
    if updated.rowcount == 0:
        conn.execute(
            member_activities.insert().values(
                tenant_id=tenant_id, member_id=member_id, activity_code=activity_code
            )
        )


def activities(
    conn: sa.Connection, tenant_id: str, member_ids: Iterable[str]
) -> dict[str, str | None]:
    ids = list(member_ids)
    if not ids:
        return {}
    rows = conn.execute(
        scoped(member_activities, tenant_id).where(member_activities.c.member_id.in_(ids))
    )
    return {r.member_id: r.activity_code for r in rows}


# -- queries -------------------------------------------------------------------


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _area(d: dict[str, Any]) -> c.Area:
    centre = c.Point(lat=d["lat"], lon=d["lon"]) if d.get("lat") is not None else None
    return c.Area(
        centre=centre, radius_km=d.get("radius_km"), postcodes=list(d.get("postcodes") or ())
    )


def to_hub(row: Any) -> c.Hub:
    rules = Rules.from_dict(row.rules)
    return c.Hub(
        hub_id=row.hub_id,
        tenant_id=row.tenant_id,
        name=row.name,
        kind=row.kind,
        area=_area(row.area),
        rules=c.Rules(**row.rules),
        rules_version=row.rules_version,
        member_count=row.member_count,
        co_admin_ids=list(row.co_admins),
        facilitator_id=row.facilitator_id,
        facilitator_term_ends_at=_utc(row.facilitator_term_ends_at),
        roster=list(row.roster),
        created_at=_utc(row.created_at),  # type: ignore[arg-type]
        non_competition_in_force=rules.non_competition_in_force(row.member_count),
    )


def get_hub(conn: sa.Connection, tenant_id: str, hub_id: str) -> c.Hub | None:
    row = conn.execute(scoped(hubs, tenant_id).where(hubs.c.hub_id == hub_id)).first()
    return to_hub(row) if row else None


def list_hubs(conn: sa.Connection, tenant_id: str, member_id: str | None) -> list[c.Hub]:
    query = scoped(hubs, tenant_id)
    if member_id is not None:
        mine = sa.select(hub_members.c.hub_id).where(
            hub_members.c.tenant_id == tenant_id, hub_members.c.member_id == member_id
        )
        query = query.where(hubs.c.hub_id.in_(mine))
    return [to_hub(r) for r in conn.execute(query.order_by(hubs.c.name, hubs.c.hub_id))]


def list_members(
    conn: sa.Connection, tenant_id: str, hub_id: str, offset: int, limit: int
) -> c.HubMemberPage:
    query = scoped(hub_members, tenant_id).where(hub_members.c.hub_id == hub_id)
    total = conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
    rows = conn.execute(
        query.order_by(hub_members.c.admitted_at, hub_members.c.member_id)
        .offset(offset)
        .limit(limit)
    )
    return c.HubMemberPage(
        items=[
            c.HubMember(
                member_id=r.member_id,
                sponsor_id=r.sponsor_id,
                admitted_at=_utc(r.admitted_at),  # type: ignore[arg-type]
                rules_version=r.rules_version,
                exception_reason=r.exception_reason,
                is_co_admin=r.is_co_admin,
            )
            for r in rows
        ],
        total=total,
    )


def hub_member(
    conn: sa.Connection, tenant_id: str, hub_id: str, member_id: str
) -> c.HubMember | None:
    row = conn.execute(
        scoped(hub_members, tenant_id).where(
            hub_members.c.hub_id == hub_id, hub_members.c.member_id == member_id
        )
    ).first()
    if row is None:
        return None
    return c.HubMember(
        member_id=row.member_id,
        sponsor_id=row.sponsor_id,
        admitted_at=_utc(row.admitted_at),  # type: ignore[arg-type]
        rules_version=row.rules_version,
        exception_reason=row.exception_reason,
        is_co_admin=row.is_co_admin,
    )


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
                c.Objection(objector_id=o.objector_id, reason=o.reason, raised_at=_utc(o.raised_at))  # type: ignore[arg-type]
            )
    return [
        c.Nomination(
            nomination_id=r.nomination_id,
            hub_id=r.hub_id,
            candidate_id=r.candidate_id,
            sponsor_id=r.sponsor_id,
            status=r.status,
            note=r.note,
            nominated_at=_utc(r.nominated_at),  # type: ignore[arg-type]
            window_closes_at=_utc(r.window_closes_at),
            objection_count=r.objection_count,
            objections=by_nomination.get(r.nomination_id, []),
            exception_reason=r.exception_reason,
            decided_at=_utc(r.decided_at),
            decision_reason=r.decision_reason,
            rule=r.rule,
        )
        for r in rows
    ]


def nomination_for_invitation(conn: sa.Connection, tenant_id: str, invitation_id: str) -> Any:
    return conn.execute(
        scoped(nominations, tenant_id).where(nominations.c.invitation_id == invitation_id)
    ).first()


def due_nominations(conn: sa.Connection, now: datetime, limit: int = 200) -> list[Any]:
    """Open nominations whose objection window has closed, in every tenant
    (the scheduler's work list)."""
    return conn.execute(
        sa.select(nominations.c.tenant_id, nominations.c.hub_id, nominations.c.nomination_id)
        .where(nominations.c.status == "open", nominations.c.window_closes_at <= now)
        .order_by(nominations.c.window_closes_at)
        .limit(limit)
    ).all()


def next_deadline(conn: sa.Connection) -> datetime | None:
    return _utc(
        conn.execute(
            sa.select(sa.func.min(nominations.c.window_closes_at)).where(
                nominations.c.status == "open"
            )
        ).scalar()
    )


def rules_versions(
    conn: sa.Connection, tenant_id: str, hub_id: str, at: datetime | None
) -> list[c.RulesVersion]:
    query = scoped(rules_history, tenant_id).where(rules_history.c.hub_id == hub_id)
    if at is not None:
        query = query.where(rules_history.c.changed_at <= at)
    rows = conn.execute(query.order_by(rules_history.c.version)).all()
    if at is not None:
        rows = rows[-1:]
    return [
        c.RulesVersion(
            version=r.version,
            rules=c.Rules(**r.rules),
            changed_by=r.changed_by,
            reason=r.reason,
            changed_at=_utc(r.changed_at),  # type: ignore[arg-type]
        )
        for r in rows
    ]
