"""The hubs read model: each hub with its settings, roles and roster, and its
members (with their godparent and the rules they were admitted under); and
the scheduler's work list of facilitator terms whose days are over."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from services.hubs import contract as c
from services.hubs.domain import Hub, Rules, grandfathered_reason
from services.runtime.tenancy import scoped
from services.runtime.views import UTCDateTime, keyed_update

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
    sa.Column("facilitator_term_ends_at", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

hub_members = sa.Table(
    "hub_members",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("hub_id", sa.String(36), primary_key=True),
    sa.Column("member_id", sa.String(36), primary_key=True),
    sa.Column("sponsor_id", sa.String(36)),
    sa.Column("admitted_at", UTCDateTime, nullable=False),
    sa.Column("rules_version", sa.Integer, nullable=False),
    sa.Column("exception_reason", sa.Text),
    sa.Column("is_co_admin", sa.Boolean, nullable=False),
    sa.Index("ix_hub_members_member", "tenant_id", "member_id"),
)


def apply(conn: sa.Connection, e: Any) -> None:
    tenant_id, hub_id = e.tenant_id, str(e.originator_id)
    hub = {"tenant_id": tenant_id, "hub_id": hub_id}
    match e:
        case Hub.Created():
            conn.execute(
                hubs.insert().values(
                    **hub,
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
                    **hub,
                    member_id=e.founder_id,
                    sponsor_id=None,
                    admitted_at=e.at,
                    rules_version=1,
                    is_co_admin=True,
                )
            )
        case Hub.RulesChanged():
            keyed_update(conn, hubs, hub, rules=e.rules, rules_version=e.version)
            for member_id in e.grandfathered:
                keyed_update(
                    conn,
                    hub_members,
                    {**hub, "member_id": member_id},
                    exception_reason=grandfathered_reason(e.version),
                )
        case Hub.MemberAdmitted():
            conn.execute(
                hub_members.insert().values(
                    **hub,
                    member_id=e.member_id,
                    sponsor_id=e.sponsor_id,
                    admitted_at=e.at,
                    rules_version=e.rules_version,
                    exception_reason=e.exception_reason,
                    is_co_admin=False,
                )
            )
            keyed_update(conn, hubs, hub, member_count=hubs.c.member_count + 1)
        case Hub.MemberLeft():
            conn.execute(
                hub_members.delete().where(
                    hub_members.c.tenant_id == tenant_id,
                    hub_members.c.hub_id == hub_id,
                    hub_members.c.member_id == e.member_id,
                )
            )
            row = _hub_row(conn, tenant_id, hub_id)
            values: dict[str, Any] = {
                "member_count": row.member_count - 1,
                "co_admins": [m for m in row.co_admins if m != e.member_id],
                "roster": [m for m in row.roster if m != e.member_id],
            }
            if row.facilitator_id == e.member_id:
                values |= {"facilitator_id": None, "facilitator_term_ends_at": None}
            keyed_update(conn, hubs, hub, **values)
        case Hub.CoAdminAdded() | Hub.CoAdminRemoved():
            added = isinstance(e, Hub.CoAdminAdded)
            row = _hub_row(conn, tenant_id, hub_id)
            admins = [m for m in row.co_admins if m != e.member_id] + (
                [e.member_id] if added else []
            )
            keyed_update(conn, hubs, hub, co_admins=admins)
            keyed_update(conn, hub_members, {**hub, "member_id": e.member_id}, is_co_admin=added)
        case Hub.FacilitatorRosterChanged():
            keyed_update(conn, hubs, hub, roster=list(e.roster))
        case Hub.FacilitatorChanged():
            keyed_update(
                conn,
                hubs,
                hub,
                facilitator_id=e.facilitator_id,
                facilitator_term_ends_at=e.term_ends_at,
                roster=list(e.roster),
            )


def _hub_row(conn: sa.Connection, tenant_id: str, hub_id: str) -> Any:
    return conn.execute(scoped(hubs, tenant_id).where(hubs.c.hub_id == hub_id)).one()


# -- queries -------------------------------------------------------------------


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
        facilitator_term_ends_at=row.facilitator_term_ends_at,
        roster=list(row.roster),
        created_at=row.created_at,
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


def _to_member(r: Any) -> c.HubMember:
    return c.HubMember(
        member_id=r.member_id,
        sponsor_id=r.sponsor_id,
        admitted_at=r.admitted_at,
        rules_version=r.rules_version,
        exception_reason=r.exception_reason,
        is_co_admin=r.is_co_admin,
    )


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
    return c.HubMemberPage(items=[_to_member(r) for r in rows], total=total)


def hub_member(
    conn: sa.Connection, tenant_id: str, hub_id: str, member_id: str
) -> c.HubMember | None:
    row = conn.execute(
        scoped(hub_members, tenant_id).where(
            hub_members.c.hub_id == hub_id, hub_members.c.member_id == member_id
        )
    ).first()
    return _to_member(row) if row is not None else None


def terms_over(conn: sa.Connection, now: datetime, limit: int = 200) -> list[Any]:
    """Hubs whose facilitator's term is over by its days, in every tenant (the
    scheduler's work list)."""
    return list(
        conn.execute(
            sa.select(hubs.c.tenant_id, hubs.c.hub_id)
            .where(hubs.c.facilitator_id.is_not(None), hubs.c.facilitator_term_ends_at <= now)
            .order_by(hubs.c.facilitator_term_ends_at)
            .limit(limit)
        ).all()
    )


def next_term_end(conn: sa.Connection) -> datetime | None:
    end: datetime | None = conn.execute(
        sa.select(sa.func.min(hubs.c.facilitator_term_ends_at)).where(
            hubs.c.facilitator_id.is_not(None)
        )
    ).scalar()
    if end is not None and end.tzinfo is None:  # an aggregate loses the column type
        end = end.replace(tzinfo=UTC)
    return end
