"""Parked events: one event that a projection or a reaction cannot apply must
not stop the others.

When applying an event fails (a bug, a value the read model refuses), the
consumer *parks* it — records it here, with its position, tenant, aggregate,
type and the error's class (never its values) — and goes on with the next
ones. What depends on a parked event waits with it: the later events of the
same aggregate, for the same consumer, are parked too (in order), so nothing
is applied on top of a missing step. Everything else (other aggregates, other
tenants) keeps flowing, and the service starts even with parked events.

Operators see parked events in the logs (`*.event_parked`, at error level),
the `quartier_parked_events` metric and the services' health detail, and
handle them with `quartier parked list | retry | skip` (infra/cli.py): a retry
applies the parked events of a consumer again, in order (an aggregate's
later events only after its earlier ones succeed); a skip gives one up for
good (kept, marked skipped, for the record).

Retries are safe: a projection retry re-applies the event and deletes its
parked row in one transaction; a reaction retry runs with `retrying()` set,
which tracked effects honour (see `TrackedTables.apply`).
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from services.runtime import metrics
from services.runtime.logging import get_logger
from services.runtime.views import UTCDateTime

log = get_logger("quartier.parking")

metadata = sa.MetaData()

parked_events = sa.Table(
    "parked_events",
    metadata,
    sa.Column("consumer", sa.String(200), primary_key=True),
    sa.Column("position", sa.BigInteger, primary_key=True),
    sa.Column("tenant_id", sa.String(36)),
    sa.Column("aggregate_id", sa.String(64), nullable=False),
    sa.Column("event_type", sa.String(200), nullable=False),
    sa.Column("error", sa.String(300), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),  # parked | skipped
    sa.Column("payload", sa.Text),  # a reaction's CloudEvent (public data only)
    sa.Column("parked_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_parked_events_status", "status", "consumer"),
)

WAITING = "waits for an earlier parked event of the same aggregate"


@dataclass(frozen=True)
class ParkedEvent:
    consumer: str
    position: int
    tenant_id: str | None
    aggregate_id: str
    event_type: str
    error: str
    attempts: int
    status: str
    parked_at: datetime
    updated_at: datetime


def is_transient(error: BaseException) -> bool:
    """A passing fault (a database or a service restarting, a lock timeout):
    retried in place, never parked. Anything else is the event's own problem."""
    from eventsourcing.persistence import OperationalError as StoreUnavailable

    from services.runtime.errors import Unavailable

    return isinstance(
        error,
        Unavailable | ConnectionError | TimeoutError | sa.exc.OperationalError | StoreUnavailable,
    )


def describe(error: BaseException) -> str:
    """An error's class and the first line of its message, bounded: enough to
    tell a NUL byte from a missing table, without the event's values."""
    first = (str(error).splitlines() or [""])[0]
    return f"{type(error).__name__}: {first}"[:300]


@dataclass(frozen=True)
class Retrying:
    """Set while a parked event is retried (see `retrying`)."""

    lot: ParkingLot
    consumer: str
    position: int


_retrying: contextvars.ContextVar[Retrying | None] = contextvars.ContextVar(
    "quartier_retrying", default=None
)


def current_retry() -> Retrying | None:
    return _retrying.get()


@contextmanager
def retrying(lot: ParkingLot, consumer: str, position: int) -> Iterator[None]:
    token = _retrying.set(Retrying(lot, consumer, position))
    try:
        yield
    finally:
        _retrying.reset(token)


class ParkingLot:
    """The parked events of one service, in its views database."""

    def __init__(self, engine: sa.Engine, service: str):
        self.engine = engine
        self.service = service
        self._count: int | None = None
        self._counted_at = 0.0
        self._lock = threading.Lock()

    def create(self) -> None:
        metadata.create_all(self.engine)

    # -- inside a consumer's transaction ------------------------------------------------

    def blocked(self, conn: sa.Connection, consumer: str) -> set[str]:
        """Aggregates with a parked event for `consumer`: their later events wait."""
        rows = conn.execute(
            sa.select(parked_events.c.aggregate_id).where(
                parked_events.c.consumer == consumer, parked_events.c.status == "parked"
            )
        )
        return {r.aggregate_id for r in rows}

    def park(
        self,
        conn: sa.Connection,
        consumer: str,
        position: int,
        tenant_id: str | None,
        aggregate_id: str,
        event_type: str,
        error: str,
        payload: str | None = None,
    ) -> None:
        now = datetime.now(UTC)
        key = (parked_events.c.consumer == consumer) & (parked_events.c.position == position)
        updated = conn.execute(
            parked_events.update()
            .where(key)
            .values(
                attempts=parked_events.c.attempts + 1, error=error, status="parked", updated_at=now
            )
        )
        if updated.rowcount == 0:
            conn.execute(
                parked_events.insert().values(
                    consumer=consumer,
                    position=position,
                    tenant_id=tenant_id,
                    aggregate_id=aggregate_id,
                    event_type=event_type,
                    error=error,
                    attempts=1,
                    status="parked",
                    payload=payload,
                    parked_at=now,
                    updated_at=now,
                )
            )
        self._count = None
        log.error(
            "event_parked",
            service=self.service,
            consumer=consumer,
            position=position,
            tenant=tenant_id,
            event_type=event_type,
            error=error,
        )

    def is_parked(self, conn: sa.Connection, consumer: str, position: int) -> bool:
        return (
            conn.execute(
                sa.select(parked_events.c.position).where(
                    parked_events.c.consumer == consumer,
                    parked_events.c.position == position,
                    parked_events.c.status == "parked",
                )
            ).first()
            is not None
        )

    def release(self, conn: sa.Connection, consumer: str, position: int) -> None:
        """The event was applied on retry: it is no longer parked."""
        conn.execute(
            parked_events.delete().where(
                parked_events.c.consumer == consumer, parked_events.c.position == position
            )
        )
        self._count = None

    # -- for operators ---------------------------------------------------------------------

    def list(self, consumer: str | None = None, status: str | None = "parked") -> list[ParkedEvent]:
        query = sa.select(parked_events).order_by(
            parked_events.c.consumer, parked_events.c.position
        )
        if consumer is not None:
            query = query.where(parked_events.c.consumer == consumer)
        if status is not None:
            query = query.where(parked_events.c.status == status)
        with self.engine.connect() as conn:
            return [
                ParkedEvent(
                    consumer=r.consumer,
                    position=r.position,
                    tenant_id=r.tenant_id,
                    aggregate_id=r.aggregate_id,
                    event_type=r.event_type,
                    error=r.error,
                    attempts=r.attempts,
                    status=r.status,
                    parked_at=r.parked_at,
                    updated_at=r.updated_at,
                )
                for r in conn.execute(query)
            ]

    def payload(self, consumer: str, position: int) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(parked_events.c.payload).where(
                    parked_events.c.consumer == consumer, parked_events.c.position == position
                )
            ).scalar()

    def failed_again(self, consumer: str, position: int, error: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                parked_events.update()
                .where(parked_events.c.consumer == consumer, parked_events.c.position == position)
                .values(
                    attempts=parked_events.c.attempts + 1,
                    error=error,
                    updated_at=datetime.now(UTC),
                )
            )

    def skip(self, consumer: str, position: int) -> bool:
        """Give one parked event up for good; False if there is none."""
        with self.engine.begin() as conn:
            done = conn.execute(
                parked_events.update()
                .where(
                    parked_events.c.consumer == consumer,
                    parked_events.c.position == position,
                    parked_events.c.status == "parked",
                )
                .values(status="skipped", updated_at=datetime.now(UTC))
            ).rowcount
        self._count = None
        if done:
            log.warning("event_skipped", service=self.service, consumer=consumer, position=position)
        return bool(done)

    def count(self) -> int:
        """How many events are parked (cached for a second, or until a change
        here: another replica may park too)."""
        with self._lock:
            if self._count is None or time.monotonic() - self._counted_at > 1.0:
                self._counted_at = time.monotonic()
                with self.engine.connect() as conn:
                    self._count = int(
                        conn.execute(
                            sa.select(sa.func.count())
                            .select_from(parked_events)
                            .where(parked_events.c.status == "parked")
                        ).scalar_one()
                    )
                    metrics.PARKED.labels(service=self.service).set(self._count)
            return self._count
