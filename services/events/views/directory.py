"""The local hub directory: hubs, their members, co-admins, facilitator and
the rules this service needs (max_visits), learnt from hubs' public events by
a tracked reaction. Authorisation reads it: current state, never a token's
claims about hubs."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from services.runtime.tenancy import scoped
from services.runtime.views import TrackedTables, keyed_update

metadata = sa.MetaData()

hubs = sa.Table(
    "known_hubs",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("hub_id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("co_admins", sa.JSON, nullable=False),
    sa.Column("facilitator_id", sa.String(36)),
    sa.Column("max_visits", sa.Integer, nullable=False),
)

members = sa.Table(
    "known_hub_members",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("hub_id", sa.String(36), primary_key=True),
    sa.Column("member_id", sa.String(36), primary_key=True),
    sa.Index("ix_known_hub_members_member", "tenant_id", "member_id"),
)

DIRECTORY = TrackedTables("hubs-directory", metadata)


def hub_created(
    conn: sa.Connection, tenant_id: str, hub_id: str, name: str, founder_id: str
) -> None:
    conn.execute(
        hubs.insert().values(
            tenant_id=tenant_id,
            hub_id=hub_id,
            name=name,
            co_admins=[founder_id],
            facilitator_id=None,
            max_visits=3,
        )
    )
    add_member(conn, tenant_id, hub_id, founder_id)


def add_member(conn: sa.Connection, tenant_id: str, hub_id: str, member_id: str) -> None:
    exists = conn.execute(
        scoped(members, tenant_id).where(
            members.c.hub_id == hub_id, members.c.member_id == member_id
        )
    ).first()
    if exists is None:
        conn.execute(
            members.insert().values(tenant_id=tenant_id, hub_id=hub_id, member_id=member_id)
        )


def remove_member(conn: sa.Connection, tenant_id: str, hub_id: str, member_id: str) -> None:
    conn.execute(
        members.delete().where(
            members.c.tenant_id == tenant_id,
            members.c.hub_id == hub_id,
            members.c.member_id == member_id,
        )
    )
    row = hub_row(conn, tenant_id, hub_id)
    if row is not None:
        values: dict[str, Any] = {"co_admins": [m for m in row.co_admins if m != member_id]}
        if row.facilitator_id == member_id:
            values["facilitator_id"] = None
        keyed_update(conn, hubs, {"tenant_id": tenant_id, "hub_id": hub_id}, **values)


def set_co_admin(
    conn: sa.Connection, tenant_id: str, hub_id: str, member_id: str, on: bool
) -> None:
    row = hub_row(conn, tenant_id, hub_id)
    if row is None:
        return
    admins = [m for m in row.co_admins if m != member_id] + ([member_id] if on else [])
    keyed_update(conn, hubs, {"tenant_id": tenant_id, "hub_id": hub_id}, co_admins=admins)


def update_hub(conn: sa.Connection, tenant_id: str, hub_id: str, **values: Any) -> None:
    keyed_update(conn, hubs, {"tenant_id": tenant_id, "hub_id": hub_id}, **values)


def hub_row(conn: sa.Connection, tenant_id: str, hub_id: str) -> Any:
    return conn.execute(scoped(hubs, tenant_id).where(hubs.c.hub_id == hub_id)).first()


def is_member(conn: sa.Connection, tenant_id: str, hub_id: str, member_id: str) -> bool:
    return (
        conn.execute(
            scoped(members, tenant_id).where(
                members.c.hub_id == hub_id, members.c.member_id == member_id
            )
        ).first()
        is not None
    )


def hub_members(conn: sa.Connection, tenant_id: str, hub_id: str) -> list[str]:
    rows = conn.execute(
        sa.select(members.c.member_id).where(
            members.c.tenant_id == tenant_id, members.c.hub_id == hub_id
        )
    )
    return sorted(r.member_id for r in rows)


def member_hubs(conn: sa.Connection, tenant_id: str, member_id: str) -> list[str]:
    rows = conn.execute(
        sa.select(members.c.hub_id).where(
            members.c.tenant_id == tenant_id, members.c.member_id == member_id
        )
    )
    return [r.hub_id for r in rows]
