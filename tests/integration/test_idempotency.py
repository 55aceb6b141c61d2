"""Retries are safe: a create-like command sent again with the same
idempotency key gets the first outcome and changes nothing more, whether the
first one finished, is still running, or was refused."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.events import contract as ec
from services.hubs import contract as hc
from services.runtime import idempotency
from services.runtime.bus import Bus
from services.runtime.clock import MovableClock
from services.runtime.errors import Conflict, InvalidInput, NotFound, RuleViolation
from services.runtime.host import ServiceHost
from tests.support.identity import add_member, as_member, card, create_network

pytestmark = pytest.mark.asyncio

VOLTAIRE = hc.Area(centre=hc.Point(lat=48.8575, lon=2.3795), radius_km=1.5)
IN_11E = {"lat": 48.8560, "lon": 2.3750, "postcode": "75011"}


def count(host: ServiceHost) -> int:
    """The events the service has stored."""
    return host.context["app"].max_notification_id()


async def test_a_retry_with_the_same_key_gets_the_first_outcome(
    hubs: ServiceHost, client_bus: Bus
) -> None:
    tenant, admin = await create_network(client_bus, "pole-idem")
    ctx = replace(as_member(admin), idempotency_key="create-voltaire-1")
    create = hc.CreateHub(name="Voltaire", kind="neighbourhood", area=VOLTAIRE)
    first = await client_bus.request(create, ctx)
    before = count(hubs)
    again = await client_bus.request(create, ctx)
    assert again == first and count(hubs) == before
    # another key: another hub
    other = await client_bus.request(create, replace(ctx, idempotency_key="create-voltaire-2"))
    assert other.hub_id != first.hub_id
    # the same key for another request: refused, nothing done
    with pytest.raises(InvalidInput) as info:
        await client_bus.request(
            hc.CreateHub(name="Autre", kind="neighbourhood", area=VOLTAIRE), ctx
        )
    assert info.value.field == "idempotency_key"
    # the same key from another member is another key
    karim = await add_member(
        client_bus, tenant.tenant_id, "karim@idem.example", card("Karim", work=IN_11E)
    )
    nominate = hc.NominateCandidate(hub_id=first.hub_id, candidate_id=karim.member_id)
    concurrent = await asyncio.gather(
        *(
            client_bus.request(
                nominate, replace(as_member(admin), idempotency_key="nominate-karim")
            )
            for _ in range(5)
        )
    )
    assert len({n.nomination_id for n in concurrent}) == 1
    nominations = await client_bus.request(
        hc.ListNominations(hub_id=first.hub_id), as_member(admin)
    )
    assert [n.candidate_id for n in nominations] == [karim.member_id]


async def test_a_refusal_is_the_first_outcome_too_and_a_bad_key_is_refused(
    hubs: ServiceHost, client_bus: Bus
) -> None:
    _, admin = await create_network(client_bus, "pole-idem-2")
    missing = hc.NominateCandidate(
        hub_id="00000000-0000-0000-0000-000000000000", email="x@y.example"
    )
    ctx = replace(as_member(admin), idempotency_key="k1")
    for _ in range(2):
        with pytest.raises(NotFound):
            await client_bus.request(missing, ctx)
    for bad in ("", "x" * 201, "bad\nkey"):
        with pytest.raises(InvalidInput) as info:
            await client_bus.request(
                hc.CreateHub(name="V", kind="neighbourhood", area=VOLTAIRE),
                replace(ctx, idempotency_key=bad) if bad else replace(ctx, idempotency_key="\x7f"),
            )
        assert info.value.field == "idempotency_key"


async def test_a_key_whose_first_request_was_cut_short_is_answered_not_left_hanging(
    hubs: ServiceHost, client_bus: Bus
) -> None:
    """Found by tests/e2e/test_faults.py: hubs killed (SIGKILL) between claiming
    a key and keeping its reply left the claim without a reply for 24 hours;
    each retry waited the whole request timeout and its caller, timing out at
    the same moment, answered UNAVAILABLE. Now a retry hears "still running"
    within half the request timeout, and once the claim is stale, at once, a
    conflict on the key: the first may have taken effect, so it is not run
    again."""
    _, admin = await create_network(client_bus, "pole-idem-3")
    ctx = replace(as_member(admin), idempotency_key="create-cut-short")
    create = hc.CreateHub(name="Coupé", kind="neighbourhood", area=VOLTAIRE)
    await client_bus.request(create, ctx)
    store = hubs.idempotency
    store.wait = 1.0  # the callers' request timeout, short for the test
    before = count(hubs)

    def cut_short(age: timedelta) -> None:
        """As the killed process left it: claimed `age` ago, no reply kept."""
        with store.engine.begin() as conn:
            conn.execute(
                idempotency.replies.update().values(reply=None, created_at=datetime.now(UTC) - age)
            )

    cut_short(timedelta(seconds=0))
    started = time.monotonic()
    with pytest.raises(Conflict) as info:
        await client_bus.request(create, ctx)
    assert time.monotonic() - started < store.wait  # the caller hears it in time
    assert "still running" in info.value.message and info.value.field is None

    cut_short(timedelta(seconds=store.stale_after + 1))
    started = time.monotonic()
    with pytest.raises(Conflict) as info:
        await client_bus.request(create, ctx)
    assert time.monotonic() - started < store.wait / 2  # at once
    assert info.value.field == "idempotency_key"
    assert "may or may not have taken effect" in info.value.message
    assert count(hubs) == before  # not run again: it might have been done


async def test_the_meetups_create_commands_are_safe_to_retry(
    events: ServiceHost, client_bus: Bus, clock: MovableClock
) -> None:
    """Every create-like command of the meetups service opts in: sent again
    with its key (concurrently too), it answers the first outcome and records
    nothing more; the close fixes one next meetup, not one per retry."""
    from tests.support.meetups import VENUE, given_hub

    given = await given_hub(client_bus, events, slug="pole-idem-meet", members=2)
    admin = as_member(given.admin)
    start = datetime.combine(clock.now().date() + timedelta(days=7), datetime.min.time())
    start = start.replace(hour=12, minute=30)
    schedule = ec.ScheduleMeetup(
        hub_id=given.hub.hub_id, local_start=start, title="Déjeuner", venue=VENUE
    )
    keyed = replace(admin, idempotency_key="schedule-lunch-1")
    first = await client_bus.request(schedule, keyed)
    before = count(events)
    concurrent = await asyncio.gather(*(client_bus.request(schedule, keyed) for _ in range(4)))
    assert all(again.meetup_id == first.meetup_id for again in concurrent)
    assert count(events) == before
    proposal = ec.ProposeWorkshop(hub_id=given.hub.hub_id, topic="Devis", description="")
    ines = replace(as_member(given.members[0]), idempotency_key="propose-1")
    proposed = [await client_bus.request(proposal, ines) for _ in range(3)]
    assert len({p.proposal_id for p in proposed}) == 1
    # the close and its next meetup, retried after the meetup began
    clock.advance(first.starts_at - clock.now() + timedelta(minutes=5))
    close = ec.CloseMeetup(meetup_id=first.meetup_id, next_local_start=start + timedelta(days=7))
    closing = replace(admin, idempotency_key="close-lunch-1")
    closed = await client_bus.request(close, closing)
    before = count(events)
    assert await client_bus.request(close, closing) == closed
    assert count(events) == before
    # without a key the repeat is refused: the meetup is closed already
    with pytest.raises(RuleViolation):
        await client_bus.request(close, admin)
