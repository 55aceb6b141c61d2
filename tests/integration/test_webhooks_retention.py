"""Webhooks keep a bounded history: finished deliveries and attempts older
than the retention are forgotten by the dispatcher's pruning round (on the
movable clock), a pending delivery stays in its queue with its recent
attempts only; the retention's setting is checked. Real NATS, store and
receiver."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.runtime.bus import Bus
from services.runtime.clock import MovableClock
from services.runtime.errors import NotFound
from services.runtime.settings import ConfigurationError, Settings
from services.webhooks import contract as c
from services.webhooks.delivery import Options
from services.webhooks.service import options_from_env
from tests.integration.test_webhooks_service import (
    CARD_TYPE,
    _len_at_least,
    attempts_of,
    deliveries,
    network,
    start_webhooks,
    touch_card,
)
from tests.support.receiver import Receiver
from tests.support.services import Services
from tests.support.waiting import eventually

TEST_SETTINGS = Settings.from_env({"QUARTIER_ENV": "test"})


async def test_old_deliveries_and_attempts_are_forgotten_pending_ones_stay(
    services: Services, client_bus: Bus, clock: MovableClock
) -> None:
    await start_webhooks(
        services, Options(allow_private=True, timeout=1.0, retention=timedelta(days=30))
    )
    receiver = await Receiver().start()
    try:
        _, ctx = await network(client_bus, "wh-keep")
        made = await client_bus.request(
            c.CreateEndpoint(url=receiver.url, event_types=[CARD_TYPE]), ctx
        )
        good = made.endpoint.endpoint_id
        closed = await client_bus.request(  # nothing listens there: every attempt fails
            c.CreateEndpoint(url="http://127.0.0.1:9/hook", event_types=[CARD_TYPE]), ctx
        )
        bad = closed.endpoint.endpoint_id
        for n in range(2):
            await touch_card(client_bus, ctx, n)
        await eventually(lambda: len(receiver.delivered) == 2, timeout=20)
        old = await deliveries(client_bus, ctx, good)
        (stuck, *_) = await eventually(
            lambda: _len_at_least(deliveries(client_bus, ctx, bad), 2), timeout=20
        )
        await eventually(
            lambda: _len_at_least(attempts_of(client_bus, ctx, stuck.delivery_id), 1), timeout=20
        )

        clock.advance(days=29)  # within the retention: all kept
        await touch_card(client_bus, ctx, 2)
        await eventually(lambda: len(receiver.delivered) == 3, timeout=20)
        assert len(await deliveries(client_bus, ctx, good)) == 3

        clock.advance(days=2)  # the first two are 31 days old
        await touch_card(client_bus, ctx, 3)
        await eventually(lambda: len(receiver.delivered) == 4, timeout=20)

        async def pruned() -> list[c.Delivery] | None:
            kept = await deliveries(client_bus, ctx, good)
            return kept if len(kept) == 2 else None

        kept = await eventually(pruned, timeout=20)
        assert {d.delivery_id for d in kept}.isdisjoint(d.delivery_id for d in old)
        assert {d.status for d in kept} == {"delivered"}
        for gone in old:
            with pytest.raises(NotFound):
                await client_bus.request(c.GetDelivery(delivery_id=gone.delivery_id), ctx)
            with pytest.raises(NotFound):
                await client_bus.request(c.ListAttempts(delivery_id=gone.delivery_id), ctx)

        # the failing endpoint's head is still pending, its 31-day-old attempt forgotten
        head = await client_bus.request(c.GetDelivery(delivery_id=stuck.delivery_id), ctx)
        assert head.status == "pending"
        tried = await attempts_of(client_bus, ctx, stuck.delivery_id)
        assert all(clock.now() - a.at < timedelta(days=30) for a in tried)
        assert head.attempts > len(tried)  # the count stays; the oldest rows went

        # nothing to replay before the retention: the window is the retention
        replayed = await client_bus.request(
            c.ReplayDeliveries(endpoint_id=good, since=clock.now() - timedelta(days=60), all=True),
            ctx,
        )
        assert replayed.queued == 2
    finally:
        await receiver.stop()


@pytest.mark.parametrize("days", ["3", "0", "-1", "3651", "a month", "1.5"])
def test_a_retention_outside_its_bounds_is_refused(days: str) -> None:
    with pytest.raises(ConfigurationError, match="RETENTION_DAYS"):
        options_from_env(TEST_SETTINGS, {"QUARTIER_WEBHOOKS_RETENTION_DAYS": days})


def test_the_retention_is_read_from_the_environment() -> None:
    assert options_from_env(TEST_SETTINGS, {}).retention == timedelta(days=30)
    found = options_from_env(TEST_SETTINGS, {"QUARTIER_WEBHOOKS_RETENTION_DAYS": "90"})
    assert found.retention == timedelta(days=90)
