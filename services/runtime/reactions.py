"""Reactions: a service's policies for another service's published events.

One durable pull consumer per (service, reaction) reads the upstream's subjects
on QUARTIER_EVENTS in order. Exactly-once effects come from tracking, not from
NATS: each handler records `(upstream, notification id)` in the same
transaction as its effects and skips anything at or below its position, so a
redelivered message (lost ack, restart, duplicate) changes nothing.

Because positions only move forward, messages are handled strictly in order:
when one fails, it and the rest of its batch are nak'ed with a delay and
redelivered, in order, before anything newer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import nats.errors
import sqlalchemy as sa
from eventsourcing.persistence import Tracking
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from services.runtime.bus import Bus
from services.runtime.logging import get_logger
from services.runtime.stream import STREAM, CloudEvent, cloud_event_decoder, service_filter
from services.runtime.wakeup import sleep_unless

log = get_logger("quartier.reactions")

Handle = Callable[[CloudEvent, Tracking], Awaitable[None]]


@dataclass
class Reaction:
    """`handle(event, tracking)` for every event the upstream service publishes."""

    name: str
    upstream: str
    handle: Handle


class ReactionConsumer:
    def __init__(self, service: str, reaction: Reaction, bus: Bus, batch: int = 64):
        self.service = service
        self.reaction = reaction
        self.bus = bus
        self.batch = batch
        self.durable = f"{service}-{reaction.name}"
        self.handled = 0

    def consumer_config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=60,
            max_deliver=-1,
            max_ack_pending=self.batch * 4,
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
        sub = await js.pull_subscribe(
            self.consumer_config().filter_subject or "",
            durable=self.durable,
            stream=STREAM,
            config=self.consumer_config(),
        )
        try:
            while not stopping.is_set():
                try:
                    msgs = await sub.fetch(self.batch, timeout=1.0)
                except (TimeoutError, nats.errors.TimeoutError):
                    continue
                await self.handle_batch(msgs)
        finally:
            await sub.unsubscribe()

    async def handle_batch(self, msgs: list[Any]) -> None:
        for i, msg in enumerate(msgs):
            try:
                event = cloud_event_decoder.decode(msg.data)
                await self.reaction.handle(event, Tracking(self.reaction.upstream, event.sequence))
            except Exception:
                meta = msg.metadata
                log.exception(
                    "reaction.failed",
                    consumer=self.durable,
                    stream_seq=meta.sequence.stream,
                    deliveries=meta.num_delivered,
                )
                delay = min(2 ** min(meta.num_delivered, 6) * 0.25, 30.0)
                for later in msgs[i:]:
                    await later.nak(delay=delay)
                return
            await msg.ack()
            self.handled += 1


# -- tracked effects in a service's read-model database -------------------------

views_tracking = sa.Table(
    "views_tracking",
    sa.MetaData(),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)


def tracked_transaction(
    engine: sa.Engine, tracking: Tracking, name: str, apply: Callable[[sa.Connection], None]
) -> bool:
    """Run `apply(conn)` and advance `name`'s position to `tracking` in one
    transaction, unless that position has been reached already.
    Returns False when the event had been processed before."""
    key = f"{name}<{tracking.application_name}"
    with engine.connect().execution_options(write_lock=True) as conn, conn.begin():
        position = read_position(conn, key)
        if tracking.notification_id <= position:
            return False
        apply(conn)
        write_position(conn, key, position, tracking.notification_id)
    return True


def read_position(conn: sa.Connection, key: str) -> int:
    row = conn.execute(
        sa.select(views_tracking.c.position).where(views_tracking.c.name == key).with_for_update()
    ).first()
    return row[0] if row else 0


def write_position(conn: sa.Connection, key: str, old: int, new: int) -> None:
    if old == 0:
        exists = conn.execute(
            sa.select(views_tracking.c.name).where(views_tracking.c.name == key)
        ).first()
        if exists is None:
            conn.execute(views_tracking.insert().values(name=key, position=new))
            return
    conn.execute(views_tracking.update().where(views_tracking.c.name == key).values(position=new))


def decode_data(event: CloudEvent, type_: type[Any]) -> Any:
    return msgspec.json.decode(event.data, type=type_)
