"""Erasure in identity over a real NATS server and a real store: who may ask,
that asking again changes nothing, that another network's member is not
found, and what the erased member reads as (docs/erasure.md)."""

from __future__ import annotations

import msgspec
import pytest

from services.identity import contract as idc
from services.identity.domain import Member
from services.runtime.bus import Bus
from services.runtime.errors import (
    Forbidden,
    InvalidCredentials,
    InvalidInput,
    NotFound,
    RuleViolation,
)
from services.runtime.host import ServiceHost
from services.runtime.tenancy import RequestContext
from tests.support.identity import PASSWORD, add_member, as_member, card, create_network

pytestmark = pytest.mark.asyncio


async def test_who_may_erase_and_what_an_erased_member_reads_as(
    identity: ServiceHost, client_bus: Bus
) -> None:
    tenant, admin = await create_network(client_bus, "erase-a", "admin@erase.example")
    other_tenant, other_admin = await create_network(client_bus, "erase-b", "admin@b.example")
    tid = tenant.tenant_id
    alice = await add_member(
        client_bus, tid, "alice@erase.example", card("Alice Zqxmarker", bio="zqx bio")
    )
    bob = await add_member(client_bus, tid, "bob@erase.example", card("Bob", "electrician"))
    app = identity.context["app"]
    before = app.max_notification_id()

    # refused, changing nothing: another member, another network's admin, bad input
    with pytest.raises(Forbidden):
        await client_bus.request(idc.RequestErasure(member_id=alice.member_id), as_member(bob))
    with pytest.raises(NotFound):
        await client_bus.request(
            idc.RequestErasure(member_id=alice.member_id), as_member(other_admin)
        )
    with pytest.raises(NotFound):
        await client_bus.request(idc.RequestErasure(member_id="not-an-id"), as_member(admin))
    with pytest.raises(Forbidden):
        await client_bus.request(idc.ListErasures(), as_member(bob))
    with pytest.raises(InvalidInput):
        await client_bus.request(idc.ListErasures(limit=0), as_member(admin))
    with pytest.raises(RuleViolation) as last:  # the network's only admin
        await client_bus.request(idc.RequestErasure(member_id=admin.member_id), as_member(admin))
    assert last.value.rule == "last_tenant_admin"
    assert app.max_notification_id() == before

    done = await client_bus.request(idc.RequestErasure(member_id=alice.member_id), as_member(alice))
    assert done.status == "completed" and done.completed_at is not None
    after = app.max_notification_id()
    again = await client_bus.request(
        idc.RequestErasure(member_id=alice.member_id), as_member(admin)
    )
    assert again == done
    assert app.max_notification_id() == after  # asked again: nothing more

    # reads as a former member, to admins too; their details are gone from the aggregate
    cards = await client_bus.request(
        idc.GetMembers(member_ids=[alice.member_id, bob.member_id]), as_member(admin)
    )
    by_id = {c.member_id: c for c in cards}
    erased = by_id[alice.member_id]
    # named in the network's locale (French by default): nothing of the card left
    assert erased.display_name == "ancien membre" and erased.erased
    assert (erased.activity_code, erased.activity_label, erased.bio, erased.links) == (
        None,
        None,
        "",
        [],
    )
    assert (erased.work_postcode, erased.home_postcode, erased.email) == (None, None, "")
    assert by_id[bob.member_id].display_name == "Bob" and not by_id[bob.member_id].erased
    # not in the directory's searches any more
    found = await client_bus.request(idc.SearchMembers(), as_member(admin))
    assert alice.member_id not in {c.member_id for c in found.items}
    member = app.get(tid, alice.member_id, Member)
    assert member.email == "" and member.card_data["display_name"] == ""
    # the account cannot sign in any more
    with pytest.raises(InvalidCredentials):
        await client_bus.request(
            idc.Login(tenant_slug="erase-a", email="alice@erase.example", password=PASSWORD),
            RequestContext(),
        )
    page = await client_bus.request(idc.ListErasures(), as_member(admin))
    assert [(e.member_id, e.status) for e in page.items] == [(alice.member_id, "completed")]
    assert page.total == 1
    other = await client_bus.request(idc.ListErasures(), as_member(other_admin))
    assert other.total == 0 and other_tenant.tenant_id != tid
    # an admin erases on a member's behalf
    erased_bob = await client_bus.request(
        idc.RequestErasure(member_id=bob.member_id), as_member(admin)
    )
    assert erased_bob.status == "completed"


async def test_an_erased_member_reads_in_the_networks_language_and_loses_the_admin_role(
    identity: ServiceHost, client_bus: Bus
) -> None:
    tenant, admin = await create_network(client_bus, "erase-en", "admin@erase-en.example")
    tid = tenant.tenant_id
    await client_bus.request(idc.SetTenantLocale(locale="en"), as_member(admin))
    carol = await add_member(client_bus, tid, "carol@erase-en.example", card("Carol"))
    await client_bus.request(
        idc.SetTenantAdmin(member_id=carol.member_id, admin=True), admin_ctx(admin)
    )

    # another admin is there: the admin may be erased; the role goes with the data
    done = await client_bus.request(idc.RequestErasure(member_id=admin.member_id), admin_ctx(carol))
    assert done.status == "completed"
    cards = await client_bus.request(idc.GetMembers(member_ids=[admin.member_id]), as_member(carol))
    assert cards[0].display_name == "former member" and cards[0].erased
    assert "tenant_admin" not in cards[0].roles
    # now Carol is the network's only admin: she cannot be erased, nothing changes
    app = identity.context["app"]
    before = app.max_notification_id()
    with pytest.raises(RuleViolation) as last:
        await client_bus.request(idc.RequestErasure(member_id=carol.member_id), admin_ctx(carol))
    assert last.value.rule == "last_tenant_admin"
    assert app.max_notification_id() == before


def admin_ctx(session: idc.Session) -> RequestContext:
    """A session whose roles include tenant admin (a token issued after the
    role was granted)."""
    ctx = as_member(session)
    return RequestContext(
        tenant_id=ctx.tenant_id,
        actor=msgspec.structs.replace(ctx.actor, roles=("tenant_admin",)),
    )
