"""The outbox relay: a service's notification log, in order, onto JetStream.

The event store is the outbox: an event is committed once, with the aggregate
change, and the relay publishes it afterwards. Each public event goes out as a
CloudEvents 1.0 JSON message with `Nats-Msg-Id: <service>:<notification_id>`,
in batches of `publish_async`; the position is persisted (in the service's own
tracking table) only after a whole batch is acknowledged, at most once a second
(and when the relay stops). After a crash the
relay re-publishes from the persisted position and JetStream drops what it has
already stored (same Msg-Id inside the duplicate window), so each event is on
the stream exactly once. A save wakes the relay at once; a poll interval covers
saves made by other replicas.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC
from typing import Any

import msgspec
from eventsourcing.domain import DomainEvent

from services.runtime.bus import Bus, Offloader
from services.runtime.eventstore import ServiceApplication
from services.runtime.logging import get_logger
from services.runtime.messages import PublicEvent
from services.runtime.stream import STREAM, CloudEvent, event_subject, json_encoder
from services.runtime.wakeup import Wakeup, sleep_unless

log = get_logger("quartier.relay")

Translate = Callable[[Any], PublicEvent | None]
POSITION = "__relay__"


class OutboxRelay:
    def __init__(
        self,
        service: str,
        app: ServiceApplication,
        translate: Translate,
        bus: Bus,
        offload: Offloader,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        persist_interval: float = 1.0,
    ):
        self.service = service
        self.app = app
        self.translate = translate
        self.bus = bus
        self.offload = offload
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.published = 0
        self._position: int | None = None  # known while this replica leads
        self._persisted = 0
        self._persisted_at = 0.0
        self.persist_interval = persist_interval
        self._wake = Wakeup()
        app.on_saved(self._wake.set_threadsafe)

    async def run(self, stopping: asyncio.Event) -> None:
        self._wake.bind()
        self._position = None  # (re)gaining leadership: start from the store
        delay = 0.5
        while not stopping.is_set():
            self._wake.clear()
            try:
                await self.publish_pending()
                await self._persist()  # what a recent batch left unsaved
                delay = 0.5
            except Exception as e:
                self._position = None  # read it again from the store
                log.warning("relay.retry", service=self.service, error=str(e) or type(e).__name__)
                await sleep_unless(stopping, delay)
                delay = min(delay * 2, 10.0)
                continue
            await self._wake.wait(stopping, self.poll_interval)
        await self._persist(force=True)

    async def _persist(self, force: bool = False) -> None:
        """Save the position, at most once per `persist_interval` unless forced:
        after a crash, what was published since is published again, and
        JetStream drops it as a duplicate."""
        position = self._position
        if position is None or position <= self._persisted:
            return
        now = time.monotonic()
        if not force and now - self._persisted_at < self.persist_interval:
            return
        await self.offload(self.app.set_position, POSITION, position)
        self._persisted, self._persisted_at = position, now

    async def publish_pending(self) -> int:
        """Publish everything after the persisted position; return how many."""
        js = self.bus.jetstream()
        if self._position is None:
            self._position = self._persisted = await self.offload(self.app.position, POSITION)
        position = self._position
        sent = 0
        while True:
            batch = await self.offload(self._prepare, position)
            if batch is None:
                return sent
            last, messages = batch
            futures = [
                await js.publish_async(subject, payload, headers=headers)
                for subject, payload, headers in messages
            ]
            if futures:
                await asyncio.gather(*futures)
            position = self._position = last
            await self._persist()
            sent += len(messages)
            self.published += len(messages)

    def rewind(self, position: int = 0) -> None:
        """Publish again from `position` (to rebuild the stream): JetStream
        drops what it still remembers; the persisted position never goes back."""
        self._position = position

    def _prepare(self, position: int) -> tuple[int, list[tuple[str, bytes, dict[str, str]]]] | None:
        notifications = self.app.notifications_after(position, self.batch_size)
        if not notifications:
            return None
        messages = []
        for n in notifications:
            domain_event = self.app.mapper.to_domain_event(n)
            assert isinstance(domain_event, DomainEvent)  # an aggregate's: it has a timestamp
            public = self.translate(domain_event)
            if public is None:
                continue
            message_id = f"{self.service}:{n.id}"
            cloud_event = CloudEvent(
                id=message_id,
                source=f"quartier/{self.service}",
                type=public.type_name(),
                subject=str(domain_event.originator_id),
                time=domain_event.timestamp.astimezone(UTC),
                tenant=public.tenant_id,
                sequence=n.id,
                data=msgspec.Raw(json_encoder.encode(public)),
            )
            messages.append(
                (
                    event_subject(public.tenant_id, self.service, type(public).__name__),
                    json_encoder.encode(cloud_event),
                    {"Nats-Msg-Id": message_id, "Nats-Expected-Stream": STREAM},
                )
            )
        return notifications[-1].id, messages
