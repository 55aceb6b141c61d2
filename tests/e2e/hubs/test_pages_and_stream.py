"""What hubs give to readers: a hub page asks identity once for every profile,
and the hub events reach the tenant's stream (GraphQL subscription and
JetStream) without personal data, under their versioned types."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from services.hubs import contract as hc
from services.identity import contract as idc
from services.runtime.bus import Bus
from services.runtime.clock import MovableClock
from services.runtime.messages import envelope_decoder
from services.runtime.stream import cloud_event_decoder
from tests.e2e.conftest import (
    Network,
    System,
    join,
    subscription_results,
)
from tests.e2e.hubs.steps import (
    IN_11E,
    MEMBERS_PAGE,
    STREAM,
    create_hub,
    neighbours,
    nominate,
    published_history,
    succeed,
    until_member,
    until_status,
)

# one system per store for the package (tests/e2e/hubs/conftest.py): each test in its own network
pytestmark = [pytest.mark.asyncio, pytest.mark.shared_system]


async def test_a_hub_page_asks_identity_once_for_every_profile(
    net: Network, system: System
) -> None:
    admin = net.admin
    activities = ["plumber", "electrician", "baker", "florist", "translator", "lawyer", "notary"]
    people = [
        await join(system, net, f"m{i}@pole.example", f"Membre {i}", activity, work=IN_11E)
        for i, activity in enumerate(activities)
    ]
    hub = await create_hub(system, net, rules={"admissionMode": "OPEN"})
    # an open hub: the admin's candidates are in at once (with a godparent) ...
    for person in people[:4]:
        assert (await nominate(system, admin, hub, person))["status"] == "ADMITTED"
    # ... and the others join by themselves
    for person in people[4:]:
        await succeed(system, "joinHub", {"hubId": hub["id"]}, person, "HubMembershipPayload")

    bus = Bus(system.settings.nats_url, "test-probe")
    await bus.connect(wait=10)
    try:
        # a plain subscription (no queue group) sees every request
        probe = await bus.client.subscribe(idc.GetMembers.subject())
        await bus.client.flush()
        answer = await system.gql(MEMBERS_PAGE, {"id": hub["id"]}, people[0].access)
        await bus.client.flush()  # what identity was asked has reached us by now
        requests = [await probe.next_msg(timeout=1) for _ in range(probe.pending_msgs)]
        await probe.unsubscribe()
    finally:
        await bus.close()

    assert "errors" not in answer, answer
    edges = answer["data"]["hub"]["members"]["edges"]
    assert answer["data"]["hub"]["members"]["totalCount"] == len(edges) == 8
    shown = {e["node"]["member"]["displayName"]: e["node"] for e in edges}
    assert set(shown) == {"Admin pole-11e", *(f"Membre {i}" for i in range(7))}
    assert all(node["member"]["activityLabel"] for node in shown.values())
    assert shown["Membre 0"]["godparent"] == {"id": admin.id, "displayName": "Admin pole-11e"}
    assert shown["Membre 5"]["godparent"] is None
    # one GetMembers for the whole page (members and godparents), not one per member
    assert len(requests) == 1, [r.data for r in requests]
    envelope = envelope_decoder.decode(requests[0].data)
    asked = msgspec.msgpack.decode(envelope.body, type=idc.GetMembers)
    assert set(asked.member_ids) == {admin.member_id, *(p.member_id for p in people)}


async def test_hub_events_reach_the_tenant_stream_without_personal_data(
    net: Network, system: System, clock: MovableClock
) -> None:
    admin = net.admin
    karim, ines, paul = await neighbours(system, net, "karim", "ines", "paul")
    lea = await join(system, net, "lea@pole.example", "Léa Martin", "plumber", work=IN_11E)
    secrets = {
        "note": "Karim répare les chauffe-eau de tout le quartier",
        "objection": "Paul a laissé un chantier en plan chez moi",
        "rejection": "Le cercle préfère attendre un peu",
        "exception": "Léa ne fait que de la pâtisserie fine",
        "removal": "Absente depuis six mois sans nouvelles",
        "rules": "Nous nous connaissons bien désormais",
    }
    hub = await create_hub(system, net)
    H = hub["id"]
    n_karim = await nominate(system, admin, hub, karim, note=secrets["note"])
    await nominate(system, admin, hub, ines)
    clock.advance(days=8)
    for member in (karim, ines):
        await until_member(system, H, admin, member)
    n_paul = await nominate(system, karim, hub, paul)
    await succeed(
        system,
        "raiseObjection",
        {"hubId": H, "nominationId": n_paul["id"], "reason": secrets["objection"]},
        ines,
        "NominationPayload",
    )
    clock.advance(days=8)
    await until_status(system, H, admin, n_paul["id"], "AWAITING_DECISION")
    await succeed(
        system,
        "rejectCandidate",
        {"hubId": H, "nominationId": n_paul["id"], "reason": secrets["rejection"]},
        admin,
        "NominationPayload",
    )
    # a second plumber, co-opted by the admin with an exception, admitted at once
    n_lea = await nominate(system, admin, hub, lea, exceptionReason=secrets["exception"])
    await succeed(
        system,
        "admitCandidate",
        {"hubId": H, "nominationId": n_lea["id"]},
        admin,
        "NominationPayload",
    )
    await succeed(
        system,
        "changeHubRules",
        {"hubId": H, "rules": {"objectionWindowDays": 5}, "reason": secrets["rules"]},
        admin,
        "HubPayload",
    )
    await succeed(system, "volunteerAsFacilitator", {"hubId": H}, karim, "HubPayload")
    await succeed(system, "handOverFacilitation", {"hubId": H}, admin, "HubPayload")
    await succeed(
        system,
        "removeHubMember",
        {"hubId": H, "memberId": ines.id, "reason": secrets["removal"]},
        admin,
        "HubMemberRemoved",
    )
    await succeed(
        system,
        "nominateCandidate",
        {"hubId": H, "email": "invitee@pole.example", "note": secrets["note"]},
        karim,
        "NominationPayload",
    )

    raw = await published_history(system, net.tenant_id)

    # a tenant admin reads the same history through the GraphQL subscription
    results = await subscription_results(
        system, STREAM, {"limit": len(raw)}, admin.access, len(raw)
    )
    stream = [r["tenantEvents"] for r in results]
    assert [e["id"] for e in stream] == [cloud_event_decoder.decode(e).id for e in raw]
    assert all(e["tenant"] == net.tenant_id for e in stream)
    hubs = [e for e in stream if e["type"].startswith("quartier.hubs.")]
    names = [e["type"].split(".")[2] for e in hubs]
    for e, name in zip(hubs, names, strict=True):
        assert e["subject"] == hub["hubId"]  # the CloudEvent's subject: the hub
        assert e["data"]["hub_id"] == hub["hubId"] and e["data"]["tenant_id"] == net.tenant_id
        assert e["type"] == f"quartier.hubs.{name}.v1", e["type"]
    assert names == [
        "HubCreated",
        "CandidateNominated",
        "CandidateNominated",
        "ObjectionWindowClosed",
        "MemberAdmitted",
        "ObjectionWindowClosed",
        "MemberAdmitted",
        "CandidateNominated",
        "ObjectionRaised",
        "ObjectionWindowClosed",
        "AdmissionRejected",
        "CandidateNominated",
        "MemberAdmitted",
        "HubRulesChanged",
        "FacilitatorRosterChanged",
        "FacilitatorChanged",
        "MemberRemoved",
        "CandidateNominated",
    ]

    def data(name: str) -> list[dict[str, Any]]:
        return [e["data"] for e, n in zip(hubs, names, strict=True) if n == name]

    created = data("HubCreated")[0]
    rules = created.pop("rules")  # the rules it started with (version 1)
    assert created == {
        "tenant_id": net.tenant_id,
        "hub_id": hub["hubId"],
        "name": "Cercle Voltaire",
        "kind": "neighbourhood",
        "founder_id": admin.member_id,
    }
    assert set(rules) == set(hc.Rules.__struct_fields__) and rules["max_visits"] == 3
    admitted = {d["member_id"]: d for d in data("MemberAdmitted")}
    assert admitted[karim.member_id]["sponsor_id"] == admin.member_id
    assert admitted[karim.member_id]["nomination_id"] == n_karim["nominationId"]
    assert admitted[karim.member_id]["decided_by"] is None  # silence meant consent
    assert admitted[karim.member_id]["with_exception"] is False
    assert admitted[lea.member_id]["sponsor_id"] == admin.member_id
    assert admitted[lea.member_id]["decided_by"] == admin.member_id
    assert admitted[lea.member_id]["with_exception"] is True
    objection = data("ObjectionRaised")[0]
    assert objection["nomination_id"] == n_paul["nominationId"]
    assert "objector_id" not in objection  # who objected stays with the co-admins
    closed = {d["nomination_id"]: d for d in data("ObjectionWindowClosed")}
    assert closed[n_paul["nominationId"]]["outcome"] == "awaiting_decision"
    assert closed[n_paul["nominationId"]]["objection_count"] == 1
    rejected = data("AdmissionRejected")[0]
    assert (rejected["candidate_id"], rejected["decided_by"], rejected["rule"]) == (
        paul.member_id,
        admin.member_id,
        None,
    )
    changed = data("HubRulesChanged")[0]
    assert (changed["version"], changed["changed_by"], changed["automatic"]) == (
        2,
        admin.member_id,
        False,
    )
    assert changed["rules"]["objection_window_days"] == 5
    assert data("FacilitatorChanged")[0]["facilitator_id"] == karim.member_id
    removed = data("MemberRemoved")[0]
    assert (removed["member_id"], removed["removed_by"]) == (ines.member_id, admin.member_id)
    by_email = data("CandidateNominated")[-1]
    assert by_email["candidate_id"] is None and by_email["invitation_id"]
    assert by_email["sponsor_id"] == karim.member_id

    # no personal data: no names, addresses, nor any free text of the hub
    published_hubs = json.dumps([e["data"] for e in hubs], ensure_ascii=False)
    for personal in (
        *(s.email for s in (admin, karim, ines, paul, lea)),
        "invitee@pole.example",
        "Admin pole-11e",
        "Karim Benali",
        "Inès Moreau",
        "Paul Girard",
        "Léa Martin",
    ):
        assert personal not in published_hubs, personal
    everything = json.dumps([e["data"] for e in stream], ensure_ascii=False)
    for text in secrets.values():
        assert text not in everything, text
    for d in (e["data"] for e in hubs):
        assert not {"note", "reason", "email", "exception_reason", "display_name"} & set(d), d


async def test_a_rules_change_is_published_under_its_versioned_type(
    net: Network, system: System
) -> None:
    hub = await create_hub(system, net)
    await succeed(
        system,
        "changeHubRules",
        {"hubId": hub["id"], "rules": {"maxVisits": 5}},
        net.admin,
        "HubPayload",
    )
    events = [cloud_event_decoder.decode(e) for e in await published_history(system, net.tenant_id)]
    changed = [e for e in events if e.source == "quartier/hubs"][-1]  # the last one
    assert msgspec.json.decode(changed.data)["version"] == 2
    assert changed.type == "quartier.hubs.HubRulesChanged.v1"
