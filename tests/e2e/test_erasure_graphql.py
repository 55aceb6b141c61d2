"""Erasure through GraphQL over HTTP, as a member and a tenant admin ask for
it (docs/erasure.md): a member erases themselves, an admin erases a member
on their behalf, asking again answers the same erasure; another member,
another network's member and the network's only admin are refused, changing
nothing. An erased member reads `erased`, named in the network's language,
with an empty card."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Network, System, assert_error, join, open_network

pytestmark = [pytest.mark.asyncio, pytest.mark.shared_system]

ERR = "... on Error { __typename code message } ... on RuleViolation { rule }"
ERASE = f"""mutation($input: RequestErasureInput!) {{ requestErasure(input: $input) {{
  __typename ... on ErasureRequested {{ erasure {{ id memberId status requestedAt completedAt
    member {{ displayName erased }} }} }} {ERR} }} }}"""
MEMBER = """query($id: ID!) { member(id: $id) {
  id displayName erased activityCode activityLabel activityText businessName offers seeks
  availableFor bio links workPostcode homePostcode roles email } }"""
ERASURES = "query { erasures(first: 20) { totalCount edges { node { id memberId status } } } }"


async def erase(system: System, member_gid: str, token: str) -> dict[str, Any]:
    answer = await system.gql(ERASE, {"input": {"memberId": member_gid}}, token)
    assert "errors" not in answer, answer
    result: dict[str, Any] = answer["data"]["requestErasure"]
    return result


async def member(system: System, gid: str, token: str) -> dict[str, Any]:
    answer = await system.gql(MEMBER, {"id": gid}, token)
    assert "errors" not in answer, answer
    found: dict[str, Any] = answer["data"]["member"]
    return found


FULL_CARD = {
    "businessName": "Atelier Zqv",
    "activityText": "restoring zqv chairs",
    "offers": "zqv offers",
    "seeks": "zqv seeks",
    "availableFor": "zqv lunches",
    "bio": "zqv bio",
    "links": ["https://zqv.example.org/"],
    "work": {"lat": 48.8575, "lon": 2.3795, "postcode": "75011"},
}


async def test_a_member_erases_themselves_and_asking_again_changes_nothing(
    system: System,
) -> None:
    net = await open_network(system, "erase-self")
    ana = await join(system, net, f"ana@{net.slug}.example", "Ana Zqv", "florist", **FULL_CARD)

    done = await erase(system, ana.id, ana.access)
    assert done["__typename"] == "ErasureRequested", done
    erasure = done["erasure"]
    assert erasure["status"] == "COMPLETED" and erasure["completedAt"]
    assert erasure["memberId"] == ana.member_id

    # everything identifying is gone from the card, to admins too (French network)
    card = await member(system, ana.id, net.admin.access)
    assert card["erased"] is True and card["displayName"] == "ancien membre"
    assert card["activityCode"] is None and card["activityLabel"] is None
    for field in ("activityText", "businessName", "offers", "seeks", "availableFor", "bio"):
        assert card[field] == "", field
    assert card["links"] == [] and card["workPostcode"] is None and card["homePostcode"] is None
    assert card["email"] in ("", None)
    assert "zqv" not in str(card).lower()
    admin_card = await member(system, net.admin.id, net.admin.access)
    assert admin_card["erased"] is False

    # asked again (by the admin: the member is signed out): the same erasure, nothing more
    events = await system.event_count()
    again = await erase(system, ana.id, net.admin.access)
    assert again == done
    assert await system.event_count() == events


async def test_an_admin_erases_a_member_in_an_english_network(system: System) -> None:
    net = await open_network(system, "erase-admin")
    answer = await system.gql(
        "mutation { setTenantLocale(input: { locale: EN }) { __typename } }",
        token=net.admin.access,
    )
    assert answer["data"]["setTenantLocale"]["__typename"] == "TenantLocaleSet", answer
    ben = await join(system, net, f"ben@{net.slug}.example", "Ben", "baker")

    done = await erase(system, ben.id, net.admin.access)
    assert done["__typename"] == "ErasureRequested", done
    assert done["erasure"]["member"] == {"displayName": "former member", "erased": True}
    listed = await system.gql(ERASURES, token=net.admin.access)
    edges = listed["data"]["erasures"]["edges"]
    assert [e["node"]["memberId"] for e in edges] == [ben.member_id]
    assert edges[0]["node"]["id"] == done["erasure"]["id"]


async def test_refusals_change_nothing(system: System) -> None:
    net = await open_network(system, "erase-refused")
    other: Network = await open_network(system, "erase-elsewhere")
    cleo = await join(system, net, f"cleo@{net.slug}.example", "Cleo", "lawyer")
    dan = await join(system, net, f"dan@{net.slug}.example", "Dan", "photographer")
    stranger = await join(system, other, f"eve@{other.slug}.example", "Eve", "baker")
    events = await system.event_count()

    # a member for another one: Forbidden
    assert_error(await erase(system, dan.id, cleo.access), "Forbidden", "forbidden")
    # another network's member (a tenant admin asking): NotFound, as a made-up id
    assert_error(await erase(system, stranger.id, net.admin.access), "NotFound", "not_found")
    # the network's only tenant admin: make another admin first
    assert_error(
        await erase(system, net.admin.id, net.admin.access),
        "RuleViolation",
        "rule_violation",
        rule="last_tenant_admin",
    )
    # a member may not list erasures
    listed = await system.gql(ERASURES, token=cleo.access)
    assert [e["extensions"]["code"] for e in listed["errors"]] == ["FORBIDDEN"], listed

    assert await system.event_count() == events
    for session in (cleo, dan):
        card = await member(system, session.id, net.admin.access)
        assert card["erased"] is False and card["displayName"] in ("Cleo", "Dan")
    assert (await member(system, stranger.id, other.admin.access))["erased"] is False
