"""The outbox relay: a service's notification log, in order, onto JetStream.

The event store is the outbox: an event is committed once, with the aggregate
change, and the relay publishes it afterwards. Each public event goes out as a
CloudEvents 1.0 JSON message with `Nats-Msg-Id: <service>:<notification_id>`,
in batches of `publish_async`; the position is persisted (in the service's own
tracking table) only after a whole batch is acknowledged, at most once a second
(and when the relay stops). A batch whose acknowledgements do not come
within the request timeout (NATS died with it in flight: nats-py would wait
for ever) is published again. After a crash the
relay re-publishes from the persisted position and JetStream drops what it has
already stored (same Msg-Id inside the duplicate window), so each event is on
the stream exactly once. A save wakes the relay at once; a poll interval covers
saves made by other replicas. An event is published only once the service's
own read models reflect it (the relay catches them up first): another
service reacting to it and asking this one finds its effects.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC
from typing import Any

import msgspec
from eventsourcing.domain import DomainEvent
from nats.js.errors import NotFoundError

from services.runtime import metrics
from services.runtime.bus import Bus, Offloader
from services.runtime.eventstore import ServiceApplication
from services.runtime.logging import get_logger
from services.runtime.messages import PublicEvent
from services.runtime.stream import STREAM, CloudEvent, event_subject, json_encoder, service_filter
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
        reflected: Callable[[], int | None] | None = None,
        ack_timeout: float | None = None,
    ):
        self.service = service
        self.app = app
        self.translate = translate
        self.bus = bus
        self.offload = offload
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.reflected = reflected
        # how long a batch's acknowledgements may take: NATS killed with a
        # batch in flight never acknowledges it (nats-py's futures have no
        # timeout of their own); then the batch is published again
        self.ack_timeout = bus.request_timeout if ack_timeout is None else ack_timeout
        self.published = 0
        self._position: int | None = None  # known while this replica leads
        self._persisted = 0
        self._persisted_at = 0.0
        self._measured_at = 0.0
        self.persist_interval = persist_interval
        self._wake = Wakeup()
        app.on_saved(self._wake.set_threadsafe)

    async def run(self, stopping: asyncio.Event) -> None:
        self._wake.bind()
        self._position = None  # (re)gaining leadership: start from the store
        checked_at = -1  # the bus's reconnection count when the stream was last checked
        delay = 0.5
        while not stopping.is_set():
            self._wake.clear()
            try:
                if checked_at != self.bus.reconnections:
                    checked_at = self.bus.reconnections
                    await self.refill_gap()
                await self.publish_pending()
                await self._persist()  # what a recent batch left unsaved
                await self._measure_lag()
                delay = 0.5
            except Exception as e:
                self._position = None  # read it again from the store
                log.warning("relay.retry", service=self.service, error=str(e) or type(e).__name__)
                with suppress(Exception):
                    await self._measure_lag(self._persisted)
                await sleep_unless(stopping, delay)
                delay = min(delay * 2, 10.0)
                continue
            await self._wake.wait(stopping, self.poll_interval)
        await self._persist(force=True)

    async def _measure_lag(self, position: int | None = None) -> None:
        """The relay-lag metric (events stored, not yet on the stream), at most
        once a second: a query of the store."""
        now = time.monotonic()
        if now - self._measured_at < 1.0:
            return
        self._measured_at = now
        done = position if position is not None else self._position or 0
        newest = await self.offload(self.app.max_notification_id)
        metrics.RELAY_LAG.labels(service=self.service).set(max(0, newest - done))

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
                await self._acknowledged(futures)
            position = self._position = last
            await self._persist()
            sent += len(messages)
            self.published += len(messages)

    async def _acknowledged(self, futures: list[asyncio.Future[Any]]) -> None:
        """Every acknowledgement of a batch, within `ack_timeout`: else the
        batch is given up (its futures cancelled) with a TimeoutError, and
        `run` publishes again from the persisted position (JetStream drops
        what it already has)."""
        try:
            async with asyncio.timeout(self.ack_timeout):
                await asyncio.gather(*futures)
        except TimeoutError:
            for future in futures:
                future.cancel()
            unacknowledged = sum(1 for f in futures if f.cancelled())
            raise TimeoutError(
                f"{unacknowledged} of {len(futures)} messages not acknowledged"
                f" within {self.ack_timeout:g}s"
            ) from None

    async def refill_gap(self) -> int | None:
        """If the stream lost the tail of what this relay had published (a NATS
        server that crashed before syncing its disk, a stream recreated
        empty), publish it again from the last event the stream still has.
        Checked when the relay starts leading and after each reconnection.
        Returns the position rewound to, or None when nothing was lost."""
        js = self.bus.jetstream()
        if self._position is None:
            self._position = self._persisted = await self.offload(self.app.position, POSITION)
        try:
            last = await js.get_last_msg(STREAM, service_filter(self.service))
            on_stream = int((last.headers or {}).get("Nats-Msg-Id", ":0").rsplit(":", 1)[1])
        except NotFoundError:
            on_stream = 0
        expected = await self.offload(self._last_public_up_to, self._position)
        if expected is None or on_stream >= expected:
            return None
        log.warning(
            "relay.gap_refilled",
            service=self.service,
            on_stream=on_stream,
            expected=expected,
        )
        self._position = on_stream
        return on_stream

    def _last_public_up_to(self, position: int, window: int = 1000) -> int | None:
        """The notification id of the last public event at or before
        `position` (looking back at most `window` events)."""
        start = max(0, position - window)
        found: int | None = None
        while start < position:
            batch = self.app.notifications_after(start, min(self.batch_size, position - start))
            if not batch:
                break
            for n in batch:
                if n.id > position:
                    return found
                if self.translate(self.app.mapper.to_domain_event(n)) is not None:
                    found = n.id
            start = batch[-1].id
        return found

    def rewind(self, position: int = 0) -> None:
        """Publish again from `position` (to rebuild the stream): JetStream
        drops what it still remembers; the persisted position never goes back."""
        self._position = position

    def _prepare(self, position: int) -> tuple[int, list[tuple[str, bytes, dict[str, str]]]] | None:
        """The next batch after `position`, up to what the service's own read
        models reflect: a reaction in another service that asks this one
        about an event must find that event's effects."""
        limit = self.reflected() if self.reflected is not None else None
        notifications = self.app.notifications_after(position, self.batch_size)
        if limit is not None:
            notifications = [n for n in notifications if n.id <= limit]
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
