"""`quartier clock`: on development systems the services' clock is the
system's shifted by an offset that operators move, to try time-based rules on
a running system; every service hears a move, the offset survives restarts,
and production refuses it."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from infra import cli
from services.hubs import contract as hc
from services.runtime import operations as ops
from services.runtime.bus import Bus
from services.runtime.clock import ShiftedClock
from services.runtime.host import clock_offset
from services.runtime.settings import Settings
from tests.support.identity import add_member, as_member, card, create_network
from tests.support.services import Services
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio

VOLTAIRE = hc.Area(centre=hc.Point(lat=48.8575, lon=2.3795), radius_km=1.5)
IN_11E = {"lat": 48.8560, "lon": 2.3750, "postcode": "75011"}


async def test_moving_the_clock_closes_an_objection_window(
    sqlite_settings: Settings, client_bus: Bus, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = ShiftedClock()
    services = Services(sqlite_settings, clock)  # type: ignore[arg-type]
    await services.start("hubs")
    try:
        tenant, admin = await create_network(client_bus, "pole-clock")
        hub = await client_bus.request(
            hc.CreateHub(name="Voltaire", kind="neighbourhood", area=VOLTAIRE), as_member(admin)
        )
        karim = await add_member(
            client_bus, tenant.tenant_id, "karim@clock.example", card("Karim", work=IN_11E)
        )
        nomination = await client_bus.request(
            hc.NominateCandidate(hub_id=hub.hub_id, candidate_id=karim.member_id),
            as_member(admin),
        )
        assert nomination.status == "open"
        assert await cli.clock(sqlite_settings, "+8d") == 0
        out = capsys.readouterr().out
        assert "identity:" in out and "hubs:" in out and "8 days" in out
        assert clock.offset == timedelta(days=8)
        assert clock_offset(sqlite_settings) == timedelta(days=8)  # kept for a restart

        async def admitted() -> bool:
            n = await client_bus.request(
                hc.GetNomination(hub_id=hub.hub_id, nomination_id=nomination.nomination_id),
                as_member(admin),
            )
            return n.status == "admitted"

        await eventually(admitted)
        assert await cli.clock(sqlite_settings, "-8d") == 0
        assert clock.offset == timedelta(0)
        # bad durations, a bad credential, production: refused, nothing moved
        assert await cli.clock(sqlite_settings, "tomorrow") == 2
        assert await cli.clock(sqlite_settings.with_(env="prod"), "+1d") == 2
        forged = await client_bus.client.request(
            ops.CLOCK_SUBJECT,
            msgspec.json.encode(ops.MoveClock(credential="not the token", seconds=3600)),
            timeout=5,
        )
        assert msgspec.json.decode(forged.data, type=ops.ClockState).error
        assert clock.offset == timedelta(0)
    finally:
        await services.stop()
