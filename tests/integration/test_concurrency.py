"""Concurrent commands on one aggregate, over real NATS, on each store: every
command is answered with its success or a correct typed rule error, never an
internal error nor a spurious "changed concurrently; try again", and no
update is lost (issue #13, "nothing is reported wrongly").

Each test starts its services once and sends ~32 requests at the same time."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate, event

from services.events import contract as ec
from services.hubs import contract as hc
from services.identity import contract as idc
from services.runtime.bus import Bus
from services.runtime.errors import Unavailable
from services.runtime.eventstore import ServiceApplication
from services.runtime.host import ServiceHost
from services.runtime.messages import Request
from services.runtime.store import Store
from services.runtime.tenancy import RequestContext
from tests.support.identity import add_member, as_member, card, create_network
from tests.support.meetups import IN_11E, OPEN_RULES, VENUE, VOLTAIRE, members_known

pytestmark = pytest.mark.asyncio

N = 32


async def all_at_once(bus: Bus, requests: list[tuple[Request[Any], RequestContext]]) -> list[Any]:
    """Send every request at the same time; their answers or typed errors, in order."""
    return await asyncio.gather(
        *(bus.request(request, ctx) for request, ctx in requests), return_exceptions=True
    )


async def network_with_hub(bus: Bus, slug: str, members: int) -> tuple[str, str, list[idc.Session]]:
    """A network, an open hub founded by its admin, and `members` members
    (not yet in the hub) working inside its area."""
    tenant, admin = await create_network(bus, slug)
    hub = await bus.request(
        hc.CreateHub(name="Cercle Voltaire", kind="neighbourhood", area=VOLTAIRE, rules=OPEN_RULES),
        as_member(admin),
    )
    sessions = [
        await add_member(
            bus, tenant.tenant_id, f"m{i}@{slug}.example", card(f"Member {i}", work=IN_11E)
        )
        for i in range(members)
    ]
    return tenant.tenant_id, hub.hub_id, [admin, *sessions]


async def test_concurrent_joins_to_one_hub(hubs: ServiceHost, client_bus: Bus) -> None:
    _, hub_id, everyone = await network_with_hub(client_bus, "joins", N)
    joiners = everyone[1:]
    answers = await all_at_once(
        client_bus, [(hc.JoinHub(hub_id=hub_id), as_member(s)) for s in joiners]
    )
    assert [a for a in answers if isinstance(a, BaseException)] == []
    assert {a.member_id for a in answers} == {s.member_id for s in joiners}
    # no lost update: the hub counts them all
    page = await client_bus.request(
        hc.ListHubMembers(hub_id=hub_id, limit=50), as_member(everyone[0])
    )
    assert {m.member_id for m in page.items} >= {s.member_id for s in joiners}


async def test_concurrent_rsvps_to_one_meetup(events: ServiceHost, client_bus: Bus) -> None:
    tenant_id, hub_id, everyone = await network_with_hub(client_bus, "rsvps", N)
    admin, members = everyone[0], everyone[1:]
    joined = await all_at_once(
        client_bus, [(hc.JoinHub(hub_id=hub_id), as_member(s)) for s in members]
    )
    assert [a for a in joined if isinstance(a, BaseException)] == []
    await members_known(events, tenant_id, hub_id, len(everyone))
    meetup = await client_bus.request(
        ec.ScheduleMeetup(
            hub_id=hub_id,
            local_start=(events.clock.now().replace(tzinfo=None) + timedelta(days=7)).replace(
                hour=12, minute=30, second=0
            ),
            title="Déjeuner",
            venue=VENUE,
            capacity=10,
        ),
        as_member(admin),
    )
    answers = await all_at_once(
        client_bus,
        [(ec.GiveRsvp(meetup_id=meetup.meetup_id, answer="yes"), as_member(s)) for s in members],
    )
    assert [a for a in answers if isinstance(a, BaseException)] == []
    rsvps = await client_bus.request(ec.ListRsvps(meetup_id=meetup.meetup_id), as_member(admin))
    seated = [r for r in rsvps if r.seat == "seated"]
    waiting = sorted((r for r in rsvps if r.seat == "waiting"), key=lambda r: r.answered_at)
    # never overfilled, nobody lost, the line numbered 1..n in the order answered
    assert len(seated) == 10 and len(seated) + len(waiting) == len(members)
    assert sorted(r.waitlist_position for r in waiting) == list(range(1, len(waiting) + 1))
    assert {r.member_id for r in rsvps} == {s.member_id for s in members}
    # each answer told its member the seat they got
    mine = {s.member_id: a.my_rsvp.seat for s, a in zip(members, answers, strict=True)}
    assert mine == {r.member_id: r.seat for r in rsvps}


async def test_concurrent_updates_of_one_card(identity: ServiceHost, client_bus: Bus) -> None:
    _, admin = await create_network(client_bus, "cards")
    fields = ["business_name", "offers", "seeks", "available_for", "bio", "activity_text"]
    requests: list[tuple[Request[Any], RequestContext]] = [
        (
            idc.UpdateProfileCard(changes=idc.CardChanges(**{fields[i % 6]: f"{fields[i % 6]} v"})),
            as_member(admin),
        )
        for i in range(N)
    ]
    answers = await all_at_once(client_bus, requests)
    assert [a for a in answers if isinstance(a, BaseException)] == []
    # no lost update: each field keeps the value one of the commands set
    [final] = await client_bus.request(
        idc.GetMembers(member_ids=[admin.member_id]), as_member(admin)
    )
    for name in fields:
        assert getattr(final, name) == f"{name} v"


async def test_a_busy_sqlite_store_is_unavailable_not_internal(tmp_path: Path) -> None:
    """A write lock held longer than the busy timeout: the read model's engine
    and the event store answer Unavailable ("try again"), and nothing is saved."""
    store = Store(service="busy", data_dir=tmp_path, busy_timeout=1)
    engine = store.views_engine()
    with engine.connect() as conn, conn.begin():
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    app = _Notes(store.application_env("Notes"))
    note = _Note()
    app.save(note)
    with sqlite3.connect(tmp_path / "busy-views.db") as holder:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(Unavailable), engine.connect() as conn, conn.begin():
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        holder.rollback()
    with sqlite3.connect(tmp_path / "notes.db", isolation_level=None) as holder:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(Unavailable):
            app.transact(lambda: touched(app, note.id), key=str(note.id))
        holder.execute("ROLLBACK")
    assert app.repository.get(note.id).version == note.version
    # the lock released, the same command succeeds
    app.transact(lambda: touched(app, note.id), key=str(note.id))
    assert app.repository.get(note.id).version == note.version + 1


def touched(app: ServiceApplication, note_id: UUID) -> tuple[list[Aggregate], None]:
    note: _Note = app.repository.get(note_id)
    note.touch()
    return [note], None


class _Note(Aggregate):
    @event("Touched")
    def touch(self) -> None:
        pass


class _Notes(ServiceApplication):
    pass
