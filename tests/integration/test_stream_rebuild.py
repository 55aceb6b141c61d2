"""Rebuilding the stream from the services' notification logs
(`quartier stream rebuild`): whatever was lost — the whole stream, a
network's subjects, a message in the middle — comes back once, in order and
with the same ids, so a consumer resuming from a position it took before the
loss gets exactly the events after it; and reading a tenant's stream holds
at most one batch for a slow reader."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from nats.js.errors import NotFoundError

from infra import cli
from infra.nats_server import NatsServer, start_nats_server
from services.hubs import contract as hc
from services.runtime.bus import Bus
from services.runtime.host import ServiceHost
from services.runtime.settings import Settings
from services.runtime.stream import STREAM, EventReader, Position, tenant_filter
from tests.support.identity import add_member, as_member, card, create_network
from tests.support.services import Services
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio

VOLTAIRE = hc.Area(centre=hc.Point(lat=48.8575, lon=2.3795), radius_km=1.5)
IN_11E = {"lat": 48.8560, "lon": 2.3750, "postcode": "75011"}


def logged_ids(hosts: dict[str, ServiceHost], tenant_id: str) -> list[str]:
    """The tenant's public events as the services' logs hold them."""
    found = []
    for name, host in hosts.items():
        for relay in host.relays:
            for n in relay.app.notifications_after(0, 1_000_000):
                public = relay.translate(relay.app.mapper.to_domain_event(n))
                if public is not None and public.tenant_id == tenant_id:
                    found.append(f"{name}:{n.id}")
    return found


async def read(bus: Bus, tenant_id: str, after: str | None = None) -> list[tuple[str, str]]:
    """(id, position) of the tenant's events, after `after` (a position)."""
    reader = EventReader(
        bus.jetstream(),
        tenant_id,
        after=Position.decode(after, tenant_id) if after else None,
    )
    return [(item.event.id, item.position) async for item in reader if item is not None]


async def published(bus: Bus, hosts: dict[str, ServiceHost], tenant_id: str) -> list[str]:
    expected = set(await asyncio.to_thread(logged_ids, hosts, tenant_id))

    async def complete() -> list[str] | None:
        ids = [i for i, _ in await read(bus, tenant_id)]
        return ids if set(ids) == expected else None

    return await eventually(complete)


async def stream_messages(bus: Bus) -> int:
    return (await bus.jetstream().stream_info(STREAM)).state.messages


def in_service_order(ids: list[str]) -> bool:
    last: dict[str, int] = {}
    for i in ids:
        service, n = i.split(":")
        if int(n) <= last.get(service, 0):
            return False
        last[service] = int(n)
    return True


async def two_networks(bus: Bus) -> tuple[str, str, Any]:
    a, admin = await create_network(bus, "pole-a")
    b, _ = await create_network(bus, "pole-b", admin_email="admin@b.example")
    hub = await bus.request(
        hc.CreateHub(name="Voltaire", kind="neighbourhood", area=VOLTAIRE), as_member(admin)
    )
    for i in range(3):
        member = await add_member(
            bus,
            a.tenant_id,
            f"m{i}@a.example",
            card(f"M{i}", ("plumber", "electrician", "baker")[i], work=IN_11E),
        )
        await add_member(bus, b.tenant_id, f"m{i}@b.example", card(f"B{i}"))
        await bus.request(
            hc.NominateCandidate(hub_id=hub.hub_id, candidate_id=member.member_id),
            as_member(admin),
        )
    return a.tenant_id, b.tenant_id, admin


@pytest.mark.parametrize("damage", ["stream deleted", "network purged", "message lost"])
async def test_a_consumer_resumes_after_a_rebuild_with_no_gap_and_no_duplicate(
    settings: Settings,
    client_bus: Bus,
    services: Services,
    capsys: pytest.CaptureFixture[str],
    damage: str,
) -> None:
    await services.start("hubs")
    hosts = services.hosts
    a, b, _ = await two_networks(client_bus)
    ids_a = await published(client_bus, hosts, a)
    ids_b = await published(client_bus, hosts, b)
    total = await stream_messages(client_bus)
    before_a = await read(client_bus, a)
    before_b = await read(client_bus, b)
    k = len(before_a) // 2
    taken_a = before_a[k][1]  # consumers' positions, taken before the loss
    taken_b = before_b[1][1]
    assert {i.split(":")[0] for i, _ in before_a[k + 1 :]} == {"identity", "hubs"}

    js = client_bus.jetstream()
    if damage == "stream deleted":
        await js.delete_stream(STREAM)
    elif damage == "network purged":
        await js.purge_stream(STREAM, subject=tenant_filter(a))
    else:  # one of network a's messages after the position vanishes
        lost = before_a[k + 2][0]
        info = await js.stream_info(STREAM)
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(STREAM, seq)
            if msg.headers and msg.headers["Nats-Msg-Id"] == lost:
                await js.delete_msg(STREAM, seq)
        assert lost not in [i for i, _ in await read(client_bus, a)]

    assert await cli.stream_rebuild(settings, list(services.hosts), 60) == 0
    out = capsys.readouterr().out
    assert "identity:" in out and "hubs:" in out and "caught up" in out
    if damage == "message lost":
        assert "1 network(s) out of order purged" in out

    # the consumer of network a resumes exactly after its position
    resumed = [i for i, _ in await read(client_bus, a, after=taken_a)]
    assert len(resumed) == len(set(resumed))
    assert set(resumed) == {i for i, _ in before_a[k + 1 :]}
    assert in_service_order(resumed)
    # the whole history is there once, in each service's order
    everything = [i for i, _ in await read(client_bus, a)]
    assert sorted(everything) == sorted(ids_a) and in_service_order(everything)
    # network b's consumer is not disturbed
    resumed_b = [i for i, _ in await read(client_bus, b, after=taken_b)]
    assert resumed_b == [i for i, _ in before_b[2:]] or (
        damage == "stream deleted" and sorted(resumed_b) == sorted(i for i, _ in before_b[2:])
    )
    assert sorted(i for i, _ in await read(client_bus, b)) == sorted(ids_b)
    assert await stream_messages(client_bus) == total  # nothing twice on the stream

    # a second rebuild finds nothing missing
    assert await cli.stream_rebuild(settings, ["identity", "hubs"], 60) == 0
    out = capsys.readouterr().out
    assert "identity: 0 event(s) republished" in out and "hubs: 0 event(s) republished" in out
    assert await stream_messages(client_bus) == total

    # and the stream goes on: a new event comes after the last position
    last = (await read(client_bus, a))[-1][1]
    await add_member(client_bus, a, "late@a.example", card("Late"))

    async def the_new_ones() -> list[str] | None:
        new = [i for i, _ in await read(client_bus, a, after=last)]
        return new if len(new) >= 2 else None  # InvitationIssued, MemberJoined

    new = await eventually(the_new_ones)
    assert all(i.startswith("identity:") for i in new) and not set(new) & set(ids_a)


async def test_the_rebuild_is_for_the_operator_and_for_known_services(
    settings: Settings,
    client_bus: Bus,
    services: Services,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await services.start("identity")
    assert await cli.stream_rebuild(settings, ["nope"], 5) == 2
    assert "unknown service 'nope'" in capsys.readouterr().err
    refused = settings.with_(operator_token="not-the-operator-token-0123456789")
    assert await cli.stream_rebuild(refused, ["identity"], 5) == 2
    assert "forbidden" in capsys.readouterr().err
    # a stream deleted while nothing happens is created again by the rebuild
    await client_bus.jetstream().delete_stream(STREAM)
    with pytest.raises(NotFoundError):
        await client_bus.jetstream().stream_info(STREAM)
    assert await cli.stream_rebuild(settings, ["identity"], 30) == 0
    assert (await client_bus.jetstream().stream_info(STREAM)).state.messages == 0


async def test_a_slow_reader_holds_one_batch_at_most(
    settings: Settings, client_bus: Bus, services: Services
) -> None:
    await services.start("identity")
    tenant, _ = await create_network(client_bus, "pole-slow")
    for i in range(12):
        await add_member(client_bus, tenant.tenant_id, f"m{i}@slow.example", card(f"M{i}"))
    expected = await published(client_bus, services.hosts, tenant.tenant_id)
    reader = EventReader(client_bus.jetstream(), tenant.tenant_id, batch=4)
    taken = []
    async for item in reader:
        assert item is not None
        taken.append(item.event.id)
        # what was fetched from JetStream and not yet taken: one batch at most
        assert reader.fetched - len(taken) < 4
        await asyncio.sleep(0.01)  # a slow client
    assert taken == expected
    assert reader.fetched == len(expected)


async def test_a_follower_goes_on_after_the_nats_server_restarts(
    settings: Settings, client_bus: Bus, services: Services, nats_server: NatsServer
) -> None:
    """The reader's consumer lives in the server's memory: after a restart the
    reader notices it is gone and creates it again where it stood."""
    identity = await services.start("identity")
    tenant, _ = await create_network(client_bus, "pole-restart")
    history = await published(client_bus, services.hosts, tenant.tenant_id)
    reader = EventReader(
        client_bus.jetstream(),
        tenant.tenant_id,
        after=Position.decode((await read(client_bus, tenant.tenant_id))[-1][1], tenant.tenant_id),
        follow=True,
        heartbeat=0.2,
    )
    reader.CHECK_INTERVAL = 0.3
    got: list[str] = []

    async def follow() -> None:
        async for item in reader:
            if item is not None:
                got.append(item.event.id)

    following = asyncio.create_task(follow())
    try:
        await asyncio.sleep(0.3)
        nats_server.stop()
        restarted = start_nats_server(nats_server.store_dir, port=nats_server.port)
        nats_server.process = restarted.process
        await eventually(lambda: client_bus.is_connected and identity.bus.is_connected)
        await eventually(lambda: client_bus.ping("identity"))  # its subscriptions are back
        await add_member(client_bus, tenant.tenant_id, "new@restart.example", card("New"))
        await eventually(lambda: len(got) >= 2, timeout=15)
        assert not set(got) & set(history)
        assert all(i.startswith("identity:") for i in got)
    finally:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
