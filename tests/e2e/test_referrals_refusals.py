"""What the referrals API refuses, through GraphQL over HTTP (one system per
store): another pair's values and slips, another network's slips and members,
negative, absurd and malformed values, unknown currencies, self-referrals, a
referral to a former member (its own test), over-long texts, bad ids, commands by the wrong
member or nobody, and repeated commands. Each is a typed error (or, for a
read, `null` / a field error) and changes nothing: the service records no
event."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from services.runtime.clock import MovableClock
from tests.e2e.conftest import Session, System, assert_error, mutate, open_network
from tests.e2e.meetups import global_id, lunch_club
from tests.e2e.referrals import (
    NODE_QUERY,
    ask,
    done,
    members_known,
    prospect,
    refer,
    referrals_events,
    slip_as,
)
from tests.support.waiting import eventually

# one system per store for the module: each test opens its own networks and
# counts the referrals service's events relative to what it saw first
pytestmark = [pytest.mark.asyncio, pytest.mark.shared_system]


@asynccontextmanager
async def unchanged(system: System) -> AsyncIterator[None]:
    """The block records no event in the referrals service."""
    before = await referrals_events(system)
    yield
    assert await referrals_events(system) == before


async def field_error(
    system: System, document: str, variables: dict[str, Any], who: Session
) -> str:
    """The code of a query's (only) field error."""
    answer = await system.gql(document, variables, who.access)
    [error] = answer["errors"]
    code: str = error["extensions"]["code"]
    return code


async def test_refusals_change_nothing(system: System, clock: MovableClock) -> None:
    club = await lunch_club(system, members=3)
    ines, paul, lea = club.members
    await members_known(system, club)
    other = await open_network(system, "pole-20e")

    def knows_other(conn: sa.Connection) -> bool:
        from services.referrals.views import directory

        return directory.is_active_member(conn, other.tenant_id, other.admin.member_id)

    await eventually(lambda: _read(system, knows_other))

    base = {"receiverId": paul.id, "about": "Un client pour Paul", "warmth": 3}
    slip = (
        await done(system, "giveReferral", {**base, "prospect": prospect()}, ines, "SlipPayload")
    )["slip"]
    slip_id = {"referralId": slip["id"]}
    await done(system, "acceptReferral", slip_id, paul, "SlipPayload")
    await done(system, "markReferralContacted", slip_id, paul, "SlipPayload")

    async with unchanged(system):
        # -- bad values: negative, zero, absurd, malformed, too precise; unknown currencies
        malformed = ("1e3", "1E+9", " 12 ", "+12", "12_000", "١٢", "12.", ".5", "1,5", "0x10")
        for amount in (
            *("-5", "0", "1000000000000", "12.345", "abc", "NaN", "Infinity", "1" * 60),
            *malformed,
        ):
            refused = await refer(
                system,
                "markReferralWon",
                {**slip_id, "value": {"amount": amount, "currency": "EUR"}},
                paul,
            )
            assert_error(refused, "ValidationError", "invalid_input", field="value.amount")
        for currency in ("XYZ", "", "euro", "EURO"):
            refused = await refer(
                system,
                "markReferralWon",
                {**slip_id, "value": {"amount": "10", "currency": currency}},
                paul,
            )
            assert_error(refused, "ValidationError", "invalid_input", field="value.currency")
        refused = await refer(
            system,
            "recordThanks",
            {"giverId": ines.id, "value": {"amount": "-1"}, "about": "Un remboursement ?"},
            paul,
        )
        assert_error(refused, "ValidationError", "invalid_input", field="value.amount")

        # -- self-referrals and self-thanks
        refused = await refer(
            system, "giveReferral", {**base, "receiverId": ines.id, "prospect": prospect()}, ines
        )
        assert_error(refused, "RuleViolation", "rule_violation", rule="self_referral")
        refused = await refer(
            system,
            "recordThanks",
            {"giverId": ines.id, "value": {"amount": "10"}, "about": "Moi-même"},
            ines,
        )
        assert_error(refused, "RuleViolation", "rule_violation", rule="self_referral")

        # -- malformed slips: warmth, prospect, ids, over-long texts
        for warmth in (0, 6):
            refused = await refer(
                system, "giveReferral", {**base, "warmth": warmth, "prospect": prospect()}, ines
            )
            assert_error(refused, "ValidationError", "invalid_input", field="warmth")
        refused = await refer(system, "giveReferral", base, ines)  # no prospect at all
        assert_error(refused, "ValidationError", "invalid_input", field="prospect")
        refused = await refer(
            system,
            "giveReferral",
            {**base, "prospect": prospect(), "prospectMemberId": lea.id},  # two prospects
            ines,
        )
        assert_error(refused, "ValidationError", "invalid_input", field="prospect")
        for bad in ("garbage", club.hub_id):
            refused = await refer(
                system, "giveReferral", {**base, "receiverId": bad, "prospect": prospect()}, ines
            )
            assert_error(refused, "ValidationError", "invalid_input", field="receiverId")
        long_texts: list[tuple[str, dict[str, Any], str]] = [
            ("giveReferral", {**base, "about": "x" * 1001, "prospect": prospect()}, "about"),
            (
                "giveReferral",
                {**base, "prospect": {**prospect(), "name": "N" * 121}},
                "prospect.name",
            ),
            ("markReferralLost", {**slip_id, "reason": "r" * 501}, "reason"),
            ("postNeed", {"words": "w" * 201}, "words"),
            ("postNeed", {"words": "traiteur", "description": "d" * 2001}, "description"),
        ]
        for name, input, field in long_texts:
            refused = await refer(system, name, input, paul if name == "markReferralLost" else ines)
            assert_error(refused, "ValidationError", "invalid_input", field=field)

        # -- the wrong member, or nobody
        refused = await refer(system, "markReferralLost", slip_id, ines)  # the giver
        assert_error(refused, "Forbidden", "forbidden")
        refused = await refer(system, "giveReferral", {**base, "prospect": prospect()}, None)
        assert_error(refused, "Unauthenticated", "unauthenticated")

    # -- another pair's slip and values: not found, like a missing one ---------------------
    async with unchanged(system):
        assert await slip_as(system, slip["id"], lea) is None
        assert (await ask(system, NODE_QUERY, {"id": slip["id"]}, lea))["node"] is None
        for name, input in (
            ("acceptReferral", slip_id),
            ("markReferralWon", {**slip_id, "value": {"amount": "10"}}),
            ("declineReferral", {**slip_id, "reason": "Pas pour moi"}),
        ):
            refused = await refer(system, name, input, lea)
            assert_error(refused, "NotFound", "not_found")
        slips_all = "{ slips(direction: ALL) { totalCount } }"
        assert await field_error(system, slips_all, {}, lea) == "FORBIDDEN"
        thanks_all = "{ thanks(direction: ALL) { totalCount } }"
        assert await field_error(system, thanks_all, {}, lea) == "FORBIDDEN"
        report = (
            "query($s: ID) { results(scope: MEMBER, subjectId: $s) { valueReceived { amount } } }"
        )
        assert await field_error(system, report, {"s": paul.id}, lea) == "NOT_FOUND"
        # a report's subject of the wrong type, a page out of bounds: bad input
        for scope, subject in (("HUB", paul.id), ("MEMBER", club.hub_id), ("TENANT", paul.id)):
            document = f"query($s: ID) {{ results(scope: {scope}, subjectId: $s) {{ scope }} }}"
            assert await field_error(system, document, {"s": subject}, lea) == "INVALID_INPUT"
        for bad_page in (
            "{ slips(first: 0) { totalCount } }",
            "{ needs(first: 51) { totalCount } }",
        ):
            assert await field_error(system, bad_page, {}, lea) == "INVALID_INPUT"
        # the tenant admin sees them all
        everything = await ask(system, slips_all, {}, club.admin)
        assert everything["slips"]["totalCount"] == 1

    # -- another network: its slips are not found, its members are not ours ----------------
    async with unchanged(system):
        stranger = other.admin
        assert await slip_as(system, slip["id"], stranger) is None
        # their admin's report on one of ours: not found (not a row of zeros)
        assert await field_error(system, report, {"s": paul.id}, stranger) == "NOT_FOUND"
        assert (await ask(system, NODE_QUERY, {"id": slip["id"]}, stranger))["node"] is None
        refused = await refer(system, "acceptReferral", slip_id, stranger)
        assert_error(refused, "NotFound", "not_found")
        refused = await refer(
            system, "giveReferral", {**base, "prospect": prospect()}, stranger
        )  # Paul is a member of another network
        assert refused["__typename"] == "NotFound", refused
        refused = await refer(
            system,
            "recordThanks",
            {"giverId": ines.id, "value": {"amount": "10"}, "about": "Merci"},
            stranger,
        )
        assert refused["__typename"] == "NotFound", refused
        unknown = global_id("Slip", "00000000-0000-4000-8000-000000000000")
        assert await slip_as(system, unknown, ines) is None

    # -- repeated commands: a typed error or the same answer, nothing recorded twice --------
    won = await done(
        system,
        "markReferralWon",
        {**slip_id, "value": {"amount": "500", "currency": "EUR"}},
        paul,
        "SlipPayload",
    )
    assert won["slip"]["status"] == "WON"
    async with unchanged(system):
        for name, input in (
            ("markReferralWon", {**slip_id, "value": {"amount": "500"}}),
            ("acceptReferral", slip_id),
            ("markReferralLost", slip_id),
        ):
            refused = await refer(system, name, input, paul)
            assert_error(refused, "RuleViolation", "rule_violation", rule="referral_lifecycle")
    assert (await slip_as(system, slip["id"], ines))["status"] == "WON"  # type: ignore[index]

    # the same Idempotency-Key: the first answer again, one slip only
    key = {"Idempotency-Key": "9d0f7c1e-referral-1"}
    first = await refer(system, "giveReferral", {**base, "prospect": prospect()}, ines, key)
    assert first["__typename"] == "SlipPayload", first
    async with unchanged(system):
        again = await refer(system, "giveReferral", {**base, "prospect": prospect()}, ines, key)
        assert again["slip"]["id"] == first["slip"]["id"]
        other_input = {**base, "about": "Autre chose", "prospect": prospect()}
        refused = await refer(system, "giveReferral", other_input, ines, key)
        assert_error(refused, "ValidationError", "invalid_input", field="idempotencyKey")

    # a one-to-one logged twice, confirmed twice; a need answered twice, met twice
    today = clock.now().date().isoformat()
    logged = (
        await done(
            system, "logOneToOne", {"otherId": lea.id, "metOn": today}, ines, "OneToOnePayload"
        )
    )["oneToOne"]
    refused = await refer(system, "confirmOneToOne", {"oneToOneId": logged["id"]}, ines)
    assert_error(refused, "Forbidden", "forbidden")  # the other member confirms
    await done(system, "confirmOneToOne", {"oneToOneId": logged["id"]}, lea, "OneToOnePayload")
    need = (await done(system, "postNeed", {"words": "traiteur"}, paul, "NeedPayload"))["need"]
    answer = {"needId": need["id"], "message": "Mon cousin est traiteur"}
    await done(system, "answerNeed", answer, lea, "NeedPayload")
    async with unchanged(system):
        refused = await refer(system, "answerNeed", answer, lea)
        assert_error(refused, "Conflict", "conflict", field=None)
    await done(
        system, "markNeedMet", {"needId": need["id"], "memberId": lea.id}, paul, "NeedPayload"
    )
    async with unchanged(system):
        again_logged = await done(
            system, "logOneToOne", {"otherId": lea.id, "metOn": today}, ines, "OneToOnePayload"
        )
        assert again_logged["oneToOne"]["id"] == logged["id"]
        assert again_logged["oneToOne"]["status"] == "CONFIRMED"
        await done(system, "confirmOneToOne", {"oneToOneId": logged["id"]}, lea, "OneToOnePayload")
        refused = await refer(system, "declineOneToOne", {"oneToOneId": logged["id"]}, lea)
        assert_error(refused, "Conflict", "conflict", field=None)
        refused = await refer(system, "answerNeed", answer, lea)
        assert_error(refused, "RuleViolation", "rule_violation", rule="need_closed")
        refused = await refer(
            system, "markNeedMet", {"needId": need["id"], "memberId": lea.id}, paul
        )
        assert_error(refused, "RuleViolation", "rule_violation", rule="need_closed")
        refused = await refer(system, "releaseNeed", {"needId": need["id"]}, lea)
        assert_error(refused, "Forbidden", "forbidden")
        refused = await refer(system, "answerNeed", answer, other.admin)
        assert_error(refused, "NotFound", "not_found")


async def test_no_referral_to_a_former_member(system: System) -> None:
    club = await lunch_club(system, members=2)
    ines, paul = club.members
    await members_known(system, club)
    left = await mutate(system, "leaveHub", {"hubId": club.hub_id}, paul.access)
    assert left["__typename"] == "LeftHub", left

    def gone(conn: sa.Connection) -> bool:
        from services.referrals.views import directory

        return paul.member_id not in directory.members_of(
            conn, club.net.tenant_id, club.hub["hubId"]
        )

    await eventually(lambda: _read(system, gone))
    async with unchanged(system):
        refused = await refer(
            system,
            "giveReferral",
            {"receiverId": paul.id, "about": "Un client", "warmth": 3, "prospect": prospect()},
            ines,
        )
        assert_error(refused, "RuleViolation", "rule_violation", rule="former_member")


async def test_refusals_are_said_in_the_language_asked_for(system: System) -> None:
    """`Accept-Language: fr` gets the French of a refusal (placeholders
    filled as in English); no header, or English, the API's own wording."""
    club = await lunch_club(system, members=2)
    ines, paul = club.members
    await members_known(system, club)
    base = {"receiverId": paul.id, "about": "Un client pour Paul", "warmth": 3}
    refusals: list[tuple[str, dict[str, Any], Session, str, str, str]] = [
        (
            "giveReferral",
            {**base, "receiverId": ines.id, "prospect": prospect()},
            ines,
            "RuleViolation",
            "a member cannot refer business to themself",
            "un membre ne peut pas se recommander une affaire à lui-même",
        ),
        (
            "giveReferral",
            {**base, "warmth": 9, "prospect": prospect()},
            ines,
            "ValidationError",
            "warmth is 1 (a name) to 5 (they expect the call)",
            "la chaleur va de 1 (un simple nom) à 5 (le prospect attend l'appel)",
        ),
        (
            "recordThanks",
            {"giverId": ines.id, "value": {"amount": "10", "currency": "XYZ"}, "about": "Merci"},
            paul,
            "ValidationError",
            "'XYZ' is not an ISO 4217 currency",
            "'XYZ' n'est pas une devise ISO 4217",
        ),
    ]
    async with unchanged(system):
        for name, input, who, typename, english, french in refusals:
            said_fr = await refer(system, name, input, who, {"Accept-Language": "fr-FR,fr;q=0.9"})
            said_en = await refer(system, name, input, who)
            said_en_asked = await refer(
                system, name, input, who, {"Accept-Language": "en, fr;q=0.5"}
            )
            assert said_fr["__typename"] == said_en["__typename"] == typename, (said_fr, said_en)
            assert said_fr["code"] == said_en["code"]
            assert said_fr["message"] == french, said_fr
            assert said_en["message"] == said_en_asked["message"] == english, said_en


def _read(system: System, query: Any) -> Any:
    with system.hosts["referrals"].engine.connect() as conn:
        return query(conn)
