"""What identity publishes: every stored event of a realistic scenario goes
through `publication.to_public`; the public ones carry the right type and
tenant and no personal data (e-mail, names, texts, coordinates, postcodes,
password or token hashes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from services.identity import contract as c
from services.identity.application import Identity
from services.identity.domain import Invitation, Member, hash_secret, split_token
from services.identity.publication import to_public
from services.identity.security import PasswordHasher

NOW = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)  # whole seconds: no stray digits in timestamps
TTL = 7 * 24 * 3600
ADMIN_PASSWORD = "admin password 1"
MEMBER_PASSWORD = "member password 2"

ADMIN_CARD: dict[str, Any] = {
    "display_name": "Claire Martinez",
    "business_name": "Martinez Conseil",
    "activity_code": "management-consultant",
    "activity_text": "Organisation des petites structures",
    "offers": "Diagnostic d'organisation",
    "seeks": "Comptable de proximité",
    "available_for": "Animer un atelier",
    "bio": "Fondatrice du pôle, vingt ans de conseil.",
    "links": ["https://claire-martinez.example"],
    "work": {"lat": 48.857531, "lon": 2.379517, "postcode": "75011"},
    "home": {"lat": 48.861093, "lon": 2.382071, "postcode": "75020"},
}
MEMBER_CARD: dict[str, Any] = {
    "display_name": "Karim Benhadji",
    "business_name": "Plomberie Benhadji",
    "activity_code": "plumber",
    "activity_text": "Rénovation de salles de bains",
    "offers": "Dépannage sous 24 h",
    "seeks": "Électricien pour chantiers communs",
    "bio": "Installé rue de la Roquette depuis 2012.",
    "work": {"lat": 48.856047, "lon": 2.375093, "postcode": "75011"},
}
CARD_CHANGES: dict[str, Any] = {
    "activity_code": "electrician",
    "bio": "Reconverti en électricité générale.",
    "home": {"lat": 48.852919, "lon": 2.389413, "postcode": "75012"},
}


@dataclass
class Scenario:
    app: Identity
    tenant_id: str
    other_tenant_id: str
    admin_id: str
    member_id: str
    revoked_invitation_id: str
    # what must never be published
    personal: list[str] = field(default_factory=list)


def cards_texts(*cards: dict[str, Any]) -> list[str]:
    texts: list[str] = []
    for card in cards:
        for key, value in card.items():
            if key in ("work", "home"):
                texts += [repr(value[k]) for k in ("lat", "lon")] + [value["postcode"]]
            elif key == "links":
                texts += value
            elif key != "activity_code":
                texts.append(value)
    return texts


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    app = Identity(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, hasher=PasswordHasher(cheap=True)
    )
    personal: list[str] = []

    tenant, admin_invitation, admin_token = app.create_tenant(
        "pole-pub", "Pôle publication", "Claire.Martinez@Example.ORG", NOW, TTL
    )
    admin = app.accept_invitation(admin_token, ADMIN_PASSWORD, ADMIN_CARD, NOW)

    invitation, member_token = app.issue_invitation(
        tenant.tenant_id, "karim.benhadji@plomberie.example", str(admin.id), [], NOW, TTL
    )
    member = app.accept_invitation(member_token, MEMBER_PASSWORD, MEMBER_CARD, NOW)
    app.update_card(tenant.tenant_id, str(member.id), CARD_CHANGES)
    app.set_tenant_admin(tenant.tenant_id, str(member.id), True, list)
    app.set_tenant_admin(tenant.tenant_id, str(member.id), False, list)

    revoked, revoked_token = app.issue_invitation(
        tenant.tenant_id, "jamais.venu@example.net", str(admin.id), ["tenant_admin"], NOW, TTL
    )
    app.revoke_invitation(tenant.tenant_id, str(revoked.id))
    app.set_locale(tenant.tenant_id, "en", str(admin.id))
    app.set_locale(tenant.tenant_id, "en", str(admin.id))  # unchanged: no event

    # private events: sessions and passwords
    session = app.start_session(member, NOW, 3600)
    _, refreshed = app.refresh_session(session, NOW)
    app.end_session(refreshed)
    app.change_password(tenant.tenant_id, str(member.id), MEMBER_PASSWORD, "a new password 3")

    other, _, other_token = app.create_tenant(
        "other-pub", "Autre réseau", "someone@other.example", NOW, TTL
    )

    member_now = app.get(tenant.tenant_id, member.id, Member)
    personal += [
        "Claire.Martinez@example.org",
        "claire.martinez@example.org",
        "karim.benhadji@plomberie.example",
        "jamais.venu@example.net",
        "someone@other.example",
        ADMIN_PASSWORD,
        MEMBER_PASSWORD,
        "a new password 3",
        admin.password_hash,
        member.password_hash,
        member_now.password_hash,
        *(
            app.get(tenant.tenant_id, i.id, Invitation).token_hash
            for i in (admin_invitation, invitation, revoked)
        ),
        *(
            t
            for token in (admin_token, member_token, revoked_token, other_token, session, refreshed)
            for t in (token, split_token(token)[1], hash_secret(split_token(token)[1]))
        ),
        *cards_texts(ADMIN_CARD, MEMBER_CARD, CARD_CHANGES),
    ]
    return Scenario(
        app=app,
        tenant_id=tenant.tenant_id,
        other_tenant_id=other.tenant_id,
        admin_id=str(admin.id),
        member_id=str(member.id),
        revoked_invitation_id=str(revoked.id),
        personal=personal,
    )


@pytest.fixture(scope="module")
def translated(scenario: Scenario) -> list[tuple[Any, c.IdentityEvent | None]]:
    app = scenario.app
    notifications = app.notifications_after(0, 1000)
    assert len(notifications) == app.max_notification_id()
    return [(e, to_public(e)) for e in map(app.mapper.to_domain_event, notifications)]


def test_the_public_events_of_the_scenario_in_order(
    scenario: Scenario, translated: list[tuple[Any, c.IdentityEvent | None]]
) -> None:
    published = [type(p).__name__ for _, p in translated if p is not None]
    assert published == [
        "TenantRegistered",
        "InvitationIssued",  # the admin's
        "MemberJoined",
        "InvitationIssued",  # the member's
        "MemberJoined",
        "ProfileCardUpdated",
        "MemberRolesChanged",
        "MemberRolesChanged",
        "InvitationIssued",
        "InvitationRevoked",
        "TenantLocaleChanged",
        "TenantRegistered",  # the other network
        "InvitationIssued",
    ]


def test_private_events_are_not_published(
    translated: list[tuple[Any, c.IdentityEvent | None]],
) -> None:
    private = {type(e).__qualname__ for e, p in translated if p is None}
    assert private == {
        "Tenant.AdminsChanged",  # MemberRolesChanged says it publicly
        "EmailIndex.Registered",
        "InvitationSlot.Pointed",  # which invitation of an address is pending: private
        "Invitation.Accepted",
        "RefreshFamily.Started",
        "RefreshFamily.Rotated",
        "RefreshFamily.Revoked",
        "Member.PasswordChanged",
    }


def test_each_public_event_has_its_type_and_its_tenant(
    scenario: Scenario, translated: list[tuple[Any, c.IdentityEvent | None]]
) -> None:
    expected = {
        "Tenant.Registered": c.TenantRegistered,
        "Invitation.Issued": c.InvitationIssued,
        "Invitation.Revoked": c.InvitationRevoked,
        "Member.Joined": c.MemberJoined,
        "Member.CardUpdated": c.ProfileCardUpdated,
        "Member.RolesChanged": c.MemberRolesChanged,
        "Tenant.LocaleChanged": c.TenantLocaleChanged,
    }
    tenants = {scenario.tenant_id, scenario.other_tenant_id}
    for event, public in translated:
        if public is None:
            continue
        assert type(public) is expected[type(event).__qualname__]
        assert isinstance(public, c.IdentityEvent)
        assert public.tenant_id == event.tenant_id
        assert public.tenant_id in tenants
        assert public.type_name() == f"quartier.identity.{type(public).__name__}.v1"
        if hasattr(public, "member_id"):
            assert public.member_id == str(event.originator_id)
        if hasattr(public, "invitation_id") and not isinstance(public, c.MemberJoined):
            assert public.invitation_id == str(event.originator_id)


def test_public_events_carry_the_non_personal_facts(
    scenario: Scenario, translated: list[tuple[Any, c.IdentityEvent | None]]
) -> None:
    public = [p for _, p in translated if p is not None]
    registered = [p for p in public if isinstance(p, c.TenantRegistered)]
    assert [(p.slug, p.name) for p in registered] == [
        ("pole-pub", "Pôle publication"),
        ("other-pub", "Autre réseau"),
    ]
    joined = {p.member_id: p for p in public if isinstance(p, c.MemberJoined)}
    admin, member = joined[scenario.admin_id], joined[scenario.member_id]
    assert (admin.activity_code, admin.roles, admin.invited_by) == (
        "management-consultant",
        ["tenant_admin"],
        None,
    )
    assert (member.activity_code, member.roles, member.invited_by) == (
        "plumber",
        [],
        scenario.admin_id,
    )
    (updated,) = [p for p in public if isinstance(p, c.ProfileCardUpdated)]
    assert updated.member_id == scenario.member_id
    assert updated.activity_code == "electrician"
    assert sorted(updated.changed) == ["activity_code", "bio", "home"]
    roles = [p.roles for p in public if isinstance(p, c.MemberRolesChanged)]
    assert roles == [["tenant_admin"], []]
    issued = [p for p in public if isinstance(p, c.InvitationIssued)]
    assert {p.expires_at for p in issued} == {NOW + timedelta(seconds=TTL)}
    (revoked,) = [p for p in public if isinstance(p, c.InvitationRevoked)]
    assert revoked.invitation_id == scenario.revoked_invitation_id
    locales = [(p.tenant_id, p.locale) for p in public if isinstance(p, c.TenantLocaleChanged)]
    assert locales == [(scenario.tenant_id, "en")]  # who changed it stays private


def test_no_personal_data_in_any_encoded_public_event(
    scenario: Scenario, translated: list[tuple[Any, c.IdentityEvent | None]]
) -> None:
    encoded = [msgspec.json.encode(p) for _, p in translated if p is not None]
    assert len(encoded) == 13
    forbidden = [s for s in scenario.personal if s]
    assert len(forbidden) > 40
    # the check can see personal data where it is: in the private domain events
    joined = next(e for e, _ in translated if type(e).__qualname__ == "Member.Joined")
    private_blob = msgspec.json.encode({"email": joined.email, "card": joined.card}).decode()
    assert "48.857531" in private_blob
    assert sum(s.lower() in private_blob.lower() for s in forbidden) >= 10
    for blob in encoded:
        text = blob.decode()
        lowered = text.lower()
        for secret in forbidden:
            assert secret.lower() not in lowered, (secret, text)
        decoded = msgspec.json.decode(blob)
        keys = set(decoded)
        assert not keys & {"email", "display_name", "lat", "lon", "work", "home", "card"}, text
        assert not any("hash" in k or "password" in k or "token" in k for k in keys), text


def test_encoded_public_events_decode_to_the_same_value(
    translated: list[tuple[Any, c.IdentityEvent | None]],
) -> None:
    for _, public in translated:
        if public is not None:
            blob = msgspec.json.encode(public)
            assert msgspec.json.decode(blob, type=type(public)) == public
