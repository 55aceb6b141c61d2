"""`node(id:)` for every type that implements Node (Member, Tenant,
Invitation, Hub, Nomination), over real HTTP: it answers what the type's own
field answers, with the same authorisation, and another network's object is
null exactly like a missing one."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.conftest import Network, Session, System, join, mutate, open_network
from tests.support.env import OPERATOR_TOKEN

# one system per store for the whole module: each test opens its own networks
pytestmark = [pytest.mark.asyncio, pytest.mark.shared_system]

AREA = {"centre": {"lat": 48.8575, "lon": 2.3795}, "radiusKm": 1.5}
IN_11E = {"lat": 48.8560, "lon": 2.3750, "postcode": "75011"}

# What each type's own field shows, and the same selection on node(id:).
FIELDS = {
    "Member": "id memberId displayName activityCode roles",
    "Tenant": "id tenantId slug name createdAt",
    "Invitation": "id invitationId email status expiresAt createdAt invitedBy { id }",
    "Hub": "id hubId name kind memberCount coAdmins { id }",
    "Nomination": "id nominationId hubId status note candidate { id } sponsor { id }",
}


def node_query(type_name: str | None) -> str:
    fragment = f"... on {type_name} {{ {FIELDS[type_name]} }}" if type_name else "id"
    return f"query($id: ID!) {{ node(id: $id) {{ __typename {fragment} }} }}"


def raw_global_id(*parts: str) -> str:
    return base64.urlsafe_b64encode(":".join(parts).encode()).decode()


@dataclass
class Objects:
    """One object of each Node type in a network, as its own field shows it."""

    net: Network
    member: Session  # a member of the network, not of the hub, not an admin
    by_type: dict[str, dict[str, Any]]


async def populate(system: System, slug: str) -> Objects:
    net = await open_network(system, slug)
    slug = net.slug  # its own on a shared system
    member = await join(system, net, f"m@{slug}.example", "Karim Benali", work=IN_11E)
    candidate = await join(
        system, net, f"c@{slug}.example", "Inès Moreau", "translator", work=IN_11E
    )
    token = net.admin.access
    created = await mutate(
        system,
        "createHub",
        {"name": "Cercle Voltaire", "kind": "NEIGHBOURHOOD", "area": AREA},
        token,
    )
    hub_id = created["hub"]["id"]
    nominated = await mutate(
        system,
        "nominateCandidate",
        {"hubId": hub_id, "candidateId": candidate.id, "note": "Traductrice"},
        token,
    )
    assert nominated["__typename"] == "NominationPayload", nominated
    nomination_id = nominated["nomination"]["id"]
    answer = await system.gql(
        f"""query($member: ID!, $hub: ID!, $slug: String!) {{
          member(id: $member) {{ {FIELDS["Member"]} }}
          tenant(slug: $slug) {{ {FIELDS["Tenant"]} }}
          invitations(first: 1) {{ edges {{ node {{ {FIELDS["Invitation"]} }} }} }}
          hub(id: $hub) {{ {FIELDS["Hub"]}
                          nominations {{ {FIELDS["Nomination"]} }} }}
        }}""",
        {"member": member.id, "hub": hub_id, "slug": slug},
        token,
    )
    assert "errors" not in answer, answer
    data = answer["data"]
    hub = dict(data["hub"])
    [nomination] = hub.pop("nominations")
    assert nomination["id"] == nomination_id
    return Objects(
        net=net,
        member=member,
        by_type={
            "Member": data["member"],
            "Tenant": data["tenant"],
            "Invitation": data["invitations"]["edges"][0]["node"],
            "Hub": hub,
            "Nomination": nomination,
        },
    )


async def node(
    system: System, global_id: str, token: str | None, type_name: str | None = None
) -> dict[str, Any]:
    """`node(id:)`, selecting the fields of `type_name` (the id's type)."""
    return await system.gql(node_query(type_name), {"id": global_id}, token)


def codes(answer: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in answer.get("errors") or ()]


async def test_every_node_type_resolves_like_its_own_field(system: System) -> None:
    ours = await populate(system, "pole-11e")
    assert set(ours.by_type) == set(FIELDS)
    for type_name, expected in ours.by_type.items():
        answer = await node(system, expected["id"], ours.net.admin.access, type_name)
        assert answer == {"data": {"node": {"__typename": type_name, **expected}}}, type_name

    # all of them at once, in one request
    aliases = " ".join(
        f'{t.lower()}: node(id: "{o["id"]}") {{ ... on {t} {{ {FIELDS[t]} }} }}'
        for t, o in ours.by_type.items()
    )
    answer = await system.gql(f"{{ {aliases} }}", token=ours.net.admin.access)
    assert answer == {"data": {t.lower(): o for t, o in ours.by_type.items()}}


async def test_another_networks_nodes_are_null_like_missing_ones(system: System) -> None:
    ours = await populate(system, "pole-11e")
    theirs = await populate(system, "other-net")
    random_ = str(uuid.uuid4())
    missing = {
        "Member": raw_global_id("Member", random_),
        "Tenant": raw_global_id("Tenant", random_, "pole-11e"),
        "Invitation": raw_global_id("Invitation", random_),
        "Hub": raw_global_id("Hub", random_),
        "Nomination": raw_global_id("Nomination", random_, theirs.by_type["Hub"]["hubId"]),
    }
    for type_name, obj in theirs.by_type.items():
        # their admin sees it; ours gets what a missing object gets: null
        assert (await node(system, obj["id"], theirs.net.admin.access))["data"]["node"]
        for global_id in (obj["id"], missing[type_name]):
            answer = await node(system, global_id, ours.net.admin.access)
            assert answer == {"data": {"node": None}}, (type_name, global_id)

    # ids put together by hand to reach across networks find nothing either
    their_nomination = theirs.by_type["Nomination"]
    forged = [
        # our network's id, their slug (and the reverse)
        raw_global_id("Tenant", ours.by_type["Tenant"]["tenantId"], "other-net"),
        raw_global_id("Tenant", theirs.by_type["Tenant"]["tenantId"], "pole-11e"),
        # their nomination in our hub, our nomination in their hub
        raw_global_id("Nomination", their_nomination["nominationId"], ours.by_type["Hub"]["hubId"]),
        raw_global_id(
            "Nomination", ours.by_type["Nomination"]["nominationId"], their_nomination["hubId"]
        ),
    ]
    for global_id in forged:
        for token in (ours.net.admin.access, theirs.net.admin.access):
            assert await node(system, global_id, token) == {"data": {"node": None}}, global_id


async def test_malformed_and_unknown_ids_are_null(system: System) -> None:
    ours = await populate(system, "pole-11e")
    nomination = ours.by_type["Nomination"]
    for global_id in (
        "garbage",
        "",
        raw_global_id("Member"),
        raw_global_id("Hub", "not-a-uuid"),
        raw_global_id("Gadget", str(uuid.uuid4())),
        # a nomination id without its hub (or with garbage for one) cannot be looked up
        raw_global_id("Nomination", nomination["nominationId"]),
        raw_global_id("Nomination", nomination["nominationId"], "not-a-uuid"),
        raw_global_id("Nomination", nomination["nominationId"], nomination["hubId"], "x"),
        raw_global_id("Tenant", ours.by_type["Tenant"]["tenantId"], "no-such-network"),
    ):
        assert await node(system, global_id, ours.net.admin.access) == {"data": {"node": None}}, (
            global_id
        )
    # an id of the network issued before ids carried the slug still finds it
    old_style = raw_global_id("Tenant", ours.by_type["Tenant"]["tenantId"])
    answer = await node(system, old_style, ours.net.admin.access, "Tenant")
    assert answer["data"]["node"] == {"__typename": "Tenant", **ours.by_type["Tenant"]}


async def test_nodes_need_what_their_own_field_needs(system: System) -> None:
    ours = await populate(system, "pole-11e")
    theirs = await populate(system, "other-net")
    ids = {t: o["id"] for t, o in ours.by_type.items()}

    # anonymous: everything needs a member, except a network, which is nobody's
    for type_name in ("Member", "Invitation", "Hub", "Nomination"):
        answer = await node(system, ids[type_name], None)
        assert answer["data"] == {"node": None} and codes(answer) == ["UNAUTHENTICATED"]
    assert await node(system, ids["Tenant"], None) == {"data": {"node": None}}
    # a refused credential is an error, not "signed out"
    for type_name in FIELDS:
        answer = await node(system, ids[type_name], ours.net.admin.access[:-4] + "AAAA")
        assert codes(answer) == ["UNAUTHENTICATED"], type_name

    # a member who is neither a tenant admin nor a member of the hub: invitations
    # are for admins, nominations for the hub's members
    for type_name in ("Member", "Tenant", "Hub"):
        answer = await node(system, ids[type_name], ours.member.access)
        assert answer["data"]["node"]["id"] == ids[type_name], type_name
    for type_name in ("Invitation", "Nomination"):
        answer = await node(system, ids[type_name], ours.member.access)
        assert answer["data"] == {"node": None} and codes(answer) == ["FORBIDDEN"], type_name
    # ... the same as through those fields
    invitations = await system.gql("{ invitations { totalCount } }", token=ours.member.access)
    assert codes(invitations) == ["FORBIDDEN"]
    nominations = await system.gql(
        "query($hub: ID!) { hub(id: $hub) { nominations { id } } }",
        {"hub": ids["Hub"]},
        ours.member.access,
    )
    assert codes(nominations) == ["FORBIDDEN"]

    # the platform operator: every network, no member's things
    for net in (ours, theirs):
        tenant = net.by_type["Tenant"]
        answer = await node(system, tenant["id"], OPERATOR_TOKEN, "Tenant")
        assert answer == {"data": {"node": {"__typename": "Tenant", **tenant}}}
    answer = await node(system, ids["Member"], OPERATOR_TOKEN)
    assert codes(answer) == ["UNAUTHENTICATED"]


async def test_invitations_past_the_first_page_are_found(system: System) -> None:
    net = await open_network(system, "pole-11e")
    for i in range(55):  # identity answers at most 50 invitations a page
        sent = await mutate(
            system, "inviteMember", {"email": f"i{i}@pole.example"}, net.admin.access
        )
        assert sent["__typename"] == "InvitationSent", sent
    newest = await system.gql(
        "{ invitations(first: 1) { totalCount edges { node { id email } } } }",
        token=net.admin.access,
    )
    assert newest["data"]["invitations"]["totalCount"] == 56
    oldest = await system.gql(
        "query($after: String) { invitations(first: 1, after: $after) { edges { node { id email } } } }",
        {"after": base64.urlsafe_b64encode(b"o:54").decode()},
        token=net.admin.access,
    )
    [first_invited] = oldest["data"]["invitations"]["edges"]
    assert first_invited["node"]["email"] == net.admin.email
    [last_invited] = newest["data"]["invitations"]["edges"]
    missing = raw_global_id("Invitation", str(uuid.uuid4()))
    answer = await system.gql(
        "query($a: ID!, $b: ID!, $c: ID!) {"
        " a: node(id: $a) { ... on Invitation { id email } }"
        " b: node(id: $b) { ... on Invitation { id email } }"
        " c: node(id: $c) { id } }",
        {"a": first_invited["node"]["id"], "b": last_invited["node"]["id"], "c": missing},
        token=net.admin.access,
    )
    assert answer == {"data": {"a": first_invited["node"], "b": last_invited["node"], "c": None}}
