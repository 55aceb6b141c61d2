"""Prometheus metrics: each service serves its own (requests by outcome and
latency, projection lag, parked events, NATS reconnects), with bounded label
values only — no tenant, member or id."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from infra.nats_server import free_port
from services.identity import contract as idc
from services.runtime.bus import Bus
from services.runtime.clock import MovableClock
from services.runtime.errors import InvalidInput
from services.runtime.settings import Settings
from tests.support.identity import as_member, create_network
from tests.support.services import Services
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_a_service_serves_its_metrics(
    sqlite_settings: Settings, client_bus: Bus, clock: MovableClock
) -> None:
    base = free_port()
    settings = sqlite_settings.with_(metrics_port=base)
    port = settings.metrics_port_of("identity")
    assert port == base + 1
    services = Services(settings, clock)
    await services.start("identity")
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        before = (await asyncio.to_thread(httpx.get, url)).text
        _, admin = await create_network(client_bus, "net-metrics")
        with pytest.raises(InvalidInput):
            await client_bus.request(
                idc.UpdateProfileCard(changes=idc.CardChanges(display_name="\u200b")),
                as_member(admin),
            )

        async def scraped() -> str | None:
            text = (await asyncio.to_thread(httpx.get, url)).text
            ok = sample(text, "quartier_requests_total", request="AcceptInvitation", outcome="ok")
            return (
                text
                if ok
                > sample(
                    before, "quartier_requests_total", request="AcceptInvitation", outcome="ok"
                )
                else None
            )

        text = await eventually(scraped)
        refused = dict(service="identity", request="UpdateProfileCard", outcome="invalid_input")
        assert sample(text, "quartier_requests_total", **refused) >= 1
        assert sample(text, "quartier_request_seconds_count", request="AcceptInvitation") >= 1
        assert "quartier_projection_lag_events" in text
        assert "quartier_parked_events" in text or "quartier_relay_lag_events" in text
        quartier_lines = [line for line in text.splitlines() if line.startswith("quartier_")]
        assert quartier_lines
        assert not any(UUID.search(line) for line in quartier_lines), "an id in a label value"
        assert not any("net-metrics" in line for line in quartier_lines)
    finally:
        await services.stop()
