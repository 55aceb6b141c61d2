"""Roles in a hub through the GraphQL gateway: an open hub joined without a
godparent, co-admins, the rotating facilitator (roster, swaps, terms in days
or in meetups), members leaving and removed, and joining again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.runtime.clock import MovableClock
from tests.e2e.conftest import (
    Network,
    Session,
    System,
    assert_error,
    mutate,
)
from tests.e2e.hubs.steps import (
    HUBS,
    create_hub,
    ids,
    members_of,
    neighbours,
    read_hub,
    succeed,
    when,
)

# one system per store for the package (tests/e2e/hubs/conftest.py): each test in its own network
pytestmark = [pytest.mark.asyncio, pytest.mark.shared_system]

TERM_RULES = """
query($id: ID!) {
  hub(id: $id) {
    rulesVersion
    rules { facilitatorTermDays facilitatorTermMeetups }
    rulesHistory { version rules { facilitatorTermMeetups } }
  }
}
"""


async def test_roles_co_admins_the_rotating_facilitator_leaving_and_joining(
    net: Network, system: System, clock: MovableClock
) -> None:
    admin = net.admin
    karim, ines, paul = await neighbours(system, net, "karim", "ines", "paul")
    cercle = await create_hub(system, net)  # co-optation
    hub = await create_hub(
        system,
        net,
        name="Afterwork Voltaire",
        rules={"admissionMode": "OPEN", "facilitatorTermDays": 14},
    )
    H = hub["id"]

    # an open hub: members of the network join by themselves, without a godparent
    for member in (karim, ines, paul):
        joined = await succeed(system, "joinHub", {"hubId": H}, member, "HubMembershipPayload")
        membership = joined["membership"]
        assert membership["member"]["id"] == member.id and membership["godparent"] is None
        assert (membership["rulesVersion"], membership["isCoAdmin"]) == (1, False)
        assert when(membership["admittedAt"]) == clock.now()
    before = await system.event_count("hubs")
    again = await mutate(system, "joinHub", {"hubId": H}, karim.access)
    assert_error(again, "Conflict", "conflict", field=None)
    closed = await mutate(system, "joinHub", {"hubId": cercle["id"]}, karim.access)
    assert_error(closed, "RuleViolation", "rule_violation", rule="admission_mode")
    assert await system.event_count("hubs") == before
    mine = await system.gql(HUBS, {"mine": True}, karim.access)
    assert ids(mine["data"]["hubs"]) == [H]

    # co-admins: the admin names Karim, who names Inès; the admin steps back, then Karim
    async def co_admins(name: str, actor: Session, member: Session) -> list[str]:
        result = await succeed(
            system, name, {"hubId": H, "memberId": member.id}, actor, "HubPayload"
        )
        return ids(result["hub"]["coAdmins"])

    assert await co_admins("addHubCoAdmin", admin, karim) == [admin.id, karim.id]
    assert members_of(await read_hub(system, H, admin))[karim.id]["isCoAdmin"] is True
    assert await co_admins("addHubCoAdmin", karim, ines) == [admin.id, karim.id, ines.id]
    assert await co_admins("removeHubCoAdmin", karim, admin) == [karim.id, ines.id]
    assert await co_admins("removeHubCoAdmin", ines, karim) == [ines.id]
    flags = {m: n["isCoAdmin"] for m, n in members_of(await read_hub(system, H, admin)).items()}
    assert flags == {admin.id: False, karim.id: False, ines.id: True, paul.id: False}
    # a hub keeps at least one co-admin
    before = await system.event_count("hubs")
    last = await mutate(system, "removeHubCoAdmin", {"hubId": H, "memberId": ines.id}, ines.access)
    assert_error(last, "RuleViolation", "rule_violation", rule="last_co_admin")
    leaving = await mutate(system, "leaveHub", {"hubId": H}, ines.access)
    assert_error(leaving, "RuleViolation", "rule_violation", rule="last_co_admin")
    # nobody volunteered yet
    empty = await mutate(system, "handOverFacilitation", {"hubId": H}, ines.access)
    assert_error(empty, "RuleViolation", "rule_violation", rule="facilitator_roster")
    assert await system.event_count("hubs") == before

    # the facilitator roster: volunteers queue up
    for member in (paul, karim, admin):
        result = await succeed(system, "volunteerAsFacilitator", {"hubId": H}, member, "HubPayload")
    assert ids(result["hub"]["facilitatorRoster"]) == [paul.id, karim.id, admin.id]
    before = await system.event_count("hubs")
    twice = await mutate(system, "volunteerAsFacilitator", {"hubId": H}, paul.access)
    assert_error(twice, "Conflict", "conflict", field=None)
    # a volunteer may give their turn to someone after them; a third member may
    # not swap two others, and nobody jumps ahead of someone who did not agree
    not_theirs = await mutate(
        system,
        "swapFacilitatorTurns",
        {"hubId": H, "firstMemberId": karim.id, "secondMemberId": admin.id},
        paul.access,
    )
    assert_error(not_theirs, "Forbidden", "forbidden")
    jump = await mutate(
        system,
        "swapFacilitatorTurns",
        {"hubId": H, "firstMemberId": paul.id, "secondMemberId": karim.id},
        karim.access,
    )
    assert_error(jump, "Forbidden", "forbidden")
    # only a co-admin or the facilitator hands over
    assert_error(
        await mutate(system, "handOverFacilitation", {"hubId": H}, paul.access),
        "Forbidden",
        "forbidden",
    )
    assert await system.event_count("hubs") == before
    swapped = await succeed(
        system,
        "swapFacilitatorTurns",
        {"hubId": H, "firstMemberId": paul.id, "secondMemberId": karim.id},
        paul,
        "HubPayload",
    )
    assert ids(swapped["hub"]["facilitatorRoster"]) == [karim.id, paul.id, admin.id]

    # Inès (co-admin) hands over: Karim facilitates for 14 days
    handed = (await succeed(system, "handOverFacilitation", {"hubId": H}, ines, "HubPayload"))[
        "hub"
    ]
    assert handed["facilitator"] == {"id": karim.id, "displayName": "Karim Benali"}
    assert when(handed["facilitatorTermEndsAt"]) == clock.now() + timedelta(days=14)
    assert ids(handed["facilitatorRoster"]) == [paul.id, admin.id]
    # near the end of his term Karim hands over himself and goes to the end of the line
    # (at the end itself the scheduler would hand over before him)
    clock.advance(days=13)
    handed = (await succeed(system, "handOverFacilitation", {"hubId": H}, karim, "HubPayload"))[
        "hub"
    ]
    assert handed["facilitator"]["id"] == paul.id
    assert when(handed["facilitatorTermEndsAt"]) == clock.now() + timedelta(days=14)
    assert ids(handed["facilitatorRoster"]) == [admin.id, karim.id]
    already = await mutate(system, "volunteerAsFacilitator", {"hubId": H}, paul.access)
    assert_error(already, "Conflict", "conflict", field=None)
    withdrawn = await succeed(
        system, "withdrawFromFacilitatorRoster", {"hubId": H}, admin, "HubPayload"
    )
    assert ids(withdrawn["hub"]["facilitatorRoster"]) == [karim.id]
    off = await mutate(system, "withdrawFromFacilitatorRoster", {"hubId": H}, admin.access)
    assert_error(off, "NotFound", "not_found")

    # Inès removes Paul (the facilitator): the role is vacant
    removed = await succeed(
        system,
        "removeHubMember",
        {"hubId": H, "memberId": paul.id, "reason": "A déménagé à Lyon"},
        ines,
        "HubMemberRemoved",
    )
    assert removed == {"__typename": "HubMemberRemoved", "hubId": H, "memberId": paul.id}
    after = await read_hub(system, H, ines)
    assert after["facilitator"] is None and after["facilitatorTermEndsAt"] is None
    assert after["memberCount"] == 3 and paul.id not in members_of(after)
    # Karim leaves: off the roster too
    left = await succeed(system, "leaveHub", {"hubId": H}, karim, "LeftHub")
    assert left["hubId"] == H
    after = await read_hub(system, H, ines)
    assert set(members_of(after)) == {admin.id, ines.id}
    assert after["facilitatorRoster"] == [] and after["memberCount"] == 2
    assert (await system.gql(HUBS, {"mine": True}, karim.access))["data"]["hubs"] == []
    gone = await mutate(system, "leaveHub", {"hubId": H}, karim.access)
    assert_error(gone, "NotFound", "not_found")
    # an open hub: he may come back
    await succeed(system, "joinHub", {"hubId": H}, karim, "HubMembershipPayload")
    assert (await read_hub(system, H, ines))["memberCount"] == 3


async def test_swapping_a_member_with_themself_names_the_input_field(
    net: Network, system: System
) -> None:
    hub = await create_hub(system, net)
    await succeed(system, "volunteerAsFacilitator", {"hubId": hub["id"]}, net.admin, "HubPayload")
    before = await system.event_count("hubs")
    result = await mutate(
        system,
        "swapFacilitatorTurns",
        {"hubId": hub["id"], "firstMemberId": net.admin.id, "secondMemberId": net.admin.id},
        net.admin.access,
    )
    assert await system.event_count("hubs") == before
    assert_error(result, "ValidationError", "invalid_input", field="secondMemberId")


async def test_a_term_in_meetups_is_a_rule_set_changed_and_cleared(
    net: Network, system: System
) -> None:
    hub = await create_hub(system, net, rules={"facilitatorTermMeetups": 4})

    async def term_rules() -> dict[str, Any]:
        answer = await system.gql(TERM_RULES, {"id": hub["id"]}, net.admin.access)
        assert "errors" not in answer, answer
        return answer["data"]["hub"]

    assert (await term_rules())["rules"] == {
        "facilitatorTermDays": 28,
        "facilitatorTermMeetups": 4,
    }
    for change in (
        {"facilitatorTermMeetups": 6},
        {"maxVisits": 5},
        {"facilitatorTermMeetups": None},
    ):
        await succeed(
            system, "changeHubRules", {"hubId": hub["id"], "rules": change}, net.admin, "HubPayload"
        )
    found = await term_rules()
    assert found["rulesVersion"] == 4 and found["rules"]["facilitatorTermMeetups"] is None
    # a change that leaves the rule out keeps it; null clears it (days only)
    history = [v["rules"]["facilitatorTermMeetups"] for v in found["rulesHistory"]]
    assert history == [4, 6, 6, None]
    # a hub created without it counts terms in days only
    plain = await create_hub(system, net, name="Club des artisans", kind="TRADE_CLUB")
    answer = await system.gql(TERM_RULES, {"id": plain["id"]}, net.admin.access)
    assert answer["data"]["hub"]["rules"]["facilitatorTermMeetups"] is None
