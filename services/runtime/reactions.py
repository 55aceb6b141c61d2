"""Reactions: a service's policies for another service's published events.

One durable pull consumer per (service, reaction) reads the upstream's subjects
on QUARTIER_EVENTS. Exactly-once effects come from tracking, not from NATS:
each handler records `(upstream, notification id)` in the same transaction as
its effects and skips anything at or below its position, so a redelivered
message (lost ack, restart, re-publication) changes nothing.

Because a position only moves forward, nothing newer may be handled before an
older message has succeeded, or the older one would later be skipped. So the
consumer allows one unacknowledged message at a time (`max_ack_pending=1`:
JetStream itself delivers nothing newer meanwhile, across restarts and
replicas), and a failing message is retried in place, with a growing delay.
A passing fault (a service or the database restarting) is retried until it
passes. Any other failure is the event's own: after PARK_AFTER attempts the
event is *parked* (services/runtime/parking.py) and the reaction goes on;
the later events of the same aggregate wait parked behind it; operators
retry or skip it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import TypeVar

import msgspec
import nats.errors
from eventsourcing.persistence import Tracking
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from services.runtime import metrics
from services.runtime.bus import Bus, Offloader
from services.runtime.logging import get_logger
from services.runtime.parking import (
    WAITING,
    ParkingLot,
    describe,
    is_transient,
    retrying,
)
from services.runtime.stream import STREAM, CloudEvent, cloud_event_decoder, service_filter
from services.runtime.wakeup import sleep_unless

log = get_logger("quartier.reactions")

Handle = Callable[[CloudEvent, Tracking], Awaitable[None]]
MAX_RETRY_DELAY = 30.0
E = TypeVar("E")
PARK_AFTER = 3  # attempts


@dataclass
class Reaction:
    """`handle(event, tracking)` for every event the upstream service publishes."""

    name: str
    upstream: str
    handle: Handle


class ReactionConsumer:
    def __init__(
        self,
        service: str,
        reaction: Reaction,
        bus: Bus,
        parking: ParkingLot | None = None,
        offload: Offloader | None = None,
        fetch_wait: float = 1.0,
    ):
        self.service = service
        # how long an idle pull waits for a message before it looks whether
        # the service stops (a stop waits for it)
        self.fetch_wait = fetch_wait
        self.reaction = reaction
        self.bus = bus
        self.parking = parking
        self.offload = offload
        self.durable = f"{service}-{reaction.name}"
        self.handled = 0
        self.failures = 0
        self.parked = 0

    def consumer_config(self) -> ConsumerConfig:
        return ConsumerConfig(
            name=self.durable,
            durable_name=self.durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=2 * MAX_RETRY_DELAY,
            max_deliver=-1,
            max_ack_pending=1,
            filter_subject=service_filter(self.reaction.upstream),
        )

    async def run(self, stopping: asyncio.Event) -> None:
        delay = 0.5
        while not stopping.is_set():
            try:
                await self._consume(stopping)
            except Exception as e:
                log.warning(
                    "reaction.retry", consumer=self.durable, error=str(e) or type(e).__name__
                )
                await sleep_unless(stopping, delay)
                delay = min(delay * 2, 10.0)

    async def _consume(self, stopping: asyncio.Event) -> None:
        js = self.bus.jetstream()
        await js.add_consumer(STREAM, config=self.consumer_config())  # create or update
        sub = await js.pull_subscribe_bind(durable=self.durable, stream=STREAM)
        try:
            while not stopping.is_set():
                try:
                    msgs = await sub.fetch(1, timeout=self.fetch_wait)
                except (TimeoutError, nats.errors.TimeoutError):
                    continue
                for msg in msgs:
                    await self.handle_message(msg, stopping)
        finally:
            await sub.unsubscribe()

    async def handle_message(self, msg: Msg, stopping: asyncio.Event) -> None:
        """Handle one message until it succeeds, is parked, or the consumer
        stops (it is then redelivered, still before anything newer)."""
        attempt = 0
        while True:
            try:
                event = cloud_event_decoder.decode(msg.data)
                if await self._waits_behind_parked(event):
                    await self._park(event, msg, WAITING)
                    return
                await self.reaction.handle(event, Tracking(self.reaction.upstream, event.sequence))
            except Exception as e:
                attempt += 1
                self.failures += 1
                metrics.REACTION_FAILURES.labels(
                    service=self.service, reaction=self.reaction.name
                ).inc()
                log.exception(
                    "reaction.failed",
                    consumer=self.durable,
                    stream_seq=msg.metadata.sequence.stream,
                    attempt=attempt,
                )
                if stopping.is_set():
                    return
                if self.parking is not None and not is_transient(e) and attempt >= PARK_AFTER:
                    await self._park(cloud_event_decoder.decode(msg.data), msg, describe(e))
                    return
                await msg.in_progress()  # keep it ours while we wait
                await sleep_unless(stopping, min(0.25 * 2**attempt, MAX_RETRY_DELAY))
                continue
            await msg.ack_sync()
            self.handled += 1
            self._lag(msg)
            return

    def _lag(self, msg: Msg) -> None:
        with suppress(Exception):
            metrics.REACTION_LAG.labels(service=self.service, reaction=self.reaction.name).set(
                msg.metadata.num_pending
            )

    async def _waits_behind_parked(self, event: CloudEvent) -> bool:
        parking = self.parking
        if parking is None or self.offload is None:
            return False
        if await self.offload(parking.count) == 0:
            return False

        def blocked() -> bool:
            with parking.engine.connect() as conn:
                return event.subject in parking.blocked(conn, self.durable)

        return await self.offload(blocked)

    async def _park(self, event: CloudEvent, msg: Msg, error: str) -> None:
        parking = self.parking
        assert parking is not None and self.offload is not None

        def park() -> None:
            with parking.engine.begin() as conn:
                parking.park(
                    conn,
                    self.durable,
                    event.sequence,
                    event.tenant,
                    event.subject,
                    event.type,
                    error,
                    payload=msg.data.decode(),
                )

        await self.offload(park)
        await msg.ack_sync()
        self.parked += 1
        self._lag(msg)

    def _release(self, position: int) -> None:
        """A no-op when the handler's tracked effects released it already."""
        assert self.parking is not None
        with self.parking.engine.begin() as conn:
            self.parking.release(conn, self.durable, position)

    async def retry_parked(self) -> tuple[int, int]:
        """Handle this reaction's parked events again, in order (an
        aggregate's later events only once its earlier ones succeeded).
        Returns (applied, still parked)."""
        parking = self.parking
        if parking is None or self.offload is None:
            return 0, 0
        applied = 0
        failed: set[str] = set()
        for parked in await self.offload(parking.list, self.durable):
            if parked.aggregate_id in failed:
                continue
            raw = await self.offload(parking.payload, self.durable, parked.position)
            try:
                event = cloud_event_decoder.decode(raw or "")
                with retrying(parking, self.durable, parked.position):
                    await self.reaction.handle(
                        event, Tracking(self.reaction.upstream, event.sequence)
                    )

                await self.offload(self._release, parked.position)
                applied += 1
            except Exception as e:
                await self.offload(parking.failed_again, self.durable, parked.position, describe(e))
                failed.add(parked.aggregate_id)
        return applied, len(await self.offload(parking.list, self.durable))


def decode_data(event: CloudEvent, type_: type[E]) -> E:
    """The event's `data` as the upstream contract's event type."""
    return msgspec.json.decode(event.data, type=type_)
