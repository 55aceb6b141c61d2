"""The base of every service's eventsourcing Application.

It records through the library's *process* recorder, so that a reaction can
save its new events together with the tracking position of the upstream event
that caused them (one transaction: a redelivered event cannot apply twice),
and it tells listeners (the outbox relay, the projections) the moment a save
has committed, so that they wake at once instead of polling.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    IntegrityError,
    Notification,
    ProcessRecorder,
    Recording,
    Tracking,
)

from services.runtime.errors import Conflict


class ServiceApplication(Application[UUID]):
    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self._listeners: list[Callable[[int], None]] = []

    def construct_recorder(self) -> ProcessRecorder:
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
        try:
            return super().save(*objs, **kwargs)
        except IntegrityError as e:
            raise Conflict("changed concurrently or already exists; try again") from e

    def save_tracked(self, *objs: Any, tracking: Tracking) -> list[Recording[UUID]]:
        """Save new events and the upstream position in one transaction.

        Raises `IntegrityError` if that position (or a later one) is already
        recorded, i.e. the upstream event has been processed before."""
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

    def notifications_after(self, position: int, limit: int) -> list[Notification]:
        return list(
            self.recorder.select_notifications(
                start=position, limit=limit, inclusive_of_start=False
            )
        )

    def max_notification_id(self) -> int:
        return self.recorder.max_notification_id() or 0


class TenantAggregate(Aggregate):
    """An aggregate that belongs to one tenant; every one of its events carries
    `tenant_id`, so that the relay and the projections never have to look the
    aggregate up to know whose event it is."""

    tenant_id: str

    class Event(Aggregate.Event):
        tenant_id: str

    class Created(Event, Aggregate.Created):
        pass

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        kwargs.setdefault("tenant_id", self.tenant_id)
        super().trigger_event(event_class, **kwargs)
