"""Read models: a service's own events projected into SQLAlchemy tables.

A projection's rows and its tracking position change in one transaction, so a
read model is always exactly "the events up to position P". Catch-up is safe
to run from several threads and replicas at once: it holds the tracking row
(SQLite: the write lock taken at BEGIN; PostgreSQL: SELECT ... FOR UPDATE).

Commands call `catch_up(until=...)` before replying, so that a client reads
its own writes; concurrent commands share one catch-up (group commit). A lost
read model is rebuilt by dropping its tables and catching up from zero.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

import sqlalchemy as sa

from services.runtime import metrics
from services.runtime.eventstore import ServiceApplication
from services.runtime.logging import get_logger
from services.runtime.parking import WAITING, ParkingLot, describe, is_transient
from services.runtime.views import read_position, views_tracking, write_position

log = get_logger("quartier.projection")


class Projection(Protocol):
    """`apply(conn, event)` for each of the application's events, in order,
    into the tables of `metadata` (one MetaData, or one per read model)."""

    @property
    def name(self) -> str: ...

    @property  # read-only, so that a projection may declare either kind
    def metadata(self) -> sa.MetaData | tuple[sa.MetaData, ...]: ...

    def apply(self, conn: sa.Connection, event: Any) -> None: ...


class _Waiting(Exception):
    """An earlier event of the same aggregate is parked."""


def _metadatas(projection: Projection) -> tuple[sa.MetaData, ...]:
    found = projection.metadata
    return found if isinstance(found, tuple) else (found,)


class Projector:
    def __init__(
        self,
        app: ServiceApplication,
        engine: sa.Engine,
        projection: Projection,
        batch_size: int = 500,
        parking: ParkingLot | None = None,
    ):
        self.app = app
        self.engine = engine
        self.projection = projection
        self.parking = parking
        self.batch_size = batch_size
        self.key = f"projection:{projection.name}"
        self._lock = threading.Lock()
        self._saved_lock = threading.Lock()
        self._position = 0
        self._saved_upto = 0
        for metadata in _metadatas(projection):
            metadata.create_all(engine)
        views_tracking.metadata.create_all(engine)
        self._ensure_tracking_row()
        app.on_saved(self._on_saved)

    def _ensure_tracking_row(self) -> None:
        """The position row exists before any catch-up, so that replicas
        catching up at once always have a row to lock."""
        try:
            with self.engine.begin() as conn:
                if read_position(conn, self.key) == 0:
                    write_position(conn, self.key, 0, 0)
        except sa.exc.IntegrityError:
            pass  # another replica created it

    def _on_saved(self, notification_id: int) -> None:
        with self._saved_lock:
            self._saved_upto = max(self._saved_upto, notification_id)

    @property
    def position(self) -> int:
        return self._position

    def catch_up(self, until: int | None = None) -> int:
        """Project every recorded event (or at least up to `until`).
        Returns the position reached."""
        target = self.app.max_notification_id() if until is None else until
        if until is None:
            self._lag(target)
        if self._position >= target:
            return self._position  # nothing new: no transaction, no lock
        with self._lock:
            if self._position >= target:
                return self._position
            while True:
                moved = self._step()
                if not moved:
                    if until is None:
                        self._lag(target)
                    return self._position

    def _lag(self, target: int) -> None:
        metrics.PROJECTION_LAG.labels(service=self.app.name, projection=self.projection.name).set(
            max(0, target - self._position)
        )

    def catch_up_local(self) -> int:
        """Catch up with what this process has saved (cheap when nothing is new)."""
        return self.catch_up(until=self._saved_upto)

    def after_write(self) -> None:
        """After a command: bring the read model up to it, so that the caller
        reads its own write. The command is committed whatever happens here: a
        failure is logged, and the background catch-up will retry."""
        try:
            self.catch_up_local()
        except Exception:
            log.exception("projection.failed_after_write", projection=self.key)

    def _step(self) -> bool:
        """Project the next batch. A batch applies in one transaction; if it
        fails and the service has a parking lot, it is applied again event by
        event, parking what fails (and the later events of its aggregate), so
        that one bad event stops nobody else."""
        try:
            return self._apply_batch(careful=self._must_be_careful())
        except Exception as e:
            if self.parking is None or is_transient(e):
                raise
            return self._apply_batch(careful=True)

    def _must_be_careful(self) -> bool:
        return self.parking is not None and self.parking.count() > 0

    def _apply_batch(self, careful: bool) -> bool:
        with self.engine.connect().execution_options(write_lock=True) as conn, conn.begin():
            position = read_position(conn, self.key)
            notifications = self.app.notifications_after(position, self.batch_size)
            if not notifications:
                self._position = position
                return False
            if careful:
                self._apply_carefully(conn, notifications)
            else:
                for n in notifications:
                    self.projection.apply(conn, self.app.mapper.to_domain_event(n))
            last = notifications[-1].id
            write_position(conn, self.key, position, last)
        self._position = last
        return len(notifications) == self.batch_size

    def _apply_carefully(self, conn: sa.Connection, notifications: list[Any]) -> None:
        assert self.parking is not None
        blocked = self.parking.blocked(conn, self.key)
        for n in notifications:
            aggregate_id = str(n.originator_id)
            tenant_id = None
            try:
                event = self.app.mapper.to_domain_event(n)
                tenant_id = getattr(event, "tenant_id", None)
                if aggregate_id in blocked:
                    raise _Waiting
                with conn.begin_nested():
                    self.projection.apply(conn, event)
            except Exception as e:
                if is_transient(e):
                    raise
                self.parking.park(
                    conn,
                    self.key,
                    n.id,
                    tenant_id,
                    aggregate_id,
                    n.topic.rsplit(":", 1)[-1],
                    WAITING if isinstance(e, _Waiting) else describe(e),
                )
                blocked.add(aggregate_id)

    def retry_parked(self) -> tuple[int, int]:
        """Apply this projection's parked events again, in order (an
        aggregate's later events only once its earlier ones succeeded).
        Returns (applied, still parked)."""
        if self.parking is None:
            return 0, 0
        applied = 0
        failed: set[str] = set()
        with self._lock:
            for parked in self.parking.list(consumer=self.key):
                if parked.aggregate_id in failed:
                    continue
                try:
                    with (
                        self.engine.connect().execution_options(write_lock=True) as conn,
                        conn.begin(),
                    ):
                        if not self.parking.is_parked(conn, self.key, parked.position):
                            continue
                        n = self.app.notification(parked.position)
                        self.projection.apply(conn, self.app.mapper.to_domain_event(n))
                        self.parking.release(conn, self.key, parked.position)
                    applied += 1
                except Exception as e:
                    self.parking.failed_again(self.key, parked.position, describe(e))
                    failed.add(parked.aggregate_id)
        return applied, len(self.parking.list(consumer=self.key))

    def rebuild(self) -> int:
        """Drop the read model and project every event again."""
        with self._lock:
            for metadata in _metadatas(self.projection):
                metadata.drop_all(self.engine)
                metadata.create_all(self.engine)
            with self.engine.begin() as conn:
                conn.execute(views_tracking.delete().where(views_tracking.c.name == self.key))
            self._position = 0
        return self.catch_up()
