"""Erasing one visitor or one prospect alone (docs/erasure.md): who may,
that another network's or a made-up id is not found, that asking again
changes nothing, and that the rest of the record stays."""

from __future__ import annotations

from uuid import UUID

import pytest

from services.events import contract as ec
from services.events.domain.people import Visitor
from services.events.views.planning import visitor_names
from services.hubs import contract as hc
from services.referrals import contract as rc
from services.runtime.bus import Bus
from services.runtime.clock import MovableClock
from services.runtime.errors import Forbidden, NotFound
from tests.support.identity import add_member, as_member, card, create_network
from tests.support.meetups import IN_11E, OPEN_RULES, VENUE, VOLTAIRE, local, members_known
from tests.support.services import Services

pytestmark = pytest.mark.asyncio


async def test_an_admin_erases_a_visitor_and_a_giver_a_prospect(
    services: Services, clock: MovableClock, client_bus: Bus
) -> None:
    await services.start("referrals")
    events, referrals = services.hosts["events"], services.hosts["referrals"]
    bus = client_bus
    tenant, admin = await create_network(bus, "erase-one", "admin@erase-one.example")
    _, stranger = await create_network(bus, "erase-two", "admin@erase-two.example")
    tid = tenant.tenant_id
    ann = await add_member(bus, tid, "ann@erase-one.example", card("Ann", work=IN_11E))
    bea = await add_member(bus, tid, "bea@erase-one.example", card("Bea", "baker", work=IN_11E))
    hub = await bus.request(
        hc.CreateHub(name="Voltaire", kind="neighbourhood", area=VOLTAIRE, rules=OPEN_RULES),
        as_member(admin),
    )
    for s in (ann, bea):
        await bus.request(hc.JoinHub(hub_id=hub.hub_id), as_member(s))
    await members_known(events, tid, hub.hub_id, 3)
    meetup = await bus.request(
        ec.ScheduleMeetup(
            hub_id=hub.hub_id, local_start=local(clock.now(), 1), venue=VENUE, title="Lunch"
        ),
        as_member(admin),
    )
    invited = await bus.request(
        ec.InviteVisitor(meetup_id=meetup.meetup_id, name="Vera Visit", email="vera@x.example"),
        as_member(ann),
    )
    slip = await bus.request(
        rc.GiveReferral(
            receiver_id=bea.member_id,
            about="a bakery",
            warmth=3,
            prospect=rc.Prospect(name="Paul Prospect", phone="0102030405"),
        ),
        as_member(ann),
    )
    app = events.context["app"]
    before = app.max_notification_id()

    # a visitor: not by a plain member, nor another network's admin, nor a made-up id
    erase_visitor = ec.EraseVisitor(visitor_id=invited.visitor_id)
    with pytest.raises(Forbidden):
        await bus.request(erase_visitor, as_member(bea))
    with pytest.raises(NotFound):
        await bus.request(erase_visitor, as_member(stranger))
    with pytest.raises(NotFound):
        await bus.request(ec.EraseVisitor(visitor_id="nope"), as_member(admin))
    assert app.get(tid, invited.visitor_id, Visitor).name == "Vera Visit"
    for _ in range(2):  # asking again is safe
        await bus.request(erase_visitor, as_member(admin))
    visitor = app.get(tid, invited.visitor_id, Visitor)
    assert (visitor.name, visitor.email, len(visitor.visits)) == ("", "", 1)
    with events.engine.connect() as conn:
        names = {r.name for r in conn.execute(visitor_names.select())}
    assert names == {"former visitor"}
    assert app.max_notification_id() == before  # no event: the key is gone

    # a prospect: not by the receiver, nor another network's admin
    erase_prospect = rc.EraseProspect(referral_id=slip.referral_id)
    with pytest.raises(Forbidden):
        await bus.request(erase_prospect, as_member(bea))
    with pytest.raises(NotFound):
        await bus.request(erase_prospect, as_member(stranger))
    with pytest.raises(NotFound):
        await bus.request(rc.EraseProspect(referral_id="nope"), as_member(ann))
    for _ in range(2):
        await bus.request(erase_prospect, as_member(ann))
    seen = await bus.request(rc.GetSlip(referral_id=slip.referral_id), as_member(bea))
    assert seen.prospect is None and seen.about == "a bakery" and seen.status == "given"
    referral = referrals.context["app"].repository.get(UUID(slip.referral_id))
    assert referral.prospect == {"name": "", "company": "", "email": "", "phone": ""}
