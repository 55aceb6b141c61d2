"""Facilitator terms driven by meetups, over a real NATS server and real
stores: hubs hears the meetups service's MeetupClosed on the stream. The
events are published here exactly as that service's outbox relay would
(subject, headers, CloudEvents envelope: services/runtime/relay.py), so hubs
is tested against the meetups' contract, not against that service."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from nats.js.errors import NotFoundError

from services.events import contract as ec
from services.hubs import contract as hc
from services.hubs.domain import Hub
from services.identity import contract as idc
from services.runtime.bus import Bus
from services.runtime.clock import MovableClock
from services.runtime.host import ServiceHost
from services.runtime.reactions import ReactionConsumer
from services.runtime.stream import (
    STREAM,
    CloudEvent,
    cloud_event_decoder,
    event_subject,
    json_encoder,
)
from tests.support.identity import add_member, as_member, card, create_network
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio

VOLTAIRE = hc.Area(centre=hc.Point(lat=48.8575, lon=2.3795), radius_km=1.5)
IN_11E = {"lat": 48.8560, "lon": 2.3750, "postcode": "75011"}
ACTIVITIES = ("plumber", "electrician", "translator")  # one each: the rule holds


class MeetupsRelay:
    """Publishes MeetupClosed as the meetups service's relay does: one
    notification sequence for the whole service, `Nats-Msg-Id:
    events:<sequence>`."""

    def __init__(self, bus: Bus):
        self.js = bus.jetstream()
        self.sequence = 0

    async def closed(
        self,
        tenant_id: str,
        hub_id: str,
        meetup_id: str,
        *,
        envelope_tenant: str | None = None,
    ) -> tuple[str, bytes]:
        self.sequence += 1
        data = ec.MeetupClosed(
            tenant_id=tenant_id,
            hub_id=hub_id,
            meetup_id=meetup_id,
            next_meetup_id=f"{meetup_id}-next",
            present=9,
            visitors=1,
        )
        tenant = envelope_tenant or tenant_id
        message_id = f"events:{self.sequence}"
        event = CloudEvent(
            id=message_id,
            source="quartier/events",
            type=data.type_name(),
            subject=meetup_id,
            time=datetime.now(UTC),
            tenant=tenant,
            sequence=self.sequence,
            data=msgspec.Raw(json_encoder.encode(data)),
        )
        subject = event_subject(tenant, "events", "MeetupClosed")
        payload = json_encoder.encode(event)
        await self.js.publish(
            subject, payload, headers={"Nats-Msg-Id": message_id, "Nats-Expected-Stream": STREAM}
        )
        return subject, payload


def terms_consumer(hubs: ServiceHost) -> ReactionConsumer:
    return next(c for c in hubs.reactions if c.durable == "hubs-facilitator-terms")


async def handled(hubs: ServiceHost, count: int) -> None:
    """Wait until the reaction has handled `count` events in all."""
    consumer = terms_consumer(hubs)
    await eventually(lambda: consumer.handled >= count)


def hub_events(hubs: ServiceHost) -> int:
    return hubs.context["app"].max_notification_id()


async def a_hub_with_a_facilitator(
    bus: Bus, slug: str, rules: hc.Rules, volunteers: tuple[str, ...] = ("Karim", "Ines")
) -> tuple[idc.Tenant, idc.Session, hc.Hub, dict[str, idc.Session]]:
    """A network and a hub with members volunteering, in that order; the first
    volunteer is the facilitator."""
    tenant, admin = await create_network(bus, slug, f"admin@{slug}.example")
    hub = await bus.request(
        hc.CreateHub(name="Voltaire", kind="neighbourhood", area=VOLTAIRE, rules=rules),
        as_member(admin),
    )
    members: dict[str, idc.Session] = {}
    for i, name in enumerate(volunteers):
        session = await add_member(
            bus,
            tenant.tenant_id,
            f"{name.lower()}@{slug}.example",
            card(name, ACTIVITIES[i], work=IN_11E),
        )
        n = await bus.request(
            hc.NominateCandidate(hub_id=hub.hub_id, candidate_id=session.member_id),
            as_member(admin),
        )
        await bus.request(
            hc.AdmitCandidate(hub_id=hub.hub_id, nomination_id=n.nomination_id), as_member(admin)
        )
        await bus.request(hc.VolunteerAsFacilitator(hub_id=hub.hub_id), as_member(session))
        members[name] = session
    hub = await bus.request(hc.HandOverFacilitation(hub_id=hub.hub_id), as_member(admin))
    assert hub.facilitator_id == members[volunteers[0]].member_id
    return tenant, admin, hub, members


async def facilitator_of(bus: Bus, admin: idc.Session, hub_id: str) -> hc.Hub:
    return await bus.request(hc.GetHub(hub_id=hub_id), as_member(admin))


async def last_public(bus: Bus, tenant_id: str, name: str) -> Any:
    try:
        msg = await bus.jetstream().get_last_msg(STREAM, event_subject(tenant_id, "hubs", name))
    except NotFoundError:  # not relayed yet
        return None
    event = cloud_event_decoder.decode(msg.data)
    return msgspec.json.decode(event.data, type=getattr(hc, name))


async def with_facilitator(
    bus: Bus, admin: idc.Session, hub_id: str, member_id: str
) -> hc.Hub | None:
    found = await facilitator_of(bus, admin, hub_id)
    return found if found.facilitator_id == member_id else None


async def published_by(bus: Bus, tenant_id: str, ended_by: str) -> hc.FacilitatorChanged | None:
    """The hub's last public FacilitatorChanged, once it is the one that
    says the term ended by `ended_by`."""
    e = await last_public(bus, tenant_id, "FacilitatorChanged")
    return e if e is not None and e.term_ended_by == ended_by else None


async def test_closed_meetups_end_a_term_and_so_do_its_days(
    hubs: ServiceHost, client_bus: Bus, clock: MovableClock
) -> None:
    tenant, admin, hub, people = await a_hub_with_a_facilitator(
        client_bus, "pole-11e", hc.Rules(facilitator_term_meetups=2, facilitator_term_days=28)
    )
    karim, ines = people["Karim"].member_id, people["Ines"].member_id
    meetups = MeetupsRelay(client_bus)

    await meetups.closed(tenant.tenant_id, hub.hub_id, "m1")
    await handled(hubs, 1)
    assert (await facilitator_of(client_bus, admin, hub.hub_id)).facilitator_id == karim

    await meetups.closed(tenant.tenant_id, hub.hub_id, "m2")  # the term's second meetup

    after = await eventually(lambda: with_facilitator(client_bus, admin, hub.hub_id, ines))
    assert after.roster == [karim]  # the outgoing facilitator to the end of the roster
    assert after.facilitator_term_ends_at is not None

    changed = await eventually(lambda: published_by(client_bus, tenant.tenant_id, "meetups"))
    assert changed.facilitator_id == ines and changed.previous_id == karim
    assert changed.automatic and changed.term_meetups == 2

    # Ines's term ends by its days, with no meetup: the scheduler hands over
    clock.advance(days=28)
    again = await eventually(lambda: with_facilitator(client_bus, admin, hub.hub_id, karim))
    assert again.roster == [ines]
    by_days = await eventually(lambda: published_by(client_bus, tenant.tenant_id, "days"))
    assert by_days.automatic and by_days.previous_id == ines


async def test_a_redelivered_meetup_closed_counts_once(hubs: ServiceHost, client_bus: Bus) -> None:
    tenant, admin, hub, people = await a_hub_with_a_facilitator(
        client_bus, "pole-11e", hc.Rules(facilitator_term_meetups=2)
    )
    meetups = MeetupsRelay(client_bus)
    subject, payload = await meetups.closed(tenant.tenant_id, hub.hub_id, "m1")
    await handled(hubs, 1)
    before = hub_events(hubs)
    assert hubs.context["app"].get(tenant.tenant_id, hub.hub_id, Hub).meetups_this_term == 1

    # the same event again, under another message id (as after a re-publication
    # past JetStream's duplicate window): had it counted, the term would end
    js = client_bus.jetstream()
    for again in ("again-1", "again-2"):
        await js.publish(subject, payload, headers={"Nats-Msg-Id": again})
    await handled(hubs, 3)
    assert hub_events(hubs) == before
    found = await facilitator_of(client_bus, admin, hub.hub_id)
    assert found.facilitator_id == people["Karim"].member_id

    # the next meetup is the term's second: now it ends, once
    await meetups.closed(tenant.tenant_id, hub.hub_id, "m2")
    await handled(hubs, 4)
    found = await eventually(
        lambda: with_facilitator(client_bus, admin, hub.hub_id, people["Ines"].member_id)
    )
    assert found.roster == [people["Karim"].member_id]


async def test_another_tenants_or_another_hubs_meetups_never_count(
    hubs: ServiceHost, client_bus: Bus
) -> None:
    tenant, admin, hub, people = await a_hub_with_a_facilitator(
        client_bus, "pole-11e", hc.Rules(facilitator_term_meetups=1)
    )
    other_tenant, other_admin, other_hub, _ = await a_hub_with_a_facilitator(
        client_bus, "other-net", hc.Rules(facilitator_term_meetups=1), volunteers=("Paul",)
    )
    neighbour = await client_bus.request(
        hc.CreateHub(name="Artisans", kind="trade_club", area=VOLTAIRE), as_member(admin)
    )
    meetups = MeetupsRelay(client_bus)
    before = hub_events(hubs)
    # another hub of the same network
    await meetups.closed(tenant.tenant_id, neighbour.hub_id, "theirs")
    # another network's meetup naming our hub, and our tenant's data in their envelope
    await meetups.closed(other_tenant.tenant_id, hub.hub_id, "foreign")
    await meetups.closed(
        tenant.tenant_id, hub.hub_id, "smuggled", envelope_tenant=other_tenant.tenant_id
    )
    # a hub that does not exist, and an id that is not one
    await meetups.closed(tenant.tenant_id, "00000000-0000-0000-0000-000000000000", "ghost")
    await meetups.closed(tenant.tenant_id, "not-a-hub", "garbage")
    await handled(hubs, 5)
    assert hub_events(hubs) == before
    found = await facilitator_of(client_bus, admin, hub.hub_id)
    assert found.facilitator_id == people["Karim"].member_id

    # the other network's own hub rotates on its own meetup (its only
    # volunteer stays for a new term), and ours on ours
    await meetups.closed(other_tenant.tenant_id, other_hub.hub_id, "their-own")
    await meetups.closed(tenant.tenant_id, hub.hub_id, "ours")
    await handled(hubs, 7)
    await eventually(
        lambda: with_facilitator(client_bus, admin, hub.hub_id, people["Ines"].member_id)
    )
    renewed = await eventually(lambda: published_by(client_bus, other_tenant.tenant_id, "meetups"))
    assert renewed.facilitator_id == renewed.previous_id
    assert other_admin.tenant_id == other_tenant.tenant_id
