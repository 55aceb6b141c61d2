"""Every hubs mutation's refusals through the GraphQL gateway: strangers,
plain members and another network's people are refused; invalid input is
refused with the field named; each gets its typed error in the result union
and changes nothing (events, mails, what the hub reads). A refusal's message
is in the language the request asks for (`Accept-Language`), its code,
field and rule the same in every language."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import (
    Network,
    Session,
    System,
    assert_error,
    join,
    mutate,
    open_network,
)
from tests.e2e.hubs.steps import (
    ALL_STATUSES,
    HUB,
    HUBS,
    IN_11E,
    VERSAILLES,
    VOLTAIRE,
    create_hub,
    global_id,
    mail_count,
    neighbours,
    nominate,
    read_hub,
    succeed,
)
from tests.support.env import OPERATOR_TOKEN

# one system per store for the package (tests/e2e/hubs/conftest.py): each test in its own network
pytestmark = [pytest.mark.asyncio, pytest.mark.shared_system]


async def test_every_hubs_mutation_refuses_strangers_plain_members_and_other_networks(
    net: Network,
    system: System,
) -> None:
    """Missing or non-member credentials, another network's hub (answered like a
    random id), a member who is not an admin: refused, and nothing changes.
    Then the same inputs from the right people go through."""
    other = await open_network(system, "other-net")
    admin = net.admin
    karim, ines, paul, lea = await neighbours(system, net, "karim", "ines", "paul", "lea")
    hub = await create_hub(system, net)
    open_hub = await create_hub(system, net, name="Afterwork", rules={"admissionMode": "OPEN"})
    theirs = await create_hub(system, other, name="Leur cercle")
    H = hub["id"]
    n_karim = await nominate(system, admin, hub, karim)
    await succeed(
        system,
        "admitCandidate",
        {"hubId": H, "nominationId": n_karim["id"]},
        admin,
        "NominationPayload",
    )
    n_paul = await nominate(system, admin, hub, paul)
    n_lea = await nominate(system, admin, hub, lea)
    await succeed(system, "volunteerAsFacilitator", {"hubId": H}, karim, "HubPayload")

    # each mutation: who may, with a valid input (in an order that works)
    valid: list[tuple[str, Session, dict[str, Any], str]] = [
        (
            "createHub",
            admin,
            {"name": "Club des artisans", "kind": "TRADE_CLUB", "area": {"postcodes": ["75011"]}},
            "HubPayload",
        ),
        ("changeHubRules", admin, {"hubId": H, "rules": {"maxVisits": 5}}, "HubPayload"),
        ("nominateCandidate", karim, {"hubId": H, "candidateId": ines.id}, "NominationPayload"),
        ("joinHub", ines, {"hubId": open_hub["id"]}, "HubMembershipPayload"),
        (
            "raiseObjection",
            karim,
            {"hubId": H, "nominationId": n_paul["id"], "reason": "Je doute"},
            "NominationPayload",
        ),
        ("admitCandidate", admin, {"hubId": H, "nominationId": n_paul["id"]}, "NominationPayload"),
        (
            "rejectCandidate",
            admin,
            {"hubId": H, "nominationId": n_lea["id"], "reason": "Pas maintenant"},
            "NominationPayload",
        ),
        ("addHubCoAdmin", admin, {"hubId": H, "memberId": karim.id}, "HubPayload"),
        ("removeHubCoAdmin", admin, {"hubId": H, "memberId": karim.id}, "HubPayload"),
        ("volunteerAsFacilitator", admin, {"hubId": H}, "HubPayload"),
        (
            "swapFacilitatorTurns",
            karim,
            {"hubId": H, "firstMemberId": karim.id, "secondMemberId": admin.id},
            "HubPayload",
        ),
        ("handOverFacilitation", admin, {"hubId": H}, "HubPayload"),
        ("withdrawFromFacilitatorRoster", karim, {"hubId": H}, "HubPayload"),
        (
            "removeHubMember",
            admin,
            {"hubId": H, "memberId": paul.id, "reason": "Parti"},
            "HubMemberRemoved",
        ),
        ("leaveHub", karim, {"hubId": H}, "LeftHub"),
    ]
    assert len(valid) == 15  # every hubs mutation of gateway/hubs.py
    hubs_before = await system.event_count("hubs")
    identity_before = await system.event_count("identity")
    ours = await read_hub(system, H, admin, status=ALL_STATUSES)
    open_before = await read_hub(system, open_hub["id"], admin)
    their_hub = await read_hub(system, theirs["id"], other.admin, status=ALL_STATUSES)
    listed = await system.gql(HUBS, {"mine": False}, admin.access)

    random_hub = global_id("Hub", str(uuid.uuid4()))
    for name, _, input, _ in valid:
        # no credential, the operator's (no member), a garbage token
        for token in (None, OPERATOR_TOKEN):
            result = await mutate(system, name, input, token)
            assert_error(result, "Unauthenticated", "unauthenticated")
        garbage = await mutate(system, name, input, headers={"Authorization": "Bearer not.a.jwt"})
        assert_error(garbage, "Unauthenticated", "unauthenticated")
        if "hubId" not in input:
            continue
        # another network's hub is answered exactly like a hub that does not exist
        missing = await mutate(system, name, {**input, "hubId": random_hub}, other.admin.access)
        assert_error(missing, "NotFound", "not_found")
        assert await mutate(system, name, input, other.admin.access) == missing, name
        mine_elsewhere = await mutate(system, name, {**input, "hubId": theirs["id"]}, admin.access)
        assert mine_elsewhere == missing, name
        assert (
            await mutate(system, name, {**input, "hubId": random_hub}, admin.access) == missing
        ), name

    # a member of the network who is not a member of the hub
    for name, input in [
        ("nominateCandidate", {"hubId": H, "candidateId": lea.id}),
        ("raiseObjection", {"hubId": H, "nominationId": n_paul["id"], "reason": "non"}),
        ("volunteerAsFacilitator", {"hubId": H}),
        ("handOverFacilitation", {"hubId": H}),
        (
            "swapFacilitatorTurns",
            {"hubId": H, "firstMemberId": karim.id, "secondMemberId": karim.id},
        ),
    ]:
        assert_error(await mutate(system, name, input, ines.access), "Forbidden", "forbidden")
    # a member of the hub, not a co-admin: no decisions, no rules, no roles
    for name, input in [
        ("createHub", valid[0][2]),
        ("changeHubRules", {"hubId": H, "rules": {"maxVisits": 5}}),
        ("admitCandidate", {"hubId": H, "nominationId": n_paul["id"]}),
        ("rejectCandidate", {"hubId": H, "nominationId": n_lea["id"], "reason": "non"}),
        ("removeHubMember", {"hubId": H, "memberId": admin.id, "reason": "coup d'État"}),
        ("addHubCoAdmin", {"hubId": H, "memberId": karim.id}),
        ("removeHubCoAdmin", {"hubId": H, "memberId": admin.id}),
        ("handOverFacilitation", {"hubId": H}),
        (
            "nominateCandidate",
            {"hubId": H, "candidateId": ines.id, "exceptionReason": "Un ami"},
        ),
    ]:
        assert_error(await mutate(system, name, input, karim.access), "Forbidden", "forbidden")

    # nothing changed, here or there
    assert await system.event_count("hubs") == hubs_before
    assert await system.event_count("identity") == identity_before
    assert await read_hub(system, H, admin, status=ALL_STATUSES) == ours
    assert await read_hub(system, open_hub["id"], admin) == open_before
    assert await read_hub(system, theirs["id"], other.admin, status=ALL_STATUSES) == their_hub
    assert await system.gql(HUBS, {"mine": False}, admin.access) == listed
    # other networks' hubs are invisible
    assert await system.gql(HUB, {"id": theirs["id"]}, admin.access) == {"data": {"hub": None}}
    assert await system.gql(HUB, {"id": random_hub}, admin.access) == {"data": {"hub": None}}

    # the same inputs, from the right people, go through
    for name, session, input, success in valid:
        await succeed(system, name, input, session, success)
    assert await system.event_count("hubs") > hubs_before


async def test_bad_input_to_every_hubs_mutation_changes_nothing(
    net: Network, system: System
) -> None:
    other = await open_network(system, "other-net")
    admin = net.admin
    karim, ines, paul = await neighbours(system, net, "karim", "ines", "paul")
    theirs = await join(system, other, "t@other.example", "Theirs", "baker", work=IN_11E)
    hub = await create_hub(system, net)
    H = hub["id"]
    n_karim = await nominate(system, admin, hub, karim)
    await succeed(
        system,
        "admitCandidate",
        {"hubId": H, "nominationId": n_karim["id"]},
        admin,
        "NominationPayload",
    )
    n_paul = await nominate(system, admin, hub, paul)
    await succeed(system, "volunteerAsFacilitator", {"hubId": H}, karim, "HubPayload")
    hubs_before = await system.event_count("hubs")
    identity_before = await system.event_count("identity")
    mails_before = mail_count(system)
    hub_before = await read_hub(system, H, admin, status=ALL_STATUSES)
    listed = await system.gql(HUBS, {"mine": False}, admin.access)

    centre = VOLTAIRE["centre"]
    good_hub = {"name": "Nouveau cercle", "kind": "NEIGHBOURHOOD", "area": VOLTAIRE}
    bad_ids = ["garbage", "", global_id("Hub", "not-a-uuid")]
    random_member = global_id("Member", str(uuid.uuid4()))
    random_nomination = global_id("Nomination", str(uuid.uuid4()))

    # (mutation, who, input, error type, code, field or rule)
    cases: list[tuple[str, Session, dict[str, Any], str, str, str | None]] = []

    def refuse(
        name: str,
        who: Session,
        input: dict[str, Any],
        field: str | None = None,
        typename: str = "ValidationError",
        code: str = "invalid_input",
    ) -> None:
        cases.append((name, who, input, typename, code, field))

    # areas: a centre and a radius (0 < r <= 50 km), and/or valid postcodes
    for area in (
        {},
        {"postcodes": []},
        {"centre": centre},
        {"radiusKm": 1.5},
        {"radiusKm": 1.5, "postcodes": ["75011"]},
        {"centre": centre, "radiusKm": 0},
        {"centre": centre, "radiusKm": -1},
        {"centre": centre, "radiusKm": 50.5},
        {"centre": centre, "radiusKm": 500},
        {"centre": {"lat": 91, "lon": 2.3795}, "radiusKm": 1},
        {"centre": {"lat": 48.8575, "lon": 181}, "radiusKm": 1},
        {"postcodes": ["!!"]},
        {"postcodes": [""]},
        {"postcodes": ["75011", "x" * 20]},
        {"postcodes": [f"750{i:02d}" for i in range(51)]},
    ):
        refuse("createHub", admin, {**good_hub, "area": area}, "area")
    for name in ("", "   ", "n" * 121):
        refuse("createHub", admin, {**good_hub, "name": name}, "name")
    # rules: windows of 0-60 days, a lift threshold of 2-10000, terms of 1-365
    # days and of 1-52 meetups
    for rules, field in (
        ({"objectionWindowDays": 99}, "objectionWindowDays"),
        ({"objectionWindowDays": -1}, "objectionWindowDays"),
        ({"nonCompetitionLiftAt": 1}, "nonCompetitionLiftAt"),
        ({"nonCompetitionLiftAt": 0}, "nonCompetitionLiftAt"),
        ({"nonCompetitionLiftAt": 10_001}, "nonCompetitionLiftAt"),
        ({"facilitatorTermDays": 0}, "facilitatorTermDays"),
        ({"facilitatorTermDays": 366}, "facilitatorTermDays"),
        ({"facilitatorTermMeetups": 0}, "facilitatorTermMeetups"),
        ({"facilitatorTermMeetups": 53}, "facilitatorTermMeetups"),
        ({"maxVisits": 21}, "maxVisits"),
    ):
        # dotted, as the input nests them (docs/api.md)
        refuse("createHub", admin, {**good_hub, "rules": rules}, f"rules.{field}")
        refuse("changeHubRules", admin, {"hubId": H, "rules": rules}, f"rules.{field}")
    # lifting the one-per-profession rule needs a reason
    refuse("changeHubRules", admin, {"hubId": H, "rules": {"nonCompetitionLifted": True}}, "reason")
    refuse(
        "changeHubRules",
        admin,
        {"hubId": H, "rules": {"maxVisits": 5}, "reason": "r" * 501},
        "reason",
    )

    # ids: malformed, or of another type, name the input field
    with_hub: list[tuple[str, Session, dict[str, Any]]] = [
        ("changeHubRules", admin, {"rules": {"maxVisits": 5}}),
        ("nominateCandidate", karim, {"candidateId": ines.id}),
        ("joinHub", ines, {}),
        ("raiseObjection", karim, {"nominationId": n_paul["id"], "reason": "non"}),
        ("admitCandidate", admin, {"nominationId": n_paul["id"]}),
        ("rejectCandidate", admin, {"nominationId": n_paul["id"], "reason": "non"}),
        ("leaveHub", karim, {}),
        ("removeHubMember", admin, {"memberId": karim.id, "reason": "non"}),
        ("addHubCoAdmin", admin, {"memberId": karim.id}),
        ("removeHubCoAdmin", admin, {"memberId": admin.id}),
        ("volunteerAsFacilitator", admin, {}),
        ("withdrawFromFacilitatorRoster", karim, {}),
        ("handOverFacilitation", admin, {}),
        ("swapFacilitatorTurns", admin, {"firstMemberId": karim.id, "secondMemberId": admin.id}),
    ]
    for name, who, rest in with_hub:
        for bad in [*bad_ids, karim.id]:  # a member's id is no hub id
            refuse(name, who, {**rest, "hubId": bad}, "hubId")
    for bad in [*bad_ids, H]:
        refuse("nominateCandidate", karim, {"hubId": H, "candidateId": bad}, "candidateId")
        refuse(
            "raiseObjection",
            karim,
            {"hubId": H, "nominationId": bad, "reason": "non"},
            "nominationId",
        )
        refuse("admitCandidate", admin, {"hubId": H, "nominationId": bad}, "nominationId")
        refuse(
            "rejectCandidate",
            admin,
            {"hubId": H, "nominationId": bad, "reason": "non"},
            "nominationId",
        )
        refuse("removeHubMember", admin, {"hubId": H, "memberId": bad, "reason": "non"}, "memberId")
        refuse("addHubCoAdmin", admin, {"hubId": H, "memberId": bad}, "memberId")
        refuse("removeHubCoAdmin", admin, {"hubId": H, "memberId": bad}, "memberId")
        refuse(
            "swapFacilitatorTurns",
            admin,
            {"hubId": H, "firstMemberId": bad, "secondMemberId": karim.id},
            "firstMemberId",
        )
        refuse(
            "swapFacilitatorTurns",
            admin,
            {"hubId": H, "firstMemberId": karim.id, "secondMemberId": bad},
            "secondMemberId",
        )

    # nominations: a member of the network or an e-mail address, texts within bounds
    refuse("nominateCandidate", karim, {"hubId": H}, "candidateId")
    refuse(
        "nominateCandidate",
        karim,
        {"hubId": H, "candidateId": ines.id, "email": "x@pole.example"},
        "candidateId",
    )
    refuse("nominateCandidate", karim, {"hubId": H, "email": "not-an-address"}, "email")
    refuse(
        "nominateCandidate", karim, {"hubId": H, "candidateId": ines.id, "note": "n" * 1001}, "note"
    )
    refuse(
        "nominateCandidate",
        admin,
        {"hubId": H, "candidateId": ines.id, "exceptionReason": "e" * 501},
        "exceptionReason",
    )
    refuse(
        "nominateCandidate",
        karim,
        {"hubId": H, "candidateId": random_member},
        typename="NotFound",
        code="not_found",
    )
    refuse(
        "nominateCandidate",
        karim,
        {"hubId": H, "candidateId": theirs.id},  # another network's member
        typename="NotFound",
        code="not_found",
    )
    for already in (karim.id, paul.id):  # a member; a pending candidate
        refuse(
            "nominateCandidate",
            admin,
            {"hubId": H, "candidateId": already},
            typename="Conflict",
            code="conflict",
        )
    # objections and decisions: a reason, an existing nomination
    for reason in ("", "   ", "r" * 1001):
        refuse(
            "raiseObjection",
            karim,
            {"hubId": H, "nominationId": n_paul["id"], "reason": reason},
            "reason",
        )
        refuse(
            "rejectCandidate",
            admin,
            {"hubId": H, "nominationId": n_paul["id"], "reason": reason},
            "reason",
        )
        refuse(
            "removeHubMember",
            admin,
            {"hubId": H, "memberId": karim.id, "reason": reason},
            "reason",
        )
    refuse(
        "admitCandidate",
        admin,
        {"hubId": H, "nominationId": n_paul["id"], "exceptionReason": "e" * 501},
        "exceptionReason",
    )
    for name, who, input in (
        ("raiseObjection", karim, {"hubId": H, "nominationId": random_nomination, "reason": "x"}),
        ("admitCandidate", admin, {"hubId": H, "nominationId": random_nomination}),
        ("rejectCandidate", admin, {"hubId": H, "nominationId": random_nomination, "reason": "x"}),
        ("removeHubMember", admin, {"hubId": H, "memberId": ines.id, "reason": "x"}),
        ("removeHubMember", admin, {"hubId": H, "memberId": random_member, "reason": "x"}),
        ("addHubCoAdmin", admin, {"hubId": H, "memberId": ines.id}),
        ("removeHubCoAdmin", admin, {"hubId": H, "memberId": karim.id}),
        ("leaveHub", ines, {"hubId": H}),
        ("withdrawFromFacilitatorRoster", admin, {"hubId": H}),
        (
            "swapFacilitatorTurns",
            admin,
            {"hubId": H, "firstMemberId": karim.id, "secondMemberId": ines.id},
        ),
    ):
        refuse(name, who, input, typename="NotFound", code="not_found")
    for name, who, input in (
        ("addHubCoAdmin", admin, {"hubId": H, "memberId": admin.id}),
        ("volunteerAsFacilitator", karim, {"hubId": H}),
    ):
        refuse(name, who, input, typename="Conflict", code="conflict")
    # the last co-admin stays; a co-optation hub is not joined alone
    for name, who, input in (
        ("leaveHub", admin, {"hubId": H}),
        ("removeHubMember", admin, {"hubId": H, "memberId": admin.id, "reason": "x"}),
        ("removeHubCoAdmin", admin, {"hubId": H, "memberId": admin.id}),
    ):
        cases.append((name, who, input, "RuleViolation", "rule_violation", "last_co_admin"))
    cases.append(
        ("joinHub", ines, {"hubId": H}, "RuleViolation", "rule_violation", "admission_mode")
    )

    for name, who, input, typename, code, detail in cases:
        result = await mutate(system, name, input, who.access)
        if typename == "RuleViolation":
            assert_error(result, typename, code, rule=detail)
        else:
            assert_error(result, typename, code, field=detail)
    # queries: malformed ids and pages are errors, not internal failures
    for variables, query in (
        ({"id": "garbage"}, HUB),
        ({"id": karim.id}, HUB),
    ):
        answer = await system.gql(query, variables, admin.access)
        assert answer["errors"][0]["extensions"]["code"] == "INVALID_INPUT", answer
    page = await system.gql(
        "query($id: ID!) { hub(id: $id) { members(first: 0) { totalCount } } }",
        {"id": H},
        admin.access,
    )
    assert page["errors"][0]["extensions"]["code"] == "INVALID_INPUT", page

    assert await system.event_count("hubs") == hubs_before
    assert await system.event_count("identity") == identity_before
    assert mail_count(system) == mails_before  # no invitation went out
    assert await read_hub(system, H, admin, status=ALL_STATUSES) == hub_before
    assert await system.gql(HUBS, {"mine": False}, admin.access) == listed


async def test_a_refused_email_nomination_invites_nobody(net: Network, system: System) -> None:
    hub = await create_hub(system, net)
    hubs_before = await system.event_count("hubs")
    identity_before = await system.event_count("identity")
    mails_before = mail_count(system)
    result = await mutate(
        system,
        "nominateCandidate",
        {"hubId": hub["id"], "email": "new@pole.example", "note": "n" * 1001},
        net.admin.access,
    )
    assert_error(result, "ValidationError", "invalid_input", field="note")
    assert await system.event_count("hubs") == hubs_before  # no nomination ...
    assert mail_count(system) == mails_before
    assert await system.event_count("identity") == identity_before


async def test_hubs_refusals_are_said_in_the_language_asked_for(
    net: Network, system: System
) -> None:
    """The same refusals with `Accept-Language: fr` (as the French console
    sends it) and without: French, then English as before; the code, the
    field and the rule a client decides on do not change."""
    admin = net.admin
    (ines,) = await neighbours(system, net, "ines")
    vera = await join(
        system, net, "vera@pole.example", "Véra Dumas", "baker", work=VERSAILLES, home=VERSAILLES
    )
    hub = await create_hub(system, net)
    hubs_before = await system.event_count("hubs")

    async def refused(
        name: str, input: dict[str, Any], who: Session, language: str | None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {who.access}"}
        if language is not None:
            headers["Accept-Language"] = language
        return await mutate(system, name, input, headers=headers)

    too_wide = {
        "name": "Grand cercle",
        "kind": "NEIGHBOURHOOD",
        "area": {**VOLTAIRE, "radiusKm": 500},
    }
    for language, said in (
        ("fr", "le rayon doit être supérieur à 0 et d'au plus 50 km"),
        ("fr-FR,fr;q=0.9,en;q=0.8", "le rayon doit être supérieur à 0 et d'au plus 50 km"),
        (None, "the radius must be more than 0 and at most 50 km"),
    ):
        result = await refused("createHub", too_wide, admin, language)
        assert_error(result, "ValidationError", "invalid_input", field="area", message=said)

    for language, said in (
        ("fr", "ce pôle admet par cooptation : demandez à un membre de vous coopter"),
        (None, "this hub admits by co-optation: ask a member to nominate you"),
    ):
        result = await refused("joinHub", {"hubId": hub["id"]}, ines, language)
        assert_error(result, "RuleViolation", "rule_violation", rule="admission_mode", message=said)

    # the area's refusal, with its values (the radius, how far the nearer place is)
    far = {"hubId": hub["id"], "candidateId": vera.id}
    for language, said in (
        (
            "fr",
            r"hors de la zone : habite et travaille en dehors de la zone du pôle : "
            r"à plus de 1\.5 km du centre \(\d+\.\d km\)",
        ),
        (
            None,
            r"outside the area: lives and works outside the hub's area: "
            r"not within 1\.5 km of the centre \(\d+\.\d km\)",
        ),
    ):
        result = await refused("nominateCandidate", far, admin, language)
        assert_error(result, "RuleViolation", "rule_violation", rule="area")
        assert re.fullmatch(said, result["message"]), result

    assert await system.event_count("hubs") == hubs_before
