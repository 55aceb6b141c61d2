"""Webhooks' read models and delivery bookkeeping, in the service's views
database:

* `endpoints`: projected from the Endpoint aggregate's events (`EndpointViews`);
* `endpoint_owners`: whose credential each endpoint depends on (its
  creator, a member or `key:<id>`, until adopted), projected on its own
  (`EndpointOwners`, a projection of its own so that a database made before
  it is filled from the start of the events);
* `deliveries` and `attempts`: written by the delivery reactions (one row
  per event and endpoint, with the upstream position in the same
  transaction: `DELIVERIES`) and by the dispatcher (attempts and states);
  `retry_restarts`: where a delivery's retry schedule started again (an
  endpoint enabled again, or "retry now");
* `api_keys`: the network's API keys as identity's events tell them (expiry,
  revocation), kept by the `keys` reaction (`KEYS`).

Every query goes through `scoped(table, tenant_id)`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from services.runtime.tenancy import scoped
from services.runtime.views import TrackedTables, UTCDateTime
from services.webhooks import contract as c
from services.webhooks.domain import Endpoint

metadata = sa.MetaData()

endpoints = sa.Table(
    "endpoints",
    metadata,
    sa.Column("endpoint_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(36), nullable=False, index=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("event_types", sa.JSON, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("disabled_reason", sa.String(16)),
    sa.Column("deleted", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("secret_rotated_at", UTCDateTime),
    # the wall-clock time of its Created event, as events' `time` is: it gets the events after
    sa.Column("since", UTCDateTime, nullable=False),
)

owner_metadata = sa.MetaData()

endpoint_owners = sa.Table(
    "endpoint_owners",
    owner_metadata,
    sa.Column("endpoint_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(36), nullable=False),
    sa.Column("owner", sa.String(80), nullable=False),  # a member id, or `key:<id>`
    sa.Index("endpoint_owners_by_owner", "tenant_id", "owner"),
)

delivery_metadata = sa.MetaData()

deliveries = sa.Table(
    "deliveries",
    delivery_metadata,
    sa.Column("n", sa.Integer, primary_key=True, autoincrement=True),  # queue order
    sa.Column("delivery_id", sa.String(36), nullable=False, unique=True),
    sa.Column("tenant_id", sa.String(36), nullable=False),
    sa.Column("endpoint_id", sa.String(36), nullable=False),
    sa.Column("event_id", sa.String(100), nullable=False),
    sa.Column("event_type", sa.String(200), nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # the CloudEvent JSON, as on the stream
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime),
    sa.Column("first_failed_at", UTCDateTime),
    sa.Column("delivered_at", UTCDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("replay_of", sa.String(36)),
    sa.Index("deliveries_queue", "endpoint_id", "status", "n"),
    sa.Index("deliveries_by_tenant", "tenant_id", "endpoint_id", "created_at"),
)

attempts = sa.Table(
    "attempts",
    delivery_metadata,
    sa.Column("attempt_id", sa.String(36), primary_key=True),
    sa.Column("delivery_id", sa.String(36), nullable=False, index=True),
    sa.Column("tenant_id", sa.String(36), nullable=False),
    sa.Column("endpoint_id", sa.String(36), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("ok", sa.Boolean, nullable=False),
)

# A delivery's retry schedule started again after `restarted_after` attempts
# (a table of its own, so that databases made before it need no migration;
# no row: the schedule counts from the first attempt).
retry_restarts = sa.Table(
    "retry_restarts",
    delivery_metadata,
    sa.Column("delivery_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(36), nullable=False),
    sa.Column("restarted_after", sa.Integer, nullable=False),
)

# tenant admins, learnt from identity's events: whom to mail when an endpoint is disabled
admins = sa.Table(
    "admins",
    delivery_metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("member_id", sa.String(36), primary_key=True),
)

DELIVERIES = TrackedTables("webhooks-deliveries", delivery_metadata)

key_metadata = sa.MetaData()

# The network's API keys as identity's ApiKeyCreated/ApiKeyRevoked tell them:
# whether the key an endpoint depends on still works (docs/webhooks.md).
api_keys = sa.Table(
    "api_keys",
    key_metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("key_id", sa.String(36), primary_key=True),
    sa.Column("expires_at", UTCDateTime),
    sa.Column("revoked_at", UTCDateTime),
)

KEYS = TrackedTables("webhooks-keys", key_metadata)

RETENTION = timedelta(days=30)
"""How long deliveries and attempts are kept (`QUARTIER_WEBHOOKS_RETENTION_DAYS`):
the replay window. Longer than the retry schedule (three days)."""
FINISHED = ("delivered", "failed", "skipped")
PRUNE_BATCH = 1000


# -- the endpoints projection -------------------------------------------------------------


def _set(conn: sa.Connection, e: Any, **values: Any) -> None:
    conn.execute(
        endpoints.update().where(endpoints.c.endpoint_id == str(e.originator_id)).values(**values)
    )


def apply(conn: sa.Connection, e: Any) -> None:
    match e:
        case Endpoint.Created():
            conn.execute(
                endpoints.insert().values(
                    endpoint_id=str(e.originator_id),
                    tenant_id=e.tenant_id,
                    url=e.url,
                    event_types=list(e.event_types),
                    description=e.description,
                    enabled=True,
                    disabled_reason=None,
                    deleted=False,
                    created_at=e.at,
                    updated_at=e.at,
                    secret_rotated_at=None,
                    since=e.timestamp,
                )
            )
        case Endpoint.Updated():
            values: dict[str, Any] = {
                "url": e.url,
                "event_types": list(e.event_types),
                "description": e.description,
                "enabled": e.enabled,
                "updated_at": e.at,
            }
            if e.enabled:
                values["disabled_reason"] = None
            _set(conn, e, **values)
        case Endpoint.Disabled():
            _set(conn, e, enabled=False, disabled_reason=e.reason, updated_at=e.at)
        case Endpoint.SecretRotated() | Endpoint.Adopted():
            _set(conn, e, updated_at=e.at)
            if isinstance(e, Endpoint.SecretRotated):
                _set(conn, e, secret_rotated_at=e.at)
        case Endpoint.Deleted():
            _set(conn, e, enabled=False, deleted=True, updated_at=e.at)
            conn.execute(
                deliveries.update()
                .where(
                    (deliveries.c.endpoint_id == str(e.originator_id))
                    & (deliveries.c.status == "pending")
                )
                .values(status="skipped", next_attempt_at=None, last_error="endpoint deleted")
            )


def apply_owner(conn: sa.Connection, e: Any) -> None:
    key = endpoint_owners.c.endpoint_id == str(e.originator_id)
    match e:
        case Endpoint.Created():
            conn.execute(
                endpoint_owners.insert().values(
                    endpoint_id=str(e.originator_id), tenant_id=e.tenant_id, owner=e.created_by
                )
            )
        case Endpoint.Adopted():
            conn.execute(endpoint_owners.update().where(key).values(owner=e.by))
        case Endpoint.Deleted():
            conn.execute(endpoint_owners.delete().where(key))


class EndpointOwners:
    name = "webhooks-owners"
    metadata = owner_metadata

    def apply(self, conn: sa.Connection, event: Any) -> None:
        apply_owner(conn, event)


class EndpointViews:
    name = "webhooks-views"
    metadata: tuple[sa.MetaData, ...] = (metadata,)  # deliveries: DELIVERIES (reactions)

    def apply(self, conn: sa.Connection, event: Any) -> None:
        apply(conn, event)


# -- queries ---------------------------------------------------------------------------------


def live_endpoint(conn: sa.Connection, tenant_id: str, endpoint_id: str) -> Any | None:
    return conn.execute(
        scoped(endpoints, tenant_id).where(
            (endpoints.c.endpoint_id == endpoint_id) & endpoints.c.deleted.is_(False)
        )
    ).first()


def endpoint_reply(conn: sa.Connection, row: Any) -> c.Endpoint:
    pending = (
        (deliveries.c.tenant_id == row.tenant_id)
        & (deliveries.c.endpoint_id == row.endpoint_id)
        & (deliveries.c.status == "pending")
    )
    count = conn.execute(sa.select(sa.func.count()).where(pending)).scalar_one()
    head = conn.execute(
        sa.select(deliveries.c.first_failed_at).where(pending).order_by(deliveries.c.n).limit(1)
    ).first()
    owner = conn.execute(
        sa.select(endpoint_owners.c.owner).where(endpoint_owners.c.endpoint_id == row.endpoint_id)
    ).scalar_one_or_none()
    return c.Endpoint(
        endpoint_id=row.endpoint_id,
        tenant_id=row.tenant_id,
        url=row.url,
        event_types=list(row.event_types),
        description=row.description,
        enabled=row.enabled,
        disabled_reason=row.disabled_reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
        secret_rotated_at=row.secret_rotated_at,
        pending=count,
        failing_since=head[0] if head else None,
        owner=owner or "",
    )


def list_endpoints(
    conn: sa.Connection, tenant_id: str, offset: int, limit: int
) -> tuple[list[c.Endpoint], int]:
    base = scoped(endpoints, tenant_id).where(endpoints.c.deleted.is_(False))
    total = conn.execute(sa.select(sa.func.count()).select_from(base.subquery())).scalar_one()
    rows = conn.execute(
        base.order_by(endpoints.c.created_at, endpoints.c.endpoint_id).offset(offset).limit(limit)
    ).all()
    return [endpoint_reply(conn, r) for r in rows], total


def count_endpoints(conn: sa.Connection, tenant_id: str) -> int:
    base = scoped(endpoints, tenant_id).where(endpoints.c.deleted.is_(False))
    return int(conn.execute(sa.select(sa.func.count()).select_from(base.subquery())).scalar_one())


def delivery_reply(row: Any) -> c.Delivery:
    return c.Delivery(
        delivery_id=row.delivery_id,
        endpoint_id=row.endpoint_id,
        tenant_id=row.tenant_id,
        event_id=row.event_id,
        event_type=row.event_type,
        status=row.status,
        attempts=row.attempts,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
        last_error=row.last_error,
        replay_of=row.replay_of,
    )


def get_delivery(conn: sa.Connection, tenant_id: str, delivery_id: str) -> Any | None:
    return conn.execute(
        scoped(deliveries, tenant_id).where(deliveries.c.delivery_id == delivery_id)
    ).first()


def list_deliveries(
    conn: sa.Connection,
    tenant_id: str,
    endpoint_id: str,
    status: str | None,
    offset: int,
    limit: int,
) -> tuple[list[c.Delivery], int]:
    base = scoped(deliveries, tenant_id).where(deliveries.c.endpoint_id == endpoint_id)
    if status is not None:
        base = base.where(deliveries.c.status == status)
    total = conn.execute(sa.select(sa.func.count()).select_from(base.subquery())).scalar_one()
    rows = conn.execute(base.order_by(deliveries.c.n.desc()).offset(offset).limit(limit)).all()
    return [delivery_reply(r) for r in rows], total


def list_attempts(conn: sa.Connection, tenant_id: str, delivery_id: str) -> list[c.Attempt]:
    rows = conn.execute(
        scoped(attempts, tenant_id)
        .where(attempts.c.delivery_id == delivery_id)
        .order_by(attempts.c.number)
    ).all()
    return [
        c.Attempt(
            attempt_id=r.attempt_id,
            delivery_id=r.delivery_id,
            endpoint_id=r.endpoint_id,
            number=r.number,
            at=r.at,
            status_code=r.status_code,
            duration_ms=r.duration_ms,
            error=r.error,
            ok=r.ok,
        )
        for r in rows
    ]


def replay_sources(
    conn: sa.Connection,
    tenant_id: str,
    endpoint_id: str,
    since: datetime,
    until: datetime,
    everything: bool,
    limit: int,
) -> list[Any]:
    query = scoped(deliveries, tenant_id).where(
        (deliveries.c.endpoint_id == endpoint_id)
        & (deliveries.c.created_at >= since)
        & (deliveries.c.created_at <= until)
        & deliveries.c.replay_of.is_(None)
    )
    if not everything:
        query = query.where(deliveries.c.status.in_(("failed", "skipped")))
    return list(conn.execute(query.order_by(deliveries.c.n).limit(limit)).all())


def prune(conn: sa.Connection, before: datetime, batch: int = PRUNE_BATCH) -> tuple[int, int]:
    """Forget up to `batch` finished deliveries (delivered, failed, skipped)
    created before `before`, with their attempts, and up to `batch` attempts
    made before `before` (those of a delivery still pending: its head of a
    disabled endpoint). Pending deliveries stay: they are the queue. Answers
    (deliveries, attempts) removed; call again while either is `batch`."""
    old = (
        sa.select(deliveries.c.delivery_id)
        .where(deliveries.c.status.in_(FINISHED) & (deliveries.c.created_at < before))
        .order_by(deliveries.c.n)
        .limit(batch)
    )
    ids = list(conn.execute(old).scalars())
    gone_attempts = 0
    if ids:
        gone_attempts += conn.execute(
            attempts.delete().where(attempts.c.delivery_id.in_(ids))
        ).rowcount
        conn.execute(retry_restarts.delete().where(retry_restarts.c.delivery_id.in_(ids)))
        conn.execute(deliveries.delete().where(deliveries.c.delivery_id.in_(ids)))
    stale = sa.select(attempts.c.attempt_id).where(attempts.c.at < before).limit(batch)
    stale_ids = list(conn.execute(stale).scalars())
    if stale_ids:
        gone_attempts += conn.execute(
            attempts.delete().where(attempts.c.attempt_id.in_(stale_ids))
        ).rowcount
    return len(ids), gone_attempts


# -- API keys and the endpoints that depend on them ----------------------------------------


def key_endpoints(conn: sa.Connection, tenant_id: str, key_id: str) -> list[str]:
    """The enabled endpoints of the network that depend on this key."""
    rows = conn.execute(
        sa.select(endpoint_owners.c.endpoint_id)
        .join(endpoints, endpoints.c.endpoint_id == endpoint_owners.c.endpoint_id)
        .where(
            (endpoint_owners.c.tenant_id == tenant_id)
            & (endpoint_owners.c.owner == f"key:{key_id}")
            & endpoints.c.enabled.is_(True)
        )
    )
    return list(rows.scalars())


def key_stopped(conn: sa.Connection, tenant_id: str, endpoint_id: str, now: datetime) -> str | None:
    """Why the API key an endpoint depends on no longer works
    ("api_key_revoked", "api_key_expired"), or None (a member's endpoint, a
    working key, or a key not known yet: the reaction lags behind identity,
    and the key was verified when the endpoint was made)."""
    row = conn.execute(
        sa.select(api_keys.c.revoked_at, api_keys.c.expires_at)
        .select_from(endpoint_owners)
        .join(
            api_keys,
            (endpoint_owners.c.owner == sa.literal("key:") + api_keys.c.key_id)
            & (api_keys.c.tenant_id == endpoint_owners.c.tenant_id),
        )
        .where(
            (endpoint_owners.c.tenant_id == tenant_id)
            & (endpoint_owners.c.endpoint_id == endpoint_id)
        )
    ).first()
    if row is None:
        return None
    if row.revoked_at is not None:
        return "api_key_revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "api_key_expired"
    return None


def restart_schedule(conn: sa.Connection, tenant_id: str, endpoint_id: str, now: datetime) -> bool:
    """Make the endpoint's next pending delivery due now, its retry schedule
    counted again from its next attempt. False when nothing is pending."""
    head = conn.execute(
        scoped(deliveries, tenant_id)
        .where((deliveries.c.endpoint_id == endpoint_id) & (deliveries.c.status == "pending"))
        .order_by(deliveries.c.n)
        .limit(1)
    ).first()
    if head is None:
        return False
    conn.execute(
        deliveries.update()
        .where((deliveries.c.delivery_id == head.delivery_id) & (deliveries.c.status == "pending"))
        .values(next_attempt_at=now, first_failed_at=None)
    )
    conn.execute(retry_restarts.delete().where(retry_restarts.c.delivery_id == head.delivery_id))
    conn.execute(
        retry_restarts.insert().values(
            delivery_id=head.delivery_id, tenant_id=tenant_id, restarted_after=head.attempts
        )
    )
    return True


def restarted_after(conn: sa.Connection, delivery_id: str) -> int:
    found = conn.execute(
        sa.select(retry_restarts.c.restarted_after).where(
            retry_restarts.c.delivery_id == delivery_id
        )
    ).scalar_one_or_none()
    return int(found or 0)
