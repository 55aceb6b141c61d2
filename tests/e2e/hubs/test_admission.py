"""Hubs through the GraphQL gateway, as a client would: the tenant admin
creates a neighbourhood hub around Place Voltaire and members co-opt their
neighbours — the objection window, the area, the one-per-profession rule
lifted at a threshold and the versioned rules; an objection that leaves the
decision to the admins; a candidate nominated by e-mail who joins through
the invitation.

Time never passes by sleeping: the tests move the shared MovableClock (the
objection-window scheduler wakes on every move) and poll with `eventually`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.runtime.clock import MovableClock
from tests.e2e.conftest import (
    Network,
    System,
    assert_error,
    card_input,
    join,
    mutate,
    session_of,
)
from tests.e2e.hubs.steps import (
    ALL_STATUSES,
    HUB,
    HUBS,
    IN_11E,
    INVITATIONS,
    NEAR_VOLTAIRE,
    STORY_RULES,
    VERSAILLES,
    create_hub,
    ids,
    members_of,
    neighbours,
    nominate,
    read_hub,
    succeed,
    until_member,
    until_status,
    when,
)
from tests.support.identity import PASSWORD, mailed_tokens
from tests.support.waiting import eventually

# one system per store for the package (tests/e2e/hubs/conftest.py): each test in its own network
pytestmark = [pytest.mark.asyncio, pytest.mark.shared_system]


async def test_paris_11e_cooptation_area_non_competition_and_rules_versions(
    net: Network, system: System, clock: MovableClock
) -> None:
    admin = net.admin
    karim = await join(system, net, "karim@pole.example", "Karim Benali", "plumber", work=IN_11E)
    ines = await join(
        system, net, "ines@pole.example", "Inès Moreau", "translator", home=NEAR_VOLTAIRE
    )
    paul = await join(system, net, "paul@pole.example", "Paul Girard", "electrician", work=IN_11E)
    bruno = await join(system, net, "bruno@pole.example", "Bruno Lefort", "plumber", home=IN_11E)
    vera = await join(
        system, net, "vera@pole.example", "Véra Dumas", "baker", work=VERSAILLES, home=VERSAILLES
    )

    # the tenant admin creates the neighbourhood hub around Place Voltaire
    hub = await create_hub(system, net, rules=STORY_RULES)
    created_at = clock.now()
    assert hub["name"] == "Cercle Voltaire" and hub["kind"] == "NEIGHBOURHOOD"
    assert hub["area"] == {
        "centre": {"lat": 48.8575, "lon": 2.3795},
        "radiusKm": 1.5,
        "postcodes": [],
    }
    assert hub["rules"] == {
        "admissionMode": "COOPTATION",
        "nonCompetition": True,
        "nonCompetitionLiftAt": 4,
        "nonCompetitionLifted": False,
        "objectionWindowDays": 7,
        "maxVisits": 3,
        "facilitatorTermDays": 28,
    }
    assert (hub["memberCount"], hub["rulesVersion"], hub["nonCompetitionInForce"]) == (1, 1, True)
    assert ids(hub["coAdmins"]) == [admin.id]
    assert when(hub["createdAt"]) == created_at
    listed = await system.gql(HUBS, {"mine": False}, karim.access)
    assert listed["data"]["hubs"] == [
        {"id": hub["id"], "name": "Cercle Voltaire", "memberCount": 1}
    ]
    assert (await system.gql(HUBS, {"mine": True}, karim.access))["data"]["hubs"] == []

    # the admin co-opts Karim the plumber: a 7-day objection window opens
    n_karim = await nominate(system, admin, hub, karim, note="Plombier rue de la Roquette")
    assert n_karim["status"] == "OPEN"
    assert n_karim["candidate"] == {"id": karim.id, "displayName": "Karim Benali"}
    assert n_karim["sponsor"]["id"] == admin.id
    assert n_karim["note"] == "Plombier rue de la Roquette"
    assert when(n_karim["windowClosesAt"]) == clock.now() + timedelta(days=7)
    # silence means consent: a week and a day later, Karim is in, the admin his godparent
    clock.advance(days=8)
    karim_m = await until_member(system, hub["id"], admin, karim)
    assert karim_m["godparent"] == {"id": admin.id, "displayName": "Admin pole-11e"}
    assert (karim_m["rulesVersion"], karim_m["isCoAdmin"], karim_m["exceptionReason"]) == (
        1,
        False,
        None,
    )
    assert (await until_status(system, hub["id"], admin, n_karim["id"], "ADMITTED"))[
        "decidedAt"
    ] == karim_m["admittedAt"]
    assert ids((await system.gql(HUBS, {"mine": True}, karim.access))["data"]["hubs"]) == [
        hub["id"]
    ]

    # Karim, now a member, tries his contacts: refused at once, nothing recorded
    before = await system.event_count("hubs")
    far = await mutate(
        system, "nominateCandidate", {"hubId": hub["id"], "candidateId": vera.id}, karim.access
    )
    assert_error(far, "RuleViolation", "rule_violation", rule="area")
    assert "outside the area" in far["message"] and "lives and works" in far["message"]
    assert "1.5 km" in far["message"]  # the radius, and how far the nearer place is
    rival = await mutate(
        system, "nominateCandidate", {"hubId": hub["id"], "candidateId": bruno.id}, karim.access
    )
    assert_error(rival, "RuleViolation", "rule_violation", rule="non_competition")
    assert "'plumber'" in rival["message"] and "exception" in rival["message"]
    assert await system.event_count("hubs") == before

    # Karim co-opts his neighbour Inès; the admin co-opts Paul the electrician
    n_ines = await nominate(system, karim, hub, ines, note="Ma voisine, traductrice")
    n_paul = await nominate(system, admin, hub, paul)
    pending = (await read_hub(system, hub["id"], karim))["nominations"]
    assert {n["id"]: n["status"] for n in pending} == {n_ines["id"]: "OPEN", n_paul["id"]: "OPEN"}
    clock.advance(days=8)
    ines_m = await until_member(system, hub["id"], admin, ines)
    paul_m = await until_member(system, hub["id"], admin, paul)
    assert ines_m["godparent"] == {"id": karim.id, "displayName": "Karim Benali"}
    assert paul_m["godparent"]["id"] == admin.id

    # the fourth member lifted the one-per-profession rule, automatically
    grown = await read_hub(system, hub["id"], admin)
    assert (grown["memberCount"], grown["rulesVersion"], grown["nonCompetitionInForce"]) == (
        4,
        2,
        False,
    )
    assert grown["rules"]["nonCompetitionLifted"] is True
    founding, lift = grown["rulesHistory"]
    assert (founding["version"], founding["changedBy"], founding["reason"]) == (
        1,
        {"id": admin.id},
        "hub created",
    )
    assert founding["rules"]["nonCompetitionLifted"] is False
    assert lift["version"] == 2 and lift["changedBy"] is None
    assert "automatically" in lift["reason"] and "4 members" in lift["reason"]
    assert lift["rules"]["nonCompetitionLifted"] is True

    # a day later the admin shortens the objection window: version 3
    clock.advance(days=1)
    changed = await succeed(
        system,
        "changeHubRules",
        {
            "hubId": hub["id"],
            "rules": {"objectionWindowDays": 3},
            "reason": "On se connaît bien maintenant",
        },
        admin,
        "HubPayload",
    )
    assert changed["hub"]["rulesVersion"] == 3
    assert changed["hub"]["rules"]["objectionWindowDays"] == 3
    assert changed["hub"]["rules"]["nonCompetitionLifted"] is True  # the rest is kept

    # the second plumber is welcome now (Inès co-opts him), under version 3
    n_bruno = await nominate(system, ines, hub, bruno)
    assert n_bruno["status"] == "OPEN"
    assert when(n_bruno["windowClosesAt"]) == clock.now() + timedelta(days=3)
    clock.advance(days=4)
    bruno_m = await until_member(system, hub["id"], admin, bruno)
    assert bruno_m["godparent"]["id"] == ines.id
    assert (bruno_m["rulesVersion"], bruno_m["exceptionReason"]) == (3, None)

    # which rules applied when each was admitted
    for member, version, window in ((karim_m, 1, 7), (bruno_m, 3, 3)):
        then = await read_hub(system, hub["id"], admin, at=member["admittedAt"])
        assert [v["version"] for v in then["rulesHistory"]] == [member["rulesVersion"]]
        assert member["rulesVersion"] == version
        assert then["rulesHistory"][0]["rules"]["objectionWindowDays"] == window
    assert (await read_hub(system, hub["id"], admin, at=karim_m["admittedAt"]))["rulesHistory"][0][
        "rules"
    ]["nonCompetitionLifted"] is False
    before_the_hub = (created_at - timedelta(days=1)).isoformat()
    assert (await read_hub(system, hub["id"], admin, at=before_the_hub))["rulesHistory"] == []
    history = (await read_hub(system, hub["id"], karim))["rulesHistory"]
    assert [(v["version"], v["changedBy"]) for v in history] == [
        (1, {"id": admin.id}),
        (2, None),
        (3, {"id": admin.id}),
    ]
    assert history[2]["reason"] == "On se connaît bien maintenant"

    # any member of the network may look at the hub; its nominations are for its members
    outsider = await system.gql(HUB, {"id": hub["id"], "status": ALL_STATUSES}, vera.access)
    assert outsider["data"]["hub"]["nominations"] is None
    assert outsider["data"]["hub"]["memberCount"] == 5
    assert [e["extensions"]["code"] for e in outsider["errors"]] == ["FORBIDDEN"]
    final = await read_hub(system, hub["id"], karim, status=ALL_STATUSES)
    assert final["memberCount"] == final["members"]["totalCount"] == 5
    assert set(members_of(final)) == {admin.id, karim.id, ines.id, paul.id, bruno.id}
    assert {n["candidate"]["id"]: n["status"] for n in final["nominations"]} == {
        karim.id: "ADMITTED",
        ines.id: "ADMITTED",
        paul.id: "ADMITTED",
        bruno.id: "ADMITTED",
    }


async def test_an_objection_leaves_the_decision_to_the_admins(
    net: Network, system: System, clock: MovableClock
) -> None:
    admin = net.admin
    karim, ines, paul, lea, hugo = await neighbours(
        system, net, "karim", "ines", "paul", "lea", "hugo"
    )
    hub = await create_hub(system, net)  # co-optation, 7 days, one per profession
    for candidate in (karim, ines):
        await nominate(system, admin, hub, candidate)
    clock.advance(days=8)
    for candidate in (karim, ines):
        await until_member(system, hub["id"], admin, candidate)

    n_paul = await nominate(system, karim, hub, paul, note="Électricien du passage Turquetil")
    n_lea = await nominate(system, ines, hub, lea)
    # a second plumber: only a co-admin may ask for an exception, with the reason
    refused = await mutate(
        system,
        "nominateCandidate",
        {"hubId": hub["id"], "candidateId": hugo.id, "exceptionReason": "Chauffage seulement"},
        karim.access,
    )
    assert_error(refused, "Forbidden", "forbidden")
    n_hugo = await nominate(
        system, admin, hub, hugo, exceptionReason="Hugo ne fait que du chauffage"
    )
    assert n_hugo["exceptionReason"] == "Hugo ne fait que du chauffage"

    # Inès objects to Paul, Karim to Léa; a plain member sees only the count
    objected = await succeed(
        system,
        "raiseObjection",
        {
            "hubId": hub["id"],
            "nominationId": n_paul["id"],
            "reason": "Il n'a jamais rappelé mes clients",
        },
        ines,
        "NominationPayload",
    )
    assert objected["nomination"]["objectionCount"] == 1
    assert objected["nomination"]["objections"] == []
    await succeed(
        system,
        "raiseObjection",
        {"hubId": hub["id"], "nominationId": n_lea["id"], "reason": "Je ne la connais pas"},
        karim,
        "NominationPayload",
    )
    before = await system.event_count("hubs")
    twice = await mutate(
        system,
        "raiseObjection",
        {"hubId": hub["id"], "nominationId": n_paul["id"], "reason": "encore"},
        ines.access,
    )
    assert_error(twice, "Conflict", "conflict", field=None)
    outsider = await mutate(  # the candidate is not a member of the hub
        system,
        "raiseObjection",
        {"hubId": hub["id"], "nominationId": n_lea["id"], "reason": "concurrence"},
        paul.access,
    )
    assert_error(outsider, "Forbidden", "forbidden")
    assert await system.event_count("hubs") == before

    # the window closes: no automatic admission for the contested ones
    clock.advance(days=8)

    async def awaiting() -> list[dict[str, Any]] | None:
        pending = (await read_hub(system, hub["id"], admin))["nominations"]
        statuses = {n["id"]: n["status"] for n in pending}
        wanted = {n_paul["id"]: "AWAITING_DECISION", n_lea["id"]: "AWAITING_DECISION"}
        return pending if statuses == wanted else None

    seen_by_admin = {n["id"]: n for n in await eventually(awaiting)}
    # Hugo was not contested: admitted, his exception on record
    hugo_m = await until_member(system, hub["id"], admin, hugo)
    assert hugo_m["exceptionReason"] == "Hugo ne fait que du chauffage"
    assert hugo_m["godparent"]["id"] == admin.id
    contested = seen_by_admin[n_paul["id"]]
    assert contested["objectionCount"] == 1
    assert contested["objections"] == [
        {
            "reason": "Il n'a jamais rappelé mes clients",
            "objector": {"id": ines.id, "displayName": "Inès Moreau"},
        }
    ]
    assert contested["note"] == "Électricien du passage Turquetil"
    seen_by_member = (await read_hub(system, hub["id"], karim))["nominations"]
    assert [(n["objectionCount"], n["objections"]) for n in seen_by_member] == [(1, []), (1, [])]
    assert paul.id not in members_of(await read_hub(system, hub["id"], admin))

    # too late to object; members do not decide
    before = await system.event_count("hubs")
    late = await mutate(
        system,
        "raiseObjection",
        {"hubId": hub["id"], "nominationId": n_paul["id"], "reason": "moi aussi"},
        admin.access,
    )
    assert_error(late, "RuleViolation", "rule_violation", rule="objection_window")
    for name, input in (
        ("admitCandidate", {"hubId": hub["id"], "nominationId": n_paul["id"]}),
        ("rejectCandidate", {"hubId": hub["id"], "nominationId": n_lea["id"], "reason": "non"}),
    ):
        assert_error(await mutate(system, name, input, karim.access), "Forbidden", "forbidden")
    assert await system.event_count("hubs") == before

    # the admin admits Paul despite the objection, and turns Léa down
    admitted = await succeed(
        system,
        "admitCandidate",
        {"hubId": hub["id"], "nominationId": n_paul["id"]},
        admin,
        "NominationPayload",
    )
    assert admitted["nomination"]["status"] == "ADMITTED"
    assert when(admitted["nomination"]["decidedAt"]) == clock.now()
    paul_m = members_of(await read_hub(system, hub["id"], admin))[paul.id]
    assert paul_m["godparent"] == {"id": karim.id, "displayName": "Karim Benali"}
    rejected = await succeed(
        system,
        "rejectCandidate",
        {"hubId": hub["id"], "nominationId": n_lea["id"], "reason": "Pas pour cette fois"},
        admin,
        "NominationPayload",
    )
    assert rejected["nomination"]["status"] == "REJECTED"
    assert rejected["nomination"]["decisionReason"] == "Pas pour cette fois"
    assert rejected["nomination"]["rule"] is None

    # decided once and for all
    before = await system.event_count("hubs")
    for name, input in (
        ("admitCandidate", {"hubId": hub["id"], "nominationId": n_lea["id"]}),
        ("rejectCandidate", {"hubId": hub["id"], "nominationId": n_paul["id"], "reason": "non"}),
    ):
        assert_error(await mutate(system, name, input, admin.access), "Conflict", "conflict")
    assert await system.event_count("hubs") == before
    final = await read_hub(system, hub["id"], admin, status=ALL_STATUSES)
    assert lea.id not in members_of(final) and final["memberCount"] == 5
    assert (await read_hub(system, hub["id"], admin))["nominations"] == []  # nothing pending


async def test_a_candidate_nominated_by_email_joins_through_the_invitation(
    net: Network, system: System, clock: MovableClock
) -> None:
    admin = net.admin
    hub = await create_hub(system, net)
    n_sofia = (
        await succeed(
            system,
            "nominateCandidate",
            {
                "hubId": hub["id"],
                "email": "boulangerie@pole.example",
                "note": "La boulangerie de la rue Sedaine",
            },
            admin,
            "NominationPayload",
        )
    )["nomination"]
    assert n_sofia["status"] == "INVITED"
    assert n_sofia["candidate"] is None and n_sofia["windowClosesAt"] is None
    n_far = (
        await succeed(
            system,
            "nominateCandidate",
            {"hubId": hub["id"], "email": "loin@pole.example"},
            admin,
            "NominationPayload",
        )
    )["nomination"]
    # identity mailed the invitations, on behalf of the sponsor
    invitations = await system.gql(INVITATIONS, token=admin.access)
    by_email = {e["node"]["email"]: e["node"] for e in invitations["data"]["invitations"]["edges"]}
    assert by_email["boulangerie@pole.example"]["invitedBy"] == {"id": admin.id}
    assert by_email["boulangerie@pole.example"]["status"] == "pending"

    # nothing to object to nor to decide before the candidate has joined
    before = await system.event_count("hubs")
    early = await mutate(
        system,
        "raiseObjection",
        {"hubId": hub["id"], "nominationId": n_sofia["id"], "reason": "trop tôt"},
        admin.access,
    )
    assert_error(early, "RuleViolation", "rule_violation", rule="objection_window")
    undecidable = await mutate(
        system, "admitCandidate", {"hubId": hub["id"], "nominationId": n_sofia["id"]}, admin.access
    )
    assert_error(undecidable, "Conflict", "conflict", field=None)
    # an address that already belongs to a member is nominated by name instead
    taken = await mutate(
        system, "nominateCandidate", {"hubId": hub["id"], "email": admin.email}, admin.access
    )
    assert_error(taken, "Conflict", "conflict", field="email")
    assert await system.event_count("hubs") == before

    # the candidate accepts with the token from the mail and fills the card
    tokens = mailed_tokens(system.settings.mail_dir)
    accepted = await mutate(
        system,
        "acceptInvitation",
        {
            "token": tokens["boulangerie@pole.example"],
            "password": PASSWORD,
            "card": card_input("Sofia Haddad", "baker", work=IN_11E),
        },
    )
    sofia = session_of(accepted, "boulangerie@pole.example")
    opened = await until_status(system, hub["id"], admin, n_sofia["id"], "OPEN")
    assert opened["candidate"] == {"id": sofia.id, "displayName": "Sofia Haddad"}
    assert opened["sponsor"]["id"] == admin.id
    assert when(opened["windowClosesAt"]) == clock.now() + timedelta(days=7)

    # the other one lives and works in Versailles: refused when they join, with the reason
    far = session_of(
        await mutate(
            system,
            "acceptInvitation",
            {
                "token": tokens["loin@pole.example"],
                "password": PASSWORD,
                "card": card_input("Loïc Far", "florist", work=VERSAILLES, home=VERSAILLES),
            },
        ),
        "loin@pole.example",
    )
    refused = await until_status(system, hub["id"], admin, n_far["id"], "REJECTED")
    assert refused["rule"] == "area" and "outside the area" in refused["decisionReason"]
    assert refused["candidate"]["id"] == far.id

    clock.advance(days=8)
    sofia_m = await until_member(system, hub["id"], admin, sofia)
    assert sofia_m["godparent"] == {"id": admin.id, "displayName": "Admin pole-11e"}
    hub_now = await read_hub(system, hub["id"], sofia)
    assert far.id not in members_of(hub_now) and hub_now["memberCount"] == 2


async def test_rules_at_the_admission_that_lifted_the_rule(net: Network, system: System) -> None:
    karim = await join(system, net, "karim@pole.example", "Karim Benali", "plumber", work=IN_11E)
    hub = await create_hub(system, net, rules={"nonCompetitionLiftAt": 2})
    n = await nominate(system, net.admin, hub, karim)
    await succeed(
        system,
        "admitCandidate",
        {"hubId": hub["id"], "nominationId": n["id"]},
        net.admin,
        "NominationPayload",
    )
    grown = await read_hub(system, hub["id"], net.admin)
    assert grown["rulesVersion"] == 2 and grown["nonCompetitionInForce"] is False
    karim_m = members_of(grown)[karim.id]
    assert karim_m["rulesVersion"] == 1  # admitted while the rule held
    then = await read_hub(system, hub["id"], net.admin, at=karim_m["admittedAt"])
    assert [v["version"] for v in then["rulesHistory"]] == [1]
