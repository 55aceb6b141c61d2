"""The local directory: each member's activity code, learnt from identity's
public events (MemberJoined, ProfileCardUpdated) by a tracked reaction — the
one fact about members that the one-per-profession rule needs."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from services.runtime.tenancy import scoped
from services.runtime.views import TrackedTables, keyed_upsert

metadata = sa.MetaData()

member_activities = sa.Table(
    "member_activities",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("member_id", sa.String(36), primary_key=True),
    sa.Column("activity_code", sa.String(40)),
)

DIRECTORY = TrackedTables("directory", metadata)


def record_activity(
    conn: sa.Connection, tenant_id: str, member_id: str, activity_code: str | None
) -> None:
    keyed_upsert(
        conn,
        member_activities,
        {"tenant_id": tenant_id, "member_id": member_id},
        activity_code=activity_code,
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
