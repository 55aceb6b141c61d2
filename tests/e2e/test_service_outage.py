"""A service down, as a client sees it: with identity stopped, a hubs
mutation that does not need identity still answers its payload, saying the
command succeeded, with the profiles it decorates itself with left null and
an UNAVAILABLE error for each (partial data, not a null payload); a command
that needs identity fails as a whole, with UNAVAILABLE."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import (
    Network,
    Session,
    System,
    join,
    mutate,
    mutation_document,
    open_network,
)

pytestmark = pytest.mark.asyncio

AREA = {"centre": {"lat": 48.8575, "lon": 2.3795}, "radiusKm": 1.5}
IN_11E = {"lat": 48.8560, "lon": 2.3750, "postcode": "75011"}
# the fields of Hub that show members (their profiles come from identity)
MEMBER_FIELDS = ("coAdmins", "facilitator", "facilitatorRoster")


async def hub_with_a_candidate(system: System) -> tuple[Network, Session, dict[str, Any]]:
    net = await open_network(system, "pole-11e")
    karim = await join(system, net, "karim@pole.example", "Karim Benali", work=IN_11E)
    created = await mutate(
        system,
        "createHub",
        {"name": "Cercle Voltaire", "kind": "NEIGHBOURHOOD", "area": AREA},
        net.admin.access,
    )
    hub = created["hub"]
    nominated = await mutate(
        system, "nominateCandidate", {"hubId": hub["id"], "candidateId": karim.id}, net.admin.access
    )
    assert nominated["__typename"] == "NominationPayload", nominated
    return net, karim, hub


def unavailable_paths(answer: dict[str, Any]) -> set[tuple[str | int, ...]]:
    """The paths of the errors, all of them UNAVAILABLE."""
    errors = answer.get("errors") or []
    assert {e["extensions"]["code"] for e in errors} == {"UNAVAILABLE"}, errors
    return {tuple(e["path"]) for e in errors}


async def test_a_payload_says_the_command_succeeded_while_identity_is_down(
    system: System,
) -> None:
    net, _, hub = await hub_with_a_candidate(system)
    H = hub["id"]
    await system.identity.stop()

    for name, input in [
        ("volunteerAsFacilitator", {"hubId": H}),
        ("withdrawFromFacilitatorRoster", {"hubId": H}),
        ("changeHubRules", {"hubId": H, "rules": {"objectionWindowDays": 10}}),
        ("volunteerAsFacilitator", {"hubId": H}),
    ]:
        before = await system.event_count("hubs")
        answer = await system.gql(mutation_document(name), {"input": input}, net.admin.access)
        payload = answer["data"][name]
        assert payload["__typename"] == "HubPayload", answer
        assert payload["hub"]["id"] == H and payload["hub"]["name"] == "Cercle Voltaire"
        assert await system.event_count("hubs") == before + 1  # it was done
        # what needed identity is null, each with its error; what had nobody
        # to show asked identity nothing
        paths = unavailable_paths(answer)
        assert (name, "hub", "coAdmins") in paths
        assert paths <= {(name, "hub", field) for field in MEMBER_FIELDS}
        for field in MEMBER_FIELDS:
            value = payload["hub"][field]
            assert value is None if (name, "hub", field) in paths else value in (None, [])
        if name == "volunteerAsFacilitator":  # the volunteer is shown somewhere
            assert {(name, "hub", "facilitator"), (name, "hub", "facilitatorRoster")} & paths
    assert payload["hub"]["rules"]["objectionWindowDays"] == 10


async def test_queries_answer_what_they_can_while_identity_is_down(system: System) -> None:
    net, _, hub = await hub_with_a_candidate(system)
    await system.identity.stop()
    answer = await system.gql(
        """query($id: ID!) {
          hubs { id name coAdmins { displayName } facilitatorRoster { id } }
          hub(id: $id) {
            memberCount
            members { totalCount edges { node { isCoAdmin member { displayName } } } }
            nominations { status note candidate { displayName } sponsor { displayName } }
          }
        }""",
        {"id": hub["id"]},
        net.admin.access,
    )
    data = answer["data"]
    assert data["hubs"] == [
        {"id": hub["id"], "name": "Cercle Voltaire", "coAdmins": None, "facilitatorRoster": []}
    ]
    assert data["hub"]["memberCount"] == 1
    assert data["hub"]["members"]["edges"] == [{"node": {"isCoAdmin": True, "member": None}}]
    [nomination] = data["hub"]["nominations"]
    assert nomination == {"status": "OPEN", "note": "", "candidate": None, "sponsor": None}
    assert unavailable_paths(answer) == {
        ("hubs", 0, "coAdmins"),
        ("hub", "members", "edges", 0, "node", "member"),
        ("hub", "nominations", 0, "candidate"),
        ("hub", "nominations", 0, "sponsor"),
    }


async def test_a_command_that_needs_identity_fails_as_a_whole(system: System) -> None:
    net, karim, hub = await hub_with_a_candidate(system)
    await system.identity.stop()
    before = await system.event_count("hubs")
    for name, input, session in [
        # the candidate's eligibility is identity's to answer
        ("nominateCandidate", {"hubId": hub["id"], "email": "new@pole.example"}, net.admin),
        ("updateProfileCard", {"offers": "Chauffe-eau"}, karim),
    ]:
        answer = await system.gql(mutation_document(name), {"input": input}, session.access)
        assert answer["data"] is None, answer
        assert [e["extensions"]["code"] for e in answer["errors"]] == ["UNAVAILABLE"]
        assert answer["errors"][0]["path"] == [name]
    assert await system.event_count("hubs") == before
