"""Given state and a client's steps for the hubs end-to-end tests
(tests/e2e/hubs/): the places of the Paris 11e network, the GraphQL
documents a client sends, the usual neighbours who join the network, and
the steps (create a hub, nominate, wait for an admission or a status)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from services.runtime.bus import Bus
from services.runtime.stream import read_tenant_events
from tests.e2e.conftest import (
    Network,
    Session,
    System,
    join,
    mutate,
)
from tests.support.waiting import eventually

# -- places --------------------------------------------------------------------

VOLTAIRE = {"centre": {"lat": 48.8575, "lon": 2.3795}, "radiusKm": 1.5}
IN_11E = {"lat": 48.8560, "lon": 2.3750, "postcode": "75011"}  # rue de la Roquette
NEAR_VOLTAIRE = {"lat": 48.8590, "lon": 2.3810, "postcode": "75011"}
VERSAILLES = {"lat": 48.8049, "lon": 2.1204, "postcode": "78000"}
STORY_RULES = {
    "admissionMode": "COOPTATION",
    "nonCompetition": True,
    "nonCompetitionLiftAt": 4,
    "objectionWindowDays": 7,
}
ALL_STATUSES = ["INVITED", "OPEN", "AWAITING_DECISION", "ADMITTED", "REJECTED"]

# -- GraphQL documents ---------------------------------------------------------

HUB = """
query($id: ID!, $status: [NominationStatus!], $at: DateTime) {
  hub(id: $id) {
    id hubId name kind memberCount rulesVersion nonCompetitionInForce
    facilitatorTermEndsAt createdAt
    area { centre { lat lon } radiusKm postcodes }
    rules { admissionMode nonCompetition nonCompetitionLiftAt nonCompetitionLifted
            objectionWindowDays maxVisits facilitatorTermDays }
    coAdmins { id } facilitator { id } facilitatorRoster { id }
    members(first: 50) {
      totalCount
      edges { node { admittedAt rulesVersion exceptionReason isCoAdmin
                     member { id displayName } godparent { id displayName } } }
    }
    nominations(status: $status) {
      id nominationId hubId status note windowClosesAt objectionCount
      objections { reason objector { id displayName } }
      exceptionReason decidedAt decisionReason rule
      candidate { id displayName } sponsor { id displayName }
    }
    rulesHistory(at: $at) {
      version reason changedAt changedBy { id }
      rules { nonCompetition nonCompetitionLifted objectionWindowDays }
    }
  }
}
"""
HUBS = "query($mine: Boolean!) { hubs(mine: $mine) { id name memberCount } }"
MEMBERS_PAGE = """
query($id: ID!) {
  hub(id: $id) {
    members(first: 50) {
      totalCount
      edges { node { member { id displayName activityLabel } godparent { id displayName } } }
    }
  }
}
"""
INVITATIONS = "{ invitations(first: 50) { edges { node { email status invitedBy { id } } } } }"
STREAM = (
    "subscription($limit: Int) { tenantEvents(fromStart: true, limit: $limit)"
    " { id type subject tenant sequence data } }"
)


def global_id(type_name: str, raw: str) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{raw}".encode()).decode()


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def ids(members: list[dict[str, Any]]) -> list[str]:
    return [m["id"] for m in members]


def members_of(hub: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The hub's members by Member global id."""
    return {e["node"]["member"]["id"]: e["node"] for e in hub["members"]["edges"]}


NEIGHBOURS = {  # who joins the network in most stories: e-mail, name, activity
    "karim": ("karim@pole.example", "Karim Benali", "plumber"),
    "ines": ("ines@pole.example", "Inès Moreau", "translator"),
    "paul": ("paul@pole.example", "Paul Girard", "electrician"),
    "lea": ("lea@pole.example", "Léa Martin", "baker"),
    "hugo": ("hugo@pole.example", "Hugo Petit", "plumber"),
}


async def neighbours(system: System, net: Network, *names: str) -> list[Session]:
    """The named `NEIGHBOURS` join `net`, in order, each working in the 11e
    (`IN_11E`); their sessions in the same order."""
    return [
        await join(system, net, *NEIGHBOURS[name], work=IN_11E)  # in order: one at a time
        for name in names
    ]


# -- a client's steps ----------------------------------------------------------


async def read_hub(
    system: System,
    hub_id: str,
    viewer: Session,
    *,
    status: list[str] | None = None,
    at: str | None = None,
) -> dict[str, Any]:
    answer = await system.gql(HUB, {"id": hub_id, "status": status, "at": at}, viewer.access)
    assert "errors" not in answer, answer
    assert answer["data"]["hub"] is not None, answer
    return answer["data"]["hub"]


async def create_hub(
    system: System,
    net: Network,
    name: str = "Cercle Voltaire",
    kind: str = "NEIGHBOURHOOD",
    area: dict[str, Any] | None = None,
    rules: dict[str, Any] | None = None,
) -> dict[str, Any]:
    input: dict[str, Any] = {"name": name, "kind": kind, "area": area or VOLTAIRE}
    if rules is not None:
        input["rules"] = rules
    created = await mutate(system, "createHub", input, net.admin.access)
    assert created["__typename"] == "HubPayload", created
    return created["hub"]


async def nominate(
    system: System, sponsor: Session, hub: dict[str, Any], candidate: Session, **extra: Any
) -> dict[str, Any]:
    result = await mutate(
        system,
        "nominateCandidate",
        {"hubId": hub["id"], "candidateId": candidate.id, **extra},
        sponsor.access,
    )
    assert result["__typename"] == "NominationPayload", result
    return result["nomination"]


async def succeed(
    system: System, name: str, input: dict[str, Any], session: Session, typename: str
) -> dict[str, Any]:
    result = await mutate(system, name, input, session.access)
    assert result["__typename"] == typename, (name, result)
    return result


async def until_member(
    system: System, hub_id: str, viewer: Session, member: Session
) -> dict[str, Any]:
    """Poll the hub until `member` is one of its members (the scheduler and
    the reactions work in the background)."""

    async def admitted() -> dict[str, Any] | None:
        return members_of(await read_hub(system, hub_id, viewer)).get(member.id)

    return await eventually(admitted)


async def until_status(
    system: System, hub_id: str, viewer: Session, nomination_id: str, status: str
) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        hub = await read_hub(system, hub_id, viewer, status=ALL_STATUSES)
        found = next(n for n in hub["nominations"] if n["id"] == nomination_id)
        return found if found["status"] == status else None

    return await eventually(reached)


def mail_count(system: System) -> int:
    return len(list(system.settings.mail_dir.glob("*.eml")))


async def published_history(system: System, tenant_id: str) -> list[bytes]:
    """The tenant's events (CloudEvents JSON) from JetStream, once the hubs
    relay has published every event of the hubs store (it works in the
    background; on a shared system the store holds other tenants' too)."""
    newest = await system.event_count("hubs")
    relay = system.hosts["hubs"].relays[0]
    await eventually(lambda: (relay.published_up_to or 0) >= newest)  # acknowledged: stored
    bus = Bus(system.settings.nats_url, "test-stream-reader")
    await bus.connect(wait=10)
    try:
        return [
            e
            async for e in read_tenant_events(
                bus.jetstream(), tenant_id, from_start=True, follow=False
            )
        ]
    finally:
        await bus.close()
