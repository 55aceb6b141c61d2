"""The ledger of word of mouth in the Cercle Voltaire, through GraphQL over
HTTP (one system per store):

* a Thursday lunch leads to a referral from Inès to Paul, accepted,
  contacted, won with its value and thanked to Inès: the giver, the receiver
  and the hub's admin see the value, another member sees no slip, only the
  totals of the hub's report; a thanks recorded without a slip;
* "ask the network first": Bruno needs a baker, Léa (a baker) is told, answers
  and meets the need; another need waits for its window, then is released;
* the hub's rule "referrals only between members who met": refused between
  members who never met (a RuleViolation that says what is missing), given
  once they were both at a lunch, or confirmed a one-to-one;
* the hub's engagement: its core, the members drifting away and each
  member's traffic light with the measures that set it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.runtime.clock import MovableClock
from tests.e2e.conftest import System, assert_error, mutate
from tests.e2e.meetups import lunch_club
from tests.e2e.referrals import (
    ENGAGEMENT_QUERY,
    NEEDS_QUERY,
    NODE_QUERY,
    SLIPS_QUERY,
    THANKS_QUERY,
    ask,
    done,
    hold_lunch,
    members_known,
    prospect,
    refer,
    referrals_events,
    results,
    rule_known,
    slip_as,
)

pytestmark = pytest.mark.asyncio

EUR_1200 = (Decimal("1200.50"), "EUR")


def money(value: dict[str, str] | None) -> tuple[Decimal, str] | None:
    """A Money as (exact amount, currency). Compared as decimals: the service
    answers amounts with its store's four decimals ("1200.5000"), not the
    currency's two (reported to the referrals service's owner)."""
    return None if value is None else (Decimal(value["amount"]), value["currency"])


def moneys(values: list[dict[str, str]]) -> list[tuple[Decimal, str] | None]:
    return [money(v) for v in values]


async def test_word_of_mouth_in_a_lunch_club(system: System, clock: MovableClock) -> None:
    club = await lunch_club(system)
    admin, karim = club.admin, club.facilitator
    ines, paul, lea, bruno = club.members
    await members_known(system, club)

    # -- a lunch leads to a referral, a won deal and a thanks ------------------------
    lunch = await hold_lunch(system, club, clock, present=[ines, paul])
    given = (
        await done(
            system,
            "giveReferral",
            {
                "receiverId": paul.id,
                "about": "Refaire l'électricité du fournil",
                "warmth": 4,
                "prospect": prospect(),
                "hubId": club.hub_id,
                "meetupId": lunch["id"],
            },
            ines,
            "SlipPayload",
        )
    )["slip"]
    assert (given["status"], given["warmth"], given["inside"], given["value"]) == (
        "GIVEN",
        4,
        False,
        None,
    )
    assert given["prospect"] == prospect()
    assert (given["giver"]["displayName"], given["receiver"]["displayName"]) == (
        "Inès Moreau",
        "Paul Girard",
    )
    assert (given["hub"], given["meetup"]) == ({"id": club.hub_id}, {"id": lunch["id"]})
    assert [(h["status"], h["by"]["id"]) for h in given["history"]] == [("GIVEN", ines.id)]
    received = await ask(
        system, SLIPS_QUERY, {"direction": "RECEIVED", "first": 10, "status": "GIVEN"}, paul
    )
    assert [e["node"]["id"] for e in received["slips"]["edges"]] == [given["id"]]

    slip_id = {"referralId": given["id"]}
    await done(system, "acceptReferral", slip_id, paul, "SlipPayload")
    await done(system, "markReferralContacted", slip_id, paul, "SlipPayload")
    won = (
        await done(
            system,
            "markReferralWon",
            {**slip_id, "value": {"amount": "1200.5", "currency": "eur"}},
            paul,
            "SlipPayload",
        )
    )["slip"]
    assert won["status"] == "WON"
    assert money(won["value"]) == EUR_1200  # exact
    assert [(h["status"], h["by"]["id"]) for h in won["history"]] == [
        ("GIVEN", ines.id),
        ("ACCEPTED", paul.id),
        ("CONTACTED", paul.id),
        ("WON", paul.id),
    ]
    credited = (await ask(system, THANKS_QUERY, {"direction": "GIVEN"}, ines))["thanks"]
    assert credited["totalCount"] == 1
    [thanks] = [e["node"] for e in credited["edges"]]
    assert (money(thanks["value"]), thanks["giver"], thanks["receiver"], thanks["referral"]) == (
        EUR_1200,
        {"id": ines.id},
        {"id": paul.id},
        {"id": given["id"]},
    )

    # the value: the giver, the receiver and the hub's admin see it; Léa sees no slip
    for who in (ines, paul, admin):
        seen = await slip_as(system, given["id"], who)
        assert seen is not None and money(seen["value"]) == EUR_1200, who.email
        assert seen["prospect"] == prospect()
    assert await slip_as(system, given["id"], lea) is None
    assert (await ask(system, NODE_QUERY, {"id": given["id"]}, lea))["node"] is None
    assert (await ask(system, NODE_QUERY, {"id": given["id"]}, ines))["node"] == {
        "__typename": "Slip",
        "id": given["id"],
    }
    # ... the hub's admin sees the hub's totals; Léa's report covers completed months
    # only, where a figure of fewer than three members is withheld: not this value
    hub_report = await results(system, admin, "HUB", club.hub_id)
    assert hub_report["hub"] == {"id": club.hub_id}
    assert (hub_report["referralsGiven"], hub_report["referralsWon"]) == (1, 1)
    assert moneys(hub_report["valueGiven"]) == [EUR_1200] == moneys(hub_report["valueReceived"])
    assert hub_report["meetupsAttended"] == 2  # attendances: Inès and Paul
    coarse = await results(system, lea, "HUB", club.hub_id)
    assert moneys(coarse["valueGiven"]) == [] == moneys(coarse["valueReceived"])
    answer = await system.gql(
        "query($s: ID) { results(scope: MEMBER, subjectId: $s) { referralsGiven } }",
        {"s": ines.id},
        lea.access,
    )
    assert answer["data"] is None and answer["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    mine = await results(system, ines, "MEMBER")
    assert (mine["member"], mine["meetupsAttended"], mine["referralsGiven"]) == (
        {"id": ines.id},
        1,
        1,
    )
    assert (moneys(mine["valueGiven"]), mine["valueReceived"]) == ([EUR_1200], [])
    assert moneys((await results(system, paul, "MEMBER"))["valueReceived"]) == [EUR_1200]

    # a thanks without a slip: Paul thanks Karim for a client sent by phone
    by_phone = (
        await done(
            system,
            "recordThanks",
            {
                "giverId": karim.id,
                "value": {"amount": "300"},
                "about": "Le dépannage de Mme Roux",
            },
            paul,
            "ThanksPayload",
        )
    )["thanks"]
    assert money(by_phone["value"]) == (Decimal(300), "EUR")
    assert (by_phone["giver"], by_phone["referral"]) == ({"id": karim.id}, None)
    assert moneys((await results(system, karim, "MEMBER"))["valueGiven"]) == [(Decimal(300), "EUR")]

    # -- ask the network first: Bruno needs pastries; Léa offers them -------------------
    card = await mutate(
        system,
        "updateProfileCard",
        {"offers": "Viennoiseries et pièces montées pour vos événements"},
        lea.access,
    )
    assert card["__typename"] == "ProfileCardUpdated", card
    need = (
        await done(
            system,
            "postNeed",
            {
                "words": "viennoiseries",
                "description": "Pour un salon de 80 personnes",
            },
            bruno,
            "NeedPayload",
        )
    )["need"]
    assert need["status"] == "OPEN" and need["poster"] == {"id": bruno.id}
    assert [m["id"] for m in need["matches"]] == [lea.id]
    assert (need["matchCount"], need["matchesMe"]) == (1, False)
    told = (await ask(system, NEEDS_QUERY, {"mine": False}, lea))["needs"]
    [listed] = [e["node"] for e in told["edges"]]
    assert (listed["id"], listed["matchesMe"]) == (need["id"], True)
    answered = (
        await done(
            system,
            "answerNeed",
            {"needId": need["id"], "message": "Je peux vous aider : croissants et chouquettes"},
            lea,
            "NeedPayload",
        )
    )["need"]
    assert [a["member"]["id"] for a in answered["answers"]] == [lea.id]
    seen_by_paul = (
        await ask(
            system, f"query($id: ID!) {{ need(id: $id) {{ {NEED} }} }}", {"id": need["id"]}, paul
        )
    )["need"]
    assert seen_by_paul["answers"] == []  # who answered is for the poster
    met = (
        await done(
            system,
            "markNeedMet",
            {"needId": need["id"], "memberId": lea.id},
            bruno,
            "NeedPayload",
        )
    )["need"]
    assert (met["status"], met["metBy"]) == ("MET", {"id": lea.id})
    bruno_report = await results(system, bruno, "MEMBER")
    assert (bruno_report["needsPosted"], bruno_report["needsMetInside"]) == (1, 1)

    # another need: not released before its window (7 days), released after it
    other = (await done(system, "postNeed", {"words": "photographe"}, bruno, "NeedPayload"))["need"]
    early = await refer(system, "releaseNeed", {"needId": other["id"]}, bruno)
    assert_error(early, "RuleViolation", "rule_violation", rule="ask_the_network_first")
    clock.advance(days=8)
    released = (await done(system, "releaseNeed", {"needId": other["id"]}, bruno, "NeedPayload"))[
        "need"
    ]
    assert released["status"] == "RELEASED"
    mine_needs = (await ask(system, NEEDS_QUERY, {"mine": True}, bruno))["needs"]
    assert {e["node"]["status"] for e in mine_needs["edges"]} == {"MET", "RELEASED"}

    # -- the hub's rule: referrals only between members who met (30 days) --------------
    changed = await mutate(
        system,
        "changeHubRules",
        {"hubId": club.hub_id, "rules": {"referralsMeetingDays": 30}, "reason": "Se connaître"},
        admin.access,
    )
    assert changed["__typename"] == "HubPayload", changed
    await rule_known(system, club, 30)
    to_bruno = {
        "receiverId": bruno.id,
        "about": "Un mariage en juin",
        "warmth": 3,
        "prospect": prospect("Famille Martin"),
        "hubId": club.hub_id,
    }
    before = await referrals_events(system)
    refused = await refer(system, "giveReferral", to_bruno, lea)
    assert_error(
        refused, "RuleViolation", "rule_violation", rule="referrals_between_members_who_met"
    )
    assert "30 days" in refused["message"] and "one-to-one" in refused["message"]
    assert await referrals_events(system) == before  # nothing recorded

    # Léa and Bruno lunch together: now she may
    await hold_lunch(system, club, clock, present=[lea, bruno])
    accepted = await done(system, "giveReferral", to_bruno, lea, "SlipPayload")
    assert accepted["slip"]["status"] == "GIVEN"

    # Paul and Léa never lunched together: a confirmed one-to-one opens the way
    to_lea = {**to_bruno, "receiverId": lea.id, "about": "Un traiteur cherche un fournil"}
    refused = await refer(system, "giveReferral", to_lea, paul)
    assert_error(
        refused, "RuleViolation", "rule_violation", rule="referrals_between_members_who_met"
    )
    today = clock.now().date().isoformat()
    logged = (
        await done(
            system, "logOneToOne", {"otherId": lea.id, "metOn": today}, paul, "OneToOnePayload"
        )
    )["oneToOne"]
    assert (logged["status"], logged["loggedBy"], logged["other"]) == (
        "LOGGED",
        {"id": paul.id},
        {"id": lea.id},
    )
    refused = await refer(system, "giveReferral", to_lea, paul)  # unconfirmed: counts for nothing
    assert refused["__typename"] == "RuleViolation", refused
    confirmed = (
        await done(system, "confirmOneToOne", {"oneToOneId": logged["id"]}, lea, "OneToOnePayload")
    )["oneToOne"]
    assert confirmed["status"] == "CONFIRMED" and confirmed["answeredAt"]
    await done(system, "giveReferral", to_lea, paul, "SlipPayload")
    listed_1to1 = await ask(system, "{ oneToOnes { id status } }", {}, lea)
    assert listed_1to1["oneToOnes"] == [{"id": logged["id"], "status": "CONFIRMED"}]
    assert (await ask(system, NODE_QUERY, {"id": logged["id"]}, paul))["node"] == {
        "__typename": "OneToOne",
        "id": logged["id"],
    }

    # -- the hub's engagement: core, drifting, lights and what set them ---------------------
    settings = {
        "coreMeetups": 1,
        "greenMeetups": 2,
        "amberMeetups": 1,
        "greenReferrals": 2,
        "amberReferrals": 1,
        "greenOneToOnes": 1,
        "amberOneToOnes": 0,
    }
    refused = await refer(system, "setEngagementSettings", settings, lea)
    assert_error(refused, "Forbidden", "forbidden")
    set_ = (
        await done(system, "setEngagementSettings", settings, admin, "EngagementSettingsPayload")
    )["settings"]
    assert (set_["coreMeetups"], set_["coreDays"], set_["needWindowDays"]) == (1, 90, 7)
    engagement = (await ask(system, ENGAGEMENT_QUERY, {"hubId": club.hub_id}, lea))["hubEngagement"]
    assert {m["id"] for m in engagement["core"]} == {ines.id, paul.id, lea.id, bruno.id}
    assert {m["id"] for m in engagement["drifting"]} == {admin.id, karim.id}
    by_member = {m["member"]["id"]: m for m in engagement["members"]}
    lea_light = by_member[lea.id]
    assert {m["measure"]: (m["value"], m["light"]) for m in lea_light["measures"]} == {
        "MEETUPS": (1, "AMBER"),
        "REFERRALS_GIVEN": (1, "AMBER"),
        "ONE_TO_ONES": (1, "GREEN"),
    }
    assert (lea_light["light"], lea_light["setBy"]) == ("AMBER", ["MEETUPS", "REFERRALS_GIVEN"])
    karim_light = by_member[karim.id]
    assert (karim_light["light"], karim_light["setBy"], karim_light["lastMeetupAt"]) == (
        "RED",
        ["MEETUPS", "REFERRALS_GIVEN"],
        None,
    )
    assert (karim_light["inCore"], karim_light["drifting"]) == (False, True)


NEED = "id status answers { member { id } }"
