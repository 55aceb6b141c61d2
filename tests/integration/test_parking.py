"""One event that a projection or a reaction cannot apply stops nobody else:
it is parked with what depends on it (the later events of its aggregate),
everything else flows, the service starts anyway, operators see it (health,
`quartier parked list`) and retry or skip it; a retry applies it once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from eventsourcing.persistence import Tracking

from services.identity import contract as idc
from services.identity.domain import Member
from services.identity.service import build
from services.runtime import operations as ops
from services.runtime.bus import Bus
from services.runtime.clock import MovableClock
from services.runtime.errors import Forbidden, NotFound
from services.runtime.host import ServiceHost
from services.runtime.messages import Actor
from services.runtime.reactions import Reaction, decode_data
from services.runtime.settings import Settings
from services.runtime.stream import CloudEvent
from services.runtime.tenancy import RequestContext
from services.runtime.views import TrackedTables
from tests.support.env import OPERATOR_TOKEN
from tests.support.identity import add_member, as_member, card, create_network
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio


class Broken:
    """A read model with a bug: it cannot apply events of the tenants it
    is told to refuse (until the bug is fixed)."""

    name = "broken-names"
    metadata = sa.MetaData()
    names = sa.Table(
        "broken_names",
        metadata,
        sa.Column("member_id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("display_name", sa.String(80), nullable=False),
    )

    def __init__(self) -> None:
        self.refused: set[str] = set()

    def apply(self, conn: sa.Connection, e: Any) -> None:
        match e:
            case Member.Joined():
                if e.tenant_id in self.refused:
                    raise ValueError("cannot store this value")
                conn.execute(
                    self.names.insert().values(
                        member_id=str(e.originator_id),
                        tenant_id=e.tenant_id,
                        display_name=e.card["display_name"],
                    )
                )
            case Member.CardUpdated():
                conn.execute(
                    self.names.update()
                    .where(self.names.c.member_id == str(e.originator_id))
                    .values(display_name=e.card["display_name"])
                )


def names(host: ServiceHost) -> dict[str, str]:
    with host.engine.connect() as conn:
        return {r.member_id: r.display_name for r in conn.execute(sa.select(Broken.names))}


def operator_ctx() -> RequestContext:
    return RequestContext(actor=Actor(kind="operator"), credential=OPERATOR_TOKEN)


async def parked(bus: Bus, service: str = "identity", status: str = "parked") -> list[Any]:
    return await bus.request(
        ops.for_service(ops.ListParked, service)(status=status), operator_ctx()
    )


async def test_a_projection_parks_what_it_cannot_apply_and_goes_on(
    settings: Settings, client_bus: Bus, clock: MovableClock
) -> None:
    host = build(settings, clock=clock)
    broken = Broken()
    projector = host.add_projection(host.context["app"], broken)
    await host.start()
    try:
        tenant_a, admin_a = await create_network(client_bus, "net-a")
        tenant_b, _ = await create_network(client_bus, "net-b")
        broken.refused.add(tenant_b.tenant_id)
        karim = await add_member(client_bus, tenant_b.tenant_id, "karim@b.example", card("Karim"))
        ines = await add_member(client_bus, tenant_a.tenant_id, "ines@a.example", card("Ines"))
        # a later event of Karim's aggregate waits behind the parked one
        await client_bus.request(
            idc.UpdateProfileCard(changes=idc.CardChanges(display_name="Karim B.")),
            as_member(karim),
        )
        await asyncio.to_thread(projector.catch_up)
        seen = names(host)
        assert seen[ines.member_id] == "Ines" and seen[admin_a.member_id] == "Admin"
        assert karim.member_id not in seen
        # identity's own read models never stopped: tenant B's admin reads B
        me = await client_bus.request(
            idc.GetMembers(member_ids=[karim.member_id]), as_member(karim)
        )
        assert me[0].display_name == "Karim B."
        ctx = operator_ctx()
        found = await client_bus.request(ops.for_service(ops.ListParked, "identity")(), ctx)
        karims = [p for p in found if p.aggregate_id == karim.member_id]
        assert [p.event_type for p in karims] == ["Member.Joined", "Member.CardUpdated"]
        assert "ValueError" in karims[0].error and "waits" in karims[1].error
        assert all(p.tenant_id == tenant_b.tenant_id for p in found)
        health = await client_bus.health("identity")
        assert health is not None and health["parked"] == len(found)
        # only the operator may see or touch them
        with pytest.raises(Forbidden):
            await client_bus.request(
                ops.for_service(ops.ListParked, "identity")(), as_member(admin_a)
            )
        with pytest.raises(Forbidden):
            await client_bus.request(
                ops.for_service(ops.RetryParked, "identity")(), RequestContext()
            )
        # still broken: a retry keeps them parked, in order
        outcome = await client_bus.request(ops.for_service(ops.RetryParked, "identity")(), ctx)
        assert (outcome.applied, outcome.parked) == (0, len(found))
        # the bug is fixed: a retry applies them, in order, once
        broken.refused.clear()
        outcome = await client_bus.request(
            ops.for_service(ops.RetryParked, "identity")(consumer=projector.key), ctx
        )
        assert outcome.parked == 0 and outcome.applied == len(found)
        assert names(host)[karim.member_id] == "Karim B."
        again = await client_bus.request(ops.for_service(ops.RetryParked, "identity")(), ctx)
        assert (again.applied, again.parked) == (0, 0)
    finally:
        await host.stop()


async def test_skip_gives_an_event_up_and_the_service_starts_with_parked_events(
    settings: Settings, client_bus: Bus, clock: MovableClock
) -> None:
    host = build(settings, clock=clock)
    broken = Broken()
    projector = host.add_projection(host.context["app"], broken)
    await host.start()
    try:
        tenant, _ = await create_network(client_bus, "net-skip")
        broken.refused.add(tenant.tenant_id)
        await add_member(client_bus, tenant.tenant_id, "lea@s.example", card("Lea"))
        await asyncio.to_thread(projector.catch_up)
        found = await parked(client_bus)
        assert len(found) == 1
    finally:
        await host.stop()
    # a restart with the bug still there: the service starts and serves
    host = build(settings, clock=clock)
    broken = Broken()
    broken.refused.add(tenant.tenant_id)
    host.add_projection(host.context["app"], broken)
    await host.start()
    try:
        assert await client_bus.request(idc.GetTenant(slug="net-skip"), RequestContext())
        ctx = operator_ctx()
        with pytest.raises(NotFound):
            await client_bus.request(
                ops.for_service(ops.SkipParked, "identity")(consumer="nope", position=1), ctx
            )
        await client_bus.request(
            ops.for_service(ops.SkipParked, "identity")(
                consumer=found[0].consumer, position=found[0].position
            ),
            ctx,
        )
        assert await parked(client_bus) == []
        skipped = await parked(client_bus, status="skipped")
        assert [p.position for p in skipped] == [found[0].position]
    finally:
        await host.stop()


async def test_a_reaction_parks_a_poison_event_and_applies_it_once_on_retry(
    settings: Settings, client_bus: Bus, clock: MovableClock
) -> None:
    """A reaction to identity's events (in identity's host, for the test):
    events of one member fail until fixed; the others go on."""
    host = build(settings, clock=clock)
    seen = TrackedTables("seen", sa.MetaData())
    table = sa.Table(
        "seen_members",
        seen.metadata,
        sa.Column("member_id", sa.String(36), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )
    poison: set[str] = set()

    async def handle(event: CloudEvent, tracking: Tracking) -> None:
        if event.type not in (idc.MemberJoined.type_name(), idc.ProfileCardUpdated.type_name()):
            return
        data = decode_data(
            event, idc.ProfileCardUpdated if "Card" in event.type else idc.MemberJoined
        )
        if data.member_id in poison:
            raise ValueError("poison")

        def change(conn: sa.Connection) -> None:
            row = conn.execute(sa.select(table).where(table.c.member_id == data.member_id)).first()
            if row is None:
                conn.execute(table.insert().values(member_id=data.member_id, count=1))
            else:
                conn.execute(
                    table.update()
                    .where(table.c.member_id == data.member_id)
                    .values(count=row.count + 1)
                )

        await host.offload(seen.apply, host.engine, tracking, change)

    host.add_tables(seen)
    host.add_reaction(Reaction(name="seen", upstream="identity", handle=handle))
    await host.start()
    try:
        tenant, admin = await create_network(client_bus, "net-react")

        def counts() -> dict[str, int]:
            with host.engine.connect() as conn:
                return {r.member_id: r.count for r in conn.execute(sa.select(table))}

        bad = await add_member(client_bus, tenant.tenant_id, "bad@r.example", card("Bad"))
        # its join is applied before it is marked poison: poisoned from its card updates on
        await eventually(lambda: bad.member_id in counts(), timeout=30)
        poison.add(bad.member_id)
        await client_bus.request(
            idc.UpdateProfileCard(changes=idc.CardChanges(display_name="Bad 2")), as_member(bad)
        )
        await client_bus.request(
            idc.UpdateProfileCard(changes=idc.CardChanges(display_name="Bad 3")), as_member(bad)
        )
        good = await add_member(client_bus, tenant.tenant_id, "good@r.example", card("Good"))
        await eventually(lambda: good.member_id in counts(), timeout=30)
        found = await parked(client_bus)
        assert [p.aggregate_id for p in found] == [bad.member_id, bad.member_id]
        assert "ValueError" in found[0].error and "waits" in found[1].error
        assert counts()[bad.member_id] == 1  # its join, before it was poisoned
        poison.clear()
        outcome = await client_bus.request(
            ops.for_service(ops.RetryParked, "identity")(), operator_ctx()
        )
        assert (outcome.applied, outcome.parked) == (2, 0)
        assert counts()[bad.member_id] == 3
        again = await client_bus.request(
            ops.for_service(ops.RetryParked, "identity")(), operator_ctx()
        )
        assert again.applied == 0 and counts()[bad.member_id] == 3
        assert admin.member_id in counts()
    finally:
        await host.stop()
