"""Identity's aggregates: tenants, members (account + profile card),
invitations, refresh-token families, and the e-mail index that keeps one
account per address in a tenant. Pure: no I/O, time comes in as arguments.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlparse
from uuid import UUID, uuid5

from eventsourcing.domain import event

from services.identity.taxonomy import BY_CODE
from services.runtime.errors import Conflict, InvalidInput, InvalidToken, RuleViolation
from services.runtime.eventstore import TenantAggregate
from services.runtime.i18n import t
from services.runtime.personal import OWNER, personal, personal_state
from services.runtime.text import MAX_TEXT, free_text, single_line

NAMESPACE = UUID("6f1c3f5e-2d0b-4f7e-9a5c-51a1d0e0c0de")

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,38}[a-z0-9])$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
POSTCODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 -]{1,9}$")
ROLES = frozenset({"tenant_admin"})
LOCALES = ("fr", "en")  # a network's language; French by default
MAX_SPENT_TOKENS = 50
MAX_LIVE = 4  # live refresh tokens of one session (concurrent refreshes within the grace)


# -- identifiers ---------------------------------------------------------------


def tenant_id_for(slug: str) -> UUID:
    """A tenant's id follows from its slug: slugs are unique by construction."""
    return uuid5(NAMESPACE, f"tenant:{slug}")


def normalise_email(email: str) -> str:
    email = (email or "").strip()
    if len(email) > 254 or not EMAIL.fullmatch(email):
        raise InvalidInput(t("not a valid e-mail address"), field="email")
    local, domain = email.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def email_key(tenant_id: str, email: str) -> UUID:
    return uuid5(NAMESPACE, f"email:{tenant_id}:{email.lower()}")


def slot_key(tenant_id: str, email: str) -> UUID:
    """The invitation slot of an address: compared like sign-in, ignoring case."""
    return uuid5(NAMESPACE, f"invitation-slot:{tenant_id}:{email.lower()}")


def validate_slug(slug: str) -> str:
    if not SLUG.fullmatch(slug or ""):
        raise InvalidInput(
            t(
                "a slug is 3 to 40 lowercase letters, digits or dashes, not starting or ending "
                "with a dash"
            ),
            field="slug",
        )
    return slug


def validate_name(name: str, field_name: str = "name", max_len: int = 120) -> str:
    return single_line(name, field_name, max_len, required=True)


# -- secrets -------------------------------------------------------------------


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """Tokens are random 256-bit secrets: a plain SHA-256 is a safe way to store them."""
    return hashlib.sha256(secret.encode()).hexdigest()


def split_token(token: str) -> tuple[UUID, str]:
    """Tokens read `<aggregate id>.<secret>`: the id selects, the secret verifies."""
    try:
        selector, secret = (token or "").split(".", 1)
        return UUID(hex=selector), secret
    except ValueError:
        raise InvalidToken(t("this token is not valid")) from None


def join_token(aggregate_id: UUID, secret: str) -> str:
    return f"{aggregate_id.hex}.{secret}"


# -- the profile card ----------------------------------------------------------


@dataclass(frozen=True)
class Place:
    lat: float | None = None
    lon: float | None = None
    postcode: str | None = None

    def __post_init__(self) -> None:
        if (self.lat is None) != (self.lon is None):
            raise InvalidInput(t("a point needs both latitude and longitude"), field="lat")
        if self.lat is not None and not -90 <= self.lat <= 90:
            raise InvalidInput(t("latitude must be between -90 and 90"), field="lat")
        if self.lon is not None and not -180 <= self.lon <= 180:
            raise InvalidInput(t("longitude must be between -180 and 180"), field="lon")
        if self.postcode is not None and not POSTCODE.fullmatch(self.postcode):
            raise InvalidInput(t("not a valid postcode"), field="postcode")
        if self.lat is None and self.postcode is None:
            raise InvalidInput(t("a place needs a point or a postcode"), field="postcode")


MULTILINE = frozenset({"offers", "seeks", "available_for", "bio"})
TEXT_LIMITS = {
    "display_name": 80,
    "business_name": 120,
    "activity_text": 200,
    "offers": 1000,
    "seeks": 1000,
    "available_for": 1000,
    "bio": 2000,
}
CARD_FIELDS = (*TEXT_LIMITS, "activity_code", "links", "work", "home")


@dataclass(frozen=True)
class ProfileCard:
    display_name: str = ""
    business_name: str = ""
    activity_code: str | None = None
    activity_text: str = ""
    offers: str = ""
    seeks: str = ""
    available_for: str = ""
    bio: str = ""
    links: tuple[str, ...] = ()
    work: Place | None = None
    home: Place | None = None

    def validate(self, *, complete: bool) -> ProfileCard:
        for name, limit in TEXT_LIMITS.items():
            clean = free_text if name in MULTILINE else single_line
            clean(getattr(self, name), name, limit, required=complete and name == "display_name")
        if self.activity_code is not None and self.activity_code not in BY_CODE:
            raise InvalidInput(
                t("unknown activity code {code!r}", code=self.activity_code),
                field="activity_code",
            )
        if complete and self.activity_code is None:
            raise InvalidInput(t("choose an activity from the taxonomy"), field="activity_code")
        if len(self.links) > 5:
            raise InvalidInput(t("at most 5 links"), field="links")
        for link in self.links:
            parsed = urlparse(link)
            if parsed.scheme not in ("http", "https") or not parsed.netloc or len(link) > 300:
                raise InvalidInput(
                    t("not an http(s) link: {link!r}", link=link[:60]), field="links"
                )
        return self

    def with_changes(self, changes: dict[str, Any]) -> ProfileCard:
        unknown = set(changes) - set(CARD_FIELDS)
        if unknown:
            names = sorted(unknown)
            raise InvalidInput(t("unknown card fields {names}", names=names), field=names[0])
        values = asdict(self)
        for name, value in changes.items():
            if name in TEXT_LIMITS:
                clean = free_text if name in MULTILINE else single_line
                value = clean(value, name, MAX_TEXT)  # limits: validate()
            elif name == "links":
                if isinstance(value, str) or not all(isinstance(v, str) for v in value or ()):
                    raise InvalidInput(t("links are a list of addresses"), field="links")
                value = tuple(v.strip() for v in value or ())
            elif name in ("work", "home") and isinstance(value, dict):
                value = Place(**value)
            values[name] = value
        values["work"] = _place(values["work"])
        values["home"] = _place(values["home"])
        values["links"] = tuple(values["links"])
        return ProfileCard(**values)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["links"] = list(self.links)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProfileCard:
        return cls().with_changes(dict(d))


def _place(value: Any) -> Place | None:
    if value is None or isinstance(value, Place):
        return value
    return Place(**value)


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# -- aggregates ----------------------------------------------------------------


class Tenant(TenantAggregate):
    """A network, and who its tenant admins are (so that the rule "a network
    keeps at least one tenant admin" is checked on one aggregate's state, and
    two admins demoting each other at once conflict instead of both winning)."""

    noun = "network"
    not_found = t("network not found")
    # its events: the classes @event defines, declared for type checkers
    Registered: ClassVar[type[Any]]
    AdminsChanged: ClassVar[type[Any]]
    LocaleChanged: ClassVar[type[Any]]

    @staticmethod
    def create_id(slug: str) -> UUID:
        return tenant_id_for(slug)

    @event("Registered")
    def __init__(self, tenant_id: str, slug: str, name: str, admin_ids: list[str] | None = None):
        self.tenant_id = tenant_id
        self.slug = slug
        self.name = name
        # None: registered before admins were kept here (see record_admins)
        self.admin_ids: list[str] | None = admin_ids
        self.locale = "fr"  # every network starts in French (LocaleChanged changes it)

    @property
    def admins_known(self) -> bool:
        return self.admin_ids is not None

    def is_admin(self, member_id: str) -> bool:
        return member_id in (self.admin_ids or ())

    def record_admins(self, admin_ids: list[str]) -> None:
        """Once, for a network registered before its admins were kept here:
        the admins as the members' roles say."""
        if self.admin_ids is None:
            self._admins_changed(admin_ids=sorted(set(admin_ids)))

    def grant_admin(self, member_id: str) -> bool:
        if self.is_admin(member_id):
            return False
        self._admins_changed(admin_ids=sorted({*(self.admin_ids or ()), member_id}))
        return True

    def revoke_admin(self, member_id: str) -> bool:
        if not self.is_admin(member_id):
            return False
        if self.admin_ids == [member_id]:
            raise RuleViolation(
                t("a network keeps at least one tenant admin"), rule="last_tenant_admin"
            )
        self._admins_changed(admin_ids=[m for m in self.admin_ids or () if m != member_id])
        return True

    @event("AdminsChanged")
    def _admins_changed(self, admin_ids: list[str]) -> None:
        self.admin_ids = list(admin_ids)

    def set_locale(self, locale: str, by: str) -> bool:
        """The language of the network's mails and pages. False if unchanged."""
        if locale not in LOCALES:
            raise InvalidInput(
                t("a network's language is one of {locales}", locales=LOCALES), field="locale"
            )
        if locale == self.locale:
            return False
        self._locale_changed(locale=locale, by=by)
        return True

    @event("LocaleChanged")
    def _locale_changed(self, locale: str, by: str) -> None:
        self.locale = locale


class EmailIndex(TenantAggregate):
    """Points a (tenant, e-mail) pair at its member. Saved in the same
    transaction as the member, its deterministic id makes a second account
    with the same address a conflict."""

    # its events: the classes @event defines, declared for type checkers
    Registered: ClassVar[type[Any]]

    @staticmethod
    def create_id(tenant_id: str, email: str) -> UUID:
        return email_key(tenant_id, email)

    @event("Registered")
    def __init__(self, tenant_id: str, email: str, member_id: UUID):
        self.tenant_id = tenant_id
        self.member_id = member_id


class Invitation(TenantAggregate):
    noun = "invitation"
    not_found = t("invitation not found")
    # its events: the classes @event defines, declared for type checkers
    Issued: ClassVar[type[Any]]
    Accepted: ClassVar[type[Any]]
    Revoked: ClassVar[type[Any]]

    @event("Issued")
    def __init__(
        self,
        tenant_id: str,
        email: str,
        token_hash: str,
        invited_by: str | None,
        roles: list[str],
        expires_at: datetime,
    ):
        self.tenant_id = tenant_id
        self.email = email
        self.token_hash = token_hash
        self.invited_by = invited_by
        self.roles = list(roles)
        self.expires_at = expires_at
        self.status = "pending"
        self.member_id: UUID | None = None

    def check(self, secret: str, now: datetime) -> None:
        if not hmac.compare_digest(self.token_hash, hash_secret(secret)):
            raise InvalidToken(t("this invitation link is not valid"))
        if self.status == "accepted":
            raise InvalidToken(t("this invitation has already been used"))
        if self.status == "revoked":
            raise InvalidToken(t("this invitation has been withdrawn"))
        if now >= self.expires_at:
            raise InvalidToken(t("this invitation has expired: ask for a new one"))

    def accept(self, member_id: UUID) -> None:
        self._accepted(member_id=member_id)

    @event("Accepted")
    def _accepted(self, member_id: UUID) -> None:
        self.status = "accepted"
        self.member_id = member_id

    def revoke(self) -> None:
        if self.status == "accepted":
            raise Conflict(t("this invitation is accepted, it cannot be withdrawn"))
        if self.status != "pending":  # revoked
            raise Conflict(t("this invitation is revoked, it cannot be withdrawn"))
        self._revoked()

    @event("Revoked")
    def _revoked(self) -> None:
        self.status = "revoked"


class Member(TenantAggregate):
    """A member's account in one tenant, and their profile card."""

    not_found = t("member not found")
    # its events: the classes @event defines, declared for type checkers
    Joined: ClassVar[type[Any]]
    CardUpdated: ClassVar[type[Any]]
    PasswordChanged: ClassVar[type[Any]]
    RolesChanged: ClassVar[type[Any]]

    @event("Joined")
    def __init__(
        self,
        tenant_id: str,
        email: str,
        password_hash: str,
        card: dict[str, Any],
        roles: list[str],
        invitation_id: UUID | None,
        invited_by: str | None,
    ):
        self.tenant_id = tenant_id
        self.email = email
        self.password_hash = password_hash
        self.card_data = card
        self.roles = list(roles)
        self.invitation_id = invitation_id
        self.invited_by = invited_by
        self.credential = fingerprint(password_hash)

    @property
    def credential_fingerprint(self) -> str:
        """Which password the member chose last (a change or a reset; not a
        rehash of the same password): sessions are bound to it, so a
        session started with an older password is over (RefreshFamily)."""
        found: str | None = getattr(self, "credential", None)  # older snapshots lack it
        return found or fingerprint(self.password_hash)

    @property
    def card(self) -> ProfileCard:
        return ProfileCard.from_dict(self.card_data)

    def update_card(self, changes: dict[str, Any]) -> list[str]:
        old = self.card
        new = old.with_changes(changes).validate(complete=True)
        changed = [name for name in CARD_FIELDS if getattr(old, name) != getattr(new, name)]
        if changed:
            self._card_updated(card=new.to_dict(), changed=changed)
        return changed

    @event("CardUpdated")
    def _card_updated(self, card: dict[str, Any], changed: list[str]) -> None:
        self.card_data = card

    def change_password(self, password_hash: str, rehash: bool = False) -> None:
        """A new password (`rehash`: the same password hashed anew, with new
        parameters: sessions stay bound to it)."""
        self._password_changed(password_hash=password_hash, rehash=rehash)

    @event("PasswordChanged")
    def _password_changed(self, password_hash: str, rehash: bool = False) -> None:
        if not rehash:
            self.credential = fingerprint(password_hash)
        elif getattr(self, "credential", None) is None:
            self.credential = fingerprint(self.password_hash)
        self.password_hash = password_hash

    def set_roles(self, roles: list[str]) -> bool:
        unknown = set(roles) - ROLES
        if unknown:
            raise InvalidInput(t("unknown roles {roles}", roles=sorted(unknown)), field="roles")
        roles = sorted(set(roles))
        if roles == sorted(self.roles):
            return False
        self._roles_changed(roles=roles)
        return True

    @event("RolesChanged")
    def _roles_changed(self, roles: list[str]) -> None:
        self.roles = list(roles)


class RefreshFamily(TenantAggregate):
    """One sign-in session (its id is the access tokens' `sid`): a chain of
    single-use refresh tokens. Presenting a token that was already spent means
    it was stolen and replayed: the whole family is revoked, so the thief and
    the victim must both sign in again -- except within `grace` seconds of the
    token's first use, which is a client refreshing twice at once (two tabs,
    a retry after a lost reply): that answers another token of the same
    session instead (at most MAX_LIVE tokens of a session are live at once)."""

    # its events: the classes @event defines, declared for type checkers
    Started: ClassVar[type[Any]]
    Rotated: ClassVar[type[Any]]
    Revoked: ClassVar[type[Any]]
    Rebound: ClassVar[type[Any]]

    @event("Started")
    def __init__(
        self,
        tenant_id: str,
        member_id: UUID,
        token_hash: str,
        expires_at: datetime,
        password_fingerprint: str | None = None,
    ):
        self.tenant_id = tenant_id
        self.member_id = member_id
        # the password it was started with (Member.credential_fingerprint):
        # once the member's differs, the session is over, even if it was
        # started while the password was being changed (None: older sessions)
        self.password_fingerprint = password_fingerprint
        self.current_hash = token_hash
        self.live: list[str] = [token_hash]
        self.spent: list[str] = []
        self.spent_at: dict[str, datetime] = {}
        self.expires_at = expires_at
        self.revoked = False
        self.revoked_reason: str | None = None

    def rebind(self, credential_fingerprint: str) -> None:
        """Bind the session to the member's new password: the session that
        changed it goes on."""
        self._rebound(password_fingerprint=credential_fingerprint)

    @event("Rebound")
    def _rebound(self, password_fingerprint: str) -> None:
        self.password_fingerprint = password_fingerprint

    def bound_to(self, credential_fingerprint: str) -> bool:
        """Started with the member's current password (or before sessions were bound)."""
        found: str | None = getattr(self, "password_fingerprint", None)
        return found is None or hmac.compare_digest(found, credential_fingerprint)

    def _live(self) -> list[str]:
        # sessions started before several live tokens were kept had one
        return list(getattr(self, "live", None) or [self.current_hash])

    def is_live(self, secret: str) -> bool:
        return not self.revoked and hash_secret(secret) in self._live()

    def rotate(self, secret: str, new_hash: str, now: datetime, grace: float = 0) -> None:
        """Spend the presented token for `new_hash`. A spent token presented
        again within `grace` seconds of its first use gets a token of its own
        (the concurrent refresh); later, it revokes the session."""
        presented = hash_secret(secret)
        if self.revoked:
            raise InvalidToken(t("this session has been signed out"))
        if now >= self.expires_at:
            raise InvalidToken(t("this session has expired: sign in again"))
        if presented in self._live():
            self._rotated(new_hash=new_hash, presented=presented, at=now, concurrent=False)
            return
        if presented in self.spent:
            first_use = getattr(self, "spent_at", {}).get(presented)
            if first_use is not None and (now - first_use).total_seconds() < grace:
                self._rotated(new_hash=new_hash, presented=presented, at=now, concurrent=True)
                return
            self._revoked(reason="reuse")
            return
        raise InvalidToken(t("this refresh token is not valid"))

    @event("Rotated")
    def _rotated(
        self,
        new_hash: str,
        presented: str | None = None,
        at: datetime | None = None,
        concurrent: bool = False,
    ) -> None:
        old = presented or self.current_hash
        live = self._live()
        spent_at = dict(getattr(self, "spent_at", None) or {})
        if not concurrent:
            if old in live:
                live.remove(old)
            self.spent = [*self.spent, old][-MAX_SPENT_TOKENS:]
            if at is not None:
                spent_at[old] = at
        live = [*live, new_hash]
        # a token pushed out of the live ones counts as spent (with no first
        # use: presented again, it revokes the session), so that replays in
        # the grace cannot push the legitimate client's token out unnoticed
        dropped = live[:-MAX_LIVE]
        self.live = live[-MAX_LIVE:]
        if dropped:
            self.spent = [*self.spent, *dropped][-MAX_SPENT_TOKENS:]
        self.spent_at = {h: t for h, t in spent_at.items() if h in self.spent}
        self.current_hash = new_hash

    def revoke(self, reason: str) -> bool:
        """End the session (signed out, password changed, roles changed…).
        False if it had already ended."""
        if self.revoked:
            return False
        self._revoked(reason=reason)
        return True

    @event("Revoked")
    def _revoked(self, reason: str) -> None:
        self.revoked = True
        self.revoked_reason = reason


class InvitationSlot(TenantAggregate):
    """One per (tenant, address): which invitation to it is the latest, so
    that inviting an address twice while an invitation to it is pending
    answers that invitation (and mails nothing) instead of a second one.
    Its deterministic id makes two concurrent first invitations conflict."""

    Pointed: ClassVar[type[Any]]

    @staticmethod
    def create_id(tenant_id: str, email: str) -> UUID:
        return slot_key(tenant_id, email)

    @event("Pointed")
    def __init__(self, tenant_id: str, email: str, invitation_id: UUID):
        self.tenant_id = tenant_id
        self.invitation_id = invitation_id

    def point_to(self, invitation_id: UUID) -> None:
        self._pointed_to(invitation_id=invitation_id)

    @event("Repointed")
    def _pointed_to(self, invitation_id: UUID) -> None:
        self.invitation_id = invitation_id


class PasswordReset(TenantAggregate):
    """A password-reset link: single use, expiring, and only good while the
    member's password is the one it was issued for (any password change,
    another reset included, makes older links useless)."""

    Requested: ClassVar[type[Any]]
    Used: ClassVar[type[Any]]

    @event("Requested")
    def __init__(
        self,
        tenant_id: str,
        member_id: UUID,
        token_hash: str,
        password_fingerprint: str,
        expires_at: datetime,
    ):
        self.tenant_id = tenant_id
        self.member_id = member_id
        self.token_hash = token_hash
        self.password_fingerprint = password_fingerprint
        self.expires_at = expires_at
        self.used = False

    def check(self, secret: str, password_hash: str, now: datetime) -> None:
        if not hmac.compare_digest(self.token_hash, hash_secret(secret)):
            raise InvalidToken(t("this password-reset link is not valid"))
        if self.used:
            raise InvalidToken(t("this password-reset link has already been used"))
        if now >= self.expires_at:
            raise InvalidToken(t("this password-reset link has expired: ask for a new one"))
        if not hmac.compare_digest(self.password_fingerprint, fingerprint(password_hash)):
            raise InvalidToken(t("the password has changed since this link was sent: ask again"))

    def use(self) -> None:
        self._used()

    @event("Used")
    def _used(self) -> None:
        self.used = True


def fingerprint(password_hash: str) -> str:
    """Which password a reset link was issued for, without keeping the hash."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:32]


# -- personal data (services/runtime/personal.py, docs/erasure.md) -------------
# Sealed under the member's key (their id), or the key of an address (the id
# of its invitation slot) for what is known before the address is a member's.


def _address(fields: Any) -> str | None:
    email = fields.get("email")
    return str(slot_key(fields["tenant_id"], email)) if email else None


personal(Member.Joined, email=OWNER, password_hash=OWNER, card=OWNER)
personal(Member.CardUpdated, card=OWNER)
personal(Member.PasswordChanged, password_hash=OWNER)
personal_state(Member, email=OWNER, password_hash=OWNER, card_data=OWNER)
personal(EmailIndex.Registered, email="member_id")
personal(Invitation.Issued, email=_address)
personal_state(Invitation, email=_address)
personal(InvitationSlot.Pointed, email=OWNER)
