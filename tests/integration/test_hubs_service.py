"""The hubs service over a real NATS server and real stores, beside identity:
co-optation of an e-mail candidate through identity's invitation and back,
reactions that never apply a redelivered event twice, and the service-level
rules of authorisation and tenancy."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from services.hubs import contract as hc
from services.identity import contract as idc
from services.runtime.bus import Bus
from services.runtime.clock import MovableClock
from services.runtime.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RuleViolation,
    Unauthenticated,
)
from services.runtime.host import ServiceHost
from services.runtime.stream import STREAM
from services.runtime.tenancy import RequestContext
from tests.support.identity import (
    PASSWORD,
    add_member,
    as_member,
    card,
    create_network,
    mailed_tokens,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio

VOLTAIRE = hc.Area(centre=hc.Point(lat=48.8575, lon=2.3795), radius_km=1.5)
IN_11E = {"lat": 48.8560, "lon": 2.3750, "postcode": "75011"}
VERSAILLES = {"lat": 48.8049, "lon": 2.1204, "postcode": "78000"}


def hub_events(hubs: ServiceHost) -> int:
    return hubs.context["app"].max_notification_id()


async def test_an_email_candidate_flows_through_identity_and_back(
    hubs: ServiceHost, client_bus: Bus, settings, clock: MovableClock
) -> None:
    _tenant, admin = await create_network(client_bus, "pole-11e")
    hub = await client_bus.request(
        hc.CreateHub(name="Voltaire", kind="neighbourhood", area=VOLTAIRE), as_member(admin)
    )
    nomination = await client_bus.request(
        hc.NominateCandidate(
            hub_id=hub.hub_id, email="neighbour@pole.example", note="runs the bakery"
        ),
        as_member(admin),
    )
    assert nomination.status == "invited" and nomination.candidate_id is None

    # identity mailed the invitation; the candidate accepts and fills the card
    token = mailed_tokens(settings.mail_dir)["neighbour@pole.example"]
    session = await client_bus.request(
        idc.AcceptInvitation(
            token=token, password=PASSWORD, card=card("Neighbour", "baker", work=IN_11E)
        ),
        RequestContext(),
    )
    sponsor_view = as_member(admin)

    async def opened() -> hc.Nomination | None:
        n = await client_bus.request(
            hc.GetNomination(hub_id=hub.hub_id, nomination_id=nomination.nomination_id),
            sponsor_view,
        )
        return n if n.status == "open" else None

    opened_nomination = await eventually(opened)
    assert opened_nomination.candidate_id == session.member_id
    assert opened_nomination.window_closes_at is not None

    # the invitation carried the sponsor: identity knows who brought whom
    cards = await client_bus.request(idc.GetMembers(member_ids=[session.member_id]), sponsor_view)
    assert cards[0].display_name == "Neighbour"

    clock.advance(days=8)

    async def admitted() -> bool:
        page = await client_bus.request(hc.ListHubMembers(hub_id=hub.hub_id), sponsor_view)
        return any(m.member_id == session.member_id for m in page.items)

    await eventually(admitted)
    page = await client_bus.request(hc.ListHubMembers(hub_id=hub.hub_id), sponsor_view)
    godchild = next(m for m in page.items if m.member_id == session.member_id)
    assert godchild.sponsor_id == admin.member_id


async def test_the_window_closer_goes_on_after_its_store_failed(
    hubs: ServiceHost, client_bus: Bus, clock: MovableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure of the database while the scheduler looks for its next
    deadline (a connection refused for a moment) does not end the job: the
    window is still closed when its time comes."""
    tenant, admin = await create_network(client_bus, "pole-11e")
    hub = await client_bus.request(
        hc.CreateHub(name="Voltaire", kind="neighbourhood", area=VOLTAIRE), as_member(admin)
    )
    baker = await add_member(
        client_bus, tenant.tenant_id, "b@pole.example", card("B", "baker", work=IN_11E)
    )
    nomination = await client_bus.request(
        hc.NominateCandidate(hub_id=hub.hub_id, candidate_id=baker.member_id), as_member(admin)
    )
    assert nomination.status == "open"
    closer = hubs.context["closer"]
    next_deadline = closer.next_deadline
    failed: list[bool] = []

    def fail_once() -> object:
        if not failed:
            failed.append(True)
            raise sa.exc.OperationalError("SELECT", {}, OSError("too many clients already"))
        return next_deadline()

    monkeypatch.setattr(closer, "next_deadline", fail_once)
    clock.advance(hours=1)  # wakes the job: nothing is due, and its look-up fails
    await eventually(lambda: failed)
    clock.advance(days=8)

    async def admitted() -> bool:
        page = await client_bus.request(hc.ListHubMembers(hub_id=hub.hub_id), as_member(admin))
        return any(m.member_id == baker.member_id for m in page.items)

    await eventually(admitted)


async def test_an_email_candidate_outside_the_area_is_refused_when_they_join(
    hubs: ServiceHost, client_bus: Bus, settings
) -> None:
    _, admin = await create_network(client_bus, "pole-11e")
    hub = await client_bus.request(
        hc.CreateHub(name="Voltaire", kind="neighbourhood", area=VOLTAIRE), as_member(admin)
    )
    nomination = await client_bus.request(
        hc.NominateCandidate(hub_id=hub.hub_id, email="far@pole.example"), as_member(admin)
    )
    token = mailed_tokens(settings.mail_dir)["far@pole.example"]
    await client_bus.request(
        idc.AcceptInvitation(
            token=token, password=PASSWORD, card=card("Far", "baker", work=VERSAILLES)
        ),
        RequestContext(),
    )

    async def refused() -> hc.Nomination | None:
        n = await client_bus.request(
            hc.GetNomination(hub_id=hub.hub_id, nomination_id=nomination.nomination_id),
            as_member(admin),
        )
        return n if n.status == "rejected" else None

    n = await eventually(refused)
    assert n.rule == "area" and "outside" in (n.decision_reason or "")


async def test_a_redelivered_identity_event_does_not_apply_twice(
    hubs: ServiceHost, client_bus: Bus, settings
) -> None:
    tenant, admin = await create_network(client_bus, "pole-11e")
    hub = await client_bus.request(
        hc.CreateHub(name="Voltaire", kind="neighbourhood", area=VOLTAIRE), as_member(admin)
    )
    nomination = await client_bus.request(
        hc.NominateCandidate(hub_id=hub.hub_id, email="n@pole.example"), as_member(admin)
    )
    token = mailed_tokens(settings.mail_dir)["n@pole.example"]
    await client_bus.request(
        idc.AcceptInvitation(token=token, password=PASSWORD, card=card("N", "baker", work=IN_11E)),
        RequestContext(),
    )

    async def opened() -> bool:
        n = await client_bus.request(
            hc.GetNomination(hub_id=hub.hub_id, nomination_id=nomination.nomination_id),
            as_member(admin),
        )
        return n.status == "open"

    await eventually(opened)
    before = hub_events(hubs)
    consumers = {c.durable: c for c in hubs.reactions if c.reaction.upstream == "identity"}
    handled = {name: c.handled for name, c in consumers.items()}

    # the MemberJoined event again, under another message id (as after a
    # re-publication past JetStream's duplicate window)
    js = client_bus.jetstream()
    last = await js.get_last_msg(STREAM, f"quartier.evt.{tenant.tenant_id}.identity.MemberJoined")
    await js.publish(last.subject, last.data, headers={"Nats-Msg-Id": "again-later"})
    await eventually(lambda: all(c.handled > handled[name] for name, c in consumers.items()))
    assert hub_events(hubs) == before
    n = await client_bus.request(
        hc.GetNomination(hub_id=hub.hub_id, nomination_id=nomination.nomination_id),
        as_member(admin),
    )
    assert n.status == "open"


async def test_hubs_keep_members_activities_from_identity(
    hubs: ServiceHost, client_bus: Bus
) -> None:
    tenant, admin = await create_network(client_bus, "pole-11e")
    karim = await add_member(
        client_bus, tenant.tenant_id, "k@pole.example", card("Karim", "plumber", work=IN_11E)
    )
    paul = await add_member(
        client_bus, tenant.tenant_id, "p@pole.example", card("Paul", "electrician", work=IN_11E)
    )
    hub = await client_bus.request(
        hc.CreateHub(name="Voltaire", kind="neighbourhood", area=VOLTAIRE), as_member(admin)
    )
    n = await client_bus.request(
        hc.NominateCandidate(hub_id=hub.hub_id, candidate_id=karim.member_id), as_member(admin)
    )
    await client_bus.request(
        hc.AdmitCandidate(hub_id=hub.hub_id, nomination_id=n.nomination_id), as_member(admin)
    )
    # Paul becomes a plumber too: the directory hears it, and the rule refuses him
    await client_bus.request(
        idc.UpdateProfileCard(changes=idc.CardChanges(activity_code="plumber")), as_member(paul)
    )
    from services.hubs.views.directory import activities

    engine = hubs.context["engine"]

    def paul_is_a_plumber() -> bool:
        with engine.connect() as conn:
            return (
                activities(conn, tenant.tenant_id, [paul.member_id]).get(paul.member_id)
                == "plumber"
            )

    await eventually(paul_is_a_plumber)
    with pytest.raises(RuleViolation) as caught:
        await client_bus.request(
            hc.NominateCandidate(hub_id=hub.hub_id, candidate_id=paul.member_id), as_member(admin)
        )
    assert caught.value.rule == "non_competition"


async def test_authorisation_and_tenancy(hubs: ServiceHost, client_bus: Bus) -> None:
    tenant, admin = await create_network(client_bus, "pole-11e", "admin@a.example")
    other_tenant, other_admin = await create_network(client_bus, "other-net", "admin@b.example")
    karim = await add_member(
        client_bus, tenant.tenant_id, "k@pole.example", card("Karim", "plumber", work=IN_11E)
    )
    ines = await add_member(
        client_bus, tenant.tenant_id, "i@pole.example", card("Ines", "translator", work=IN_11E)
    )
    hub = await client_bus.request(
        hc.CreateHub(name="Voltaire", kind="neighbourhood", area=VOLTAIRE), as_member(admin)
    )
    before = hub_events(hubs)

    with pytest.raises(Forbidden):  # only tenant admins create hubs
        await client_bus.request(
            hc.CreateHub(name="Mine", kind="trade_club", area=VOLTAIRE), as_member(karim)
        )
    with pytest.raises(Unauthenticated):
        await client_bus.request(
            hc.CreateHub(name="Mine", kind="trade_club", area=VOLTAIRE),
            RequestContext(tenant_id=tenant.tenant_id),
        )
    with pytest.raises(Forbidden):  # a non-member cannot nominate
        await client_bus.request(
            hc.NominateCandidate(hub_id=hub.hub_id, candidate_id=ines.member_id), as_member(karim)
        )
    with pytest.raises(InvalidInput):
        await client_bus.request(hc.NominateCandidate(hub_id=hub.hub_id), as_member(admin))
    with pytest.raises(InvalidInput):
        await client_bus.request(
            hc.CreateHub(name="Bad", kind="neighbourhood", area=hc.Area()), as_member(admin)
        )
    with pytest.raises(InvalidInput):
        await client_bus.request(
            hc.CreateHub(
                name="Bad",
                kind="neighbourhood",
                area=VOLTAIRE,
                rules=hc.Rules(objection_window_days=99),
            ),
            as_member(admin),
        )
    with pytest.raises(NotFound):  # another tenant's member is not a candidate here
        await client_bus.request(
            hc.NominateCandidate(hub_id=hub.hub_id, candidate_id=other_admin.member_id),
            as_member(admin),
        )
    # another tenant's hub is answered exactly like a missing one
    for request in (
        hc.GetHub(hub_id=hub.hub_id),
        hc.NominateCandidate(hub_id=hub.hub_id, candidate_id=other_admin.member_id),
        hc.ChangeRules(hub_id=hub.hub_id, changes=hc.RulesChanges(max_visits=5)),
        hc.VolunteerAsFacilitator(hub_id=hub.hub_id),
    ):
        with pytest.raises(NotFound) as caught:
            await client_bus.request(request, as_member(other_admin))
        assert caught.value.message == "hub not found"
    with pytest.raises(NotFound):
        await client_bus.request(
            hc.GetHub(hub_id="00000000-0000-0000-0000-000000000000"), as_member(admin)
        )
    assert hub_events(hubs) == before

    n = await client_bus.request(
        hc.NominateCandidate(hub_id=hub.hub_id, candidate_id=karim.member_id), as_member(admin)
    )
    with pytest.raises(Conflict):
        await client_bus.request(
            hc.NominateCandidate(hub_id=hub.hub_id, candidate_id=karim.member_id), as_member(admin)
        )
    with pytest.raises(Forbidden):  # a member cannot decide
        await client_bus.request(
            hc.AdmitCandidate(hub_id=hub.hub_id, nomination_id=n.nomination_id), as_member(ines)
        )
    with pytest.raises(NotFound):
        await client_bus.request(
            hc.AdmitCandidate(hub_id=hub.hub_id, nomination_id=n.nomination_id),
            as_member(other_admin),
        )
    admitted = await client_bus.request(
        hc.AdmitCandidate(hub_id=hub.hub_id, nomination_id=n.nomination_id), as_member(admin)
    )
    assert admitted.status == "admitted"
    # objections are shown to co-admins only
    n2 = await client_bus.request(
        hc.NominateCandidate(hub_id=hub.hub_id, candidate_id=ines.member_id), as_member(karim)
    )
    await client_bus.request(
        hc.RaiseObjection(hub_id=hub.hub_id, nomination_id=n2.nomination_id, reason="not now"),
        as_member(admin),
    )
    seen_by_member = await client_bus.request(
        hc.ListNominations(hub_id=hub.hub_id), as_member(karim)
    )
    assert seen_by_member[0].objection_count == 1 and seen_by_member[0].objections == []
    seen_by_admin = await client_bus.request(
        hc.ListNominations(hub_id=hub.hub_id), as_member(admin)
    )
    assert seen_by_admin[0].objections[0].reason == "not now"
    assert tenant.tenant_id != other_tenant.tenant_id


async def test_an_older_identity_event_redelivered_late_changes_nothing(
    hubs: ServiceHost, client_bus: Bus
) -> None:
    """Only tracking protects this one: re-applying an older card update
    would set a member's activity back in hubs' directory."""
    tenant, _ = await create_network(client_bus, "pole-11e")
    paul = await add_member(
        client_bus, tenant.tenant_id, "p@pole.example", card("Paul", "plumber", work=IN_11E)
    )
    for activity in ("electrician", "baker"):
        await client_bus.request(
            idc.UpdateProfileCard(changes=idc.CardChanges(activity_code=activity)), as_member(paul)
        )
    from services.hubs.views.directory import activities

    engine = hubs.context["engine"]

    def paul_is(code: str) -> bool:
        with engine.connect() as conn:
            return activities(conn, tenant.tenant_id, [paul.member_id]).get(paul.member_id) == code

    await eventually(lambda: paul_is("baker"))
    # the older update (to electrician) comes again, under a new message id
    js = client_bus.jetstream()
    subject = f"quartier.evt.{tenant.tenant_id}.identity.ProfileCardUpdated"
    info = await js.stream_info(STREAM)
    older = None
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(STREAM, seq)
        if msg.subject == subject and b'"electrician"' in msg.data:
            older = msg
    assert older is not None
    directory = next(c for c in hubs.reactions if c.durable == "hubs-directory")
    handled = directory.handled
    await js.publish(older.subject, older.data, headers={"Nats-Msg-Id": "older-again"})
    await eventually(lambda: directory.handled > handled)
    assert paul_is("baker")
