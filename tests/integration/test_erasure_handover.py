"""What an erased member held that other members depend on is handed on
(docs/erasure.md, "Roles and places"): hubs take them off the facilitator
roster, hand the facilitator role to the next volunteer (or leave the hub
without one), take back their co-admin seat and forget their activity;
meetups give their seat to the first in line; referrals' engagement report
no longer lists them. Memberships and counts stay. One system start."""

from __future__ import annotations

import json

import msgspec
import pytest

from services.events import contract as ec
from services.hubs import contract as hc
from services.hubs.domain import Hub
from services.hubs.views import directory as hub_directory
from services.identity import contract as idc
from services.referrals import contract as rc
from services.runtime.bus import Bus
from services.runtime.clock import MovableClock
from services.runtime.stream import CloudEvent, json_encoder
from tests.support.identity import as_member
from tests.support.meetups import OPEN_RULES, VENUE, VOLTAIRE, local, open_club
from tests.support.services import Services

pytestmark = pytest.mark.asyncio


async def test_an_erased_member_hands_on_roles_seats_and_places(
    services: Services, clock: MovableClock, client_bus: Bus
) -> None:
    await services.start("referrals")  # and identity, hubs, meetups
    events = services.hosts["events"]
    bus = client_bus
    club = await open_club(bus, events, "erase-roles", ["Ana", "Ben", "Cleo"])
    adm = as_member(club.admin)
    ana, ben, cleo = club.members
    hub_id = club.hub.hub_id

    # Ana: co-admin and facilitator (Ben, then Cleo, next on the roster)
    await bus.request(hc.AddCoAdmin(hub_id=hub_id, member_id=ana.member_id), adm)
    for session in (ana, ben, cleo):
        await bus.request(hc.VolunteerAsFacilitator(hub_id=hub_id), as_member(session))
    await bus.request(hc.HandOverFacilitation(hub_id=hub_id), adm)
    # a second hub where Ana is the facilitator and nobody else volunteered
    other = await bus.request(
        hc.CreateHub(name="Oberkampf", kind="neighbourhood", area=VOLTAIRE, rules=OPEN_RULES),
        adm,
    )
    await bus.request(hc.JoinHub(hub_id=other.hub_id), as_member(ana))
    await bus.request(hc.VolunteerAsFacilitator(hub_id=other.hub_id), as_member(ana))
    await bus.request(hc.HandOverFacilitation(hub_id=other.hub_id), adm)
    before = await bus.request(hc.GetHub(hub_id=hub_id), adm)
    assert (before.facilitator_id, before.roster) == (
        ana.member_id,
        [ben.member_id, cleo.member_id],
    )

    # a meetup of one seat: Ana holds it, Ben waits
    meetup = await bus.request(
        ec.ScheduleMeetup(
            hub_id=hub_id, local_start=local(clock.now(), 3), venue=VENUE, title="Lunch", capacity=1
        ),
        adm,
    )
    await bus.request(ec.GiveRsvp(meetup_id=meetup.meetup_id, answer="yes"), as_member(ana))
    await bus.request(ec.GiveRsvp(meetup_id=meetup.meetup_id, answer="yes"), as_member(ben))
    await services.settle()
    engagement = await bus.request(rc.GetHubEngagement(hub_id=hub_id), adm)
    assert ana.member_id in {e.member_id for e in engagement.members}

    done = await bus.request(idc.RequestErasure(member_id=ana.member_id), adm)
    assert done.status == "completed"
    await services.settle()

    after = await bus.request(hc.GetHub(hub_id=hub_id), adm)
    assert after.facilitator_id == ben.member_id and after.roster == [cleo.member_id]
    assert after.facilitator_term_ends_at is not None
    assert after.co_admin_ids == [club.admin.member_id]
    assert after.member_count == before.member_count  # memberships stay
    alone = await bus.request(hc.GetHub(hub_id=other.hub_id), adm)
    assert (alone.facilitator_id, alone.roster) == (None, [])

    seats = await bus.request(ec.ListRsvps(meetup_id=meetup.meetup_id), adm)
    by_member = {r.member_id: r for r in seats}
    assert (by_member[ana.member_id].answer, by_member[ana.member_id].seat) == ("no", "none")
    assert by_member[ben.member_id].seat == "seated"

    engagement = await bus.request(rc.GetHubEngagement(hub_id=hub_id), adm)
    listed = {e.member_id for e in engagement.members} | set(engagement.core)
    assert ana.member_id not in listed | set(engagement.drifting)
    assert ben.member_id in listed

    # hubs forgot Ana's activity; the hand-over is done once (asked again: nothing)
    hubs_host = services.hosts["hubs"]
    with hubs_host.engine.connect() as conn:
        assert hub_directory.activities(conn, club.tenant.tenant_id, [ana.member_id]) == {
            ana.member_id: None
        }
    hub = hubs_host.context["app"].get(club.tenant.tenant_id, hub_id, Hub)
    assert not hub.hand_on_erased(ana.member_id, clock.now())
    assert hub.members[ana.member_id].activity_code in (None, "")


async def test_an_erasure_naming_another_network_changes_nothing_there(
    services: Services, clock: MovableClock, client_bus: Bus
) -> None:
    """A `MemberErased` published in one network whose payload names a member
    of another is ignored: the reactions act in the event's own network."""
    await services.start("referrals")
    events = services.hosts["events"]
    bus = client_bus
    here = await open_club(bus, events, "erase-here", ["Hugo"])
    there = await open_club(bus, events, "erase-there", ["Dora"])
    dora = there.members[0]
    hub_id = there.hub.hub_id
    await bus.request(hc.VolunteerAsFacilitator(hub_id=hub_id), as_member(dora))
    await bus.request(hc.HandOverFacilitation(hub_id=hub_id), as_member(there.admin))
    await services.settle()
    before = await bus.request(hc.GetHub(hub_id=hub_id), as_member(there.admin))
    assert before.facilitator_id == dora.member_id

    payload = {"tenant_id": there.tenant.tenant_id, "member_id": dora.member_id}
    identity = services.hosts["identity"].context["app"]
    forged = CloudEvent(
        id=f"identity:{identity.max_notification_id() + 1000}",
        source="quartier/identity",
        type=idc.MemberErased.type_name(),
        subject=dora.member_id,
        time=clock.now(),
        tenant=here.tenant.tenant_id,
        sequence=identity.max_notification_id() + 1000,
        data=msgspec.Raw(json.dumps(payload).encode()),
    )
    subject = f"quartier.evt.{here.tenant.tenant_id}.identity.MemberErased"
    await bus.jetstream().publish(subject, json_encoder.encode(forged))
    await services.settle()

    after = await bus.request(hc.GetHub(hub_id=hub_id), as_member(there.admin))
    assert after == before
    engagement = await bus.request(rc.GetHubEngagement(hub_id=hub_id), as_member(there.admin))
    assert dora.member_id in {e.member_id for e in engagement.members}
    with services.hosts["hubs"].engine.connect() as conn:
        found = hub_directory.activities(conn, there.tenant.tenant_id, [dora.member_id])
    assert found[dora.member_id] is not None
    cards = await bus.request(idc.GetMembers(member_ids=[dora.member_id]), as_member(dora))
    assert not cards[0].erased
