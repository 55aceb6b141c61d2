"""The base of every service's eventsourcing Application.

It records through the library's *process* recorder, so that a reaction can
save its new events together with the tracking position of the upstream event
that caused them (one transaction: a redelivered event cannot apply twice),
and it tells listeners (the outbox relay, the projections) the moment a save
has committed, so that they wake at once instead of polling.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time as _time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    LRUCache,
    ProcessingEvent,
)
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    JSONTranscoder,
    Mapper,
    Notification,
    OperationalError,
    PersistenceError,
    ProcessRecorder,
    Recording,
    Tracking,
    Transcoding,
)

from services.runtime.clock import event_timestamp
from services.runtime.errors import Conflict, NotFound, Unavailable
from services.runtime.i18n import t
from services.runtime.logging import get_logger
from services.runtime.personal import Keyring, PersonalMapper, keyring_for
from services.runtime.store import is_busy

log = get_logger(__name__)

A = TypeVar("A", bound=Aggregate)
T = TypeVar("T")

RETRIES = 12
"""Attempts of one unit of work when another writer (another replica, or a
unit that saves several aggregates) got there first, or the store was busy."""
BACKOFF_BASE = 0.005
BACKOFF_CAP = 0.25
"""Seconds: the wait before attempt n is uniform in [0, min(CAP, BASE * 2**n)]
("full jitter"), so writers that collided do not collide again in step; all
waits together stay under about 1.5 s."""
BUSY_BUDGET = 1.0
"""Seconds: a store error that says "busy" (`transient`) is retried only while
the unit has run for less than this. SQLite's "database is locked" in WAL mode
can come at once (a reader's snapshot went stale), worth retrying; after the
engine's own busy timeout (Store.busy_timeout) waiting again would only double
the wait."""
LOCK_STRIPES = 1024
"""In-process write locks: an aggregate id maps to one of these, so memory is
bounded whatever the number of aggregates (two aggregates sharing a stripe
merely take turns)."""


def transient(error: BaseException | None) -> bool:
    """Store errors worth another attempt: SQLite's "database is locked", a lock
    or statement timeout, a dropped connection, a pool with no free connection
    (not a missing table or bad SQL)."""
    if isinstance(error, InterfaceError):
        return True
    if not isinstance(error, OperationalError):
        return False
    cause = error.__cause__
    return cause is None or is_busy(cause)


class _Stripes(threading.local):
    held: bool = False


_STRIPES = [threading.Lock() for _ in range(LOCK_STRIPES)]
_holding = _Stripes()


@contextmanager
def aggregate_lock(key: str) -> Iterator[None]:
    """Serialise this process's writers of one aggregate (`key`: its id).

    A thread already inside such a lock does not take another (a unit that
    updates a second aggregate relies on the version-conflict retry instead),
    so two threads can never wait on each other's stripes."""
    if _holding.held:
        yield
        return
    lock = _STRIPES[zlib.crc32(key.encode()) % LOCK_STRIPES]
    with lock:
        _holding.held = True
        try:
            yield
        finally:
            _holding.held = False


def backoff(attempt: int) -> float:
    """Seconds to wait before attempt `attempt + 1` (see BACKOFF_BASE)."""
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))


class StateTranscoding(Transcoding):
    """A dataclass of an aggregate's state, in snapshots: its fields as a dict
    (nested values are transcoded in turn), read back with the class's
    `from_dict` if it has one. `name` is stable: renaming the module keeps
    old snapshots readable."""

    def __init__(self, cls: type[Any], name: str):
        self.type = cls
        self.name = name

    def encode(self, obj: Any) -> dict[str, Any]:
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}

    def decode(self, data: dict[str, Any]) -> Any:
        from_dict = getattr(self.type, "from_dict", None)
        return from_dict(data) if from_dict is not None else self.type(**data)


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class TimeAsISO(Transcoding):
    type = time
    name = "time_iso"

    def encode(self, obj: time) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> time:
        return time.fromisoformat(data)


class ServiceApplication(Application[UUID]):
    state_types: tuple[type[Any], ...] = ()
    """Dataclasses held in aggregates' state, so that snapshots can store them."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self._listeners: list[Callable[[int], None]] = []

    keyring: Keyring
    """The keys of the people whose data this application's events hold
    (services/runtime/personal.py: crypto-shredding)."""

    def construct_mapper(self) -> Mapper[UUID]:
        self.keyring = keyring_for(self.env)
        return PersonalMapper.wrapping(super().construct_mapper(), self.keyring)

    def forget(self, tenant_id: str, subjects: Sequence[str]) -> int:
        """Destroy these people's keys: what was sealed under them reads as
        erased from now on, in this process at once (the aggregate cache,
        which holds opened values, is emptied). Returns how many keys were
        destroyed; forgetting twice destroys nothing more."""
        count = self.keyring.forget(tenant_id, subjects)
        cache = getattr(self.repository, "cache", None)
        if isinstance(cache, LRUCache):
            with cache.lock:
                cache.cache.clear()
                cache.clear()
                cache.full = False
        elif cache is not None:
            cache.cache.clear()
        return count

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())
        transcoder.register(TimeAsISO())
        for cls in self.state_types:
            transcoder.register(StateTranscoding(cls, f"{self.name}.{cls.__name__}"))

    # -- loading and updating aggregates ---------------------------------------

    def find(self, aggregate_id: str | UUID, kind: type[A]) -> A | None:
        """The aggregate if it exists and is a `kind`, else None (a malformed
        id too). No tenant check: for ids that name their tenant (a token's
        selector, a tenant's own id). Raises Unavailable if the store cannot
        be read (busy, unreachable)."""
        try:
            found: Aggregate = self.repository.get(UUID(str(aggregate_id)))
        except (ValueError, AggregateNotFoundError):
            return None
        except PersistenceError as e:
            raise _unavailable(e) from e
        return found if isinstance(found, kind) else None

    def get(self, tenant_id: str | None, aggregate_id: str | UUID, kind: type[A]) -> A:
        """The `kind` aggregate `aggregate_id` of `tenant_id`. Raises NotFound
        (`not_found(kind)`) if it is missing, of another kind, or of another
        tenant: the three are answered alike, so ids of other tenants reveal
        nothing."""
        found = self.find(aggregate_id, kind)
        if found is None or tenant_id is None or getattr(found, "tenant_id", None) != tenant_id:
            raise NotFound(not_found(kind))
        return found

    def transact(
        self, unit: Callable[[], tuple[Sequence[Aggregate], T]], key: str | None = None
    ) -> T:
        """Run `unit` (load, check, change: it returns the aggregates to save
        and a result) and save those aggregates together.

        * With `key` (the id of the aggregate it changes), this process's
          units of the same key run one at a time (`aggregate_lock`), so
          concurrent commands on one aggregate in one service do not collide.
        * When another writer saved one of them meanwhile (a version conflict:
          another replica, or a unit without key), or the store was busy
          (`transient`), `unit` runs again on the fresh state after a jittered
          backoff, up to RETRIES times; the rules are checked again each time,
          so a late command gets the rule error the new state calls for.
        * Still conflicting after that: Conflict ("try again"); the store still
          busy or unreachable, or refusing the write: Unavailable. A typed
          error in any case, never an internal one; nothing is saved."""
        if key is not None:
            with aggregate_lock(key):
                return self._attempts(unit)
        return self._attempts(unit)

    def _attempts(self, unit: Callable[[], tuple[Sequence[Aggregate], T]]) -> T:
        started = _time.monotonic()

        def retry_busy(e: Unavailable) -> bool:
            in_budget = _time.monotonic() - started < BUSY_BUDGET
            return in_budget and transient(e.__cause__)

        for attempt in range(RETRIES):
            last = attempt == RETRIES - 1
            try:
                changed, result = unit()
            except Unavailable as e:  # the store could not be read
                if last or not retry_busy(e):
                    raise
            else:
                try:
                    self.save(*changed)
                    return result
                except Conflict:
                    if last:
                        log.warning("store.conflict_persists", attempts=RETRIES)
                        raise
                except Unavailable as e:
                    if last or not retry_busy(e):
                        raise
            _time.sleep(backoff(attempt))
        raise AssertionError("unreachable")

    def update(
        self,
        tenant_id: str | None,
        aggregate_id: str | UUID,
        kind: type[A],
        change: Callable[[A], T],
    ) -> tuple[A, T]:
        """Load one aggregate (as `get`), apply `change` to it and save it,
        retried on a version conflict (as `transact`). Returns the saved
        aggregate and what `change` returned."""

        def unit() -> tuple[Sequence[Aggregate], tuple[A, T]]:
            aggregate = self.get(tenant_id, aggregate_id, kind)
            return [aggregate], (aggregate, change(aggregate))

        return self.transact(unit, key=str(aggregate_id))

    def construct_recorder(self) -> ProcessRecorder:
        try:
            return self.factory.process_recorder()
        except IntegrityError:
            # Two replicas starting at once on a new store both record the
            # tables' migration; the second fails. The tables exist now.
            return self.factory.process_recorder()

    @property
    def process_recorder(self) -> ProcessRecorder:
        recorder = self.recorder
        assert isinstance(recorder, ProcessRecorder)
        return recorder

    def on_saved(self, listener: Callable[[int], None]) -> None:
        """Call `listener(max_notification_id)` after each committed save."""
        self._listeners.append(listener)

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        if recordings and self._listeners:
            last = max(r.notification.id for r in recordings)
            for listener in self._listeners:
                listener(last)

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """Save, as the library does. Raises Conflict on a version conflict
        (another writer saved first, or the id exists), Unavailable if the
        store is busy, unreachable or refuses the write (cause chained)."""
        try:
            return super().save(*objs, **kwargs)
        except IntegrityError as e:
            raise Conflict(t("changed concurrently or already exists; try again")) from e
        except PersistenceError as e:
            raise _unavailable(e) from e

    def save_tracked(self, *objs: Any, tracking: Tracking) -> list[Recording[UUID]]:
        """Save new events and the upstream position in one transaction.

        Raises `IntegrityError` if that position (or a later one) is already
        recorded, i.e. the upstream event has been processed before.

        While a parked event is retried (`parking.retrying`), its position is
        behind the consumer's: the objects are saved without tracking (the
        change itself must then be idempotent, as reactions' changes are)."""
        from services.runtime.parking import current_retry

        if current_retry() is not None:
            return self.save(*objs)
        processing = ProcessingEvent[UUID](tracking=tracking)
        processing.collect_events(*objs)
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)
        return recordings

    def has_processed(self, tracking: Tracking) -> bool:
        return self.process_recorder.has_tracking_id(
            tracking.application_name, tracking.notification_id
        )

    def position(self, name: str) -> int:
        return self.process_recorder.max_tracking_id(name) or 0

    def set_position(self, name: str, notification_id: int) -> None:
        self.process_recorder.insert_tracking(Tracking(name, notification_id))

    def notification(self, notification_id: int) -> Notification:
        found = self.notifications_after(notification_id - 1, 1)
        if not found or found[0].id != notification_id:
            raise KeyError(f"no notification {notification_id}")
        return found[0]

    def notifications_after(self, position: int, limit: int) -> list[Notification]:
        return list(
            self.recorder.select_notifications(
                start=position, limit=limit, inclusive_of_start=False
            )
        )

    def max_notification_id(self) -> int:
        return self.recorder.max_notification_id() or 0


def _unavailable(error: PersistenceError) -> Unavailable:
    # The store's message may quote values: only the class is logged.
    log.warning("store.error", error=type(error).__name__)
    return Unavailable(t("the store is busy or unreachable; try again"))


def noun(kind: type[Any]) -> str:
    """How errors name an aggregate class: its `noun`, else its lower-cased name."""
    return str(getattr(kind, "noun", kind.__name__.lower()))


def not_found(kind: type[Any]) -> str:
    """What NotFound says of a missing `kind`: the class's `not_found` (a
    `t()` message its service translates: « rencontre introuvable »), else
    "<noun> not found", the noun left in English."""
    said = getattr(kind, "not_found", None)
    return said if isinstance(said, str) else t("{what} not found", what=noun(kind))


class TenantAggregate(Aggregate):
    """An aggregate that belongs to one tenant; every one of its events carries
    `tenant_id`, so that the relay and the projections never have to look the
    aggregate up to know whose event it is.

    A subclass may carry more of its context in every event the same way: it
    names the attributes in `event_context` and declares them on its `Event`
    class (e.g. a meetup's `hub_id`)."""

    tenant_id: str
    event_context: ClassVar[tuple[str, ...]] = ("tenant_id",)

    class Event(Aggregate.Event):
        tenant_id: str

        @staticmethod
        def create_timestamp() -> datetime:
            return event_timestamp()

    class Created(Event, Aggregate.Created):
        pass

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        for name in self.event_context:
            kwargs.setdefault(name, getattr(self, name))
        super().trigger_event(event_class, **kwargs)
