"""Identity's published language: the only module of this service that the
gateway and other services may import.

Requests go to `quartier.cmd.identity.<Name>` / `quartier.qry.identity.<Name>`;
public events to `quartier.evt.<tenant>.identity.<Name>` as
`quartier.identity.<Name>.v<version>`. Contact details and coordinates never
leave identity: other services ask questions (`MemberPlaces`) instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from msgspec import UNSET, UnsetType

from services.runtime.messages import Command, Done, Message, PublicEvent, Query, R

SERVICE = "identity"

Locale = Literal["fr", "en"]  # the language of a network's mails and pages


class IdentityCommand(Command[R]):
    service: ClassVar[str] = SERVICE


class IdentityQuery(Query[R]):
    service: ClassVar[str] = SERVICE


class IdentityEvent(PublicEvent):
    service: ClassVar[str] = SERVICE


# -- values --------------------------------------------------------------------


class Place(Message):
    lat: float | None = None
    lon: float | None = None
    postcode: str | None = None


class CardChanges(Message):
    """A partial profile card: a field left UNSET is unchanged; `work`/`home`
    set to None clear the place."""

    display_name: str | UnsetType = UNSET
    business_name: str | UnsetType = UNSET
    activity_code: str | UnsetType = UNSET
    activity_text: str | UnsetType = UNSET
    offers: str | UnsetType = UNSET
    seeks: str | UnsetType = UNSET
    available_for: str | UnsetType = UNSET
    bio: str | UnsetType = UNSET
    links: list[str] | UnsetType = UNSET
    work: Place | UnsetType | None = UNSET
    home: Place | UnsetType | None = UNSET


class MemberCard(Message):
    """A member as other members of the tenant see them. `email`, `work` and
    `home` (with coordinates) are filled only for the member themself and for
    tenant admins (`email`) — they never leave identity otherwise."""

    member_id: str
    tenant_id: str
    display_name: str
    business_name: str
    activity_code: str | None
    activity_label: str | None
    activity_text: str
    offers: str
    seeks: str
    available_for: str
    bio: str
    links: list[str]
    work_postcode: str | None
    home_postcode: str | None
    roles: list[str]
    joined_at: datetime
    email: str | None = None
    work: Place | None = None
    home: Place | None = None
    distance_km: float | None = None
    erased: bool = False  # a former member: personal data erased (docs/erasure.md)


class Tenant(Message):
    tenant_id: str
    slug: str
    name: str
    created_at: datetime
    locale: Locale = "fr"  # mails and link pages are written in it


class Profession(Message):
    code: str
    label: str
    label_en: str
    sector: str


class Session(Message):
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    member_id: str
    tenant_id: str
    tenant_slug: str
    roles: list[str]


class SessionInfo(Message):
    """One of the caller's own sign-in sessions (ids and times, UTC)."""

    session_id: str
    started_at: datetime
    last_used_at: datetime  # the last sign-in or refresh
    expires_at: datetime  # when its refresh tokens stop working
    current: bool = False  # the session of the caller's access token


class SessionState(Message):
    """A session's current state, for the gateway: the member's roles now."""

    member_id: str
    roles: list[str]


class InvitationInfo(Message):
    invitation_id: str
    tenant_id: str
    email: str
    status: str
    invited_by: str | None
    expires_at: datetime
    created_at: datetime


class InvitationSent(Message):
    invitation_id: str
    expires_at: datetime
    token: str | None = None  # only when the platform operator asked


class InvitationPage(Message):
    items: list[InvitationInfo]
    total: int


class TenantCreated(Message):
    tenant: Tenant
    admin_invitation: InvitationSent


class MemberPage(Message):
    items: list[MemberCard]
    total: int
    offset: int


class Places(Message):
    """Where a member works and lives, relative to a point: distances in km
    (None when that place has no point) and postcodes; and their activity
    code (what a hub's one-per-profession rule needs to know of a candidate)."""

    member_id: str
    work_km: float | None
    home_km: float | None
    work_postcode: str | None
    home_postcode: str | None
    activity_code: str | None = None


class PlacesList(Message):
    items: list[Places]


class Point(Message):
    lat: float
    lon: float


class Contact(Message):
    """Where to write to a member: for services that mail members (meetups),
    never stored by them."""

    member_id: str
    email: str
    display_name: str


class Contacts(Message):
    """Members' contacts and what a mail to them needs of their network."""

    tenant_id: str
    slug: str  # the network's address in links
    name: str
    locale: Locale
    items: list[Contact]


# -- commands ------------------------------------------------------------------


class CreateTenant(IdentityCommand[TenantCreated]):
    """Platform operator: a new network and an invitation for its first admin."""

    slug: str
    name: str
    admin_email: str


class InviteMember(IdentityCommand[InvitationSent]):
    """Tenant admin, or a service on behalf of a member (hubs' co-optation):
    e-mails a single-use invitation link. While an invitation to the same
    address (compared ignoring case) is pending, answers that one (no token,
    no mail); with other roles, Conflict. A member's address: Conflict."""

    email: str
    as_admin: bool = False
    on_behalf_of: str | None = None


class RevokeInvitation(IdentityCommand[Done]):
    invitation_id: str


class AcceptInvitation(IdentityCommand[Session]):
    """Anonymous, with the token from the e-mail: sets the password and the
    profile card, and signs in."""

    token: str
    password: str
    card: CardChanges


class Login(IdentityCommand[Session]):
    """Sign in. Attempts are throttled per account and per client address
    (`client_address`, set by the gateway, never by the client): after a few
    failures each further attempt waits longer (RateLimited, with
    `retry_after` seconds), up to a bound; no lockout lasts longer."""

    tenant_slug: str
    email: str
    password: str
    client_address: str | None = None


class RefreshSession(IdentityCommand[Session]):
    refresh_token: str


class Logout(IdentityCommand[Done]):
    refresh_token: str


class ChangePassword(IdentityCommand[Done]):
    """Ends the member's other sessions; the caller's own goes on."""

    current_password: str
    new_password: str


class RevokeSession(IdentityCommand[Done]):
    """End one of the caller's own sessions (another's is NotFound)."""

    session_id: str


class RequestPasswordReset(IdentityCommand[Done]):
    """Anonymous: mail a single-use, expiring reset link to the member with
    this address in this network. Answers Done alike whether or not there is
    such a member (and mails nothing then); at most a few mails per account
    per hour (more requests are answered alike and mail nothing)."""

    tenant_slug: str
    email: str
    client_address: str | None = None


class ResetPassword(IdentityCommand[Done]):
    """With the token of a reset mail of this network: set a new password;
    every session of the member ends. Unknown, used, expired, superseded
    or another network's token: InvalidToken."""

    tenant_slug: str
    token: str
    new_password: str


class UpdateProfileCard(IdentityCommand[MemberCard]):
    """The member's own card."""

    changes: CardChanges


class SetTenantAdmin(IdentityCommand[MemberCard]):
    member_id: str
    admin: bool


class SetTenantLocale(IdentityCommand[Tenant]):
    """Tenant admin: the language of the network's mails and link pages."""

    locale: Locale


# -- queries -------------------------------------------------------------------


class GetTenant(IdentityQuery[Tenant]):
    """By slug; anyone may ask (the login page needs the network's name)."""

    slug: str


class GetMembers(IdentityQuery[list[MemberCard]]):
    """Cards of the given members of the caller's tenant, in the same order;
    missing (or other tenants') ids are left out."""

    member_ids: list[str]


class SearchMembers(IdentityQuery[MemberPage]):
    """Members of the caller's tenant. `text`: every word (folded: case and
    accents aside) in the card; with `offered_only`, in what the member
    offers (their "I offer" and activity), not what they seek or bio — how
    referrals finds who could answer a need."""

    activity_code: str | None = None
    text: str | None = None
    offered_only: bool = False
    near: Point | None = None
    radius_km: float | None = None
    offset: int = 0
    limit: int = 20


class ListProfessions(IdentityQuery[list[Profession]]):
    pass


class CurrentSession(IdentityQuery[SessionState]):
    """The gateway, on each request with an access token: is the token's
    session (the envelope actor's `session_id`) still on, and what are the
    member's roles now? Unauthenticated if it has ended or expired."""


class ListSessions(IdentityQuery[list[SessionInfo]]):
    """The caller's own sessions that are still on, most recently used
    first, at most 50."""


class ListInvitations(IdentityQuery[InvitationPage]):
    """Tenant admin: invitations, newest first."""

    status: str | None = None
    offset: int = 0
    limit: int = 50


class MemberPlaces(IdentityQuery[PlacesList]):
    """For other services: how far members work and live from a point.
    Answers distances and postcodes, never coordinates."""

    member_ids: list[str]
    centre: Point | None = None


class MemberContacts(IdentityQuery[Contacts]):
    """Services only (meetups' mails): e-mail address and display name of the
    given members of the caller's tenant (other tenants' and unknown ids are
    left out), and the network's slug, name and locale. At most 500 ids."""

    member_ids: list[str]


# -- public events -------------------------------------------------------------


class TenantRegistered(IdentityEvent):
    slug: str
    name: str


class TenantLocaleChanged(IdentityEvent):
    locale: Locale


class InvitationIssued(IdentityEvent):
    invitation_id: str
    invited_by: str | None
    expires_at: datetime


class InvitationRevoked(IdentityEvent):
    invitation_id: str


class MemberJoined(IdentityEvent):
    member_id: str
    invitation_id: str | None
    invited_by: str | None
    activity_code: str | None
    roles: list[str]


class ProfileCardUpdated(IdentityEvent):
    member_id: str
    activity_code: str | None
    changed: list[str]


class MemberRolesChanged(IdentityEvent):
    member_id: str
    roles: list[str]


# -- tenant API keys (docs/api-keys.md) ------------------------------------------

API_KEY_PREFIX = "qk_"  # how a key starts: `qk_<key id, 32 hex>_<secret>`
API_KEY_SCOPES = ("events:read", "reports:read", "export")
"""What a key may be issued for: reading the event stream (and managing
webhooks), the reports, exports. A tenant admin's token holds them all; a
key never acts as a member."""


class ApiKeyInfo(Message):
    """A key as listed: never its secret nor the secret's hash."""

    key_id: str
    name: str
    prefix: str  # `qk_` and the first 12 hex digits of the id: how to recognise it
    scopes: list[str]
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None  # to within a minute
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyIssued(Message):
    """A new key and its secret: the only time the secret is shown."""

    key: ApiKeyInfo
    secret: str


class ApiKeyPage(Message):
    items: list[ApiKeyInfo]
    total: int


class ApiKeyGrant(Message):
    """What a verified key may do now: for the gateway."""

    key_id: str
    tenant_id: str
    tenant_slug: str
    scopes: list[str]
    expires_at: datetime | None


class CreateApiKey(IdentityCommand[ApiKeyIssued]):
    """Tenant admin: a new key with these scopes (`API_KEY_SCOPES`, at least
    one), a name (≤ 80) and an optional expiry (1 minute to 3 years ahead).
    At most 50 unrevoked keys per network."""

    name: str
    scopes: list[str]
    expires_at: datetime | None = None


class RevokeApiKey(IdentityCommand[ApiKeyInfo]):
    """Tenant admin: the key stops working at once (a running stream within
    seconds). Another network's or an unknown key: NotFound; revoked
    already: Conflict."""

    key_id: str


class ListApiKeys(IdentityQuery[ApiKeyPage]):
    """Tenant admin: the network's keys, newest first, revoked ones too."""

    offset: int = 0
    limit: int = 20


class VerifyApiKey(IdentityQuery[ApiKeyGrant]):
    """The gateway, for a request presenting a key as its Bearer credential:
    the key's network and scopes now (revoked, expired, unknown or malformed:
    Unauthenticated). Failures are throttled per client address
    (`client_address`, set by the gateway): RateLimited with `retry_after`."""

    key: str
    client_address: str | None = None


class ApiKeyCreated(IdentityEvent):
    key_id: str
    prefix: str
    scopes: list[str]
    expires_at: datetime | None
    created_by: str


class ApiKeyRevoked(IdentityEvent):
    key_id: str
    revoked_by: str


# -- erasure (docs/erasure.md) -------------------------------------------------


class ErasureInfo(Message):
    erasure_id: str
    member_id: str
    status: Literal["requested", "completed"]
    requested_at: datetime
    completed_at: datetime | None


class ErasurePage(Message):
    items: list[ErasureInfo]
    total: int


class RequestErasure(IdentityCommand[ErasureInfo]):
    """Erase a member's personal data: the member themselves, or a tenant
    admin on their behalf. Asked again: the same erasure, nothing more."""

    member_id: str


class ListErasures(IdentityQuery[ErasurePage]):
    """Tenant admin: erasures, newest first (or only the one with this id)."""

    erasure_id: str | None = None
    offset: int = 0
    limit: int = 50


class MemberErased(IdentityEvent):
    """A member's personal data has been erased in identity: every service
    holding some destroys its keys of the member and scrubs its views. The
    member reads as a former member; their id stays."""

    member_id: str
