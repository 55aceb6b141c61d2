"""Accounts and sessions through the gateway, as a client (or an attacker
holding an earlier token) would: the gateway authorises with identity's
current state of the token's session (roles now; ended sessions refused),
hub rights come from the hub's current co-admins, sessions are listed and
revoked by their owner, sign-in is throttled, a password is reset by e-mail.
(docs/security.md, "Accounts and sessions".)"""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from services.identity.outbox import pending_count
from tests.e2e.conftest import (
    Session,
    System,
    join,
    mutate,
    open_network,
)
from tests.support.env import JWT_SECRET
from tests.support.identity import PASSWORD
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio
# the tests that exhaust no budget share one system per store, each in networks
# of its own; the throttling test keeps its own (its failed sign-ins count
# against the client address every test signs in from)
shared = pytest.mark.shared_system

VOLTAIRE = {"centre": {"lat": 48.8575, "lon": 2.3795}, "radiusKm": 1.5}
IN_11E = {"lat": 48.8560, "lon": 2.3750, "postcode": "75011"}
NEW_PASSWORD = "a new and long passphrase"

ERR = "... on Error { __typename code message }"
SESSIONS = "{ sessions { id startedAt lastUsedAt expiresAt current } }"
REVOKE = (
    "mutation($input: RevokeSessionInput!) { revokeSession(input: $input) {"
    f" __typename ... on SessionRevoked {{ sessionId }} {ERR} }} }}"
)
LOGIN = (
    "mutation($input: LoginInput!) { login(input: $input) { __typename"
    " ... on AuthPayload { accessToken refreshToken member { id memberId } }"
    " ... on TooManyAttempts { retryAfterSeconds }"
    f" {ERR} }} }}"
)
REQUEST_RESET = (
    "mutation($input: RequestPasswordResetInput!) { requestPasswordReset(input: $input) {"
    f" __typename ... on PasswordResetRequested {{ ok }} {ERR} }} }}"
)
RESET = (
    "mutation($input: ResetPasswordInput!) { resetPassword(input: $input) {"
    f" __typename ... on PasswordReset {{ ok }} {ERR} }} }}"
)
ME = "{ me { memberId roles isTenantAdmin } }"


def sid_of(access: str) -> str:
    return str(jwt.decode(access, options={"verify_signature": False})["sid"])


def code_of(answer: dict[str, Any]) -> str:
    assert answer.get("errors"), answer
    return str(answer["errors"][0]["extensions"]["code"])


async def sign_in(system: System, slug: str, address: str, password: str = PASSWORD) -> Session:
    answer = await system.gql(
        LOGIN, {"input": {"tenant": slug, "email": address, "password": password}}
    )
    result = answer["data"]["login"]
    assert result["__typename"] == "AuthPayload", result
    return Session(
        access=result["accessToken"],
        refresh=result["refreshToken"],
        id=result["member"]["id"],
        member_id=result["member"]["memberId"],
        email=address,
    )


async def create_hub(system: System, token: str) -> dict[str, Any]:
    created = await mutate(
        system, "createHub", {"name": "Voltaire", "kind": "NEIGHBOURHOOD", "area": VOLTAIRE}, token
    )
    assert created["__typename"] == "HubPayload", created
    return dict(created["hub"])


@shared
async def test_a_demoted_admin_s_earlier_token_is_refused_everywhere(system: System) -> None:
    net = await open_network(system, "pole-stale")
    bea = await join(system, net, "bea@stale.example", "Bea", work=IN_11E)
    promoted = await mutate(
        system, "setTenantAdmin", {"memberId": bea.id, "admin": True}, net.admin.access
    )
    assert promoted["__typename"] == "TenantAdminSet"
    bea = await sign_in(system, net.slug, bea.email)  # her sessions ended: she signs in again
    hub = await create_hub(system, bea.access)
    demoted = await mutate(
        system, "setTenantAdmin", {"memberId": bea.id, "admin": False}, net.admin.access
    )
    assert demoted["member"]["roles"] == []
    before = {s: await system.event_count(s) for s in ("identity", "hubs")}
    # her earlier token: signed, unexpired, says tenant_admin; every use is refused
    for name, input in (
        ("setTenantAdmin", {"memberId": bea.id, "admin": True}),
        ("setTenantAdmin", {"memberId": net.admin.id, "admin": False}),
        ("inviteMember", {"email": "accomplice@stale.example", "asAdmin": True}),
        ("setTenantLocale", {"locale": "EN"}),
        ("createHub", {"name": "Mine", "kind": "NEIGHBOURHOOD", "area": VOLTAIRE}),
        ("changeHubRules", {"hubId": hub["id"], "rules": {"maxVisits": 9}}),
        ("addHubCoAdmin", {"hubId": hub["id"], "memberId": bea.id}),
    ):
        result = await mutate(system, name, input, bea.access)
        assert result["__typename"] == "Unauthenticated", (name, result)
    assert code_of(await system.gql(ME, token=bea.access)) == "UNAUTHENTICATED"
    stream = await system.client.get(
        "/v1/events", headers={"Authorization": f"Bearer {bea.access}"}
    )
    assert stream.status_code == 401
    refreshed = await mutate(system, "refreshSession", {"refreshToken": bea.refresh})
    assert refreshed["__typename"] == "InvalidToken"
    # signed in again, she is a member like any other
    bea = await sign_in(system, net.slug, bea.email)
    me = await system.gql(ME, token=bea.access)
    assert me["data"]["me"] == {"memberId": bea.member_id, "roles": [], "isTenantAdmin": False}
    for name, input in (
        ("setTenantAdmin", {"memberId": bea.id, "admin": True}),
        ("inviteMember", {"email": "accomplice@stale.example", "asAdmin": True}),
        ("createHub", {"name": "Mine", "kind": "NEIGHBOURHOOD", "area": VOLTAIRE}),
    ):
        result = await mutate(system, name, input, bea.access)
        assert result["__typename"] == "Forbidden", (name, result)
    assert {s: await system.event_count(s) for s in ("identity", "hubs")} == {
        "identity": before["identity"] + 1,  # her sign-in
        "hubs": before["hubs"],
    }


@shared
async def test_roles_claimed_by_a_token_are_not_believed(system: System) -> None:
    """A token signed with the right secret that claims tenant_admin for a
    member's live session (the worst case: the claims themselves lie) gets
    the member's current roles, not the claimed ones."""
    net = await open_network(system, "pole-claims")
    carl = await join(system, net, "carl@claims.example", "Carl")
    claims = jwt.decode(carl.access, options={"verify_signature": False})
    claims["roles"] = ["tenant_admin"]
    claims["exp"] = int((datetime.now(UTC) + timedelta(minutes=5)).timestamp())
    lying = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
    me = await system.gql(ME, token=lying)
    assert me["data"]["me"]["roles"] == []
    result = await mutate(system, "setTenantAdmin", {"memberId": carl.id, "admin": True}, lying)
    assert result["__typename"] == "Forbidden", result
    # a token naming another member's session, or a made-up one, is refused
    for sid in (sid_of(net.admin.access), "00000000-0000-4000-8000-000000000000"):
        forged = jwt.encode({**claims, "sid": sid}, JWT_SECRET, algorithm="HS256")
        assert code_of(await system.gql(ME, token=forged)) == "UNAUTHENTICATED"
    unsigned = dict(claims)
    del unsigned["sid"]
    no_sid = jwt.encode(unsigned, JWT_SECRET, algorithm="HS256")
    assert code_of(await system.gql(ME, token=no_sid)) == "UNAUTHENTICATED"


@shared
async def test_a_removed_hub_co_admin_s_rights_end_with_the_removal(system: System) -> None:
    net = await open_network(system, "pole-coadmin")
    dana = await join(system, net, "dana@coadmin.example", "Dana", "baker", work=IN_11E)
    hub = await create_hub(system, net.admin.access)
    nominated = await mutate(
        system, "nominateCandidate", {"hubId": hub["id"], "candidateId": dana.id}, net.admin.access
    )
    admitted = await mutate(
        system,
        "admitCandidate",
        {"hubId": hub["id"], "nominationId": nominated["nomination"]["id"]},
        net.admin.access,
    )
    assert admitted["__typename"] == "NominationPayload", admitted
    added = await mutate(
        system, "addHubCoAdmin", {"hubId": hub["id"], "memberId": dana.id}, net.admin.access
    )
    assert added["__typename"] == "HubPayload", added
    changed = await mutate(
        system, "changeHubRules", {"hubId": hub["id"], "rules": {"maxVisits": 4}}, dana.access
    )
    assert changed["__typename"] == "HubPayload", changed
    removed = await mutate(
        system, "removeHubCoAdmin", {"hubId": hub["id"], "memberId": dana.id}, net.admin.access
    )
    assert removed["__typename"] == "HubPayload", removed
    before = await system.event_count("hubs")
    # the same token, its session still on: the hub's current co-admins decide
    for name, input in (
        ("changeHubRules", {"hubId": hub["id"], "rules": {"maxVisits": 9}}),
        ("addHubCoAdmin", {"hubId": hub["id"], "memberId": dana.id}),
        ("removeHubCoAdmin", {"hubId": hub["id"], "memberId": net.admin.id}),
        ("removeHubMember", {"hubId": hub["id"], "memberId": net.admin.id, "reason": "mine"}),
    ):
        result = await mutate(system, name, input, dana.access)
        assert result["__typename"] == "Forbidden", (name, result)
    assert await system.event_count("hubs") == before


@shared
async def test_sessions_are_listed_and_revoked_by_their_owner(system: System) -> None:
    net = await open_network(system, "pole-devices")
    eve = await join(system, net, "eve@devices.example", "Eve")
    phone = await sign_in(system, net.slug, eve.email)
    listed = (await system.gql(SESSIONS, token=eve.access))["data"]["sessions"]
    assert len(listed) == 2
    assert [s["current"] for s in listed].count(True) == 1
    phone_id = next(s["id"] for s in listed if not s["current"])
    # another member cannot end it (answered like a missing one)
    other = await system.gql(REVOKE, {"input": {"sessionId": phone_id}}, net.admin.access)
    assert other["data"]["revokeSession"]["__typename"] == "NotFound"
    anonymous = await system.gql(REVOKE, {"input": {"sessionId": phone_id}})
    assert anonymous["data"]["revokeSession"]["__typename"] == "Unauthenticated"
    bad_id = await system.gql(REVOKE, {"input": {"sessionId": "not-an-id"}}, eve.access)
    assert bad_id["data"]["revokeSession"]["__typename"] == "ValidationError"
    assert (await system.gql(ME, token=phone.access))["data"]["me"]
    revoked = await system.gql(REVOKE, {"input": {"sessionId": phone_id}}, eve.access)
    assert revoked["data"]["revokeSession"] == {
        "__typename": "SessionRevoked",
        "sessionId": phone_id,
    }
    assert code_of(await system.gql(ME, token=phone.access)) == "UNAUTHENTICATED"
    again = await mutate(system, "refreshSession", {"refreshToken": phone.refresh})
    assert again["__typename"] == "InvalidToken"
    listed = (await system.gql(SESSIONS, token=eve.access))["data"]["sessions"]
    assert [s["current"] for s in listed] == [True]
    assert code_of(await system.gql(SESSIONS)) == "UNAUTHENTICATED"


@shared
async def test_a_password_change_signs_the_other_devices_out(system: System) -> None:
    net = await open_network(system, "pole-change")
    fay = await join(system, net, "fay@change.example", "Fay")
    stolen = await sign_in(system, net.slug, fay.email)
    changed = await mutate(
        system,
        "changePassword",
        {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD},
        fay.access,
    )
    assert changed == {"__typename": "PasswordChanged", "ok": True}
    assert code_of(await system.gql(ME, token=stolen.access)) == "UNAUTHENTICATED"
    refreshed = await mutate(system, "refreshSession", {"refreshToken": stolen.refresh})
    assert refreshed["__typename"] == "InvalidToken"
    assert (await system.gql(ME, token=fay.access))["data"]["me"]["memberId"] == fay.member_id


async def test_sign_in_is_throttled_with_a_wait_to_respect(system: System) -> None:
    net = await open_network(system, "pole-throttle")
    answers = []
    for _ in range(8):
        answer = await system.gql(
            LOGIN,
            {"input": {"tenant": net.slug, "email": net.admin.email, "password": "guess-1234"}},
        )
        answers.append(answer["data"]["login"])
    kinds = [a["__typename"] for a in answers]
    assert kinds == ["InvalidCredentials"] * 5 + ["TooManyAttempts"] * 3
    assert all(a["retryAfterSeconds"] >= 1 for a in answers[5:])
    assert answers[-1]["code"] == "rate_limited"
    right = await system.gql(
        LOGIN, {"input": {"tenant": net.slug, "email": net.admin.email, "password": PASSWORD}}
    )
    assert right["data"]["login"]["__typename"] == "TooManyAttempts"


@shared
async def test_password_reset_by_mail(system: System) -> None:
    net = await open_network(system, "pole-forgot")
    gus = await join(system, net, "gus@forgot.example", "Gus")
    other = await open_network(system, "pole-other")
    for slug, address in (
        (net.slug, "GUS@forgot.example"),
        (net.slug, "nobody@forgot.example"),
        ("no-such-net", "gus@forgot.example"),
    ):
        answer = await system.gql(REQUEST_RESET, {"input": {"tenant": slug, "email": address}})
        assert answer.get("data"), answer
        assert answer["data"]["requestPasswordReset"] == {
            "__typename": "PasswordResetRequested",
            "ok": True,
        }
    engine = system.hosts["identity"].context["engine"]
    await eventually(lambda: pending_count(engine) == 0)  # mailed out of the request
    mails = [
        email.message_from_bytes(p.read_bytes())
        for p in sorted(system.settings.mail_dir.glob("*.eml"))
    ]
    resets = [m for m in mails if m["X-Quartier-Kind"] == "password-reset"]
    assert [str(m["To"]) for m in resets] == ["gus@forgot.example"]
    body = resets[0].get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "/reset-password?token=" in body
    token = body.split("token=", 1)[1].split()[0].split("&")[0]
    wrong_network = await system.gql(
        RESET, {"input": {"tenant": other.slug, "token": token, "newPassword": NEW_PASSWORD}}
    )
    assert wrong_network["data"]["resetPassword"]["__typename"] == "InvalidToken"
    short = await system.gql(
        RESET, {"input": {"tenant": net.slug, "token": token, "newPassword": "short"}}
    )
    assert short["data"]["resetPassword"]["__typename"] == "ValidationError"
    done = await system.gql(
        RESET, {"input": {"tenant": net.slug, "token": token, "newPassword": NEW_PASSWORD}}
    )
    assert done["data"]["resetPassword"] == {"__typename": "PasswordReset", "ok": True}
    assert code_of(await system.gql(ME, token=gus.access)) == "UNAUTHENTICATED"
    again = await system.gql(
        RESET, {"input": {"tenant": net.slug, "token": token, "newPassword": PASSWORD}}
    )
    assert again["data"]["resetPassword"]["__typename"] == "InvalidToken"
    signed_in = await sign_in(system, net.slug, gus.email, NEW_PASSWORD)
    assert signed_in.member_id == gus.member_id
