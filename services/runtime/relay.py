"""The outbox relay: a service's notification log, in order, onto JetStream.

The event store is the outbox: an event is committed once, with the aggregate
change, and the relay publishes it afterwards. Each public event goes out as a
CloudEvents 1.0 JSON message with `Nats-Msg-Id: <service>:<notification_id>`,
in batches of `publish_async`; the position is persisted (in the service's own
tracking table) only after the whole batch is acknowledged. After a crash the
relay re-publishes from the persisted position and JetStream drops what it has
already stored (same Msg-Id inside the duplicate window), so each event is on
the stream exactly once. A save wakes the relay at once; a poll interval covers
saves made by other replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC
from typing import Any

import msgspec

from services.runtime.bus import Bus, Offloader
from services.runtime.eventstore import ServiceApplication
from services.runtime.logging import get_logger
from services.runtime.messages import PublicEvent
from services.runtime.stream import STREAM, CloudEvent, event_subject, json_encoder

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
    ):
        self.service = service
        self.app = app
        self.translate = translate
        self.bus = bus
        self.offload = offload
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.published = 0
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        app.on_saved(self._on_saved)

    def _on_saved(self, _notification_id: int) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def run(self, stopping: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        delay = 0.5
        while not stopping.is_set():
            self._wake.clear()
            try:
                await self.publish_pending()
                delay = 0.5
            except Exception as e:
                log.warning("relay.retry", service=self.service, error=str(e) or type(e).__name__)
                await _sleep_or_stop(stopping, delay)
                delay = min(delay * 2, 10.0)
                continue
            waits = [
                asyncio.ensure_future(self._wake.wait()),
                asyncio.ensure_future(stopping.wait()),
            ]
            _, pending = await asyncio.wait(
                waits, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED
            )
            for w in pending:
                w.cancel()

    async def publish_pending(self) -> int:
        """Publish everything after the persisted position; return how many."""
        js = self.bus.jetstream()
        position = await self.offload(self.app.position, POSITION)
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
            await self.offload(self.app.set_position, POSITION, last)
            position = last
            sent += len(messages)
            self.published += len(messages)

    def _prepare(self, position: int) -> tuple[int, list[tuple[str, bytes, dict[str, str]]]] | None:
        notifications = self.app.notifications_after(position, self.batch_size)
        if not notifications:
            return None
        messages = []
        for n in notifications:
            domain_event = self.app.mapper.to_domain_event(n)
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


async def _sleep_or_stop(stopping: asyncio.Event, delay: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), timeout=delay)
