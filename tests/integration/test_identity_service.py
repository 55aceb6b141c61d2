"""The identity service over a real NATS server and a real store (SQLite, and
PostgreSQL when configured): its rules, its authorisation and tenancy, and
that a refused command changes nothing."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from services.identity import contract as idc
from services.runtime.bus import Bus
from services.runtime.clock import MovableClock
from services.runtime.errors import (
    Conflict,
    Forbidden,
    InvalidCredentials,
    InvalidInput,
    InvalidToken,
    NotFound,
    RuleViolation,
    Unauthenticated,
)
from services.runtime.host import ServiceHost
from services.runtime.messages import Actor
from services.runtime.tenancy import RequestContext
from tests.support.identity import (
    PASSWORD,
    add_member,
    as_member,
    as_service,
    card,
    create_network,
    mailed_tokens,
    operator,
)

pytestmark = pytest.mark.asyncio


async def event_count(identity: ServiceHost) -> int:
    return identity.context["app"].max_notification_id()


async def test_operator_creates_a_network_and_its_admin_signs_in(
    identity: ServiceHost, client_bus: Bus
) -> None:
    tenant, admin = await create_network(client_bus, "pole-11e", "admin@pole.example")
    assert tenant.slug == "pole-11e"
    assert admin.roles == ["tenant_admin"]
    session = await client_bus.request(
        idc.Login(
            tenant_slug="pole-11e",
            email="ADMIN@pole.example".replace("ADMIN", "admin"),
            password=PASSWORD,
        ),
        RequestContext(),
    )
    assert session.member_id == admin.member_id
    found = await client_bus.request(idc.GetTenant(slug="pole-11e"), RequestContext())
    assert found.tenant_id == tenant.tenant_id


@pytest.mark.parametrize(
    ("ctx", "error"),
    [
        (RequestContext(), Forbidden),
        (RequestContext(actor=Actor(kind="operator"), credential="wrong-token"), Forbidden),
        (RequestContext(actor=Actor(kind="operator")), Forbidden),
        (
            RequestContext(
                actor=Actor(kind="member", member_id="x", tenant_id="y", roles=("tenant_admin",))
            ),
            Forbidden,
        ),
    ],
)
async def test_only_the_operator_creates_networks(
    identity: ServiceHost, client_bus: Bus, ctx: RequestContext, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await client_bus.request(
            idc.CreateTenant(slug="other", name="Other", admin_email="a@b.example"), ctx
        )
    assert await event_count(identity) == 0


@pytest.mark.parametrize(
    ("slug", "name", "email", "field"),
    [
        ("A", "Name", "a@b.example", "slug"),
        ("-bad-", "Name", "a@b.example", "slug"),
        ("ok-slug", "", "a@b.example", "name"),
        ("ok-slug", "Name", "not-an-address", "email"),
    ],
)
async def test_invalid_networks_are_refused(
    identity: ServiceHost, client_bus: Bus, slug: str, name: str, email: str, field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        await client_bus.request(
            idc.CreateTenant(slug=slug, name=name, admin_email=email), operator()
        )
    assert caught.value.field == field
    assert await event_count(identity) == 0


async def test_a_slug_is_taken_once(identity: ServiceHost, client_bus: Bus) -> None:
    await create_network(client_bus, "pole-11e")
    before = await event_count(identity)
    with pytest.raises(Conflict):
        await client_bus.request(
            idc.CreateTenant(slug="pole-11e", name="Again", admin_email="x@y.example"), operator()
        )
    assert await event_count(identity) == before


async def test_invitation_is_mailed_single_use_and_expires(
    identity: ServiceHost, client_bus: Bus, settings, clock: MovableClock
) -> None:
    tenant, admin = await create_network(client_bus, "pole-11e")
    sent = await client_bus.request(idc.InviteMember(email="new@pole.example"), as_member(admin))
    assert sent.token is None  # a member never sees the token: it goes by mail only
    token = mailed_tokens(settings.mail_dir)["new@pole.example"]

    with pytest.raises(InvalidToken):
        await client_bus.request(
            idc.AcceptInvitation(token=token[:-2] + "xx", password=PASSWORD, card=card("New")),
            RequestContext(),
        )
    with pytest.raises(InvalidInput) as caught:
        await client_bus.request(
            idc.AcceptInvitation(token=token, password="short", card=card("New")), RequestContext()
        )
    assert caught.value.field == "password"
    with pytest.raises(InvalidInput) as caught:
        await client_bus.request(
            idc.AcceptInvitation(token=token, password=PASSWORD, card=card("New", "astronaut")),
            RequestContext(),
        )
    assert caught.value.field == "activity_code"

    session = await client_bus.request(
        idc.AcceptInvitation(token=token, password=PASSWORD, card=card("New")), RequestContext()
    )
    assert session.tenant_id == tenant.tenant_id
    with pytest.raises(InvalidToken, match="already"):
        await client_bus.request(
            idc.AcceptInvitation(token=token, password=PASSWORD, card=card("Again")),
            RequestContext(),
        )

    await client_bus.request(idc.InviteMember(email="late@pole.example"), as_member(admin))
    late = mailed_tokens(settings.mail_dir)["late@pole.example"]
    clock.advance(days=8)
    with pytest.raises(InvalidToken, match="expired"):
        await client_bus.request(
            idc.AcceptInvitation(token=late, password=PASSWORD, card=card("Late")), RequestContext()
        )
    invitations = (await client_bus.request(idc.ListInvitations(), as_member(admin))).items
    assert {i.email: i.status for i in invitations}["late@pole.example"] == "expired"


async def test_who_may_invite(identity: ServiceHost, client_bus: Bus) -> None:
    tenant, admin = await create_network(client_bus, "pole-11e")
    member = await add_member(client_bus, tenant.tenant_id, "m@pole.example", card("Member"))
    before = await event_count(identity)
    with pytest.raises(Forbidden):
        await client_bus.request(idc.InviteMember(email="x@pole.example"), as_member(member))
    with pytest.raises(Unauthenticated):
        await client_bus.request(
            idc.InviteMember(email="x@pole.example"), RequestContext(tenant_id=tenant.tenant_id)
        )
    with pytest.raises(Conflict):
        await client_bus.request(idc.InviteMember(email="m@pole.example"), as_member(admin))
    with pytest.raises(InvalidInput):
        await client_bus.request(idc.InviteMember(email="nope"), as_member(admin))
    # a service (hubs' co-optation) invites on behalf of an existing member only
    with pytest.raises(NotFound):
        await client_bus.request(
            idc.InviteMember(email="x@pole.example", on_behalf_of=str(uuid.uuid4())),
            as_service(tenant.tenant_id),
        )
    with pytest.raises(Forbidden):
        await client_bus.request(
            idc.InviteMember(email="x@pole.example", on_behalf_of=member.member_id, as_admin=True),
            as_service(tenant.tenant_id),
        )
    assert await event_count(identity) == before
    sent = await client_bus.request(
        idc.InviteMember(email="x@pole.example", on_behalf_of=member.member_id),
        as_service(tenant.tenant_id),
    )
    assert sent.token is None


async def test_login_failures_say_nothing_about_accounts(
    identity: ServiceHost, client_bus: Bus
) -> None:
    await create_network(client_bus, "pole-11e", "admin@pole.example")
    for email, password in (
        ("admin@pole.example", "wrong password!"),
        ("nobody@pole.example", PASSWORD),
    ):
        with pytest.raises(InvalidCredentials) as caught:
            await client_bus.request(
                idc.Login(tenant_slug="pole-11e", email=email, password=password), RequestContext()
            )
        assert caught.value.message == "wrong e-mail address or password"
    with pytest.raises(NotFound):
        await client_bus.request(
            idc.Login(tenant_slug="nowhere", email="admin@pole.example", password=PASSWORD),
            RequestContext(),
        )


async def test_refresh_tokens_rotate_and_reuse_revokes_the_family(
    identity: ServiceHost, client_bus: Bus, clock: MovableClock
) -> None:
    await create_network(client_bus, "pole-11e", "admin@pole.example")
    first = await client_bus.request(
        idc.Login(tenant_slug="pole-11e", email="admin@pole.example", password=PASSWORD),
        RequestContext(),
    )
    second = await client_bus.request(
        idc.RefreshSession(refresh_token=first.refresh_token), RequestContext()
    )
    assert second.refresh_token != first.refresh_token
    third = await client_bus.request(
        idc.RefreshSession(refresh_token=second.refresh_token), RequestContext()
    )
    # the first token is replayed (stolen?) after the grace for concurrent
    # refreshes (tests/integration/test_sessions.py): the whole family is revoked
    clock.advance(seconds=60)
    with pytest.raises(InvalidToken, match="revoked"):
        await client_bus.request(
            idc.RefreshSession(refresh_token=first.refresh_token), RequestContext()
        )
    with pytest.raises(InvalidToken):
        await client_bus.request(
            idc.RefreshSession(refresh_token=third.refresh_token), RequestContext()
        )
    with pytest.raises(InvalidToken):
        await client_bus.request(idc.RefreshSession(refresh_token="garbage"), RequestContext())
    # logout ends a session
    other = await client_bus.request(
        idc.Login(tenant_slug="pole-11e", email="admin@pole.example", password=PASSWORD),
        RequestContext(),
    )
    await client_bus.request(idc.Logout(refresh_token=other.refresh_token), RequestContext())
    with pytest.raises(InvalidToken):
        await client_bus.request(
            idc.RefreshSession(refresh_token=other.refresh_token), RequestContext()
        )


async def test_profile_card_update_and_search(identity: ServiceHost, client_bus: Bus) -> None:
    tenant, admin = await create_network(client_bus, "pole-11e")
    karim = await add_member(
        client_bus,
        tenant.tenant_id,
        "karim@pole.example",
        card(
            "Karim",
            "plumber",
            offers="Dépannage de chauffe-eau",
            work={"lat": 48.8560, "lon": 2.3750, "postcode": "75011"},
        ),
    )
    far = await add_member(
        client_bus,
        tenant.tenant_id,
        "far@pole.example",
        card("Far", "electrician", work={"lat": 48.8049, "lon": 2.1204, "postcode": "78000"}),
    )
    updated = await client_bus.request(
        idc.UpdateProfileCard(
            changes=idc.CardChanges(seeks="Un électricien", bio="Plombier depuis 2012")
        ),
        as_member(karim),
    )
    assert updated.seeks == "Un électricien"
    assert updated.offers == "Dépannage de chauffe-eau"  # untouched fields stay

    reader = as_member(admin)
    by_word = await client_bus.request(idc.SearchMembers(text="chauffe EAU"), reader)
    assert [m.member_id for m in by_word.items] == [karim.member_id]
    accents = await client_bus.request(idc.SearchMembers(text="electricien"), reader)
    assert [m.member_id for m in accents.items] == [karim.member_id]
    # in what members offer only (referrals' needs): Karim seeks an electrician
    offering = idc.SearchMembers(text="electricien", offered_only=True)
    assert karim.member_id not in [
        m.member_id for m in (await client_bus.request(offering, reader)).items
    ]
    offering = idc.SearchMembers(text="chauffe EAU", offered_only=True)
    found = await client_bus.request(offering, reader)
    assert ([m.member_id for m in found.items], found.total) == ([karim.member_id], 1)
    by_activity = await client_bus.request(idc.SearchMembers(activity_code="electrician"), reader)
    assert [m.member_id for m in by_activity.items] == [far.member_id]
    near = await client_bus.request(
        idc.SearchMembers(near=idc.Point(lat=48.8575, lon=2.3795), radius_km=2), reader
    )
    assert {m.member_id for m in near.items} == {admin.member_id, karim.member_id}
    assert all(
        m.work is None and m.home is None for m in near.items if m.member_id != admin.member_id
    )
    assert near.items[0].member_id == admin.member_id
    # distances to other members are coarse: from a ~500 m grid cell, in 0.5 km steps
    assert near.items[0].distance_km in (0.0, 0.5)
    assert all((m.distance_km or 0) % 0.5 == 0 for m in near.items)
    nudged = await client_bus.request(
        idc.SearchMembers(near=idc.Point(lat=48.8576, lon=2.3796), radius_km=2), reader
    )
    assert [m.distance_km for m in nudged.items] == [m.distance_km for m in near.items]
    page = await client_bus.request(idc.SearchMembers(limit=2), reader)
    assert page.total == 3 and len(page.items) == 2
    rest = await client_bus.request(idc.SearchMembers(limit=2, offset=2), reader)
    assert len(rest.items) == 1

    # other members see neither the e-mail address nor coordinates; admins see the address
    seen_by_far = await client_bus.request(
        idc.GetMembers(member_ids=[karim.member_id]), as_member(far)
    )
    assert seen_by_far[0].email is None and seen_by_far[0].work is None
    assert seen_by_far[0].work_postcode == "75011"
    seen_by_admin = await client_bus.request(idc.GetMembers(member_ids=[karim.member_id]), reader)
    assert seen_by_admin[0].email == "karim@pole.example"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (idc.CardChanges(display_name=""), "display_name"),
        (idc.CardChanges(display_name="x" * 81), "display_name"),
        (idc.CardChanges(activity_code="astronaut"), "activity_code"),
        (idc.CardChanges(links=["javascript:alert(1)"]), "links"),
        (idc.CardChanges(links=[f"https://e{i}.example" for i in range(6)]), "links"),
        (idc.CardChanges(work=idc.Place(lat=91, lon=2)), "lat"),
        (idc.CardChanges(work=idc.Place(lat=48.0)), "lat"),
        (idc.CardChanges(home=idc.Place(postcode="!!")), "postcode"),
        (idc.CardChanges(bio="x" * 2001), "bio"),
    ],
)
async def test_invalid_cards_change_nothing(
    identity: ServiceHost, client_bus: Bus, changes: idc.CardChanges, field: str
) -> None:
    _, admin = await create_network(client_bus, "pole-11e")
    before = await event_count(identity)
    with pytest.raises(InvalidInput) as caught:
        await client_bus.request(idc.UpdateProfileCard(changes=changes), as_member(admin))
    assert caught.value.field == field
    assert await event_count(identity) == before


async def test_nothing_crosses_tenants(identity: ServiceHost, client_bus: Bus, settings) -> None:
    _, admin_a = await create_network(client_bus, "network-a", "admin@a.example")
    b, admin_b = await create_network(client_bus, "network-b", "admin@b.example")
    member_b = await add_member(client_bus, b.tenant_id, "m@b.example", card("B member"))
    before = await event_count(identity)

    # another tenant's member is answered exactly like a missing one
    assert (
        await client_bus.request(
            idc.GetMembers(member_ids=[member_b.member_id]), as_member(admin_a)
        )
        == []
    )
    with pytest.raises(NotFound):
        await client_bus.request(
            idc.SetTenantAdmin(member_id=member_b.member_id, admin=True), as_member(admin_a)
        )
    with pytest.raises(NotFound):
        await client_bus.request(
            idc.SetTenantAdmin(member_id="00000000-0000-0000-0000-000000000000", admin=True),
            as_member(admin_a),
        )
    page = await client_bus.request(idc.SearchMembers(), as_member(admin_a))
    assert {m.member_id for m in page.items} == {admin_a.member_id}
    # an invitation of tenant B cannot be revoked from tenant A
    await client_bus.request(idc.InviteMember(email="pending@b.example"), as_member(admin_b))
    pending = (
        await client_bus.request(idc.ListInvitations(status="pending"), as_member(admin_b))
    ).items[0]
    with pytest.raises(NotFound):
        await client_bus.request(
            idc.RevokeInvitation(invitation_id=pending.invitation_id), as_member(admin_a)
        )
    # a token of tenant A used with tenant B's id in the envelope is refused
    forged = RequestContext(tenant_id=b.tenant_id, actor=as_member(admin_a).actor)
    with pytest.raises(Forbidden):
        await client_bus.request(idc.SearchMembers(), forged)
    assert await event_count(identity) == before + 2  # only the invitation of B (and its slot)


async def test_tenant_admin_roles(identity: ServiceHost, client_bus: Bus) -> None:
    tenant, admin = await create_network(client_bus, "pole-11e")
    member = await add_member(client_bus, tenant.tenant_id, "m@pole.example", card("Member"))
    with pytest.raises(Forbidden):
        await client_bus.request(
            idc.SetTenantAdmin(member_id=admin.member_id, admin=False), as_member(member)
        )
    with pytest.raises(RuleViolation) as caught:
        await client_bus.request(
            idc.SetTenantAdmin(member_id=admin.member_id, admin=False), as_member(admin)
        )
    assert caught.value.rule == "last_tenant_admin"
    promoted = await client_bus.request(
        idc.SetTenantAdmin(member_id=member.member_id, admin=True), as_member(admin)
    )
    assert promoted.roles == ["tenant_admin"]
    demoted = await client_bus.request(
        idc.SetTenantAdmin(member_id=admin.member_id, admin=False), as_member(admin)
    )
    assert demoted.roles == []


async def test_member_places_answer_distances_never_coordinates(
    identity: ServiceHost, client_bus: Bus
) -> None:
    tenant, admin = await create_network(client_bus, "pole-11e")
    centre = idc.Point(lat=48.8575, lon=2.3795)
    with pytest.raises(Forbidden):
        await client_bus.request(
            idc.MemberPlaces(member_ids=[admin.member_id], centre=centre), as_member(admin)
        )
    places = await client_bus.request(
        idc.MemberPlaces(member_ids=[admin.member_id], centre=centre), as_service(tenant.tenant_id)
    )
    item = places.items[0]
    assert item.work_km == pytest.approx(0.0, abs=0.01) and item.home_km is None
    assert item.work_postcode == "75011"
    assert not hasattr(item, "lat")


async def test_password_change(identity: ServiceHost, client_bus: Bus) -> None:
    _, admin = await create_network(client_bus, "pole-11e", "admin@pole.example")
    with pytest.raises(InvalidCredentials):
        await client_bus.request(
            idc.ChangePassword(current_password="not it at all", new_password="a brand new one"),
            as_member(admin),
        )
    await client_bus.request(
        idc.ChangePassword(current_password=PASSWORD, new_password="a brand new one"),
        as_member(admin),
    )
    await client_bus.request(
        idc.Login(tenant_slug="pole-11e", email="admin@pole.example", password="a brand new one"),
        RequestContext(),
    )


async def test_refresh_session_expires_with_the_domain_clock(
    identity: ServiceHost, client_bus: Bus, clock: MovableClock
) -> None:
    _, admin = await create_network(client_bus, "pole-11e")
    clock.advance(timedelta(days=31))
    with pytest.raises(InvalidToken, match="expired"):
        await client_bus.request(
            idc.RefreshSession(refresh_token=admin.refresh_token), RequestContext()
        )


async def test_a_tenant_admin_sets_the_network_language(
    identity: ServiceHost, client_bus: Bus, settings
) -> None:
    tenant, admin = await create_network(client_bus, "pole-11e")
    assert (
        await client_bus.request(idc.GetTenant(slug="pole-11e"), RequestContext())
    ).locale == "fr"
    member = await add_member(client_bus, tenant.tenant_id, "m@pole.example", card("M"))
    other, other_admin = await create_network(client_bus, "pole-12e")
    before = await event_count(identity)
    with pytest.raises(Forbidden):
        await client_bus.request(idc.SetTenantLocale(locale="en"), as_member(member))
    with pytest.raises(InvalidInput) as caught:
        await client_bus.request(idc.SetTenantLocale(locale="de"), as_member(admin))  # type: ignore[arg-type]
    assert caught.value.field == "locale"
    with pytest.raises(Forbidden):  # a token of another network
        await client_bus.request(
            idc.SetTenantLocale(locale="en"),
            RequestContext(tenant_id=tenant.tenant_id, actor=as_member(other_admin).actor),
        )
    with pytest.raises(Unauthenticated):
        await client_bus.request(idc.SetTenantLocale(locale="en"), RequestContext())
    assert await event_count(identity) == before  # refused: nothing recorded
    changed = await client_bus.request(idc.SetTenantLocale(locale="en"), as_member(admin))
    assert changed.locale == "en" and changed.slug == "pole-11e"
    again = await event_count(identity)
    await client_bus.request(idc.SetTenantLocale(locale="en"), as_member(admin))
    assert await event_count(identity) == again  # the same language again: no event
    assert (
        await client_bus.request(idc.GetTenant(slug="pole-11e"), RequestContext())
    ).locale == "en"
    assert (
        await client_bus.request(idc.GetTenant(slug="pole-12e"), RequestContext())
    ).locale == "fr"
    assert other.slug == "pole-12e"

    # invitations go out in the network's language from now on
    await client_bus.request(idc.InviteMember(email="new@pole.example"), as_member(admin))
    latest = max(settings.mail_dir.glob("*.eml"))
    text = latest.read_text()
    assert "Subject: Invitation to join Network pole-11e" in text
    assert "Content-Language: en" in text


async def test_member_contacts_are_for_services_and_stay_in_their_network(
    identity: ServiceHost, client_bus: Bus
) -> None:
    tenant, admin = await create_network(client_bus, "pole-11e", "admin@pole.example")
    member = await add_member(client_bus, tenant.tenant_id, "M@Pole.Example", card("Marie"))
    other, other_admin = await create_network(client_bus, "pole-12e", "admin@other.example")
    ids = [admin.member_id, member.member_id, other_admin.member_id, str(uuid.uuid4())]

    for ctx in (as_member(admin), RequestContext(tenant_id=tenant.tenant_id), operator()):
        with pytest.raises((Forbidden, Unauthenticated)):
            await client_bus.request(idc.MemberContacts(member_ids=ids), ctx)
    with pytest.raises(InvalidInput):
        await client_bus.request(
            idc.MemberContacts(member_ids=["x"] * 501), as_service(tenant.tenant_id)
        )

    contacts = await client_bus.request(
        idc.MemberContacts(member_ids=ids), as_service(tenant.tenant_id)
    )
    assert (contacts.slug, contacts.name, contacts.locale) == ("pole-11e", "Network pole-11e", "fr")
    assert [(x.member_id, x.email, x.display_name) for x in contacts.items] == [
        (admin.member_id, "admin@pole.example", "Admin"),
        (member.member_id, "M@pole.example", "Marie"),
    ]  # the other network's member and the unknown id are left out
    theirs = await client_bus.request(
        idc.MemberContacts(member_ids=ids), as_service(other.tenant_id)
    )
    assert [x.email for x in theirs.items] == ["admin@other.example"]
    with pytest.raises(NotFound):
        await client_bus.request(idc.MemberContacts(member_ids=[]), as_service(str(uuid.uuid4())))
