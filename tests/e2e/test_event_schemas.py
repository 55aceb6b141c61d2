"""Every event that a realistic run produces — a network opened, members
invited and joining, a hub with co-optations, objections, decisions, rules
changed, co-admins and facilitators, members leaving — validates against the
JSON Schema published for its type (fetched from `/v1/schemas`, as a consumer
would), and its envelope against the CloudEvents schema; the run goes on
with the ledger of referrals (slips through every status, thanks,
a one-to-one, needs met and released), which produces every referrals event.
The meetups service's events are checked the same way by its own story
(test_meetups_stream.py), which produces every one of them."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from infra.catalogue import event_schemas
from services.runtime.clock import MovableClock
from tests.e2e.conftest import Network, Session, System, join, mutate, open_network
from tests.e2e.hubs.steps import (
    IN_11E,
    NEAR_VOLTAIRE,
    STORY_RULES,
    create_hub,
    nominate,
    succeed,
    until_member,
    until_status,
)
from tests.e2e.referrals import done
from tests.e2e.test_api_keys import create_key, revoke
from tests.support.identity import PASSWORD, mailed_tokens
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio

# produced, and checked against their schemas, by another story
NOT_PRODUCED_HERE = {  # webhooks': test_webhooks_graphql.py
    t for t in event_schemas() if t.startswith(("quartier.events.", "quartier.webhooks."))
}
REFERRALS_EVENTS = {t.split(".")[2] for t in event_schemas() if t.startswith("quartier.referrals.")}


ERASE = """mutation($input: RequestErasureInput!) { requestErasure(input: $input) {
  __typename ... on Error { code message } } }"""


async def published_schemas(system: System) -> tuple[dict[str, Any], dict[str, Any]]:
    """The CloudEvents envelope's schema and each event type's, from the API."""
    index = (await system.client.get("/v1/schemas")).json()
    envelope = (await system.client.get(index["envelope"])).json()
    schemas: dict[str, Any] = {}
    for entry in index["events"]:
        schemas[entry["type"]] = (await system.client.get(entry["schema"])).json()
    return envelope, schemas


async def validate_published(system: System, events: list[dict[str, Any]]) -> set[str]:
    """Each event (CloudEvents JSON) against the published schemas; the types seen."""
    envelope, schemas = await published_schemas(system)
    seen: set[str] = set()
    for event in events:
        jsonschema.validate(event, envelope)
        schema = schemas[event["type"]]  # every type has its schema
        jsonschema.Draft202012Validator(schema).validate(event["data"])
        seen.add(event["type"])
    return seen


async def test_every_event_of_a_realistic_run_validates_against_its_schema(
    system: System, clock: MovableClock
) -> None:
    net = await open_network(system, "pole-11e")
    admin = net.admin
    karim = await join(system, net, "karim@pole.example", "Karim Benali", "plumber", work=IN_11E)
    ines = await join(
        system, net, "ines@pole.example", "Inès Moreau", "translator", home=NEAR_VOLTAIRE
    )
    paul = await join(system, net, "paul@pole.example", "Paul Girard", "electrician", work=IN_11E)
    sent = await mutate(system, "inviteMember", {"email": "oops@pole.example"}, admin.access)
    await succeed(
        system,
        "revokeInvitation",
        {"invitationId": sent["invitationId"]},
        admin,
        "InvitationRevoked",
    )
    await succeed(system, "updateProfileCard", {"offers": "Dépannage"}, karim, "ProfileCardUpdated")
    await succeed(
        system, "setTenantAdmin", {"memberId": paul.id, "admin": True}, admin, "TenantAdminSet"
    )
    paul = await login(system, paul.email)  # a change of roles ended his sessions

    hub = await create_hub(system, net, rules=STORY_RULES)
    n_karim = await nominate(system, admin, hub, karim)
    n_paul = await nominate(system, admin, hub, paul)
    clock.advance(days=8)
    await until_member(system, hub["id"], admin, karim)
    await until_member(system, hub["id"], admin, paul)
    await until_status(system, hub["id"], admin, n_karim["id"], "ADMITTED")
    await until_status(system, hub["id"], admin, n_paul["id"], "ADMITTED")

    # an objection, then the admins decide; a candidate by e-mail joins the network
    n_ines = await nominate(system, admin, hub, ines)
    await succeed(
        system,
        "raiseObjection",
        {"hubId": hub["id"], "nominationId": n_ines["id"], "reason": "Je ne la connais pas"},
        karim,
        "NominationPayload",
    )
    by_email = await succeed(
        system,
        "nominateCandidate",
        {"hubId": hub["id"], "email": "sofia@pole.example"},
        admin,
        "NominationPayload",
    )
    await succeed(
        system,
        "acceptInvitation",
        {
            "token": mailed_tokens(system.settings.mail_dir)["sofia@pole.example"],
            "password": PASSWORD,
            "card": {"displayName": "Sofia", "activityCode": "baker", "work": IN_11E},
        },
        karim,  # any session: the mutation is anonymous
        "AuthPayload",
    )
    await until_status(system, hub["id"], admin, by_email["nomination"]["id"], "OPEN")
    clock.advance(days=8)
    await until_status(system, hub["id"], admin, n_ines["id"], "AWAITING_DECISION")
    await succeed(
        system,
        "rejectCandidate",
        {"hubId": hub["id"], "nominationId": n_ines["id"], "reason": "Pas cette fois"},
        admin,
        "NominationPayload",
    )
    await succeed(
        system,
        "changeHubRules",
        {"hubId": hub["id"], "rules": {"objectionWindowDays": 3}, "reason": "Plus court"},
        admin,
        "HubPayload",
    )
    co_admin = {"hubId": hub["id"], "memberId": karim.id}
    await succeed(system, "addHubCoAdmin", co_admin, admin, "HubPayload")
    await succeed(system, "removeHubCoAdmin", co_admin, admin, "HubPayload")
    await succeed(system, "volunteerAsFacilitator", {"hubId": hub["id"]}, karim, "HubPayload")
    await succeed(system, "handOverFacilitation", {"hubId": hub["id"]}, admin, "HubPayload")
    await succeed(system, "leaveHub", {"hubId": hub["id"]}, paul, "LeftHub")
    await succeed(
        system,
        "removeHubMember",
        {"hubId": hub["id"], "memberId": karim.id, "reason": "Parti en province"},
        admin,
        "HubMemberRemoved",
    )

    sofia = await login(system, "sofia@pole.example")
    await word_of_mouth(system, clock, net, ines, sofia)

    await succeed(system, "setTenantLocale", {"locale": "EN"}, admin, "TenantLocaleSet")
    # an analytics consumer's key, made and revoked; Paul, who left, asks to be erased
    _, key = await create_key(system, net, ["EVENTS_READ"])
    assert (await revoke(system, net, key["id"]))["__typename"] == "ApiKeyRevoked"
    erased = await system.gql(ERASE, {"input": {"memberId": paul.id}}, admin.access)
    assert erased["data"]["requestErasure"]["__typename"] == "ErasureRequested", erased

    # the consumer's side: the whole history over HTTP, the schemas from the API
    async def history() -> list[dict[str, Any]] | None:
        response = await system.client.get(
            "/v1/events", headers={"Authorization": f"Bearer {admin.access}"}
        )
        events = [json.loads(line) for line in response.text.splitlines() if line]
        names = {e["type"].split(".")[2] for e in events}
        wanted = {
            "MemberRemoved",
            "MemberJoined",
            "TenantLocaleChanged",
            "MemberErased",
            *REFERRALS_EVENTS,
        }
        return events if wanted <= names else None

    events = await eventually(history)
    seen = await validate_published(system, events)
    missing = set(event_schemas()) - seen - NOT_PRODUCED_HERE
    assert not missing, f"the run produced no {sorted(missing)}: extend it"


async def login(system: System, email: str) -> Session:
    payload = await mutate(
        system, "login", {"tenant": "pole-11e", "email": email, "password": PASSWORD}
    )
    assert payload["__typename"] == "AuthPayload", payload
    return Session(
        access=payload["accessToken"],
        refresh=payload["refreshToken"],
        id=payload["member"]["id"],
        member_id=payload["member"]["memberId"],
        email=email,
    )


async def word_of_mouth(
    system: System, clock: MovableClock, net: Network, ines: Session, sofia: Session
) -> None:
    """Every referrals event: slips won, declined and lost, a thanks without a
    slip, a confirmed one-to-one, a need answered and met, another released.
    Between the admin (still in the hub), Inès (never admitted) and Sofia:
    Karim and Paul left the hub, which may make them former members."""
    from services.referrals.views import directory

    admin = net.admin

    def known() -> bool:
        with system.hosts["referrals"].engine.connect() as conn:
            return all(
                directory.is_active_member(conn, net.tenant_id, m.member_id)
                for m in (admin, ines, sofia)
            )

    await eventually(known)
    prospect = {"name": "Boulangerie Dupain", "email": "contact@dupain.example"}

    async def give(giver: Session, receiver: Session) -> dict[str, str]:
        given = await done(
            system,
            "giveReferral",
            {"receiverId": receiver.id, "about": "Un client", "warmth": 3, "prospect": prospect},
            giver,
            "SlipPayload",
        )
        return {"referralId": given["slip"]["id"]}

    won, declined, lost = await give(ines, admin), await give(ines, admin), await give(sofia, admin)
    for slip in (won, lost):
        await done(system, "acceptReferral", slip, admin, "SlipPayload")
        await done(system, "markReferralContacted", slip, admin, "SlipPayload")
    await done(
        system, "markReferralWon", {**won, "value": {"amount": "1200.50"}}, admin, "SlipPayload"
    )
    await done(system, "markReferralLost", {**lost, "reason": "Trop cher"}, admin, "SlipPayload")
    await done(system, "declineReferral", {**declined, "reason": "Hors zone"}, admin, "SlipPayload")
    await done(
        system,
        "recordThanks",
        {"giverId": sofia.id, "value": {"amount": "300", "currency": "CHF"}, "about": "Merci"},
        admin,
        "ThanksPayload",
    )
    today = clock.now().date().isoformat()
    met = await done(
        system, "logOneToOne", {"otherId": sofia.id, "metOn": today}, ines, "OneToOnePayload"
    )
    await done(
        system,
        "confirmOneToOne",
        {"oneToOneId": met["oneToOne"]["id"]},
        sofia,
        "OneToOnePayload",
    )
    need = (await done(system, "postNeed", {"activityCodes": ["baker"]}, ines, "NeedPayload"))[
        "need"
    ]
    await done(system, "answerNeed", {"needId": need["id"], "message": "Oui"}, sofia, "NeedPayload")
    await done(
        system, "markNeedMet", {"needId": need["id"], "memberId": sofia.id}, ines, "NeedPayload"
    )
    other = (await done(system, "postNeed", {"words": "traiteur"}, ines, "NeedPayload"))["need"]
    clock.advance(days=8)
    await done(system, "releaseNeed", {"needId": other["id"]}, ines, "NeedPayload")
