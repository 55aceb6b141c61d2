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

Rebuilding (`quartier stream rebuild`, or a lost tail noticed at start or
after a reconnection): the relay reads which of its events the stream holds,
for each tenant, and publishes again, in order, exactly those it lacks — the
CloudEvent ids (`<service>:<notification id>`) stay, so do consumers'
positions. A tenant whose events of this service are on the stream out of
order or with holes has them purged and published again in full.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
from eventsourcing.domain import DomainEvent
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from services.runtime import metrics
from services.runtime.bus import Bus, Offloader
from services.runtime.eventstore import ServiceApplication
from services.runtime.logging import get_logger
from services.runtime.messages import PublicEvent
from services.runtime.stream import (
    STREAM,
    CloudEvent,
    event_subject,
    json_encoder,
    notification_id_of,
    rebuild_consumer,
    service_filter,
    subject_service,
    tenant_filter,
)
from services.runtime.wakeup import Wakeup

log = get_logger("quartier.relay")

# How long the check of the stream's tail waits for an answer: a stream whose
# leader just died does not answer until another is elected; a short timeout
# lets the relay ask again (Bus.wait_to_retry) as soon as it would.
STREAM_CHECK_TIMEOUT = 2.0

Translate = Callable[[Any], PublicEvent | None]
POSITION = "__relay__"
Message = tuple[str, bytes, dict[str, str]]


@dataclass
class Rebuild:
    """A rebuild of this relay's part of the stream, and how it went."""

    id: str
    state: str = "queued"  # queued, running, done, failed
    checked: int = 0  # this service's messages found on the stream
    republished: int = 0
    purged_tenants: int = 0  # tenants whose events were out of order: purged, published again
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")


@dataclass
class _Held:
    """What the stream holds of one tenant's events of this service."""

    last: int = 0  # highest notification id
    count: int = 0
    ordered: bool = True  # ids increase with stream sequences, none twice


@dataclass
class _Plan:
    """Per tenant: publish again its events above this notification id (0: all)."""

    after: dict[str, int] = field(default_factory=dict)
    purge: list[str] = field(default_factory=list)
    start: int = 0  # the notification id before the first event to publish


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
        self._rewind_to: int | None = None  # a rewind asked for, not yet applied
        self._persisted = 0
        self._persisted_at = 0.0
        self._measured_at = 0.0
        self.persist_interval = persist_interval
        self._wake = Wakeup()
        app.on_saved(self._wake.set_threadsafe)
        self.rebuild: Rebuild | None = None

    @property
    def published_up_to(self) -> int | None:
        """The notification id up to which this (leading) relay has published."""
        return self._position

    async def run(self, stopping: asyncio.Event) -> None:
        self._wake.bind()
        self._position = None  # (re)gaining leadership: start from the store
        checked_at = -1  # the bus's reconnection count when the stream was last checked
        delay = 0.5
        while not stopping.is_set():
            self._wake.clear()
            try:
                if checked_at != self.bus.reconnections:
                    reconnections = self.bus.reconnections
                    await self.refill_gap()
                    checked_at = reconnections  # checked: a failure checks again
                if self.rebuild is not None and self.rebuild.state == "queued":
                    await self._run_rebuild(self.rebuild)
                await self.publish_pending()
                await self._persist()  # what a recent batch left unsaved
                await self._measure_lag()
                delay = 0.5
            except Exception as e:
                self._position = None  # read it again from the store
                log.warning("relay.retry", service=self.service, error=str(e) or type(e).__name__)
                with suppress(Exception):
                    await self._measure_lag(self._persisted)
                # cut short (and the back-off reset) by a reconnection or
                # the stream's new leader: failover costs about the election
                back = await self.bus.wait_to_retry(STREAM, stopping, delay)
                delay = 0.5 if back else min(delay * 2, 10.0)
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
        sent = 0
        while True:
            if self._rewind_to is not None:  # asked for meanwhile: it wins
                self._position, self._rewind_to = self._rewind_to, None
            position = self._position
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
            if self._rewind_to is None:
                # (a rewind asked for while this batch was in flight is not
                # overwritten: the next round starts from it)
                self._position = last
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
        empty), publish again what it lacks. Checked when the relay starts
        leading and after each reconnection: is the last public event at or
        before the position on the stream (the last message of its tenant
        and service)? Returns how many events were published again, or None
        when nothing was lost."""
        js = self.bus.jetstream(timeout=STREAM_CHECK_TIMEOUT)  # failover: try again soon
        if self._position is None:
            self._position = self._persisted = await self.offload(self.app.position, POSITION)
        expected = await self.offload(self._last_public_up_to, self._position)
        if expected is None:
            return None
        last_id, tenant = expected
        try:
            last = await js.get_last_msg(STREAM, tenant_filter(tenant, self.service))
            on_stream = notification_id_of(last.headers, last.data)
        except NotFoundError:
            on_stream = 0
        if on_stream >= last_id:
            return None
        log.warning(
            "relay.gap_refilled",
            service=self.service,
            on_stream=on_stream,
            expected=last_id,
        )
        rebuild = Rebuild(id=f"refill-{uuid.uuid4().hex[:8]}")
        await self._rebuild_stream(rebuild)
        return rebuild.republished

    def _last_public_up_to(self, position: int, window: int = 1000) -> tuple[int, str] | None:
        """The notification id and tenant of the last public event at or
        before `position` (looking back at most `window` events)."""
        start = max(0, position - window)
        found: tuple[int, str] | None = None
        while start < position:
            batch = self.app.notifications_after(start, min(self.batch_size, position - start))
            if not batch:
                break
            for n in batch:
                if n.id > position:
                    return found
                public = self.translate(self.app.mapper.to_domain_event(n))
                if public is not None:
                    found = (n.id, public.tenant_id)
            start = batch[-1].id
        return found

    def rewind(self, position: int = 0) -> None:
        """Publish again from `position`: JetStream drops what it still
        remembers (within its duplicate window), and stores again what it
        forgot, even if it still holds it. To rebuild the stream, use
        `request_rebuild`, which publishes only what the stream lacks.

        The rewind is a request, applied by the relay's loop before its next
        batch (and kept until then, across a failure or a change of leader):
        a batch in flight when it is asked for does not overwrite it. The
        relay is woken at once."""
        self._rewind_to = position
        self._wake.set_threadsafe()

    # -- rebuilding the stream -----------------------------------------------------

    def request_rebuild(self, rebuild_id: str | None = None) -> Rebuild:
        """Ask the running relay (the leader's) to publish again whatever the
        stream lacks of this service's events, then go on as usual. A rebuild
        already queued or running is returned instead of a new one."""
        if self.rebuild is not None and self.rebuild.active:
            return self.rebuild
        self.rebuild = Rebuild(id=rebuild_id or uuid.uuid4().hex)
        self._wake.set_threadsafe()
        return self.rebuild

    async def _run_rebuild(self, rebuild: Rebuild) -> None:
        try:
            await self._rebuild_stream(rebuild)
        except Exception as e:
            rebuild.state = "failed"
            rebuild.error = str(e) or type(e).__name__
            rebuild.finished_at = datetime.now(UTC)
            log.warning("relay.rebuild_failed", service=self.service, error=rebuild.error)
            raise

    async def _rebuild_stream(self, rebuild: Rebuild) -> None:
        """Publish again, in notification-id order, each public event up to
        the relay's position that the stream lacks; purge first the tenants
        whose events are on the stream out of order (they are then published
        again in full)."""
        rebuild.state, rebuild.started_at = "running", datetime.now(UTC)
        log.info("relay.rebuild_started", service=self.service, rebuild=rebuild.id)
        await self.publish_pending()
        await self._persist(force=True)  # nothing up to here is published twice after a crash
        position = self._position or 0
        held, rebuild.checked = await self._held_on_stream()
        plan = await self.offload(self._plan, position, held)
        js = self.bus.jetstream()
        for tenant in plan.purge:
            await js.purge_stream(STREAM, subject=tenant_filter(tenant, self.service))
        rebuild.purged_tenants = len(plan.purge)
        start = plan.start
        tag = f"r{rebuild.id[:8]}"
        while start < position:
            batch = await self.offload(self._missing, start, position, plan, tag)
            if batch is None:
                break
            start, messages = batch
            await self._publish(messages)
            rebuild.republished += len(messages)
            self.published += len(messages)
        rebuild.state, rebuild.finished_at = "done", datetime.now(UTC)
        log.info(
            "relay.rebuild_done",
            service=self.service,
            rebuild=rebuild.id,
            checked=rebuild.checked,
            republished=rebuild.republished,
            purged_tenants=rebuild.purged_tenants,
        )

    async def _held_on_stream(self) -> tuple[dict[str, _Held], int]:
        """Which of this service's events the stream holds, per tenant (read
        through the headers alone)."""
        js = self.bus.jetstream()
        # a consumer of its own name (the bus's permissions name it), created
        # afresh: one left by an interrupted rebuild would resume where it was
        name = rebuild_consumer(self.service)
        with suppress(NotFoundError):
            await js.delete_consumer(STREAM, name)
        info = await js.add_consumer(
            STREAM,
            ConsumerConfig(
                name=name,
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.NONE,
                filter_subject=service_filter(self.service),
                headers_only=True,
                inactive_threshold=60.0,
                mem_storage=True,
                num_replicas=1,
            ),
        )
        held: dict[str, _Held] = {}
        seen = 0
        remaining = info.num_pending or 0
        sub = await js.pull_subscribe_bind(stream=STREAM, name=info.name)
        try:
            while remaining > 0:
                for msg in await sub.fetch(min(1000, remaining), timeout=10.0):
                    tenant, _ = subject_service(msg.subject)
                    n = notification_id_of(msg.headers, None)
                    h = held.setdefault(tenant, _Held())
                    if n <= h.last:
                        h.ordered = False
                    h.last, h.count = max(h.last, n), h.count + 1
                    seen += 1
                    remaining = msg.metadata.num_pending or 0
        finally:
            with suppress(Exception):
                await sub.unsubscribe()
            with suppress(Exception):
                await js.delete_consumer(STREAM, info.name)
        return held, seen

    def _plan(self, position: int, held: dict[str, _Held]) -> _Plan:
        """A tenant whose events on the stream are exactly its first public
        events (in order, none twice) gets the rest; any other is purged and
        gets them all."""
        plan = _Plan()
        if not held:
            return plan  # an empty stream: everything, from the start
        counted: dict[str, int] = dict.fromkeys(held, 0)
        first: dict[str, int] = {}  # each tenant's first public event
        first_beyond: dict[str, int] = {}  # … and first one above what the stream holds
        start = 0
        while start < position:
            batch = self.app.notifications_after(start, min(self.batch_size, position - start))
            if not batch:
                break
            for n in batch:
                if n.id > position:
                    break
                public = self.translate(self.app.mapper.to_domain_event(n))
                if public is None:
                    continue
                tenant = public.tenant_id
                first.setdefault(tenant, n.id)
                h = held.get(tenant)
                if h is not None and n.id <= h.last:
                    counted[tenant] += 1
                else:
                    first_beyond.setdefault(tenant, n.id)
            start = batch[-1].id
        for tenant, h in held.items():
            if h.ordered and h.count == counted[tenant]:
                plan.after[tenant] = h.last
            else:
                plan.purge.append(tenant)
        starts = [
            first[t] if t in plan.purge or t not in held else first_beyond.get(t, position + 1)
            for t in first
        ]
        plan.start = min(starts, default=position + 1) - 1
        return plan

    def _missing(
        self, start: int, position: int, plan: _Plan, tag: str
    ) -> tuple[int, list[Message]] | None:
        """The next batch after `start` (up to `position`) of what the stream
        lacks. Their `Nats-Msg-Id` carries the rebuild's tag: JetStream may
        still remember the plain id of an event that was purged."""
        notifications = [
            n for n in self.app.notifications_after(start, self.batch_size) if n.id <= position
        ]
        if not notifications:
            return None
        messages = []
        for n in notifications:
            domain_event = self.app.mapper.to_domain_event(n)
            assert isinstance(domain_event, DomainEvent)
            public = self.translate(domain_event)
            if public is None or n.id <= plan.after.get(public.tenant_id, 0):
                continue
            messages.append(
                self._message(n.id, domain_event, public, f"{self.service}:{tag}:{n.id}")
            )
        return notifications[-1].id, messages

    async def _publish(self, messages: list[Message]) -> None:
        js = self.bus.jetstream()
        futures = [
            await js.publish_async(subject, payload, headers=headers)
            for subject, payload, headers in messages
        ]
        if futures:
            await asyncio.gather(*futures)

    def _message(
        self, notification_id: int, domain_event: DomainEvent, public: PublicEvent, message_id: str
    ) -> Message:
        cloud_event = CloudEvent(
            id=f"{self.service}:{notification_id}",
            source=f"quartier/{self.service}",
            type=public.type_name(),
            subject=str(domain_event.originator_id),
            time=domain_event.timestamp.astimezone(UTC),
            tenant=public.tenant_id,
            sequence=notification_id,
            data=msgspec.Raw(json_encoder.encode(public)),
        )
        return (
            event_subject(public.tenant_id, self.service, type(public).__name__),
            json_encoder.encode(cloud_event),
            {"Nats-Msg-Id": message_id, "Nats-Expected-Stream": STREAM},
        )

    def _prepare(self, position: int) -> tuple[int, list[Message]] | None:
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
            messages.append(self._message(n.id, domain_event, public, f"{self.service}:{n.id}"))
        return notifications[-1].id, messages
