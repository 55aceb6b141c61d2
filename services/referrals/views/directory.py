"""What referrals learns from the other services' public events, each kept
by a tracked reaction (a redelivered event changes nothing): the network's
members (identity), the hubs with their members, co-admins and the rule
"referrals only between members who met" (hubs), the hubs each member left
(a member who left every hub of theirs is a former member: identity
publishes no departure from the network), attendance and missions done
(meetups). This service never reads another's tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from services.runtime.tenancy import scoped
from services.runtime.views import TrackedTables, UTCDateTime, keyed_update, keyed_upsert

metadata = sa.MetaData()

members = sa.Table(
    "known_members",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("member_id", sa.String(36), primary_key=True),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("is_tenant_admin", sa.Boolean, nullable=False),
)

hubs = sa.Table(
    "known_hubs",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("hub_id", sa.String(36), primary_key=True),
    sa.Column("co_admins", sa.JSON, nullable=False),
    sa.Column("meeting_days", sa.Integer),  # the rule: None when off
)

hub_members = sa.Table(
    "known_hub_members",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("hub_id", sa.String(36), primary_key=True),
    sa.Column("member_id", sa.String(36), primary_key=True),
    sa.Index("ix_known_hub_members_member", "tenant_id", "member_id"),
)

# hubs a member left (MemberLeft, MemberRemoved); a row goes when they join
# that hub again. A member with departures and no hub left is a former member.
hub_departures = sa.Table(
    "known_hub_departures",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("hub_id", sa.String(36), primary_key=True),
    sa.Column("member_id", sa.String(36), primary_key=True),
)

attendance = sa.Table(
    "attendance",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("meetup_id", sa.String(36), primary_key=True),
    sa.Column("member_id", sa.String(36), primary_key=True),
    sa.Column("hub_id", sa.String(36), nullable=False),
    sa.Column("present", sa.Boolean, nullable=False),  # present or late
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Index("ix_attendance_member", "tenant_id", "member_id", "starts_at"),
    sa.Index("ix_attendance_hub", "tenant_id", "hub_id", "starts_at"),
)

missions = sa.Table(
    "missions_done",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("draw_id", sa.String(36), primary_key=True),
    sa.Column("member_id", sa.String(36), nullable=False),
    sa.Column("hub_id", sa.String(36), nullable=False),
    sa.Column("done_at", UTCDateTime, nullable=False),
    sa.Index("ix_missions_member", "tenant_id", "member_id", "done_at"),
)

MEMBERS = TrackedTables("members", metadata)
HUBS = TrackedTables("hubs", metadata)
MEETUPS = TrackedTables("meetups", metadata)


# -- kept by the reactions -------------------------------------------------------------


def member_joined(conn: sa.Connection, tenant_id: str, member_id: str, roles: list[str]) -> None:
    keyed_upsert(
        conn,
        members,
        {"tenant_id": tenant_id, "member_id": member_id},
        active=True,
        is_tenant_admin="tenant_admin" in roles,
    )


def member_erased(conn: sa.Connection, tenant_id: str, member_id: str) -> None:
    """An erased member (identity's MemberErased) is no longer an active
    member of the network: they give, receive and answer nothing more, and
    reports leave them out of the core and the drifting (docs/erasure.md)."""
    keyed_update(conn, members, {"tenant_id": tenant_id, "member_id": member_id}, active=False)


def erased_among(conn: sa.Connection, tenant_id: str, member_ids: list[str]) -> set[str]:
    """Those of `member_ids` who were erased (`member_erased`)."""
    if not member_ids:
        return set()
    rows = conn.execute(
        sa.select(members.c.member_id).where(
            members.c.tenant_id == tenant_id,
            members.c.member_id.in_(member_ids),
            members.c.active.is_(False),
        )
    )
    return {r.member_id for r in rows}


def roles_changed(conn: sa.Connection, tenant_id: str, member_id: str, roles: list[str]) -> None:
    keyed_update(
        conn,
        members,
        {"tenant_id": tenant_id, "member_id": member_id},
        is_tenant_admin="tenant_admin" in roles,
    )


def hub_created(conn: sa.Connection, tenant_id: str, hub_id: str, founder_id: str) -> None:
    keyed_upsert(
        conn,
        hubs,
        {"tenant_id": tenant_id, "hub_id": hub_id},
        co_admins=[founder_id],
        meeting_days=None,
    )
    join_hub(conn, tenant_id, hub_id, founder_id)


def join_hub(conn: sa.Connection, tenant_id: str, hub_id: str, member_id: str) -> None:
    key = {"tenant_id": tenant_id, "hub_id": hub_id, "member_id": member_id}
    keyed_upsert(conn, hub_members, key)
    conn.execute(hub_departures.delete().where(*(hub_departures.c[k] == v for k, v in key.items())))


def leave_hub(conn: sa.Connection, tenant_id: str, hub_id: str, member_id: str) -> None:
    conn.execute(
        hub_members.delete().where(
            hub_members.c.tenant_id == tenant_id,
            hub_members.c.hub_id == hub_id,
            hub_members.c.member_id == member_id,
        )
    )
    keyed_upsert(
        conn, hub_departures, {"tenant_id": tenant_id, "hub_id": hub_id, "member_id": member_id}
    )
    set_co_admin(conn, tenant_id, hub_id, member_id, False)


def set_co_admin(
    conn: sa.Connection, tenant_id: str, hub_id: str, member_id: str, on: bool
) -> None:
    row = conn.execute(scoped(hubs, tenant_id).where(hubs.c.hub_id == hub_id)).first()
    if row is None:
        return
    admins = [m for m in row.co_admins if m != member_id] + ([member_id] if on else [])
    keyed_update(conn, hubs, {"tenant_id": tenant_id, "hub_id": hub_id}, co_admins=admins)


def set_rule(conn: sa.Connection, tenant_id: str, hub_id: str, meeting_days: int | None) -> None:
    keyed_update(conn, hubs, {"tenant_id": tenant_id, "hub_id": hub_id}, meeting_days=meeting_days)


def attended(
    conn: sa.Connection,
    tenant_id: str,
    hub_id: str,
    meetup_id: str,
    member_id: str,
    present: bool,
    starts_at: datetime,
) -> None:
    keyed_upsert(
        conn,
        attendance,
        {"tenant_id": tenant_id, "meetup_id": meetup_id, "member_id": member_id},
        hub_id=hub_id,
        present=present,
        starts_at=starts_at,
    )


def mission_done(
    conn: sa.Connection, tenant_id: str, hub_id: str, draw_id: str, member_id: str, at: datetime
) -> None:
    keyed_upsert(
        conn,
        missions,
        {"tenant_id": tenant_id, "draw_id": draw_id},
        member_id=member_id,
        hub_id=hub_id,
        done_at=at,
    )


# -- read by the handlers -----------------------------------------------------------


def is_known(conn: sa.Connection, tenant_id: str, member_id: str) -> bool:
    """A member of the tenant, present or former."""
    row = conn.execute(scoped(members, tenant_id).where(members.c.member_id == member_id)).first()
    return row is not None


def is_active_member(conn: sa.Connection, tenant_id: str, member_id: str) -> bool:
    row = conn.execute(scoped(members, tenant_id).where(members.c.member_id == member_id)).first()
    return bool(row is not None and row.active)


def formers_among(conn: sa.Connection, tenant_id: str, member_ids: list[str]) -> set[str]:
    """Those of `member_ids` who are former members: they left (or were
    removed from) every hub they belonged to. Identity publishes no departure
    from the network; a member who never joined a hub is not a former one."""
    if not member_ids:
        return set()
    left = {
        r.member_id
        for r in conn.execute(
            sa.select(hub_departures.c.member_id).where(
                hub_departures.c.tenant_id == tenant_id,
                hub_departures.c.member_id.in_(member_ids),
            )
        )
    }
    if not left:
        return set()
    still = {
        r.member_id
        for r in conn.execute(
            sa.select(hub_members.c.member_id).where(
                hub_members.c.tenant_id == tenant_id, hub_members.c.member_id.in_(sorted(left))
            )
        )
    }
    return left - still


def is_former(conn: sa.Connection, tenant_id: str, member_id: str) -> bool:
    return member_id in formers_among(conn, tenant_id, [member_id])


def active_among(conn: sa.Connection, tenant_id: str, member_ids: list[str]) -> list[str]:
    """Those of `member_ids` who are members of the network and not former
    members (`formers_among`), in the order given."""
    if not member_ids:
        return []
    rows = conn.execute(
        sa.select(members.c.member_id).where(
            members.c.tenant_id == tenant_id,
            members.c.member_id.in_(member_ids),
            members.c.active.is_(True),
        )
    )
    known = {r.member_id for r in rows} - formers_among(conn, tenant_id, member_ids)
    return [m for m in member_ids if m in known]


def is_tenant_admin(conn: sa.Connection, tenant_id: str, member_id: str) -> bool:
    row = conn.execute(scoped(members, tenant_id).where(members.c.member_id == member_id)).first()
    return bool(row is not None and row.is_tenant_admin)


def hub_row(conn: sa.Connection, tenant_id: str, hub_id: str) -> Any:
    return conn.execute(scoped(hubs, tenant_id).where(hubs.c.hub_id == hub_id)).first()


def hubs_of(conn: sa.Connection, tenant_id: str, member_id: str) -> list[str]:
    rows = conn.execute(
        sa.select(hub_members.c.hub_id).where(
            hub_members.c.tenant_id == tenant_id, hub_members.c.member_id == member_id
        )
    )
    return [r.hub_id for r in rows]


def members_of(conn: sa.Connection, tenant_id: str, hub_id: str) -> list[str]:
    rows = conn.execute(
        sa.select(hub_members.c.member_id).where(
            hub_members.c.tenant_id == tenant_id, hub_members.c.hub_id == hub_id
        )
    )
    return sorted(r.member_id for r in rows)


def admin_of(conn: sa.Connection, tenant_id: str, member_id: str) -> list[str]:
    """The hubs of which `member_id` is a co-admin."""
    rows = conn.execute(scoped(hubs, tenant_id))
    return [r.hub_id for r in rows if member_id in r.co_admins]


def co_attended(conn: sa.Connection, tenant_id: str, hub_id: str, a: str, b: str) -> list[datetime]:
    """When `a` and `b` were both present at one of the hub's meetups."""
    first = attendance.alias("a")
    second = attendance.alias("b")
    rows = conn.execute(
        sa.select(first.c.starts_at)
        .join(
            second,
            sa.and_(
                second.c.tenant_id == first.c.tenant_id,
                second.c.meetup_id == first.c.meetup_id,
            ),
        )
        .where(
            first.c.tenant_id == tenant_id,
            first.c.hub_id == hub_id,
            first.c.member_id == a,
            second.c.member_id == b,
            first.c.present.is_(True),
            second.c.present.is_(True),
        )
    )
    return [r.starts_at for r in rows]


def meetup_attendance(conn: sa.Connection, tenant_id: str, meetup_id: str) -> list[Any]:
    """Who was recorded at a meetup of the network (present or not)."""
    return list(
        conn.execute(scoped(attendance, tenant_id).where(attendance.c.meetup_id == meetup_id))
    )


def attendances(conn: sa.Connection, tenant_id: str, hub_id: str) -> dict[str, list[datetime]]:
    rows = conn.execute(
        sa.select(attendance.c.member_id, attendance.c.starts_at).where(
            attendance.c.tenant_id == tenant_id,
            attendance.c.hub_id == hub_id,
            attendance.c.present.is_(True),
        )
    )
    found: dict[str, list[datetime]] = {}
    for r in rows:
        found.setdefault(r.member_id, []).append(r.starts_at)
    return found
