"""GraphQL for the identity service: networks (tenants), sign-in, sessions,
password reset, invitations, members and their profile cards, the profession
taxonomy.

By convention (see `gateway.kit`): `Query`, `Mutation`, `types`, `nodes`."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import msgspec
import strawberry
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from gateway.apikeys import ApiKeyMutation, ApiKeyQuery
from gateway.context import Context
from gateway.errors import Error, InvalidCredentials, InvalidToken
from gateway.kit import (
    Connection,
    NodeLoader,
    as_error_type,
    ask,
    command,
    connection,
    public,
    public_errors,
    require_member,
    result_union,
    said,
)
from gateway.nodes import Node, from_global_id, parse_page, split_raw_id, to_global_id
from services.identity import contract as c
from services.runtime import errors as e
from services.runtime.messages import Actor


def member_loader(info: Info[Context, Any]) -> DataLoader[str, c.MemberCard | None]:
    ctx = info.context

    def make() -> DataLoader[str, c.MemberCard | None]:
        async def load(ids: list[str]) -> list[c.MemberCard | None]:
            rctx = ctx.request_context()
            cards = await ctx.ask(c.GetMembers(member_ids=list(ids)), rctx)
            by_id = {card.member_id: card for card in cards}
            return [by_id.get(i) for i in ids]

        return DataLoader(load_fn=load, max_batch_size=200)

    return ctx.loader("identity.members", make)


async def load_member(info: Info[Context, Any], member_id: str | None) -> Member | None:
    if not member_id:
        return None
    with public_errors():
        card = await member_loader(info).load(member_id)
    return Member.from_card(card) if card else None


async def load_members(info: Info[Context, Any], member_ids: list[str]) -> list[Member]:
    """Several members in one batch, in order; unknown ids are left out."""
    with public_errors():
        cards = await member_loader(info).load_many(member_ids)
    return [Member.from_card(card) for card in cards if card]


# -- types ---------------------------------------------------------------------


@strawberry.type(
    description="A point and/or a postcode. Coordinates are shown only to their owner."
)
class Place:
    lat: float | None
    lon: float | None
    postcode: str | None


@strawberry.type(description="An activity of the profession taxonomy.")
class Profession:
    code: str
    label: str
    label_en: str
    sector: str


@strawberry.type(
    description="A member and their profile card (visible to members of the same network)."
)
class Member(Node):
    member_id: strawberry.ID = strawberry.field(
        description="The member's UUID, as on the event stream."
    )
    display_name: str
    business_name: str
    activity_code: str | None
    activity_label: str | None
    activity_text: str
    offers: str = strawberry.field(description='"I offer"')
    seeks: str = strawberry.field(description='"I seek"')
    available_for: str = strawberry.field(description='"I am available for"')
    bio: str
    links: list[str]
    work_postcode: str | None
    home_postcode: str | None
    roles: list[str]
    joined_at: datetime
    email: str | None = strawberry.field(
        description="Only for the member themself and tenant admins."
    )
    work: Place | None = strawberry.field(description="Only for the member themself.")
    home: Place | None = strawberry.field(description="Only for the member themself.")
    distance_km: float | None = strawberry.field(
        description="In a search near a point: distance of the nearer of work and home, rounded."
    )
    erased: bool = strawberry.field(
        description=(
            "A former member whose personal data was erased: the name reads "
            '"former member" in the network\'s language, the card is empty.'
        )
    )

    @strawberry.field
    def is_tenant_admin(self) -> bool:
        return "tenant_admin" in self.roles

    @classmethod
    def from_card(cls, card: c.MemberCard) -> Member:
        return cls(
            id=to_global_id("Member", card.member_id),
            member_id=strawberry.ID(card.member_id),
            display_name=card.display_name,
            business_name=card.business_name,
            activity_code=card.activity_code,
            activity_label=card.activity_label,
            activity_text=card.activity_text,
            offers=card.offers,
            seeks=card.seeks,
            available_for=card.available_for,
            bio=card.bio,
            links=list(card.links),
            work_postcode=card.work_postcode,
            home_postcode=card.home_postcode,
            roles=list(card.roles),
            joined_at=card.joined_at,
            email=card.email,
            work=Place(**msgspec.structs.asdict(card.work)) if card.work else None,
            home=Place(**msgspec.structs.asdict(card.home)) if card.home else None,
            distance_km=card.distance_km,
            erased=card.erased,
        )


@strawberry.enum(description="The language of a network's e-mails and link pages.")
class Locale(Enum):
    FR = "fr"
    EN = "en"


@strawberry.type(description="A network: an independent tenant of the installation.")
class Tenant(Node):
    tenant_id: strawberry.ID
    slug: str
    name: str
    created_at: datetime
    locale: Locale = strawberry.field(
        description="The language of the network's e-mails and link pages (French by default)."
    )

    @classmethod
    def from_contract(cls, t: c.Tenant) -> Tenant:
        return cls(
            id=to_global_id("Tenant", t.tenant_id, t.slug),
            tenant_id=strawberry.ID(t.tenant_id),
            slug=t.slug,
            name=t.name,
            created_at=t.created_at,
            locale=Locale(t.locale),
        )


@strawberry.type
class Invitation(Node):
    invitation_id: strawberry.ID
    email: str
    status: str = strawberry.field(description="pending, accepted, revoked or expired")
    expires_at: datetime
    created_at: datetime
    invited_by_id: strawberry.Private[str | None]

    @strawberry.field
    async def invited_by(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, self.invited_by_id)

    @classmethod
    def from_contract(cls, inv: c.InvitationInfo) -> Invitation:
        return cls(
            id=to_global_id("Invitation", inv.invitation_id),
            invitation_id=strawberry.ID(inv.invitation_id),
            email=inv.email,
            status=inv.status,
            expires_at=inv.expires_at,
            created_at=inv.created_at,
            invited_by_id=inv.invited_by,
        )


@strawberry.type(description="The invitation was e-mailed to the address.")
class InvitationSent:
    invitation_id: strawberry.ID
    expires_at: datetime
    token: str | None = strawberry.field(
        description="The single-use token: returned only to the platform operator."
    )

    @classmethod
    def from_contract(cls, s: c.InvitationSent) -> InvitationSent:
        return cls(
            invitation_id=to_global_id("Invitation", s.invitation_id),
            expires_at=s.expires_at,
            token=s.token,
        )


@strawberry.type(
    description="Signed in: a short-lived access token and a single-use refresh token."
)
class AuthPayload:
    access_token: str
    access_token_expires_at: datetime
    refresh_token: str
    tenant_slug: str
    session: strawberry.Private[c.Session]

    @strawberry.field
    async def member(self, info: Info[Context, Any]) -> Member | None:
        s = self.session
        rctx = info.context.request_context(actor=_member_actor(s), tenant_id=s.tenant_id)
        cards = await ask(info, c.GetMembers(member_ids=[s.member_id]), rctx)
        return Member.from_card(cards[0]) if cards else None

    @classmethod
    def from_session(cls, s: c.Session) -> AuthPayload:
        return cls(
            access_token=s.access_token,
            access_token_expires_at=s.access_expires_at,
            refresh_token=s.refresh_token,
            tenant_slug=s.tenant_slug,
            session=s,
        )


def _member_actor(s: c.Session) -> Actor:
    return Actor(kind="member", member_id=s.member_id, tenant_id=s.tenant_id, roles=tuple(s.roles))


@strawberry.type(
    description="Too many attempts (sign-in, password reset): try again after `retryAfterSeconds`."
)
class TooManyAttempts(Error):
    retry_after_seconds: int


@strawberry.type(description="One of your sign-in sessions (a device or browser).")
class SessionInfo:
    id: strawberry.ID = strawberry.field(description="Give it to `revokeSession`.")
    started_at: datetime
    last_used_at: datetime = strawberry.field(description="The last sign-in or refresh.")
    expires_at: datetime = strawberry.field(description="When its refresh token stops working.")
    current: bool = strawberry.field(description="The session of this request's access token.")

    @classmethod
    def from_contract(cls, s: c.SessionInfo) -> SessionInfo:
        return cls(
            id=to_global_id("Session", s.session_id),
            started_at=s.started_at,
            last_used_at=s.last_used_at,
            expires_at=s.expires_at,
            current=s.current,
        )


@strawberry.type
class SessionRevoked:
    session_id: strawberry.ID


@strawberry.type(description="Answered alike whether or not the address has an account.")
class PasswordResetRequested:
    ok: bool


@strawberry.type(description="The password is changed; every session has ended: sign in.")
class PasswordReset:
    ok: bool


@strawberry.type
class TenantCreated:
    tenant: Tenant
    admin_invitation: InvitationSent


@strawberry.type
class InvitationRevoked:
    invitation_id: strawberry.ID


@strawberry.type
class SignedOut:
    ok: bool


@strawberry.type
class PasswordChanged:
    ok: bool


@strawberry.type
class ProfileCardUpdated:
    member: Member


@strawberry.type
class TenantAdminSet:
    member: Member


@strawberry.type
class TenantLocaleSet:
    tenant: Tenant


# -- inputs --------------------------------------------------------------------


@strawberry.input
class PlaceInput:
    lat: float | None = None
    lon: float | None = None
    postcode: str | None = None


@strawberry.input
class GeoPointInput:
    lat: float
    lon: float


@strawberry.input(description="Fields left out are unchanged; `work: null` clears the place.")
class ProfileCardInput:
    display_name: str | None = strawberry.UNSET
    business_name: str | None = strawberry.UNSET
    activity_code: str | None = strawberry.UNSET
    activity_text: str | None = strawberry.UNSET
    offers: str | None = strawberry.UNSET
    seeks: str | None = strawberry.UNSET
    available_for: str | None = strawberry.UNSET
    bio: str | None = strawberry.UNSET
    links: list[str] | None = strawberry.UNSET
    work: PlaceInput | None = strawberry.UNSET
    home: PlaceInput | None = strawberry.UNSET

    def to_contract(self) -> c.CardChanges:
        values: dict[str, Any] = {}
        for name in c.CardChanges.__struct_fields__:
            value = getattr(self, name)
            if value is strawberry.UNSET:
                continue
            if name in ("work", "home"):
                value = (
                    None
                    if value is None
                    else c.Place(lat=value.lat, lon=value.lon, postcode=value.postcode)
                )
            elif value is None:
                value = [] if name == "links" else ""
            values[name] = value
        return c.CardChanges(**values)


@strawberry.input
class CreateTenantInput:
    slug: str
    name: str
    admin_email: str


@strawberry.input
class InviteMemberInput:
    email: str
    as_admin: bool = False


@strawberry.input
class RevokeInvitationInput:
    invitation_id: strawberry.ID


@strawberry.input
class AcceptInvitationInput:
    token: str
    password: str
    card: ProfileCardInput


@strawberry.input
class LoginInput:
    tenant: str = strawberry.field(description="The network's slug, e.g. pole-11e")
    email: str
    password: str


@strawberry.input
class RefreshSessionInput:
    refresh_token: str


@strawberry.input
class ChangePasswordInput:
    current_password: str
    new_password: str


@strawberry.input
class RevokeSessionInput:
    session_id: strawberry.ID


@strawberry.input
class RequestPasswordResetInput:
    tenant: str = strawberry.field(description="The network's slug, e.g. pole-11e")
    email: str


@strawberry.input
class ResetPasswordInput:
    tenant: str = strawberry.field(description="The network's slug, e.g. pole-11e")
    token: str = strawberry.field(description="The token of the reset link's `token=`")
    new_password: str


@strawberry.input
class SetTenantAdminInput:
    member_id: strawberry.ID
    admin: bool


@strawberry.input
class SetTenantLocaleInput:
    locale: Locale


CreateTenantResult = result_union("CreateTenantResult", TenantCreated)
InviteMemberResult = result_union("InviteMemberResult", InvitationSent)
RevokeInvitationResult = result_union("RevokeInvitationResult", InvitationRevoked)
AcceptInvitationResult = result_union("AcceptInvitationResult", AuthPayload, InvalidToken)
LoginResult = result_union("LoginResult", AuthPayload, InvalidCredentials, TooManyAttempts)
RefreshSessionResult = result_union("RefreshSessionResult", AuthPayload, InvalidToken)
LogoutResult = result_union("LogoutResult", SignedOut, InvalidToken)
ChangePasswordResult = result_union(
    "ChangePasswordResult", PasswordChanged, InvalidCredentials, TooManyAttempts
)
RevokeSessionResult = result_union("RevokeSessionResult", SessionRevoked)
RequestPasswordResetResult = result_union(
    "RequestPasswordResetResult", PasswordResetRequested, TooManyAttempts
)
ResetPasswordResult = result_union("ResetPasswordResult", PasswordReset, InvalidToken)
UpdateProfileCardResult = result_union("UpdateProfileCardResult", ProfileCardUpdated)
SetTenantAdminResult = result_union("SetTenantAdminResult", TenantAdminSet)
SetTenantLocaleResult = result_union("SetTenantLocaleResult", TenantLocaleSet)


def client_address(info: Info[Context, Any]) -> str | None:
    """The address sign-in attempts are throttled by: the connection's peer,
    or the client a trusted proxy names (`QUARTIER_TRUSTED_PROXIES`)."""
    address: str | None = info.context.client_address
    return address


async def attempt(
    info: Info[Context, Any],
    message: Any,
    wrap: Any,
    rctx: Any = None,
    fields: dict[str, str] | None = None,
) -> Any:
    """A credential command: like `command`, and a throttled attempt is a
    `TooManyAttempts` with the seconds to wait."""
    try:
        return wrap(await info.context.ask(message, rctx or info.context.anonymous()))
    except e.RateLimited as error:
        return TooManyAttempts(
            message=said(error), code=error.code, retry_after_seconds=error.retry_after or 1
        )
    except e.QuartierError as error:
        if fields and error.field in fields:
            error.field = fields[error.field]
        return as_error_type(error)


# -- queries -------------------------------------------------------------------


@strawberry.type
class Query(ApiKeyQuery):  # tenant API keys: gateway/apikeys.py
    @strawberry.field(description="The signed-in member, or null.")
    async def me(self, info: Info[Context, Any]) -> Member | None:
        p = info.context.principal
        if p.refused is not None:  # an expired or forged token is not "signed out"
            raise public(p.refused)
        if p.key_id is not None:  # an API key is no member
            require_member(info)
        if p.actor.kind != "member":
            return None
        return await load_member(info, p.actor.member_id)

    @strawberry.field(description="A member of your network by global id, or null.")
    async def member(self, info: Info[Context, Any], id: strawberry.ID) -> Member | None:
        with public_errors():
            raw = from_global_id(id, "Member")
        require_member(info)
        return await load_member(info, raw)

    @strawberry.field(
        description="Members of your network: by activity, by words of what they offer and seek, near a point."
    )
    async def members(
        self,
        info: Info[Context, Any],
        first: int = 20,
        after: str | None = None,
        activity: str | None = None,
        text: str | None = None,
        near: GeoPointInput | None = None,
        radius_km: float | None = None,
    ) -> Connection[Member]:
        rctx = require_member(info)
        with public_errors():
            offset, limit = parse_page(first, after)
        page = await ask(
            info,
            c.SearchMembers(
                activity_code=activity,
                text=text,
                near=c.Point(lat=near.lat, lon=near.lon) if near else None,
                radius_km=radius_km,
                offset=offset,
                limit=limit,
            ),
            rctx,
        )
        return connection(page.items, offset, page.total, Member.from_card)

    @strawberry.field(
        description="Your sign-in sessions that are still on, most recently used first (at most 50)."
    )
    async def sessions(self, info: Info[Context, Any]) -> list[SessionInfo]:
        rctx = require_member(info)
        found = await ask(info, c.ListSessions(), rctx)
        return [SessionInfo.from_contract(s) for s in found]

    @strawberry.field(description="The profession taxonomy.")
    async def professions(self, info: Info[Context, Any]) -> list[Profession]:
        found = await ask(info, c.ListProfessions(), info.context.anonymous())
        return [
            Profession(code=p.code, label=p.label, label_en=p.label_en, sector=p.sector)
            for p in found
        ]

    @strawberry.field(description="A network by slug (public: the sign-in page shows its name).")
    async def tenant(self, info: Info[Context, Any], slug: str) -> Tenant | None:
        found = await ask(
            info, c.GetTenant(slug=slug), info.context.anonymous(), missing_as_none=True
        )
        return Tenant.from_contract(found) if found else None

    @strawberry.field(description="Tenant admins: invitations of the network, newest first.")
    async def invitations(
        self,
        info: Info[Context, Any],
        first: int = 20,
        after: str | None = None,
        status: str | None = None,
    ) -> Connection[Invitation]:
        rctx = require_member(info)
        with public_errors():
            offset, limit = parse_page(first, after)
        page = await ask(info, c.ListInvitations(status=status, offset=offset, limit=limit), rctx)
        return connection(page.items, offset, page.total, Invitation.from_contract)


# -- mutations -----------------------------------------------------------------


@strawberry.type
class Mutation(ApiKeyMutation):  # tenant API keys: gateway/apikeys.py
    @strawberry.mutation(
        description="Platform operator: create a network and invite its first admin."
    )
    async def create_tenant(
        self, info: Info[Context, Any], input: CreateTenantInput
    ) -> CreateTenantResult:
        return await command(
            info,
            lambda: c.CreateTenant(slug=input.slug, name=input.name, admin_email=input.admin_email),
            lambda done: TenantCreated(
                tenant=Tenant.from_contract(done.tenant),
                admin_invitation=InvitationSent.from_contract(done.admin_invitation),
            ),
            caller="operator",
            fields={"email": "admin_email"},
        )

    @strawberry.mutation(description="Tenant admin: e-mail an invitation to join the network.")
    async def invite_member(
        self, info: Info[Context, Any], input: InviteMemberInput
    ) -> InviteMemberResult:
        return await command(
            info,
            lambda: c.InviteMember(email=input.email, as_admin=input.as_admin),
            InvitationSent.from_contract,
        )

    @strawberry.mutation(description="Tenant admin: withdraw a pending invitation.")
    async def revoke_invitation(
        self,
        info: Info[Context, Any],
        input: RevokeInvitationInput,
    ) -> RevokeInvitationResult:
        return await command(
            info,
            lambda: c.RevokeInvitation(
                invitation_id=from_global_id(
                    input.invitation_id, "Invitation", field="invitation_id"
                )
            ),
            lambda _: InvitationRevoked(invitation_id=input.invitation_id),
        )

    @strawberry.mutation(
        description="With the token from the invitation e-mail: set a password, fill the profile card, sign in."
    )
    async def accept_invitation(
        self,
        info: Info[Context, Any],
        input: AcceptInvitationInput,
    ) -> AcceptInvitationResult:
        return await command(
            info,
            lambda: c.AcceptInvitation(
                token=input.token, password=input.password, card=input.card.to_contract()
            ),
            AuthPayload.from_session,
            caller="anonymous",
        )

    @strawberry.mutation(
        description="Sign in to a network with e-mail and password. Attempts are throttled "
        "per account and per address: after a few failures, each waits longer (TooManyAttempts)."
    )
    async def login(self, info: Info[Context, Any], input: LoginInput) -> LoginResult:
        return await attempt(
            info,
            c.Login(
                tenant_slug=input.tenant,
                email=input.email,
                password=input.password,
                client_address=client_address(info),
            ),
            AuthPayload.from_session,
        )

    @strawberry.mutation(
        description="Trade a refresh token for new tokens (each refresh token works once)."
    )
    async def refresh_session(
        self,
        info: Info[Context, Any],
        input: RefreshSessionInput,
    ) -> RefreshSessionResult:
        return await command(
            info,
            lambda: c.RefreshSession(refresh_token=input.refresh_token),
            AuthPayload.from_session,
            caller="anonymous",
        )

    @strawberry.mutation(description="End the session of this refresh token.")
    async def logout(self, info: Info[Context, Any], input: RefreshSessionInput) -> LogoutResult:
        return await command(
            info,
            lambda: c.Logout(refresh_token=input.refresh_token),
            lambda _: SignedOut(ok=True),
            caller="anonymous",
        )

    @strawberry.mutation(
        description="Change your password: your other sessions end, this one goes on."
    )
    async def change_password(
        self,
        info: Info[Context, Any],
        input: ChangePasswordInput,
    ) -> ChangePasswordResult:
        try:
            rctx = info.context.require_member()
        except e.QuartierError as error:
            return as_error_type(error)
        return await attempt(
            info,
            c.ChangePassword(
                current_password=input.current_password, new_password=input.new_password
            ),
            lambda _: PasswordChanged(ok=True),
            rctx,
            fields={"password": "new_password"},
        )

    @strawberry.mutation(description="End one of your sessions (see `sessions`).")
    async def revoke_session(
        self, info: Info[Context, Any], input: RevokeSessionInput
    ) -> RevokeSessionResult:
        return await command(
            info,
            lambda: c.RevokeSession(
                session_id=from_global_id(input.session_id, "Session", field="session_id")
            ),
            lambda _: SessionRevoked(session_id=input.session_id),
        )

    @strawberry.mutation(
        description="Forgot your password: a single-use reset link is mailed to the address if "
        "it has an account in the network. The answer is the same either way."
    )
    async def request_password_reset(
        self, info: Info[Context, Any], input: RequestPasswordResetInput
    ) -> RequestPasswordResetResult:
        return await attempt(
            info,
            c.RequestPasswordReset(
                tenant_slug=input.tenant, email=input.email, client_address=client_address(info)
            ),
            lambda _: PasswordResetRequested(ok=True),
        )

    @strawberry.mutation(
        description="With the token of a reset link: set a new password. Every session ends."
    )
    async def reset_password(
        self, info: Info[Context, Any], input: ResetPasswordInput
    ) -> ResetPasswordResult:
        return await command(
            info,
            lambda: c.ResetPassword(
                tenant_slug=input.tenant, token=input.token, new_password=input.new_password
            ),
            lambda _: PasswordReset(ok=True),
            caller="anonymous",
            fields={"password": "new_password"},
        )

    @strawberry.mutation(description="Update your own profile card.")
    async def update_profile_card(
        self,
        info: Info[Context, Any],
        input: ProfileCardInput,
    ) -> UpdateProfileCardResult:
        return await command(
            info,
            lambda: c.UpdateProfileCard(changes=input.to_contract()),
            lambda card: ProfileCardUpdated(member=Member.from_card(card)),
            fields={"changes.": ""},  # the input is the changes: `bio`, not `changes.bio`
        )

    @strawberry.mutation(description="Tenant admin: make a member tenant admin, or not.")
    async def set_tenant_admin(
        self,
        info: Info[Context, Any],
        input: SetTenantAdminInput,
    ) -> SetTenantAdminResult:
        return await command(
            info,
            lambda: c.SetTenantAdmin(
                member_id=from_global_id(input.member_id, "Member", field="member_id"),
                admin=input.admin,
            ),
            lambda card: TenantAdminSet(member=Member.from_card(card)),
        )

    @strawberry.mutation(
        description="Tenant admin: the language of the network's e-mails and link pages."
    )
    async def set_tenant_locale(
        self, info: Info[Context, Any], input: SetTenantLocaleInput
    ) -> SetTenantLocaleResult:
        return await command(
            info,
            lambda: c.SetTenantLocale(locale=input.locale.value),
            lambda t: TenantLocaleSet(tenant=Tenant.from_contract(t)),
        )


# -- Node types and their loaders (node(id:)) -------------------------------------
# node(id:) answers what the caller may see through the type's own field, in
# their own network: another network's id is null, like a missing one.


async def member_node(info: Info[Context, Any], raw_id: str) -> Member | None:
    """A member of your network, like `member(id:)`."""
    parts = split_raw_id(raw_id)
    if parts is None:
        return None
    require_member(info)
    return await load_member(info, parts[0])


async def tenant_node(info: Info[Context, Any], raw_id: str) -> Tenant | None:
    """Your own network (the platform operator: any network). Its id carries
    its slug (`Tenant:uuid:slug`), which `GetTenant` needs; an id without
    one (issued before) still finds the caller's own network."""
    parts = split_raw_id(raw_id)
    if parts is None:
        return None
    tenant_id, *rest = parts
    p = info.context.principal
    if p.refused is not None:
        raise public(p.refused)
    if p.actor.kind == "member":
        if tenant_id != p.tenant_id or rest[:1] not in ([], [p.tenant_slug]):
            return None
        slug = p.tenant_slug
    elif p.actor.kind == "operator":
        slug = rest[0] if rest else None
    else:
        return None  # no network of theirs: `tenant(slug:)` is the public door
    if not slug or len(rest) > 1:
        return None
    found = await ask(info, c.GetTenant(slug=slug), info.context.anonymous(), missing_as_none=True)
    return Tenant.from_contract(found) if found and found.tenant_id == tenant_id else None


def invitation_loader(info: Info[Context, Any]) -> DataLoader[str, c.InvitationInfo | None]:
    """Invitations by id, for tenant admins. Identity answers pages of
    invitations, newest first, but no look-up by id: the loader reads pages
    until it has found every id asked for in this request (recent ones are on
    the first page)."""
    ctx = info.context

    def make() -> DataLoader[str, c.InvitationInfo | None]:
        async def load(ids: list[str]) -> list[c.InvitationInfo | None]:
            rctx = ctx.require_member()
            wanted = set(ids)
            found: dict[str, c.InvitationInfo] = {}
            offset = 0
            while not wanted <= found.keys():
                page = await ctx.ask(c.ListInvitations(offset=offset, limit=INVITATION_PAGE), rctx)
                found.update((i.invitation_id, i) for i in page.items if i.invitation_id in wanted)
                offset += len(page.items)
                if not page.items or offset >= page.total:
                    break
            return [found.get(i) for i in ids]

        return DataLoader(load_fn=load)

    return ctx.loader("identity.invitations", make)


INVITATION_PAGE = 50  # identity's largest page


async def invitation_node(info: Info[Context, Any], raw_id: str) -> Invitation | None:
    """An invitation of your network, for tenant admins, like `invitations`."""
    parts = split_raw_id(raw_id)
    if parts is None:
        return None
    require_member(info)
    with public_errors():
        found = await invitation_loader(info).load(parts[0])
    return Invitation.from_contract(found) if found else None


types: list[type] = [Member, Tenant, Invitation]
nodes: dict[str, NodeLoader] = {
    "Member": member_node,
    "Tenant": tenant_node,
    "Invitation": invitation_node,
}
