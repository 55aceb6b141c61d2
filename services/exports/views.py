"""Exports' tables, in the service's own database (no event store: an
export is a job and its archive, not a history):

* `exports`: one row per export, its state and progress. `active_key` is
  set while it is queued or running (`<tenant>:network` or
  `<tenant>:me:<member>`) and unique, so that two replicas starting the same
  export at once make one;
* `export_chunks`: a ready archive, in chunks of at most CHUNK_BYTES, kept
  until the export expires (24 hours after it is ready) or a member of its
  network is erased. Every replica reads them: any replica serves a download.

Every query of a tenant's rows goes through `scoped(table, tenant_id)`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from services.exports import contract as c
from services.runtime.tenancy import scoped
from services.runtime.views import UTCDateTime

metadata = sa.MetaData()

exports = sa.Table(
    "exports",
    metadata,
    sa.Column("export_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(36), nullable=False, index=True),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("progress", sa.Float, nullable=False, default=0.0),
    sa.Column("requested_by", sa.String(36), nullable=False),
    sa.Column("requested_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime),
    sa.Column("ready_at", UTCDateTime),
    sa.Column("expires_at", UTCDateTime),
    sa.Column("size", sa.BigInteger),
    sa.Column("chunks", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("active_key", sa.String(120), unique=True),
)

chunks = sa.Table(
    "export_chunks",
    metadata,
    sa.Column("export_id", sa.String(36), primary_key=True),
    sa.Column("n", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.String(36), nullable=False, index=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

OPEN = ("queued", "running")


def active_key(tenant_id: str, scope: str, member_id: str) -> str:
    return f"{tenant_id}:network" if scope == "network" else f"{tenant_id}:me:{member_id}"


def get(conn: sa.Connection, tenant_id: str, export_id: str) -> Any:
    return conn.execute(scoped(exports, tenant_id).where(exports.c.export_id == export_id)).first()


def active(conn: sa.Connection, key: str) -> Any:
    return conn.execute(sa.select(exports).where(exports.c.active_key == key)).first()


def started_since(
    conn: sa.Connection, tenant_id: str, scope: str, since: datetime, member_id: str | None = None
) -> tuple[int, datetime | None]:
    """How many exports of `scope` the network (or, given `member_id`, that
    requester) started since `since`, whatever became of them, and when
    the oldest of them was started."""
    e = exports.c
    query = scoped(exports, tenant_id).where((e.scope == scope) & (e.requested_at >= since))
    if member_id is not None:
        query = query.where(e.requested_by == member_id)
    rows = query.subquery()
    count, oldest = conn.execute(sa.select(sa.func.count(), sa.func.min(rows.c.requested_at))).one()
    return int(count), oldest  # min() keeps the column's type: an aware UTC time


def visible(tenant_id: str, member_id: str, admin: bool) -> sa.Select[Any]:
    """The exports a member may see: their own `me` exports, and the
    network's exports if they are a tenant admin."""
    mine = (exports.c.scope == "me") & (exports.c.requested_by == member_id)
    where = mine | (exports.c.scope == "network") if admin else mine
    return scoped(exports, tenant_id).where(where)


def page(
    conn: sa.Connection, tenant_id: str, member_id: str, admin: bool, offset: int, limit: int
) -> tuple[list[Any], int]:
    query = visible(tenant_id, member_id, admin)
    total = conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
    rows = conn.execute(
        query.order_by(exports.c.requested_at.desc(), exports.c.export_id)
        .offset(offset)
        .limit(limit)
    ).all()
    return list(rows), int(total)


def reply(row: Any, token: str | None = None, token_expires: datetime | None = None) -> c.Export:
    return c.Export(
        export_id=row.export_id,
        tenant_id=row.tenant_id,
        scope=row.scope,
        status=row.status,
        progress=row.progress,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        started_at=row.started_at,
        ready_at=row.ready_at,
        expires_at=row.expires_at,
        size=row.size,
        error=row.error,
        download_token=token,
        download_expires_at=token_expires,
    )


def chunk(conn: sa.Connection, tenant_id: str, export_id: str, n: int) -> bytes | None:
    data = conn.execute(
        sa.select(chunks.c.data).where(
            (chunks.c.tenant_id == tenant_id)
            & (chunks.c.export_id == export_id)
            & (chunks.c.n == n)
        )
    ).scalar_one_or_none()
    return None if data is None else bytes(data)


def drop_chunks(conn: sa.Connection, export_id: str) -> None:
    conn.execute(chunks.delete().where(chunks.c.export_id == export_id))


def get_row(engine: sa.Engine, export_id: str) -> Any:
    """An export's row whatever its tenant: for the job only."""
    with engine.connect() as conn:
        return conn.execute(sa.select(exports).where(exports.c.export_id == export_id)).first()
