"""The rules read model: every version of each hub's rules, who changed them
and why (the history a console shows, and the rules in force at a time)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from services.hubs import contract as c
from services.hubs.domain import Hub
from services.runtime.tenancy import scoped
from services.runtime.views import UTCDateTime

metadata = sa.MetaData()

rules_history = sa.Table(
    "rules_history",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("hub_id", sa.String(36), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("rules", sa.JSON, nullable=False),
    sa.Column("changed_by", sa.String(36)),
    sa.Column("reason", sa.Text),
    sa.Column("changed_at", UTCDateTime, nullable=False),
)


def apply(conn: sa.Connection, e: Any) -> None:
    match e:
        case Hub.Created():
            version, by, reason = 1, e.founder_id, "hub created"
        case Hub.RulesChanged():
            version, by, reason = e.version, e.changed_by, e.reason
        case _:
            return
    conn.execute(
        rules_history.insert().values(
            tenant_id=e.tenant_id,
            hub_id=str(e.originator_id),
            version=version,
            rules=e.rules,
            changed_by=by,
            reason=reason,
            changed_at=e.at,
        )
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
            changed_at=r.changed_at,
        )
        for r in rows
    ]
