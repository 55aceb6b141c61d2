"""Identity's domain, pure (no I/O): identifiers, the profile card and its
places, the aggregates' rules and events; then the Identity application on
the library's in-memory (POPO) store."""

from __future__ import annotations

import string
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.identity.application import Identity
from services.identity.domain import (
    MAX_SPENT_TOKENS,
    MULTILINE,
    TEXT_LIMITS,
    EmailIndex,
    Invitation,
    Member,
    Place,
    ProfileCard,
    RefreshFamily,
    Tenant,
    email_key,
    hash_secret,
    join_token,
    new_secret,
    normalise_email,
    split_token,
    tenant_id_for,
    validate_name,
    validate_slug,
)
from services.identity.security import PasswordHasher
from services.identity.taxonomy import BY_CODE, PROFESSIONS
from services.runtime.errors import (
    Conflict,
    InvalidCredentials,
    InvalidInput,
    InvalidToken,
    NotFound,
    RuleViolation,
)
from services.runtime.text import free_text, single_line

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
TENANT = str(tenant_id_for("pole-test"))
PASSWORD = "correct horse battery"
CODES = sorted(BY_CODE)


def full_card(**overrides: Any) -> dict[str, Any]:
    card: dict[str, Any] = {
        "display_name": "Karim Benali",
        "business_name": "Plomberie Benali",
        "activity_code": "plumber",
        "activity_text": "Plomberie, salles de bains",
        "offers": "Dépannage",
        "seeks": "Électricien",
        "available_for": "Conseils",
        "bio": "Artisan plombier.",
        "links": ["https://benali.example"],
        "work": {"lat": 48.856, "lon": 2.375, "postcode": "75011"},
        "home": {"postcode": "75020"},
    }
    card.update(overrides)
    return card


def raises_on(field: str, fn: Any, *args: Any, **kwargs: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        fn(*args, **kwargs)
    assert info.value.field == field, info.value
    return info.value


# -- identifiers ---------------------------------------------------------------


def test_tenant_id_is_a_deterministic_function_of_the_slug() -> None:
    assert tenant_id_for("pole-11e") == tenant_id_for("pole-11e")
    assert tenant_id_for("pole-11e") != tenant_id_for("pole-12e")
    assert isinstance(tenant_id_for("pole-11e"), UUID)
    assert Tenant.create_id("pole-11e") == tenant_id_for("pole-11e")


@given(st.from_regex(r"[a-z0-9][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True))
def test_tenant_ids_of_distinct_slugs_differ(slug: str) -> None:
    assert tenant_id_for(slug) == tenant_id_for(slug)
    assert tenant_id_for(slug) != tenant_id_for(slug + "x")


@pytest.mark.parametrize("slug", ["abc", "pole-11e", "a" * 40, "0-9", "a-b-c"])
def test_valid_slugs(slug: str) -> None:
    assert validate_slug(slug) == slug


@pytest.mark.parametrize(
    "slug",
    ["", "ab", "a" * 41, "-abc", "abc-", "Abc", "ab c", "ab_c", "pôle", "ab.c", "ab/c"],
)
def test_invalid_slugs(slug: str) -> None:
    raises_on("slug", validate_slug, slug)


@given(st.text(alphabet=string.ascii_lowercase + string.digits + "-", min_size=3, max_size=40))
def test_slug_rule_matches_its_description(slug: str) -> None:
    ok = not slug.startswith("-") and not slug.endswith("-")
    if ok:
        assert validate_slug(slug) == slug
    else:
        raises_on("slug", validate_slug, slug)


@given(st.text(max_size=60))
def test_an_accepted_slug_is_3_to_40_lowercase_letters_digits_or_dashes(slug: str) -> None:
    try:
        validate_slug(slug)
    except InvalidInput:
        return
    assert 3 <= len(slug) <= 40
    assert set(slug) <= set(string.ascii_lowercase + string.digits + "-")


def test_a_slug_with_a_trailing_newline_is_refused() -> None:
    raises_on("slug", validate_slug, "pole-11e\n")


def test_a_postcode_with_a_trailing_newline_is_refused() -> None:
    raises_on("postcode", Place, postcode="75011\n")


def test_normalise_email_lowercases_the_domain_only_and_strips() -> None:
    assert normalise_email("  Jean.Dupont@Example.ORG \n") == "Jean.Dupont@example.org"


@pytest.mark.parametrize(
    "email",
    [
        "",
        "no-at-sign",
        "a@b",
        "a@b.c",
        "two@@example.org",
        "a b@example.org",
        "a@exa mple.org",
        "@example.org",
        "x" * 65 + "@example.org",
        "a@" + "d" * 250 + ".org",
    ],
)
def test_invalid_emails(email: str) -> None:
    raises_on("email", normalise_email, email)


@given(st.emails())
def test_normalise_email_accepts_addresses_and_is_idempotent(email: str) -> None:
    normal = normalise_email(email)
    local, domain = normal.rsplit("@", 1)
    assert domain == domain.lower()
    assert local == email.rsplit("@", 1)[0]
    assert normalise_email(normal) == normal


@given(st.emails())
def test_email_key_ignores_case_and_depends_on_the_tenant(email: str) -> None:
    assert email_key(TENANT, email) == email_key(TENANT, email.upper())
    assert email_key(TENANT, email) != email_key(str(tenant_id_for("other")), email)
    assert EmailIndex.create_id(TENANT, email) == email_key(TENANT, email)


def test_validate_name_collapses_whitespace_and_bounds_length() -> None:
    assert validate_name("  Pôle   des \n réseaux ") == "Pôle des réseaux"
    assert validate_name("x" * 120) == "x" * 120
    raises_on("name", validate_name, "x" * 121)
    raises_on("name", validate_name, "   ")


def test_tokens_join_and_split() -> None:
    aggregate_id, secret = uuid4(), new_secret()
    assert split_token(join_token(aggregate_id, secret)) == (aggregate_id, secret)
    for bad in ("", "no-dot", "nothex.secret", None):
        with pytest.raises(InvalidToken):
            split_token(bad)  # type: ignore[arg-type]
    assert hash_secret(secret) == hash_secret(secret) != secret
    assert new_secret() != new_secret()


# -- places --------------------------------------------------------------------

lats = st.floats(min_value=-90, max_value=90, allow_nan=False)
lons = st.floats(min_value=-180, max_value=180, allow_nan=False)
postcodes = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 -]{1,9}", fullmatch=True)


@given(lats, lons, st.none() | postcodes)
def test_a_point_in_range_is_a_place(lat: float, lon: float, postcode: str | None) -> None:
    place = Place(lat=lat, lon=lon, postcode=postcode)
    assert (place.lat, place.lon, place.postcode) == (lat, lon, postcode)


@given(postcodes)
def test_a_postcode_alone_is_a_place(postcode: str) -> None:
    place = Place(postcode=postcode)
    assert (place.lat, place.lon, place.postcode) == (None, None, postcode)


@given(st.floats().filter(lambda x: not -90 <= x <= 90), lons)
def test_latitude_out_of_range(lat: float, lon: float) -> None:
    raises_on("lat", Place, lat=lat, lon=lon)


@given(lats, st.floats().filter(lambda x: not -180 <= x <= 180))
def test_longitude_out_of_range(lat: float, lon: float) -> None:
    raises_on("lon", Place, lat=lat, lon=lon)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"lat": 48.8}, "lat"),
        ({"lon": 2.3, "postcode": "75011"}, "lat"),
        ({}, "postcode"),
        ({"postcode": "7"}, "postcode"),
        ({"postcode": "75011-75011-"}, "postcode"),
        ({"postcode": "-75011"}, "postcode"),
        ({"postcode": "750!1"}, "postcode"),
        ({"postcode": ""}, "postcode"),
    ],
)
def test_invalid_places(kwargs: dict[str, Any], field: str) -> None:
    raises_on(field, Place, **kwargs)


# -- the profile card ----------------------------------------------------------


# Text as the runtime's text policy leaves it: no control, surrogate,
# unassigned or bidi-control character; NFC; whitespace folded.
ALLOWED = st.characters(
    blacklist_categories=("Cc", "Cs", "Cn"),
    blacklist_characters="\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufffe\uffff",
)
VISIBLE = st.characters(blacklist_categories=("Cc", "Cs", "Cn", "Cf", "Co", "Zs", "Zl", "Zp"))


def text_for(limit: int, name: str = "display_name") -> st.SearchStrategy[str]:
    clean = free_text if name in MULTILINE else single_line
    return (
        st.text(alphabet=ALLOWED, max_size=limit)
        .map(lambda s: clean(unicodedata.normalize("NFC", s), name, 100_000))
        .filter(lambda s: len(s) <= limit)
    )


links = st.lists(
    st.builds(
        lambda scheme, host, path: f"{scheme}://{host}.example/{path}",
        st.sampled_from(["http", "https"]),
        st.from_regex(r"[a-z0-9]{1,30}", fullmatch=True),
        st.from_regex(r"[a-z0-9/-]{0,40}", fullmatch=True),
    ),
    max_size=5,
)
places = st.none() | st.builds(Place, lat=lats, lon=lons, postcode=postcodes)


@st.composite
def valid_cards(draw: st.DrawFn) -> ProfileCard:
    texts = {name: draw(text_for(limit, name)) for name, limit in TEXT_LIMITS.items()}
    texts["display_name"] = draw(text_for(TEXT_LIMITS["display_name"]).filter(lambda s: s != ""))
    return ProfileCard(
        **texts,
        activity_code=draw(st.sampled_from(CODES)),
        links=tuple(draw(links)),
        work=draw(places),
        home=draw(places),
    )


@given(valid_cards())
def test_a_valid_card_validates_and_round_trips_through_a_dict(card: ProfileCard) -> None:
    assert card.validate(complete=True) is card
    assert card.validate(complete=False) is card
    assert ProfileCard.from_dict(card.to_dict()) == card


@pytest.mark.parametrize(("name", "limit"), sorted(TEXT_LIMITS.items()))
def test_every_text_limit(name: str, limit: int) -> None:
    base = ProfileCard(display_name="A", activity_code="plumber")
    at_limit = base.with_changes({name: "é" * limit})
    assert at_limit.validate(complete=True) == at_limit
    error = raises_on(name, base.with_changes({name: "é" * (limit + 1)}).validate, complete=False)
    assert str(limit) in error.message


@given(st.sampled_from(sorted(TEXT_LIMITS)), st.data())
def test_any_text_over_its_limit_is_refused(name: str, data: st.DataObject) -> None:
    limit = TEXT_LIMITS[name]
    text = data.draw(st.text(alphabet=VISIBLE, min_size=limit + 1, max_size=limit + 50))
    raises_on(name, ProfileCard(**{name: text}).validate, complete=False)


def test_texts_are_stripped() -> None:
    card = ProfileCard().with_changes({"display_name": "  Ana  ", "bio": "\n bio \t"})
    assert (card.display_name, card.bio) == ("Ana", "bio")


def test_complete_card_needs_a_display_name_and_an_activity() -> None:
    partial = ProfileCard()
    assert partial.validate(complete=False) is partial
    raises_on("display_name", partial.validate, complete=True)
    raises_on(
        "display_name",
        ProfileCard(display_name="   ", activity_code="plumber").validate,
        complete=True,
    )
    raises_on("activity_code", ProfileCard(display_name="Ana").validate, complete=True)
    assert ProfileCard(display_name="Ana", activity_code="plumber").validate(complete=True)


@pytest.mark.parametrize("code", [p.code for p in PROFESSIONS])
def test_every_taxonomy_code_is_accepted(code: str) -> None:
    assert ProfileCard(display_name="Ana", activity_code=code).validate(complete=True)


@given(st.text(max_size=30).filter(lambda s: s not in BY_CODE))
def test_an_activity_code_outside_the_taxonomy_is_refused(code: str) -> None:
    raises_on("activity_code", ProfileCard(activity_code=code).validate, complete=False)


def test_taxonomy_codes_are_unique_and_slug_like() -> None:
    codes = [p.code for p in PROFESSIONS]
    assert len(codes) == len(set(codes)) == len(BY_CODE)
    for code in codes:
        assert validate_slug(code) == code


def test_links() -> None:
    five = tuple(f"https://site{i}.example/" for i in range(5))
    assert ProfileCard(links=five).validate(complete=False)
    raises_on("links", ProfileCard(links=(*five, "https://six.example")).validate, complete=False)
    long_ok = "https://a.example/" + "p" * (300 - len("https://a.example/"))
    assert ProfileCard(links=(long_ok,)).validate(complete=False)
    raises_on("links", ProfileCard(links=(long_ok + "p",)).validate, complete=False)
    for bad in (
        "ftp://files.example",
        "javascript:alert(1)",
        "https://",
        "example.org",
        "mailto:a@example.org",
        "",
    ):
        raises_on("links", ProfileCard(links=(bad,)).validate, complete=False)


def test_with_changes_builds_places_strips_links_and_refuses_unknown_fields() -> None:
    card = ProfileCard().with_changes(
        {"links": [" https://a.example "], "work": {"lat": 1.0, "lon": 2.0}, "home": None}
    )
    assert card.links == ("https://a.example",)
    assert card.work == Place(lat=1.0, lon=2.0)
    assert card.home is None
    assert card.with_changes({"work": None}).work is None
    raises_on("email", card.with_changes, {"email": "a@example.org"})
    raises_on("lat", card.with_changes, {"home": {"lat": 100.0, "lon": 0.0}})


# -- invitations ---------------------------------------------------------------


def new_invitation(secret: str = "s3cret", **kwargs: Any) -> Invitation:
    values: dict[str, Any] = {
        "tenant_id": TENANT,
        "email": "ana@example.org",
        "token_hash": hash_secret(secret),
        "invited_by": None,
        "roles": [],
        "expires_at": NOW + timedelta(days=7),
    }
    values.update(kwargs)
    return Invitation(**values)


def test_a_pending_invitation_checks_with_its_secret_until_it_expires() -> None:
    invitation = new_invitation()
    assert invitation.status == "pending"
    invitation.check("s3cret", NOW)
    invitation.check("s3cret", NOW + timedelta(days=7) - timedelta(seconds=1))
    with pytest.raises(InvalidToken, match="expired"):
        invitation.check("s3cret", NOW + timedelta(days=7))


def test_an_invitation_refuses_a_wrong_secret() -> None:
    with pytest.raises(InvalidToken, match="not valid"):
        new_invitation().check("wrong", NOW)


def test_an_accepted_invitation_cannot_be_used_again_nor_revoked() -> None:
    invitation = new_invitation()
    member_id = uuid4()
    invitation.accept(member_id)
    assert (invitation.status, invitation.member_id) == ("accepted", member_id)
    with pytest.raises(InvalidToken, match="already been used"):
        invitation.check("s3cret", NOW)
    with pytest.raises(Conflict):
        invitation.revoke()


def test_a_revoked_invitation_cannot_be_used_nor_revoked_twice() -> None:
    invitation = new_invitation()
    invitation.revoke()
    assert invitation.status == "revoked"
    with pytest.raises(InvalidToken, match="withdrawn"):
        invitation.check("s3cret", NOW)
    events_before = len(invitation.collect_events())
    with pytest.raises(Conflict):
        invitation.revoke()
    assert invitation.collect_events() == []
    assert events_before == 2  # Issued, Revoked


def test_a_wrong_secret_does_not_reveal_the_invitation_status() -> None:
    invitation = new_invitation()
    invitation.revoke()
    with pytest.raises(InvalidToken, match="not valid"):
        invitation.check("wrong", NOW)


# -- members -------------------------------------------------------------------


def new_member(**card: Any) -> Member:
    member = Member(
        tenant_id=TENANT,
        email="ana@example.org",
        password_hash="argon2-hash",
        card=ProfileCard().with_changes(full_card(**card)).validate(complete=True).to_dict(),
        roles=[],
        invitation_id=None,
        invited_by=None,
    )
    member.collect_events()
    return member


def test_update_card_returns_the_changed_fields_and_emits_one_event() -> None:
    member = new_member()
    changed = member.update_card(
        {"bio": "Nouveau bio", "work": {"postcode": "75012"}, "display_name": "Karim Benali"}
    )
    assert changed == ["bio", "work"]
    (event,) = member.collect_events()
    assert isinstance(event, Member.CardUpdated)
    assert event.changed == ["bio", "work"]
    assert event.tenant_id == TENANT
    assert member.card.bio == "Nouveau bio"
    assert member.card.work == Place(postcode="75012")


def test_update_card_without_a_change_emits_nothing() -> None:
    member = new_member()
    before = member.card
    assert member.update_card({}) == []
    assert member.update_card({"display_name": "  Karim Benali  "}) == []
    assert member.update_card(full_card()) == []
    assert member.collect_events() == []
    assert member.card == before


def test_update_card_refuses_an_invalid_card_and_keeps_the_old_one() -> None:
    member = new_member()
    before = member.card
    raises_on("display_name", member.update_card, {"display_name": ""})
    raises_on("activity_code", member.update_card, {"activity_code": None})
    raises_on("activity_code", member.update_card, {"activity_code": "astronaut"})
    raises_on("bio", member.update_card, {"bio": "x" * 2001})
    assert member.collect_events() == []
    assert member.card == before


def test_update_card_can_clear_a_place() -> None:
    member = new_member()
    assert member.update_card({"home": None}) == ["home"]
    assert member.card.home is None


def test_set_roles() -> None:
    member = new_member()
    raises_on("roles", member.set_roles, ["superuser"])
    raises_on("roles", member.set_roles, ["tenant_admin", "root"])
    assert member.set_roles([]) is False
    assert member.collect_events() == []
    assert member.set_roles(["tenant_admin", "tenant_admin"]) is True
    assert member.roles == ["tenant_admin"]
    assert member.set_roles(["tenant_admin"]) is False
    (event,) = member.collect_events()
    assert isinstance(event, Member.RolesChanged)
    assert event.roles == ["tenant_admin"]
    assert member.set_roles([]) is True
    assert member.roles == []


# -- refresh-token families ----------------------------------------------------


def new_family(secret: str = "first", ttl: timedelta = timedelta(days=30)) -> RefreshFamily:
    return RefreshFamily(
        tenant_id=TENANT, member_id=uuid4(), token_hash=hash_secret(secret), expires_at=NOW + ttl
    )


def test_rotation_replaces_the_current_token() -> None:
    family = new_family()
    family.rotate("first", hash_secret("second"), NOW)
    family.rotate("second", hash_secret("third"), NOW)
    assert family.current_hash == hash_secret("third")
    assert not family.revoked
    with pytest.raises(InvalidToken, match="not valid"):
        family.rotate("never-issued", hash_secret("x"), NOW)
    assert not family.revoked


def test_reusing_a_spent_token_revokes_the_family() -> None:
    family = new_family()
    family.rotate("first", hash_secret("second"), NOW)
    family.collect_events()
    family.rotate("first", hash_secret("thief"), NOW)  # replayed
    assert family.revoked
    (event,) = family.collect_events()
    assert isinstance(event, RefreshFamily.Revoked)
    assert event.reason == "reuse"
    with pytest.raises(InvalidToken, match="signed out"):
        family.rotate("second", hash_secret("third"), NOW)  # the victim, too


def test_an_expired_family_refuses_rotation() -> None:
    family = new_family(ttl=timedelta(hours=1))
    with pytest.raises(InvalidToken, match="expired"):
        family.rotate("first", hash_secret("second"), NOW + timedelta(hours=1))
    assert family.current_hash == hash_secret("first")


def test_a_revoked_family_refuses_rotation_and_revokes_once() -> None:
    family = new_family()
    family.revoke(reason="signed out")
    family.revoke(reason="signed out")
    assert [type(e) for e in family.collect_events()] == [
        RefreshFamily.Started,
        RefreshFamily.Revoked,
    ]
    with pytest.raises(InvalidToken, match="signed out"):
        family.rotate("first", hash_secret("second"), NOW)


def test_a_family_remembers_a_bounded_number_of_spent_tokens() -> None:
    family = new_family(secret="t0")
    for i in range(MAX_SPENT_TOKENS + 5):
        family.rotate(f"t{i}", hash_secret(f"t{i + 1}"), NOW)
    assert len(family.spent) == MAX_SPENT_TOKENS
    family.rotate("t10", hash_secret("x"), NOW)  # within memory: a replay
    assert family.revoked


# -- every event carries its tenant ----------------------------------------------


def test_every_event_of_every_aggregate_carries_the_tenant_id() -> None:
    tenant = Tenant(tenant_id=TENANT, slug="pole-test", name="Pôle test")
    tenant.set_locale("en", by="someone")
    invitation = new_invitation()
    invitation.accept(uuid4())
    revoked = new_invitation()
    revoked.revoke()
    index = EmailIndex(tenant_id=TENANT, email="ana@example.org", member_id=uuid4())
    member = Member(
        tenant_id=TENANT,
        email="ana@example.org",
        password_hash="h",
        card=full_card(),
        roles=[],
        invitation_id=invitation.id,
        invited_by=None,
    )
    member.update_card({"bio": "autre"})
    member.change_password("h2")
    member.set_roles(["tenant_admin"])
    family = new_family()
    family.rotate("first", hash_secret("second"), NOW)
    family.revoke(reason="signed out")

    events = [
        e
        for aggregate in (tenant, invitation, revoked, index, member, family)
        for e in aggregate.collect_events()
    ]
    names = {type(e).__qualname__ for e in events}
    assert names == {
        "Tenant.Registered",
        "Tenant.LocaleChanged",
        "Invitation.Issued",
        "Invitation.Accepted",
        "Invitation.Revoked",
        "EmailIndex.Registered",
        "Member.Joined",
        "Member.CardUpdated",
        "Member.PasswordChanged",
        "Member.RolesChanged",
        "RefreshFamily.Started",
        "RefreshFamily.Rotated",
        "RefreshFamily.Revoked",
    }
    for e in events:
        assert e.tenant_id == TENANT, type(e).__qualname__


# -- the application on an in-memory store ---------------------------------------


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(cheap=True)


@pytest.fixture
def app(hasher: PasswordHasher) -> Identity:
    return Identity(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, hasher=hasher)


@pytest.fixture
def network(app: Identity) -> tuple[str, Member]:
    tenant, _, token = app.create_tenant("pole-test", "Pôle test", "Admin@Example.org", NOW, 3600)
    admin = app.accept_invitation(token, PASSWORD, full_card(display_name="Admin"), NOW)
    return tenant.tenant_id, admin


def test_create_tenant_then_the_slug_is_taken(app: Identity) -> None:
    tenant, invitation, token = app.create_tenant("pole-x", "  Pôle  X ", "a@example.org", NOW, 60)
    assert tenant.tenant_id == str(tenant_id_for("pole-x"))
    assert tenant.name == "Pôle X"
    assert invitation.roles == ["tenant_admin"]
    assert app.tenant_by_slug("pole-x").id == tenant.id
    assert token.startswith(invitation.id.hex + ".")
    with pytest.raises(Conflict) as info:
        app.create_tenant("pole-x", "Another", "b@example.org", NOW, 60)
    assert info.value.field == "slug"
    with pytest.raises(NotFound):
        app.tenant_by_slug("pole-y")
    raises_on("slug", app.create_tenant, "Pole X", "x", "a@example.org", NOW, 60)


def test_accept_invitation_creates_the_member_with_the_invitation_roles(
    app: Identity, network: tuple[str, Member]
) -> None:
    tenant_id, admin = network
    assert admin.roles == ["tenant_admin"]
    assert admin.email == "Admin@example.org"
    assert app.member_by_email(tenant_id, "admin@EXAMPLE.org") is not None
    assert app.get(tenant_id, admin.id, Member).card.display_name == "Admin"


def test_accept_saves_member_index_and_invitation_atomically(
    app: Identity, network: tuple[str, Member]
) -> None:
    tenant_id, admin = network
    first, first_token = app.issue_invitation(
        tenant_id, "Bob@example.org", str(admin.id), [], NOW, 3600
    )
    assert first_token is not None
    # two pending invitations to one address, as stores made before inviting
    # an address twice answered the pending one may hold
    second, second_token = app._new_invitation(
        tenant_id, "bob@EXAMPLE.ORG", str(admin.id), [], NOW, 3600
    )
    app.save(second)
    bob = app.accept_invitation(first_token, PASSWORD, full_card(display_name="Bob"), NOW)
    before = app.max_notification_id()
    with pytest.raises(Conflict) as info:
        app.accept_invitation(second_token, PASSWORD, full_card(display_name="Bobby"), NOW)
    assert info.value.field == "email"
    assert app.max_notification_id() == before  # nothing of the failed save was stored
    assert app.get(tenant_id, second.id, Invitation).status == "pending"
    assert app.get(tenant_id, first.id, Invitation).status == "accepted"
    assert app.member_by_email(tenant_id, "bob@example.org").id == bob.id  # type: ignore[union-attr]
    with pytest.raises(Conflict):
        app.issue_invitation(tenant_id, "BOB@example.org", None, [], NOW, 3600)


def test_accept_invitation_refusals(app: Identity, network: tuple[str, Member]) -> None:
    tenant_id, _ = network
    invitation, token = app.issue_invitation(tenant_id, "c@example.org", None, [], NOW, 3600)
    for bad in ("garbage", f"{uuid4().hex}.secret", f"{invitation.id.hex}.wrong"):
        with pytest.raises(InvalidToken):
            app.accept_invitation(bad, PASSWORD, full_card(), NOW)
    with pytest.raises(InvalidToken, match="expired"):
        app.accept_invitation(token, PASSWORD, full_card(), NOW + timedelta(hours=1))
    raises_on(
        "display_name", app.accept_invitation, token, PASSWORD, {"activity_code": "plumber"}, NOW
    )
    raises_on("password", app.accept_invitation, token, "short", full_card(), NOW)
    assert app.get(tenant_id, invitation.id, Invitation).status == "pending"
    app.accept_invitation(token, PASSWORD, full_card(), NOW)
    with pytest.raises(InvalidToken, match="already"):
        app.accept_invitation(token, PASSWORD, full_card(), NOW)


def test_revoke_invitation_twice_is_a_conflict(app: Identity, network: tuple[str, Member]) -> None:
    tenant_id, _ = network
    invitation, token = app.issue_invitation(tenant_id, "d@example.org", None, [], NOW, 3600)
    assert app.revoke_invitation(tenant_id, str(invitation.id)).status == "revoked"
    with pytest.raises(Conflict):
        app.revoke_invitation(tenant_id, str(invitation.id))
    with pytest.raises(InvalidToken, match="withdrawn"):
        app.accept_invitation(token, PASSWORD, full_card(), NOW)


def test_authenticate_refusals_look_the_same(app: Identity, network: tuple[str, Member]) -> None:
    tenant_id, admin = network
    assert app.authenticate(tenant_id, " ADMIN@example.org ", PASSWORD).id == admin.id
    other_tenant = str(tenant_id_for("elsewhere"))
    messages = set()
    for tenant, email, password in (
        (tenant_id, "admin@example.org", "wrong password"),
        (tenant_id, "nobody@example.org", PASSWORD),
        (tenant_id, "not an address", PASSWORD),
        (other_tenant, "admin@example.org", PASSWORD),
    ):
        with pytest.raises(InvalidCredentials) as info:
            app.authenticate(tenant, email, password)
        messages.add(info.value.message)
    assert messages == {"wrong e-mail address or password"}


def test_members_of_another_tenant_are_not_found(
    app: Identity, network: tuple[str, Member]
) -> None:
    _, admin = network
    other, _, _ = app.create_tenant("other-net", "Other", "o@example.org", NOW, 60)
    with pytest.raises(NotFound):
        app.get(other.tenant_id, admin.id, Member)
    with pytest.raises(NotFound):
        app.get(other.tenant_id, "not-a-uuid", Member)
    with pytest.raises(NotFound):
        app.update_card(other.tenant_id, str(admin.id), {"bio": "pwned"})


def test_sessions_rotate_and_a_replay_revokes_them(
    app: Identity, network: tuple[str, Member]
) -> None:
    _, admin = network
    tokens = [app.start_session(admin, NOW, 3600)]
    for _ in range(25):  # past the snapshot interval: state survives snapshots
        member, token = app.refresh_session(tokens[-1], NOW)
        assert member.id == admin.id
        tokens.append(token)
    with pytest.raises(InvalidToken, match="already used"):
        app.refresh_session(tokens[0], NOW)
    with pytest.raises(InvalidToken, match="signed out"):
        app.refresh_session(tokens[-1], NOW)


def test_end_session_and_expiry(app: Identity, network: tuple[str, Member]) -> None:
    _, admin = network
    token = app.start_session(admin, NOW, 3600)
    with pytest.raises(InvalidToken):
        app.end_session(token + "x")
    app.end_session(token)
    with pytest.raises(InvalidToken):
        app.refresh_session(token, NOW)
    short = app.start_session(admin, NOW, 60)
    with pytest.raises(InvalidToken, match="expired"):
        app.refresh_session(short, NOW + timedelta(seconds=60))


def test_update_card_saves_only_changes(app: Identity, network: tuple[str, Member]) -> None:
    tenant_id, admin = network
    before = app.max_notification_id()
    app.update_card(tenant_id, str(admin.id), {"display_name": "Admin"})
    assert app.max_notification_id() == before
    assert app.update_card(tenant_id, str(admin.id), {"bio": "Hello"}).card.bio == "Hello"
    assert app.max_notification_id() == before + 1
    assert app.get(tenant_id, admin.id, Member).card.bio == "Hello"


def _join(app: Identity, tenant_id: str, email: str) -> Member:
    _, token = app.issue_invitation(tenant_id, email, None, [], NOW, 3600)
    return app.accept_invitation(token, PASSWORD, full_card(display_name=email[:5]), NOW)


def test_the_network_keeps_its_admins_and_at_least_one(
    app: Identity, network: tuple[str, Member]
) -> None:
    tenant_id, admin = network
    assert app.tenant(tenant_id).admin_ids == [str(admin.id)]  # the founder, on acceptance
    nobody: list[str] = []
    with pytest.raises(RuleViolation) as info:
        app.set_tenant_admin(tenant_id, str(admin.id), False, lambda: nobody)
    assert info.value.rule == "last_tenant_admin"
    before = app.max_notification_id()
    app.set_tenant_admin(tenant_id, str(admin.id), True, lambda: nobody)  # already: no change
    assert app.max_notification_id() == before
    lea = _join(app, tenant_id, "lea@example.org")
    assert app.set_tenant_admin(tenant_id, str(lea.id), True, lambda: nobody).roles == [
        "tenant_admin"
    ]
    assert app.set_tenant_admin(tenant_id, str(admin.id), False, lambda: nobody).roles == []
    assert app.tenant(tenant_id).admin_ids == [str(lea.id)]
    with pytest.raises(NotFound):
        app.set_tenant_admin(tenant_id, str(uuid4()), True, lambda: nobody)


def test_two_admins_demoting_each_other_at_once_leave_one(
    app: Identity, network: tuple[str, Member]
) -> None:
    """Both load the network with two admins; the second save conflicts, is
    tried again on the fresh state, and the rule refuses it."""
    tenant_id, admin = network
    lea = _join(app, tenant_id, "lea@example.org")
    app.set_tenant_admin(tenant_id, str(lea.id), True, list)
    stale = app.tenant(tenant_id)  # as a concurrent command would have loaded it
    app.set_tenant_admin(tenant_id, str(admin.id), False, list)
    stale.revoke_admin(str(lea.id))  # allowed on the stale state ...
    with pytest.raises(Conflict):
        app.save(stale)  # ... but it cannot be saved
    with pytest.raises(RuleViolation):  # and tried again on fresh state, refused
        app.set_tenant_admin(tenant_id, str(lea.id), False, list)
    assert app.tenant(tenant_id).admin_ids == [str(lea.id)]


def test_a_network_registered_before_admins_were_kept_learns_them_once(app: Identity) -> None:
    legacy = Tenant(tenant_id=str(tenant_id_for("legacy")), slug="legacy", name="Legacy")
    assert legacy.admin_ids is None  # as replayed from an old Registered event
    app.save(legacy)
    _, token = app.issue_invitation(legacy.tenant_id, "a@example.org", None, [], NOW, 60)
    founder = app.accept_invitation(token, PASSWORD, full_card(display_name="Founder"), NOW)
    lea = _join(app, legacy.tenant_id, "lea@example.org")
    app.set_tenant_admin(legacy.tenant_id, str(lea.id), True, lambda: [str(founder.id)])
    assert app.tenant(legacy.tenant_id).admin_ids == sorted([str(founder.id), str(lea.id)])


def test_a_network_speaks_french_until_an_admin_chooses_english(app: Identity) -> None:
    tenant = Tenant(tenant_id=str(tenant_id_for("langue")), slug="langue", name="Langue")
    assert tenant.locale == "fr"  # also what a network registered before locales replays to
    with pytest.raises(InvalidInput) as caught:
        tenant.set_locale("de", by="admin")
    assert caught.value.field == "locale"
    assert tenant.set_locale("fr", by="admin") is False  # unchanged: no event
    assert tenant.set_locale("en", by="admin") is True
    app.save(tenant)
    assert app.tenant(tenant.tenant_id).locale == "en"
    assert app.set_locale(tenant.tenant_id, "fr", "admin").locale == "fr"


def test_change_password(app: Identity, network: tuple[str, Member]) -> None:
    tenant_id, admin = network
    with pytest.raises(InvalidCredentials):
        app.change_password(tenant_id, str(admin.id), "not the password", "a new password")
    app.change_password(tenant_id, str(admin.id), PASSWORD, "a new password")
    assert app.authenticate(tenant_id, "admin@example.org", "a new password").id == admin.id
    with pytest.raises(InvalidCredentials):
        app.authenticate(tenant_id, "admin@example.org", PASSWORD)
