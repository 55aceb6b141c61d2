"""Identity through the GraphQL gateway, over real HTTP, as a client would:
the operator opens a network, members are invited, accept, sign in, keep
their card and find each other. Then every mutation's bad inputs: each gets
its typed error in the result union and changes nothing."""

from __future__ import annotations

import base64
import json
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from jwt.warnings import InsecureKeyLengthWarning

from services.runtime.auth import AUDIENCE, ISSUER
from services.runtime.clock import MovableClock
from tests.e2e.conftest import (
    CARD_FIELDS,
    Network,
    Session,
    System,
    assert_error,
    card_input,
    invite,
    join,
    mutate,
    open_network,
    session_of,
)
from tests.support.env import JWT_SECRET, OPERATOR_TOKEN
from tests.support.identity import PASSWORD, mailed_tokens

# one system per store for the module: each test opens its own networks (slugs
# of their own) and counts events relative to what it saw first
pytestmark = [pytest.mark.asyncio, pytest.mark.shared_system]

# -- GraphQL documents ---------------------------------------------------------

ME = "{ me { ...Card } }" + CARD_FIELDS
MEMBER = "query($id: ID!) { member(id: $id) { ...Card } }" + CARD_FIELDS
NODE = "query($id: ID!) { node(id: $id) { __typename id ... on Member { displayName } } }"
MEMBERS = (
    "query($first: Int, $after: String, $activity: String, $text: String,"
    " $near: GeoPointInput, $radiusKm: Float) {"
    " members(first: $first, after: $after, activity: $activity, text: $text,"
    " near: $near, radiusKm: $radiusKm) {"
    " totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
    " edges { cursor node { id memberId displayName email distanceKm work { lat } } } } }"
)
INVITATIONS = (
    "query($first: Int, $after: String, $status: String) {"
    " invitations(first: $first, after: $after, status: $status) {"
    " pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
    " edges { cursor node { id invitationId email status invitedBy { displayName } } } } }"
)


def top_level_error(answer: dict[str, Any]) -> dict[str, Any]:
    assert answer.get("errors"), answer
    return answer["errors"][0]


async def pending_invitation_id(system: System, net: Network, email: str) -> str:
    answer = await system.gql(INVITATIONS, {"status": "pending", "first": 50}, net.admin.access)
    ids = [
        e["node"]["id"]
        for e in answer["data"]["invitations"]["edges"]
        if e["node"]["email"] == email
    ]
    assert len(ids) == 1, answer
    return ids[0]


def global_id(type_name: str, raw: str) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{raw}".encode()).decode()


# -- forged and expired credentials --------------------------------------------


def claims_of(session: Session, net: Network, **changes: Any) -> dict[str, Any]:
    """Claims like services.runtime.auth.issue_access_token's."""
    now = datetime.now(UTC)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": session.member_id,
        "tid": net.tenant_id,
        "ten": net.slug,
        "roles": ["tenant_admin"],
        "sid": jwt.decode(session.access, options={"verify_signature": False})["sid"],
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=15)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


BAD_CREDENTIALS = [
    "missing",
    "expired",
    "wrong-signature",
    "alg-none",
    "other-algorithm",
    "tampered-claims",
    "wrong-audience",
    "no-tenant-claim",
    "garbage",
    "garbage-in-three-parts",
    "not-bearer",
]


def bad_credential(kind: str, session: Session, net: Network) -> dict[str, str]:
    """The Authorization header of a bad credential for `session`'s member (an
    admin: only the defect can be why it is refused)."""
    past = datetime.now(UTC) - timedelta(hours=1)
    token: str | None
    match kind:
        case "missing":
            return {}
        case "expired":
            token = jwt.encode(
                claims_of(
                    session,
                    net,
                    iat=int((past - timedelta(minutes=15)).timestamp()),
                    exp=int(past.timestamp()),
                ),
                JWT_SECRET,
                algorithm="HS256",
            )
        case "wrong-signature":
            token = jwt.encode(claims_of(session, net), "another-secret-" + "y" * 40, "HS256")
        case "alg-none":
            token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims_of(session, net))}."
        case "other-algorithm":
            # the right secret, but an algorithm off the pinned list
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", InsecureKeyLengthWarning)
                token = jwt.encode(claims_of(session, net), JWT_SECRET, algorithm="HS512")
        case "tampered-claims":
            # a real token, its subject changed after signing (impersonation)
            header, _, signature = session.access.split(".")
            claims = jwt.decode(session.access, options={"verify_signature": False})
            token = f"{header}.{_b64({**claims, 'sub': str(uuid.uuid4())})}.{signature}"
        case "wrong-audience":
            token = jwt.encode(claims_of(session, net, aud="elsewhere"), JWT_SECRET, "HS256")
        case "no-tenant-claim":
            token = jwt.encode(claims_of(session, net, tid=None), JWT_SECRET, "HS256")
        case "garbage":
            token = "garbage"
        case "garbage-in-three-parts":
            token = "not.a.jwt"
        case "not-bearer":
            return {"Authorization": f"Basic {session.access}"}
        case _:
            raise AssertionError(kind)
    return {"Authorization": f"Bearer {token}"}


# == the story =================================================================


async def test_invite_accept_login_update_card_search(system: System) -> None:
    # the platform operator opens a network; the admin's token goes by mail too
    created = await mutate(
        system,
        "createTenant",
        {"slug": "pole-11e", "name": "Pôle Paris 11e", "adminEmail": "admin@pole.example"},
        OPERATOR_TOKEN,
    )
    assert created["__typename"] == "TenantCreated"
    assert created["tenant"]["slug"] == "pole-11e"
    mailed = mailed_tokens(system.settings.mail_dir)
    assert created["adminInvitation"]["token"] == mailed["admin@pole.example"]
    # the sign-up page shows the network's name and the profession taxonomy
    tenant = await system.gql('{ tenant(slug: "pole-11e") { id tenantId name } }')
    assert tenant["data"]["tenant"]["name"] == "Pôle Paris 11e"
    assert (await system.gql('{ tenant(slug: "nowhere") { id } }'))["data"]["tenant"] is None
    professions = await system.gql("{ professions { code label labelEn sector } }")
    codes = {p["code"] for p in professions["data"]["professions"]}
    assert {"plumber", "electrician", "management-consultant"} <= codes

    # the admin accepts with the token from the mail
    accepted = await mutate(
        system,
        "acceptInvitation",
        {
            "token": mailed["admin@pole.example"],
            "password": PASSWORD,
            "card": card_input(
                "Aline", "management-consultant", work={"lat": 48.8575, "lon": 2.3795}
            ),
        },
    )
    admin = session_of(accepted, "admin@pole.example")
    assert accepted["tenantSlug"] == "pole-11e"
    assert accepted["member"]["roles"] == ["tenant_admin"]
    assert accepted["member"]["isTenantAdmin"] is True
    net = Network("pole-11e", created["tenant"]["tenantId"], admin)

    # the admin invites Karim, who accepts from the mail, then signs in
    token = await invite(system, net, "karim@pole.example")
    accepted = await mutate(
        system,
        "acceptInvitation",
        {
            "token": token,
            "password": PASSWORD,
            "card": card_input("Karim", "plumber", businessName="Plomberie K"),
        },
    )
    assert accepted["member"]["roles"] == []
    login = await mutate(
        system,
        "login",
        {"tenant": "pole-11e", "email": "karim@pole.example", "password": PASSWORD},
    )
    karim = session_of(login, "karim@pole.example")
    me = await system.gql(ME, token=karim.access)
    assert me["data"]["me"]["displayName"] == "Karim"
    assert me["data"]["me"]["email"] == "karim@pole.example"

    # Karim fills in his card; fields left out stay
    updated = await mutate(
        system,
        "updateProfileCard",
        {
            "offers": "Dépannage de chauffe-eau",
            "seeks": "Un électricien",
            "links": ["https://plomberie-k.example"],
            "work": {"lat": 48.8560, "lon": 2.3750, "postcode": "75011"},
        },
        karim.access,
    )
    card = updated["member"]
    assert card["offers"] == "Dépannage de chauffe-eau"
    assert card["businessName"] == "Plomberie K"
    assert card["work"] == {"lat": 48.856, "lon": 2.375, "postcode": "75011"}
    assert card["activityLabel"]

    # the admin finds him by words (case and accents folded), activity, place
    by_words = await system.gql(MEMBERS, {"text": "chauffe EAU"}, admin.access)
    edges = by_words["data"]["members"]["edges"]
    assert [e["node"]["memberId"] for e in edges] == [karim.member_id]
    assert edges[0]["node"]["email"] == "karim@pole.example"  # admins see addresses
    assert edges[0]["node"]["work"] is None  # only the member sees coordinates
    accents = await system.gql(MEMBERS, {"text": "electricien"}, admin.access)
    assert [e["node"]["memberId"] for e in accents["data"]["members"]["edges"]] == [karim.member_id]
    by_activity = await system.gql(MEMBERS, {"activity": "plumber"}, admin.access)
    assert by_activity["data"]["members"]["totalCount"] == 1
    near = await system.gql(
        MEMBERS, {"near": {"lat": 48.8575, "lon": 2.3795}, "radiusKm": 2}, admin.access
    )
    found = [e["node"] for e in near["data"]["members"]["edges"]]
    assert [m["memberId"] for m in found] == [admin.member_id, karim.member_id]
    # coarse distances (a ~500 m grid cell, steps of 0.5 km): no address to deduce
    assert found[0]["distanceKm"] in (0.0, 0.5) and found[1]["distanceKm"] <= 2
    assert all(m["distanceKm"] % 0.5 == 0 for m in found)

    # Karim sees the admin's card, but not the address
    seen = await system.gql(MEMBER, {"id": admin.id}, karim.access)
    assert seen["data"]["member"]["displayName"] == "Aline"
    assert seen["data"]["member"]["email"] is None
    node = await system.gql(NODE, {"id": karim.id}, admin.access)
    assert node["data"]["node"] == {"__typename": "Member", "id": karim.id, "displayName": "Karim"}

    # the admin's view of invitations
    invitations = await system.gql(INVITATIONS, {}, admin.access)
    statuses = {
        e["node"]["email"]: e["node"]["status"] for e in invitations["data"]["invitations"]["edges"]
    }
    assert statuses == {"admin@pole.example": "accepted", "karim@pole.example": "accepted"}

    # sessions: refresh rotates (even while the client still sends its expired
    # access token), logout ends, a new password works
    refreshed = await mutate(
        system,
        "refreshSession",
        {"refreshToken": karim.refresh},
        headers=bad_credential("expired", karim, net),
    )
    assert refreshed["__typename"] == "AuthPayload"
    assert refreshed["refreshToken"] != karim.refresh
    assert refreshed["member"]["memberId"] == karim.member_id
    out = await mutate(system, "logout", {"refreshToken": refreshed["refreshToken"]})
    assert out == {"__typename": "SignedOut", "ok": True}
    again = await mutate(system, "refreshSession", {"refreshToken": refreshed["refreshToken"]})
    assert_error(again, "InvalidToken", "invalid_token")
    # the logout ended the session, its access tokens too
    assert (await system.gql(ME, token=karim.access))["errors"][0]["extensions"]["code"] == (
        "UNAUTHENTICATED"
    )
    signed_in = await mutate(
        system, "login", {"tenant": "pole-11e", "email": "karim@pole.example", "password": PASSWORD}
    )
    changed = await mutate(
        system,
        "changePassword",
        {"currentPassword": PASSWORD, "newPassword": "a brand new password"},
        signed_in["accessToken"],
    )
    assert changed == {"__typename": "PasswordChanged", "ok": True}
    relogin = await mutate(
        system,
        "login",
        {"tenant": "pole-11e", "email": "karim@pole.example", "password": "a brand new password"},
    )
    assert relogin["__typename"] == "AuthPayload"

    # the admin makes Karim an admin too
    promoted = await mutate(
        system, "setTenantAdmin", {"memberId": karim.id, "admin": True}, admin.access
    )
    assert promoted["__typename"] == "TenantAdminSet"
    assert promoted["member"]["roles"] == ["tenant_admin"]


# == bad inputs, mutation by mutation ==========================================


async def test_create_tenant_refusals_change_nothing(system: System) -> None:
    net = await open_network(system, "pole-11e")
    member = await join(system, net, "m@pole.example", "Member")
    before = await system.event_count()
    good = {"slug": "other-net", "name": "Other", "adminEmail": "a@other.example"}

    for input, field in [
        ({**good, "slug": "A"}, "slug"),
        ({**good, "slug": "-bad-"}, "slug"),
        ({**good, "slug": "x" * 41}, "slug"),
        ({**good, "name": ""}, "name"),
        ({**good, "name": "   "}, "name"),
        ({**good, "name": "n" * 121}, "name"),
        ({**good, "adminEmail": "not-an-address"}, "adminEmail"),
    ]:
        result = await mutate(system, "createTenant", input, OPERATOR_TOKEN)
        assert_error(result, "ValidationError", "invalid_input", field=field)

    taken = await mutate(system, "createTenant", {**good, "slug": net.slug}, OPERATOR_TOKEN)
    assert_error(taken, "Conflict", "conflict", field="slug")

    # only the operator: a wrong operator token, no token, a member (even an admin)
    assert_error(
        await mutate(system, "createTenant", good, "not-the-operator-token"),
        "Unauthenticated",
        "unauthenticated",
    )
    assert_error(await mutate(system, "createTenant", good), "Unauthenticated", "unauthenticated")
    for session in (net.admin, member):
        assert_error(
            await mutate(system, "createTenant", good, session.access), "Forbidden", "forbidden"
        )
    for kind in BAD_CREDENTIALS:
        result = await mutate(
            system, "createTenant", good, headers=bad_credential(kind, net.admin, net)
        )
        assert_error(result, "Unauthenticated", "unauthenticated")

    assert await system.event_count() == before
    assert (await system.gql('{ tenant(slug: "other-net") { id } }'))["data"]["tenant"] is None


async def test_missing_expired_and_forged_tokens_change_nothing(system: System) -> None:
    """Every mutation that needs a signed-in member, with a valid input and
    every kind of bad credential (of an admin: only the defect can be why)."""
    net = await open_network(system, "pole-11e")
    member = await join(system, net, "m@pole.example", "Member")
    await invite(system, net, "pending@pole.example")
    pending = await pending_invitation_id(system, net, "pending@pole.example")
    valid = {
        # mutation: (a valid input, its success type)
        "inviteMember": ({"email": "new@pole.example"}, "InvitationSent"),
        "revokeInvitation": ({"invitationId": pending}, "InvitationRevoked"),
        "changePassword": (
            {"currentPassword": PASSWORD, "newPassword": "another password"},
            "PasswordChanged",
        ),
        "updateProfileCard": ({"displayName": "Someone else"}, "ProfileCardUpdated"),
        "setTenantAdmin": ({"memberId": member.id, "admin": True}, "TenantAdminSet"),
    }
    before = await system.event_count()
    for mutation, (input, _) in valid.items():
        for kind in BAD_CREDENTIALS:
            result = await mutate(
                system, mutation, input, headers=bad_credential(kind, net.admin, net)
            )
            assert_error(result, "Unauthenticated", "unauthenticated")
            if kind == "expired":
                assert "expired" in result["message"], result
    assert await system.event_count() == before
    # the same inputs with the admin's real token go through
    for mutation, (input, success) in valid.items():
        assert (await mutate(system, mutation, input, net.admin.access))["__typename"] == success


async def test_invite_member_refusals_change_nothing(system: System) -> None:
    net = await open_network(system, "pole-11e")
    member = await join(system, net, "m@pole.example", "Member")
    before = await system.event_count()
    mails = len(list(system.settings.mail_dir.glob("*.eml")))

    for email in ("nope", "", "a@b", "two@@pole.example", "x" * 250 + "@pole.example"):
        result = await mutate(system, "inviteMember", {"email": email}, net.admin.access)
        assert_error(result, "ValidationError", "invalid_input", field="email")
    taken = await mutate(system, "inviteMember", {"email": "m@pole.example"}, net.admin.access)
    assert_error(taken, "Conflict", "conflict", field="email")
    for as_admin in (False, True):  # only tenant admins invite
        result = await mutate(
            system, "inviteMember", {"email": "x@pole.example", "asAdmin": as_admin}, member.access
        )
        assert_error(result, "Forbidden", "forbidden")
    # the operator has no network to invite into through GraphQL
    result = await mutate(system, "inviteMember", {"email": "x@pole.example"}, OPERATOR_TOKEN)
    assert_error(result, "Unauthenticated", "unauthenticated")

    assert await system.event_count() == before
    assert len(list(system.settings.mail_dir.glob("*.eml"))) == mails  # nothing was mailed


async def test_revoke_invitation_refusals_change_nothing(system: System) -> None:
    net = await open_network(system, "pole-11e")
    other = await open_network(system, "other-net")
    member = await join(system, net, "m@pole.example", "Member")
    token = await invite(system, net, "pending@pole.example")
    pending = await pending_invitation_id(system, net, "pending@pole.example")
    await invite(system, other, "theirs@other.example")
    theirs = await pending_invitation_id(system, other, "theirs@other.example")
    accepted_id = next(
        e["node"]["id"]
        for e in (await system.gql(INVITATIONS, {"status": "accepted"}, net.admin.access))["data"][
            "invitations"
        ]["edges"]
        if e["node"]["email"] == "m@pole.example"
    )
    before = await system.event_count()

    def revoke(invitation_id: str, session: Session = net.admin) -> Any:
        return mutate(system, "revokeInvitation", {"invitationId": invitation_id}, session.access)

    for bad in ("garbage", "", global_id("Invitation", "not-a-uuid"), member.id):
        assert_error(await revoke(bad), "ValidationError", "invalid_input", field="invitationId")
    # another network's invitation is answered exactly like a missing one
    missing = await revoke(global_id("Invitation", str(uuid.uuid4())))
    assert_error(missing, "NotFound", "not_found")
    assert await revoke(theirs) == missing
    # a member's own id, dressed as an invitation id, is no invitation either
    assert await revoke(global_id("Invitation", member.member_id)) == missing
    # only admins; an accepted invitation cannot be withdrawn
    assert_error(await revoke(pending, member), "Forbidden", "forbidden")
    assert_error(await revoke(accepted_id), "Conflict", "conflict", field=None)

    assert await system.event_count() == before
    # still pending: the invitee can still join ...
    statuses = await system.gql(INVITATIONS, {"status": "pending"}, net.admin.access)
    assert [e["node"]["id"] for e in statuses["data"]["invitations"]["edges"]] == [pending]
    theirs_still = await system.gql(INVITATIONS, {"status": "pending"}, other.admin.access)
    assert [e["node"]["id"] for e in theirs_still["data"]["invitations"]["edges"]] == [theirs]
    # ... until the admin withdraws it, once
    assert (await revoke(pending))["__typename"] == "InvitationRevoked"
    assert_error(await revoke(pending), "Conflict", "conflict", field=None)
    refused = await mutate(
        system,
        "acceptInvitation",
        {"token": token, "password": PASSWORD, "card": card_input("Late")},
    )
    assert_error(refused, "InvalidToken", "invalid_token")
    assert "withdrawn" in refused["message"]


async def test_accept_invitation_refusals_change_nothing(
    system: System, clock: MovableClock
) -> None:
    net = await open_network(system, "pole-11e")
    token = await invite(system, net, "new@pole.example")
    # the same address invited twice (in other letter cases): one invitation, one mail
    first = await mutate(system, "inviteMember", {"email": "twice@pole.example"}, net.admin.access)
    first_twice = mailed_tokens(system.settings.mail_dir)["twice@pole.example"]
    again = await mutate(system, "inviteMember", {"email": "Twice@Pole.example"}, net.admin.access)
    assert again["invitationId"] == first["invitationId"]
    assert mailed_tokens(system.settings.mail_dir)["twice@pole.example"] == first_twice
    before = await system.event_count()

    def accept(token: str, password: str = PASSWORD, **card: Any) -> Any:
        return mutate(
            system,
            "acceptInvitation",
            {"token": token, "password": password, "card": card or card_input("New")},
        )

    selector = token.split(".", 1)[0]
    for bad in (
        "garbage",
        "",
        token[:-2] + ("xx" if not token.endswith("xx") else "yy"),
        f"{uuid.uuid4().hex}.{token.split('.', 1)[1]}",
        f"{selector}.",
        selector,
    ):
        assert_error(await accept(bad), "InvalidToken", "invalid_token")
    for password in ("short", " " * 12, "p" * 257):
        assert_error(
            await accept(token, password), "ValidationError", "invalid_input", field="password"
        )
    for card, field in [
        ({"activityCode": "plumber"}, "displayName"),
        (card_input(""), "displayName"),
        (card_input("x" * 81), "displayName"),
        ({"displayName": "New"}, "activityCode"),
        (card_input("New", "astronaut"), "activityCode"),
        (card_input("New", links=["javascript:alert(1)"]), "links"),
        (card_input("New", links=[f"https://e{i}.example" for i in range(6)]), "links"),
        (card_input("New", work={"lat": 91, "lon": 2}), "lat"),
        (card_input("New", work={"lat": 48.8}), "lat"),
        (card_input("New", home={"postcode": "!!"}), "postcode"),
        (card_input("New", home={}), "postcode"),
        (card_input("New", bio="x" * 2001), "bio"),
    ]:
        assert_error(await accept(token, **card), "ValidationError", "invalid_input", field=field)
    assert await system.event_count() == before

    # the invitation still works, once
    assert (await accept(token))["__typename"] == "AuthPayload"
    used = await accept(token)
    assert_error(used, "InvalidToken", "invalid_token")
    assert "already" in used["message"]
    # the invitation of an address invited twice works once
    assert (await accept(first_twice))["__typename"] == "AuthPayload"
    after = await system.event_count()
    assert_error(await accept(first_twice), "InvalidToken", "invalid_token")
    assert await system.event_count() == after

    # an invitation expires (the domain clock moves, no sleeping)
    late = await invite(system, net, "late@pole.example")
    after = await system.event_count()
    clock.advance(days=8)
    expired = await accept(late)
    assert_error(expired, "InvalidToken", "invalid_token")
    assert "expired" in expired["message"]
    assert await system.event_count() == after


async def test_login_refusals_say_nothing_and_change_nothing(system: System) -> None:
    net = await open_network(system, "pole-11e")
    other = await open_network(system, "other-net")
    before = await system.event_count()

    wrong = []
    for tenant, email, password in [
        (net.slug, net.admin.email, "not the password"),
        (net.slug, "nobody@pole.example", PASSWORD),
        (net.slug, "nope", PASSWORD),
        (net.slug, net.admin.email, ""),
        # a member of another network is unknown here
        (net.slug, other.admin.email, PASSWORD),
    ]:
        result = await mutate(
            system, "login", {"tenant": tenant, "email": email, "password": password}
        )
        assert_error(result, "InvalidCredentials", "invalid_credentials")
        wrong.append(result)
    assert all(r == wrong[0] for r in wrong)  # the same answer whatever was wrong
    nowhere = await mutate(
        system, "login", {"tenant": "nowhere", "email": net.admin.email, "password": PASSWORD}
    )
    assert_error(nowhere, "NotFound", "not_found")
    assert await system.event_count() == before


async def test_refresh_session_refusals(system: System, clock: MovableClock) -> None:
    net = await open_network(system, "pole-11e")
    before = await system.event_count()
    refresh = net.admin.refresh
    for bad in (
        "garbage",
        "",
        refresh[:-2] + ("xx" if not refresh.endswith("xx") else "yy"),
        f"{uuid.uuid4().hex}.{refresh.split('.', 1)[1]}",
        net.admin.access,  # an access token is not a refresh token
    ):
        result = await mutate(system, "refreshSession", {"refreshToken": bad})
        assert_error(result, "InvalidToken", "invalid_token")
    assert await system.event_count() == before

    # a spent token presented again after the grace for concurrent refreshes
    # revokes the whole session (by design; tests/e2e/test_identity_sessions.py)
    second = await mutate(system, "refreshSession", {"refreshToken": refresh})
    third = await mutate(system, "refreshSession", {"refreshToken": second["refreshToken"]})
    clock.advance(minutes=1)
    replayed = await mutate(system, "refreshSession", {"refreshToken": refresh})
    assert_error(replayed, "InvalidToken", "invalid_token")
    assert "revoked" in replayed["message"]
    after = await system.event_count()
    result = await mutate(system, "refreshSession", {"refreshToken": third["refreshToken"]})
    assert_error(result, "InvalidToken", "invalid_token")
    assert await system.event_count() == after

    # a session ends with the domain clock
    login = await mutate(
        system, "login", {"tenant": net.slug, "email": net.admin.email, "password": PASSWORD}
    )
    after = await system.event_count()
    clock.advance(days=31)
    result = await mutate(system, "refreshSession", {"refreshToken": login["refreshToken"]})
    assert_error(result, "InvalidToken", "invalid_token")
    assert "expired" in result["message"]
    assert await system.event_count() == after


async def test_logout_refusals_change_nothing(system: System) -> None:
    net = await open_network(system, "pole-11e")
    before = await system.event_count()
    refresh = net.admin.refresh
    for bad in (
        "garbage",
        "",
        refresh[:-2] + ("xx" if not refresh.endswith("xx") else "yy"),
        f"{uuid.uuid4().hex}.{refresh.split('.', 1)[1]}",
    ):
        result = await mutate(system, "logout", {"refreshToken": bad})
        assert_error(result, "InvalidToken", "invalid_token")
    assert await system.event_count() == before
    # the session still works
    assert (await mutate(system, "refreshSession", {"refreshToken": refresh}))[
        "__typename"
    ] == "AuthPayload"


async def test_change_password_refusals_change_nothing(system: System) -> None:
    net = await open_network(system, "pole-11e")
    before = await system.event_count()
    wrong = await mutate(
        system,
        "changePassword",
        {"currentPassword": "not the password", "newPassword": "a brand new password"},
        net.admin.access,
    )
    assert_error(wrong, "InvalidCredentials", "invalid_credentials")
    for new in ("short", " " * 12, "p" * 257):
        result = await mutate(
            system,
            "changePassword",
            {"currentPassword": PASSWORD, "newPassword": new},
            net.admin.access,
        )
        assert_error(result, "ValidationError", "invalid_input", field="newPassword")
    assert await system.event_count() == before
    # the old password still signs in, the refused ones do not
    old = await mutate(
        system, "login", {"tenant": net.slug, "email": net.admin.email, "password": PASSWORD}
    )
    assert old["__typename"] == "AuthPayload"
    refused = await mutate(
        system,
        "login",
        {"tenant": net.slug, "email": net.admin.email, "password": "a brand new password"},
    )
    assert_error(refused, "InvalidCredentials", "invalid_credentials")


async def test_update_profile_card_refusals_change_nothing(system: System) -> None:
    net = await open_network(system, "pole-11e")
    card_before = (await system.gql(ME, token=net.admin.access))["data"]["me"]
    before = await system.event_count()
    for changes, field in [
        ({"displayName": ""}, "displayName"),
        ({"displayName": None}, "displayName"),
        ({"displayName": "x" * 81}, "displayName"),
        ({"businessName": "x" * 121}, "businessName"),
        ({"activityCode": "astronaut"}, "activityCode"),
        ({"activityCode": None}, "activityCode"),
        ({"links": ["javascript:alert(1)"]}, "links"),
        ({"links": ["https://"]}, "links"),
        ({"links": [f"https://e{i}.example" for i in range(6)]}, "links"),
        ({"work": {"lat": 91, "lon": 2}}, "lat"),
        ({"work": {"lat": 48, "lon": 181}}, "lon"),
        ({"work": {"lat": 48.0}}, "lat"),
        ({"work": {}}, "postcode"),
        ({"home": {"postcode": "!!"}}, "postcode"),
        ({"bio": "x" * 2001}, "bio"),
        ({"offers": "x" * 1001}, "offers"),
        # a valid change with an invalid one: all or nothing
        ({"seeks": "Un électricien", "bio": "x" * 2001}, "bio"),
    ]:
        result = await mutate(system, "updateProfileCard", changes, net.admin.access)
        assert_error(result, "ValidationError", "invalid_input", field=field)
    # text that is not valid Unicode (a lone surrogate) is bad input, not a crash
    response = await system.client.post(
        "/graphql",
        content=(
            b'{"query": "mutation($c: ProfileCardInput!) { updateProfileCard(input: $c)'
            b' { __typename ... on ValidationError { code } } }",'
            b' "variables": {"c": {"bio": "\\ud800"}}}'
        ),
        headers={
            "content-type": "application/json",
            "authorization": f"Bearer {net.admin.access}",
        },
    )
    assert response.json()["data"]["updateProfileCard"] == {
        "__typename": "ValidationError",
        "code": "invalid_input",
    }
    # changing nothing is not a change
    same = await mutate(
        system, "updateProfileCard", {"displayName": card_before["displayName"]}, net.admin.access
    )
    assert same["member"] == card_before

    assert await system.event_count() == before
    assert (await system.gql(ME, token=net.admin.access))["data"]["me"] == card_before


async def test_set_tenant_admin_refusals_change_nothing(system: System) -> None:
    net = await open_network(system, "pole-11e")
    other = await open_network(system, "other-net")
    member = await join(system, net, "m@pole.example", "Member")
    theirs = await join(system, other, "m@other.example", "Theirs")
    before = await system.event_count()

    def set_admin(member_id: str, admin: bool = True, session: Session = net.admin) -> Any:
        return mutate(
            system, "setTenantAdmin", {"memberId": member_id, "admin": admin}, session.access
        )

    for bad in (
        "garbage",
        "",
        global_id("Member", "not-a-uuid"),
        global_id("Tenant", net.tenant_id),
    ):
        assert_error(await set_admin(bad), "ValidationError", "invalid_input", field="memberId")
    # another network's member is answered exactly like a missing one
    missing = await set_admin(global_id("Member", str(uuid.uuid4())))
    assert_error(missing, "NotFound", "not_found")
    assert await set_admin(theirs.id) == missing
    assert await set_admin(global_id("Member", net.tenant_id)) == missing
    # only admins, and a network keeps at least one
    assert_error(await set_admin(member.id, session=member), "Forbidden", "forbidden")
    assert_error(await set_admin(net.admin.id, False, member), "Forbidden", "forbidden")
    last = await set_admin(net.admin.id, False)
    assert_error(last, "RuleViolation", "rule_violation", rule="last_tenant_admin")

    assert await system.event_count() == before
    assert (await system.gql(ME, token=net.admin.access))["data"]["me"]["roles"] == ["tenant_admin"]
    seen = await system.gql(MEMBER, {"id": theirs.id}, other.admin.access)
    assert seen["data"]["member"]["roles"] == []


# == queries ===================================================================


async def test_me_is_null_when_anonymous_and_refused_tokens_are_errors(system: System) -> None:
    net = await open_network(system, "pole-11e")
    assert await system.gql(ME) == {"data": {"me": None}}
    me = await system.gql(ME, token=net.admin.access)
    assert me["data"]["me"]["id"] == net.admin.id
    # an expired or forged token is not "signed out": the client must refresh
    for kind in ("expired", "wrong-signature", "garbage"):
        response = await system.client.post(
            "/graphql", json={"query": ME}, headers=bad_credential(kind, net.admin, net)
        )
        error = top_level_error(response.json())
        assert error["extensions"]["code"] == "UNAUTHENTICATED"


async def test_member_directory_needs_a_member(system: System) -> None:
    net = await open_network(system, "pole-11e")
    for query, variables in [
        (MEMBERS, {}),
        (MEMBER, {"id": net.admin.id}),
        (NODE, {"id": net.admin.id}),
        (INVITATIONS, {}),
    ]:
        answer = await system.gql(query, variables)
        assert answer["data"] is None or all(v is None for v in answer["data"].values())
        assert top_level_error(answer)["extensions"]["code"] == "UNAUTHENTICATED"
    expired = await system.client.post(
        "/graphql", json={"query": MEMBERS}, headers=bad_credential("expired", net.admin, net)
    )
    error = top_level_error(expired.json())
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert "expired" in error["message"]
    # invitations are for admins only
    member = await join(system, net, "m@pole.example", "Member")
    answer = await system.gql(INVITATIONS, {}, member.access)
    assert top_level_error(answer)["extensions"]["code"] == "FORBIDDEN"


async def test_another_networks_members_are_invisible(system: System) -> None:
    net = await open_network(system, "pole-11e")
    other = await open_network(system, "other-net")
    theirs = await join(system, other, "m@other.example", "Theirs", offers="Chauffe-eau")
    random_id = global_id("Member", str(uuid.uuid4()))
    for query in (MEMBER, NODE):
        key = "member" if query is MEMBER else "node"
        for member_id in (theirs.id, random_id, other.admin.id):
            answer = await system.gql(query, {"id": member_id}, net.admin.access)
            assert answer == {"data": {key: None}}
    for variables in (
        {},
        {"text": "chauffe-eau"},
        {"near": {"lat": 48.8575, "lon": 2.3795}, "radiusKm": 50},
    ):
        page = await system.gql(MEMBERS, variables, net.admin.access)
        ids = {e["node"]["memberId"] for e in page["data"]["members"]["edges"]}
        assert theirs.member_id not in ids and other.admin.member_id not in ids
    # garbage ids are not found either, nor another network itself
    for garbage in ("garbage", global_id("Tenant", other.tenant_id)):
        answer = await system.gql(NODE, {"id": garbage}, net.admin.access)
        assert answer == {"data": {"node": None}}
    # other kinds of ids are no members: our network's id is the network
    answer = await system.gql(NODE, {"id": global_id("Tenant", net.tenant_id)}, net.admin.access)
    assert answer["data"]["node"]["__typename"] == "Tenant"
    answer = await system.gql(MEMBER, {"id": "garbage"}, net.admin.access)
    assert top_level_error(answer)["extensions"]["code"] == "INVALID_INPUT"


async def test_members_pagination(system: System) -> None:
    net = await open_network(system, "pole-11e")
    for i in range(4):
        await join(system, net, f"m{i}@pole.example", f"Member {i}")
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        answer = await system.gql(MEMBERS, {"first": 2, "after": after}, net.admin.access)
        connection = answer["data"]["members"]
        assert connection["totalCount"] == 5
        info = connection["pageInfo"]
        assert info["hasPreviousPage"] is (after is not None)
        assert [e["cursor"] for e in connection["edges"]][-1] == info["endCursor"]
        seen += [e["node"]["memberId"] for e in connection["edges"]]
        pages += 1
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert pages == 3
    assert len(seen) == len(set(seen)) == 5
    everyone = await system.gql(MEMBERS, {"first": 50}, net.admin.access)
    assert [e["node"]["memberId"] for e in everyone["data"]["members"]["edges"]] == seen
    past_the_end = await system.gql(
        MEMBERS, {"first": 2, "after": base64.urlsafe_b64encode(b"o:10").decode()}, net.admin.access
    )
    assert past_the_end["data"]["members"]["edges"] == []
    assert past_the_end["data"]["members"]["pageInfo"]["hasNextPage"] is False

    for variables in (
        {"first": 0},
        {"first": 51},
        {"first": -1},
        {"after": "garbage"},
        {"after": base64.urlsafe_b64encode(b"x:1").decode()},
        {"after": base64.urlsafe_b64encode(b"o:-5").decode()},
        {"after": base64.urlsafe_b64encode(b"o:9223372036854775807").decode()},
        {"after": base64.urlsafe_b64encode(b"o:100000000000000000000").decode()},
        {"text": "x" * 201},
        {"near": {"lat": 48.8, "lon": 2.3}},
        {"near": {"lat": 48.8, "lon": 2.3}, "radiusKm": 0},
        {"near": {"lat": 95, "lon": 2.3}, "radiusKm": 5},
    ):
        answer = await system.gql(MEMBERS, variables, net.admin.access)
        assert answer["data"] is None, variables
        assert top_level_error(answer)["extensions"]["code"] == "INVALID_INPUT", (variables, answer)


async def test_invitations_pagination(system: System) -> None:
    net = await open_network(system, "pole-11e")
    for i in range(3):
        await invite(system, net, f"i{i}@pole.example")
    first = await system.gql(INVITATIONS, {"first": 2}, net.admin.access)
    connection = first["data"]["invitations"]
    assert len(connection["edges"]) == 2 and connection["pageInfo"]["hasNextPage"] is True
    rest = await system.gql(
        INVITATIONS, {"first": 2, "after": connection["pageInfo"]["endCursor"]}, net.admin.access
    )
    assert len(rest["data"]["invitations"]["edges"]) == 2  # 3 invited + the admin's own
    assert rest["data"]["invitations"]["pageInfo"]["hasNextPage"] is False
    emails = {
        e["node"]["email"] for e in connection["edges"] + rest["data"]["invitations"]["edges"]
    }
    assert emails == {
        net.admin.email,
        "i0@pole.example",
        "i1@pole.example",
        "i2@pole.example",
    }
    inviter = connection["edges"][0]["node"]["invitedBy"]
    assert inviter == {"displayName": "Admin pole-11e"}
    # the largest page is allowed, and knows whether another follows
    full = await system.gql(INVITATIONS, {"first": 50}, net.admin.access)
    assert len(full["data"]["invitations"]["edges"]) == 4
    assert full["data"]["invitations"]["pageInfo"]["hasNextPage"] is False
    for i in range(3, 49):
        await mutate(system, "inviteMember", {"email": f"i{i}@pole.example"}, net.admin.access)
    exactly_one_page = await system.gql(INVITATIONS, {"first": 50}, net.admin.access)
    assert len(exactly_one_page["data"]["invitations"]["edges"]) == 50
    assert exactly_one_page["data"]["invitations"]["pageInfo"]["hasNextPage"] is False
    await mutate(system, "inviteMember", {"email": "i49@pole.example"}, net.admin.access)
    first_page = (await system.gql(INVITATIONS, {"first": 50}, net.admin.access))["data"]
    assert len(first_page["invitations"]["edges"]) == 50
    assert first_page["invitations"]["pageInfo"]["hasNextPage"] is True
    second_page = await system.gql(
        INVITATIONS,
        {"first": 50, "after": first_page["invitations"]["pageInfo"]["endCursor"]},
        net.admin.access,
    )
    assert len(second_page["data"]["invitations"]["edges"]) == 1
    assert second_page["data"]["invitations"]["pageInfo"]["hasNextPage"] is False
    for variables in ({"first": 0}, {"first": 51}, {"after": "garbage"}):
        answer = await system.gql(INVITATIONS, variables, net.admin.access)
        assert top_level_error(answer)["extensions"]["code"] == "INVALID_INPUT"


SET_LOCALE = (
    "mutation($locale: Locale!) { setTenantLocale(input: {locale: $locale}) { __typename"
    " ... on TenantLocaleSet { tenant { slug locale } } ... on Error { code message } } }"
)
TENANT_LOCALE = "query($slug: String!) { tenant(slug: $slug) { slug locale } }"


async def test_a_tenant_admin_sets_the_network_language(system: System) -> None:
    net = await open_network(system, "pole-11e")
    other = await open_network(system, "other-net")
    member = await join(system, net, "m@pole.example", "Member")
    answer = await system.gql(TENANT_LOCALE, {"slug": net.slug})
    assert answer["data"]["tenant"] == {"slug": net.slug, "locale": "FR"}
    before = await system.event_count()

    refused = await system.gql(SET_LOCALE, {"locale": "EN"}, member.access)
    assert refused["data"]["setTenantLocale"]["__typename"] == "Forbidden"
    anonymous = await system.gql(SET_LOCALE, {"locale": "EN"})
    assert anonymous["data"]["setTenantLocale"]["__typename"] == "Unauthenticated"
    unknown = await system.gql(SET_LOCALE, {"locale": "DE"}, net.admin.access)
    assert unknown["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await system.event_count() == before

    done = await system.gql(SET_LOCALE, {"locale": "EN"}, net.admin.access)
    assert done["data"]["setTenantLocale"] == {
        "__typename": "TenantLocaleSet",
        "tenant": {"slug": net.slug, "locale": "EN"},
    }
    assert (await system.gql(TENANT_LOCALE, {"slug": net.slug}))["data"]["tenant"]["locale"] == "EN"
    # one network's choice is its own
    theirs = await system.gql(TENANT_LOCALE, {"slug": other.slug})
    assert theirs["data"]["tenant"]["locale"] == "FR"


async def test_refusals_are_said_in_the_language_asked_for(system: System) -> None:
    """Identity's refusals in French for a request that asks for French
    (`Accept-Language`), in English otherwise (docs/api.md, "Errors"): the
    same type, code and field either way, only the words change."""
    net = await open_network(system, "pole-11e")
    bearer = {"Authorization": f"Bearer {net.admin.access}"}
    cases = [
        (
            "login",
            {"tenant": "nowhere-net", "email": net.admin.email, "password": PASSWORD},
            {},
            "no network with slug 'nowhere-net'",
            "aucun réseau ne porte l'identifiant 'nowhere-net'",
        ),
        (
            "login",
            {"tenant": net.slug, "email": net.admin.email, "password": "not the password"},
            {},
            "wrong e-mail address or password",
            "adresse e-mail ou mot de passe incorrect",
        ),
        (
            "changePassword",
            {"currentPassword": PASSWORD, "newPassword": "short"},
            bearer,
            "a password has 10 to 256 characters",
            "un mot de passe compte de 10 à 256 caractères",
        ),
        (
            "refreshSession",
            {"refreshToken": "garbage"},
            {},
            "this token is not valid",
            "ce jeton n'est pas valide",
        ),
        (
            "revokeInvitation",
            {"invitationId": global_id("Invitation", str(uuid.uuid4()))},
            bearer,
            "invitation not found",  # the store's refusal, the aggregate's own words
            "invitation introuvable",
        ),
    ]
    before = await system.event_count()
    for name, input, headers, english, french in cases:
        plain = await mutate(system, name, input, headers=headers)
        assert plain["message"] == english, plain
        assert await mutate(system, name, input, headers={**headers, "Accept-Language": "de"}) == (
            plain  # no language of ours: English
        )
        asked = await mutate(
            system, name, input, headers={**headers, "Accept-Language": "fr-FR,fr;q=0.9,en;q=0.8"}
        )
        assert asked == {**plain, "message": french}, asked
    assert await system.event_count() == before
