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
replicas), and a failing message is retried in place, with a growing delay,
until it succeeds. A message that always fails blocks its reaction: it is
logged at every attempt, never skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import msgspec
import nats.errors
from eventsourcing.persistence import Tracking
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from services.runtime.bus import Bus
from services.runtime.logging import get_logger
from services.runtime.stream import STREAM, CloudEvent, cloud_event_decoder, service_filter
from services.runtime.wakeup import sleep_unless

log = get_logger("quartier.reactions")

Handle = Callable[[CloudEvent, Tracking], Awaitable[None]]
MAX_RETRY_DELAY = 30.0
E = TypeVar("E")


@dataclass
class Reaction:
    """`handle(event, tracking)` for every event the upstream service publishes."""

    name: str
    upstream: str
    handle: Handle


class ReactionConsumer:
    def __init__(self, service: str, reaction: Reaction, bus: Bus):
        self.service = service
        self.reaction = reaction
        self.bus = bus
        self.durable = f"{service}-{reaction.name}"
        self.handled = 0
        self.failures = 0

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
                    msgs = await sub.fetch(1, timeout=1.0)
                except (TimeoutError, nats.errors.TimeoutError):
                    continue
                for msg in msgs:
                    await self.handle_message(msg, stopping)
        finally:
            await sub.unsubscribe()

    async def handle_message(self, msg: Msg, stopping: asyncio.Event) -> None:
        """Handle one message until it succeeds (or the consumer stops: it is
        then redelivered, still before anything newer)."""
        attempt = 0
        while True:
            try:
                event = cloud_event_decoder.decode(msg.data)
                await self.reaction.handle(event, Tracking(self.reaction.upstream, event.sequence))
            except Exception:
                attempt += 1
                self.failures += 1
                log.exception(
                    "reaction.failed",
                    consumer=self.durable,
                    stream_seq=msg.metadata.sequence.stream,
                    attempt=attempt,
                )
                if stopping.is_set():
                    return
                await msg.in_progress()  # keep it ours while we wait
                await sleep_unless(stopping, min(0.25 * 2**attempt, MAX_RETRY_DELAY))
                continue
            await msg.ack_sync()
            self.handled += 1
            return


def decode_data(event: CloudEvent, type_: type[E]) -> E:
    """The event's `data` as the upstream contract's event type."""
    return msgspec.json.decode(event.data, type=type_)
