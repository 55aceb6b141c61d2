"""Identity's endpoints: who may do what, then the application or the views.
Each is one unit of work on a worker thread (identity asks no other service).
Every request is tenant-scoped by the envelope, never by its body."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import sqlalchemy as sa

from services.identity import contract as c
from services.identity import outbox, views
from services.identity import throttle as th
from services.identity.application import Identity
from services.identity.domain import Invitation, Member, Tenant, split_token
from services.identity.mails import invitation_message
from services.identity.taxonomy import PROFESSIONS
from services.identity.throttle import Throttle
from services.runtime.auth import is_operator_token, issue_access_token
from services.runtime.errors import (
    Forbidden,
    InvalidInput,
    InvalidToken,
    NotFound,
    RateLimited,
    Unauthenticated,
)
from services.runtime.handlers import Handlers, handles
from services.runtime.host import ServiceHost
from services.runtime.i18n import t
from services.runtime.logging import get_logger
from services.runtime.mail import Mailer
from services.runtime.messages import Done, given_fields
from services.runtime.tenancy import RequestContext
from services.runtime.views import check_page

log = get_logger("quartier.identity")

# Seconds after a refresh token's first use during which presenting it again
# is a concurrent refresh of the same client (answered a token of its own),
# not a replay (which ends the session).
REFRESH_GRACE = 10
RESET_TTL = outbox.RESET_TTL  # seconds a password-reset link works
MAX_SESSIONS_LISTED = 50


def card_changes(changes: c.CardChanges) -> dict[str, Any]:
    return {
        name: msgspec.structs.asdict(value) if isinstance(value, c.Place) else value
        for name, value in given_fields(changes).items()
    }


class IdentityHandlers(Handlers):
    def __init__(self, host: ServiceHost, app: Identity, mailer: Mailer):
        super().__init__(host)
        self.app = app
        self.mailer = mailer
        self.throttle = Throttle(self.engine)
        self.wake_mail: Callable[[], None] = lambda: None  # the reset outbox's sender

    def _require_operator(self, ctx: RequestContext) -> None:
        if ctx.actor.kind != "operator" or not is_operator_token(
            self.settings.operator_token, ctx.credential
        ):
            raise Forbidden(t("only the platform operator may do this"))

    def _require_admin_now(self, ctx: RequestContext) -> str:
        """A tenant admin by the member's current state (identity's own
        aggregate), whatever roles the request says: for what changes roles,
        membership or the network's settings."""
        member_id = ctx.require_tenant_admin()
        if not self.app.is_tenant_admin(ctx.require_tenant(), member_id):
            raise Forbidden(t("only a tenant admin may do this"))
        return member_id

    def _active_sessions(self, tenant_id: str, member_id: str) -> list[str]:
        return self.read(lambda conn: views.active_session_ids(conn, tenant_id, member_id))

    def _session(self, member: Member, refresh_token: str) -> c.Session:
        tenant = self.app.tenant(member.tenant_id)
        access, expires = issue_access_token(
            self.settings.jwt_secret,
            member_id=str(member.id),
            tenant_id=member.tenant_id,
            tenant_slug=tenant.slug,
            roles=tuple(member.roles),
            session_id=str(split_token(refresh_token)[0]),
            # Wall-clock time, not the domain clock: verifiers compare `exp`
            # with their own wall clock.
            now=datetime.now(UTC),
            ttl=self.settings.access_token_ttl,
        )
        return c.Session(
            access_token=access,
            access_expires_at=expires,
            refresh_token=refresh_token,
            member_id=str(member.id),
            tenant_id=member.tenant_id,
            tenant_slug=tenant.slug,
            roles=list(member.roles),
        )

    def _card(self, ctx: RequestContext, member_id: str) -> c.MemberCard:
        rows = self.read(lambda conn: views.member_rows(conn, ctx.require_tenant(), [member_id]))
        if not rows:
            raise NotFound(t("member not found"))
        return views.to_card(
            rows[0], viewer_id=ctx.actor.member_id, viewer_is_admin=ctx.actor.is_tenant_admin
        )

    # -- tenants and invitations ----------------------------------------------

    @handles(c.CreateTenant)
    def create_tenant(self, cmd: c.CreateTenant, ctx: RequestContext) -> c.TenantCreated:
        self._require_operator(ctx)
        tenant, invitation, token = self.write(
            lambda: self.app.create_tenant(
                cmd.slug, cmd.name, cmd.admin_email, self.clock.now(), self.settings.invitation_ttl
            )
        )
        return c.TenantCreated(
            tenant=_tenant_reply(tenant),
            admin_invitation=self._mail_invitation(tenant, invitation, token, reveal=True),
        )

    @handles(c.SetTenantLocale)
    def set_tenant_locale(self, cmd: c.SetTenantLocale, ctx: RequestContext) -> c.Tenant:
        by = self._require_admin_now(ctx)
        tenant = self.write(lambda: self.app.set_locale(ctx.require_tenant(), cmd.locale, by))
        return _tenant_reply(tenant)

    @handles(c.InviteMember)
    def invite_member(self, cmd: c.InviteMember, ctx: RequestContext) -> c.InvitationSent:
        tenant_id = ctx.require_tenant()
        roles = ["tenant_admin"] if cmd.as_admin else []
        if ctx.actor.kind == "operator":
            self._require_operator(ctx)
            inviter = None
        elif ctx.actor.kind == "service":
            if cmd.as_admin:
                raise Forbidden(t("a service cannot invite an admin"))
            if not cmd.on_behalf_of:
                raise InvalidInput(t("say on behalf of which member"), field="on_behalf_of")
            inviter = str(self.app.get(tenant_id, cmd.on_behalf_of, Member).id)
        else:
            inviter = self._require_admin_now(ctx)
        tenant = self.app.tenant(tenant_id)
        return self._invite(tenant, cmd.email, inviter, roles, reveal=ctx.actor.kind == "operator")

    def _invite(
        self, tenant: Tenant, email: str, inviter: str | None, roles: list[str], reveal: bool
    ) -> c.InvitationSent:
        """A pending invitation to the same address answers instead, and no
        second mail is sent (Identity.issue_invitation)."""
        invitation, token = self.write(
            lambda: self.app.issue_invitation(
                tenant.tenant_id,
                email,
                inviter,
                roles,
                self.clock.now(),
                self.settings.invitation_ttl,
            )
        )
        if token is None:
            log.info("invitation.already_pending", invitation_id=str(invitation.id))
            return c.InvitationSent(
                invitation_id=str(invitation.id), expires_at=invitation.expires_at, token=None
            )
        return self._mail_invitation(tenant, invitation, token, reveal)

    def _mail_invitation(
        self, tenant: Tenant, invitation: Invitation, token: str, reveal: bool
    ) -> c.InvitationSent:
        """The token leaves identity by mail only (and, for the platform
        operator, in the reply: the operator hands it to a network's founder)."""
        accept_url = (
            f"{self.settings.public_url}/accept-invitation?token={token}&network={tenant.slug}"
        )
        self.mailer.send(
            invitation_message(
                sender=self.settings.mail_from,
                to=invitation.email,
                network=tenant.name,
                accept_url=accept_url,
                expires_at=invitation.expires_at,
                locale=tenant.locale,
                now=self.clock.now(),
            )
        )
        log.info("invitation.sent", invitation_id=str(invitation.id))
        return c.InvitationSent(
            invitation_id=str(invitation.id),
            expires_at=invitation.expires_at,
            token=token if reveal else None,
        )

    @handles(c.RevokeInvitation)
    def revoke_invitation(self, cmd: c.RevokeInvitation, ctx: RequestContext) -> Done:
        self._require_admin_now(ctx)
        self.write(lambda: self.app.revoke_invitation(ctx.require_tenant(), cmd.invitation_id))
        return Done()

    @handles(c.AcceptInvitation)
    def accept_invitation(self, cmd: c.AcceptInvitation, ctx: RequestContext) -> c.Session:
        member = self.write(
            lambda: self.app.accept_invitation(
                cmd.token, cmd.password, card_changes(cmd.card), self.clock.now()
            )
        )
        refresh = self._start(member)
        return self._session(member, refresh)

    # -- sessions --------------------------------------------------------------

    def _start(self, member: Member) -> str:
        return self.write(
            lambda: self.app.start_session(
                member, self.clock.now(), self.settings.refresh_token_ttl
            )
        )

    @handles(c.Login)
    def login(self, cmd: c.Login, ctx: RequestContext) -> c.Session:
        """Throttled per account, per client address, and per both
        (services/identity/throttle.py); the password is checked only when
        none of them has to wait."""
        now = self.clock.now()
        account = (cmd.tenant_slug.strip().lower(), cmd.email.strip().lower())
        address = cmd.client_address or ""
        pair_key = th.key(th.LOGIN_PAIR, *account, address)
        account_key = th.key(th.LOGIN_ACCOUNT, *account)
        address_key = th.key(th.LOGIN_ADDRESS, address)
        keys = [(th.LOGIN_PAIR, pair_key), (th.LOGIN_ACCOUNT, account_key)]
        if address:
            keys.append((th.LOGIN_ADDRESS, address_key))
        self.throttle.attempt(keys, now, "sign-in")
        try:
            tenant = self.app.tenant_by_slug(cmd.tenant_slug)
        except NotFound:
            self.app.hasher.waste_time(cmd.password)
            raise
        member = self.app.authenticate(tenant.tenant_id, cmd.email, cmd.password)
        self.throttle.clear([pair_key, account_key])
        if address:
            self.throttle.forgive(th.LOGIN_ADDRESS, address_key)
        return self._session(member, self._start(member))

    @handles(c.RefreshSession)
    def refresh_session(self, cmd: c.RefreshSession, ctx: RequestContext) -> c.Session:
        try:
            member, refresh = self.write(
                lambda: self.app.refresh_session(cmd.refresh_token, self.clock.now(), REFRESH_GRACE)
            )
        except InvalidToken:
            self.project()  # a replay has just revoked the session: the views say so
            raise
        return self._session(member, refresh)

    @handles(c.Logout)
    def logout(self, cmd: c.Logout, ctx: RequestContext) -> Done:
        self.write(lambda: self.app.end_session(cmd.refresh_token))
        return Done()

    @handles(c.ChangePassword)
    def change_password(self, cmd: c.ChangePassword, ctx: RequestContext) -> Done:
        """The member's other sessions end; the caller's own goes on."""
        member_id = ctx.require_member()
        tenant_id = ctx.require_tenant()
        now = self.clock.now()
        key = th.key(th.LOGIN_PAIR, "change-password", tenant_id, member_id)
        self.throttle.attempt([(th.LOGIN_PAIR, key)], now, "password")
        self.write(
            lambda: self.app.change_password(
                tenant_id,
                member_id,
                cmd.current_password,
                cmd.new_password,
                lambda: self._active_sessions(tenant_id, member_id),
                keep=ctx.actor.session_id,
            )
        )
        self.throttle.clear([key])
        return Done()

    @handles(c.RevokeSession)
    def revoke_session(self, cmd: c.RevokeSession, ctx: RequestContext) -> Done:
        member_id = ctx.require_member()
        tenant_id = ctx.require_tenant()
        self.write(lambda: self.app.revoke_session(tenant_id, member_id, cmd.session_id))
        return Done()

    @handles(c.ListSessions)
    def list_sessions(self, q: c.ListSessions, ctx: RequestContext) -> list[c.SessionInfo]:
        member_id = ctx.require_member()
        tenant_id, now = ctx.require_tenant(), self.clock.now()
        found = self.read(
            lambda conn: views.list_sessions(conn, tenant_id, member_id, now, MAX_SESSIONS_LISTED)
        )
        mine = ctx.actor.session_id
        return [msgspec.structs.replace(s, current=s.session_id == mine) for s in found]

    @handles(c.CurrentSession)
    def current_session(self, q: c.CurrentSession, ctx: RequestContext) -> c.SessionState:
        """One indexed read: the gateway asks it on every request."""
        member_id = ctx.require_member()
        tenant_id, session_id = ctx.require_tenant(), ctx.actor.session_id
        if not session_id:
            raise Unauthenticated(t("this access token names no session: sign in again"))
        now = self.clock.now()  # the clock the session's expiry was set on
        roles = self.read(
            lambda conn: views.current_session(conn, tenant_id, member_id, session_id, now)
        )
        if roles is None:
            raise Unauthenticated(t("this session has ended: sign in again"))
        return c.SessionState(member_id=member_id, roles=roles)

    # -- password reset ----------------------------------------------------------

    @handles(c.RequestPasswordReset)
    def request_password_reset(self, cmd: c.RequestPasswordReset, ctx: RequestContext) -> Done:
        """Done, whether or not the address has an account here, after the
        same work either way: one row in the reset outbox, which the
        background job turns into a mail if the account exists
        (services/identity/outbox.py); at most RESET_ACCOUNT.free per
        account and hour."""
        now = self.clock.now()
        if cmd.client_address:
            self.throttle.attempt(
                [(th.RESET_ADDRESS, th.key(th.RESET_ADDRESS, cmd.client_address))],
                now,
                "password-reset",
            )
        try:
            tenant = self.app.tenant_by_slug(cmd.tenant_slug)
        except NotFound:
            return Done()
        account = (tenant.tenant_id, cmd.email.strip().lower())
        try:
            self.throttle.attempt(
                [(th.RESET_ACCOUNT, th.key(th.RESET_ACCOUNT, *account))], now, "password-reset"
            )
        except RateLimited:
            return Done()  # answered alike: the answer tells nothing about the account
        key = outbox.account_of(tenant.tenant_id, cmd.email)
        if key is not None:
            outbox.queue_reset(self.engine, tenant.tenant_id, key)
            self.wake_mail()
        return Done()

    @handles(c.ResetPassword)
    def reset_password(self, cmd: c.ResetPassword, ctx: RequestContext) -> Done:
        try:
            tenant = self.app.tenant_by_slug(cmd.tenant_slug)
        except NotFound:
            raise InvalidToken(t("this password-reset link is not valid")) from None
        tenant_id = tenant.tenant_id
        self.write(
            lambda: self.app.reset_password(
                tenant_id,
                cmd.token,
                cmd.new_password,
                self.clock.now(),
                lambda member_id: self._active_sessions(tenant_id, member_id),
            )
        )
        return Done()

    # -- members ---------------------------------------------------------------

    @handles(c.UpdateProfileCard)
    def update_profile_card(self, cmd: c.UpdateProfileCard, ctx: RequestContext) -> c.MemberCard:
        member_id = ctx.require_member()
        member = self.write(
            lambda: self.app.update_card(ctx.require_tenant(), member_id, card_changes(cmd.changes))
        )
        return views.to_card(
            views.member_row(member),
            viewer_id=ctx.actor.member_id,
            viewer_is_admin=ctx.actor.is_tenant_admin,
        )

    @handles(c.SetTenantAdmin)
    def set_tenant_admin(self, cmd: c.SetTenantAdmin, ctx: RequestContext) -> c.MemberCard:
        """By a tenant admin as the current state says (not as a token says);
        the member whose roles change is signed out of every session."""
        self._require_admin_now(ctx)
        tenant_id = ctx.require_tenant()
        member = self.write(
            lambda: self.app.set_tenant_admin(
                tenant_id,
                cmd.member_id,
                cmd.admin,
                lambda: self._admins_in_views(tenant_id),
                lambda: self._active_sessions(tenant_id, cmd.member_id),
            )
        )
        return self._card(ctx, str(member.id))

    def _admins_in_views(self, tenant_id: str) -> list[str]:
        def admins(conn: sa.Connection) -> list[str]:
            rows = conn.execute(
                sa.select(views.members.c.member_id, views.members.c.roles).where(
                    views.members.c.tenant_id == tenant_id
                )
            )
            return [member_id for member_id, roles in rows if "tenant_admin" in (roles or ())]

        return self.read(admins)

    # -- queries ---------------------------------------------------------------

    @handles(c.GetTenant)
    def get_tenant(self, q: c.GetTenant, ctx: RequestContext) -> c.Tenant:
        tenant = self.read(lambda conn: views.tenant_by_slug(conn, q.slug))
        if tenant is None:
            raise NotFound(t("no network with slug {slug!r}", slug=q.slug))
        return tenant

    def _require_reader(self, ctx: RequestContext) -> str:
        """Members of the tenant and internal services may read the directory."""
        if ctx.actor.kind == "service":
            return ctx.require_tenant()
        ctx.require_member()
        return ctx.require_tenant()

    @handles(c.GetMembers)
    def get_members(self, q: c.GetMembers, ctx: RequestContext) -> list[c.MemberCard]:
        tenant_id = self._require_reader(ctx)
        if len(q.member_ids) > 200:
            raise InvalidInput(t("at most {limit} ids at once", limit=200), field="member_ids")
        ids = list(dict.fromkeys(q.member_ids))
        rows = self.read(lambda conn: views.member_rows(conn, tenant_id, ids))
        return [
            views.to_card(
                r, viewer_id=ctx.actor.member_id, viewer_is_admin=ctx.actor.is_tenant_admin
            )
            for r in rows
        ]

    @handles(c.SearchMembers)
    def search_members(self, q: c.SearchMembers, ctx: RequestContext) -> c.MemberPage:
        tenant_id = self._require_reader(ctx)
        check_page(q.limit, q.offset, t("members"))
        if q.near is not None:
            if q.radius_km is None or not 0.5 <= q.radius_km <= 200:
                raise InvalidInput(t("a radius of 0.5 to 200 km"), field="radius_km")
            if not (-90 <= q.near.lat <= 90 and -180 <= q.near.lon <= 180):
                raise InvalidInput(t("not a valid point"), field="near")
        if q.text is not None and len(q.text) > 200:
            raise InvalidInput(t("search text is limited to 200 characters"), field="text")
        found, total = self.read(lambda conn: views.search(conn, tenant_id, q))
        return c.MemberPage(
            items=[
                views.to_card(
                    row,
                    viewer_id=ctx.actor.member_id,
                    viewer_is_admin=ctx.actor.is_tenant_admin,
                    distance_km=distance,
                )
                for row, distance in found
            ],
            total=total,
            offset=q.offset,
        )

    @handles(c.ListProfessions)
    def list_professions(self, q: c.ListProfessions, ctx: RequestContext) -> list[c.Profession]:
        return [
            c.Profession(code=p.code, label=p.label, label_en=p.label_en, sector=p.sector)
            for p in PROFESSIONS
        ]

    @handles(c.ListInvitations)
    def list_invitations(self, q: c.ListInvitations, ctx: RequestContext) -> c.InvitationPage:
        ctx.require_tenant_admin()
        check_page(q.limit, q.offset, t("invitations"))
        tenant_id, now = ctx.require_tenant(), self.clock.now()
        return self.read(lambda conn: views.list_invitations(conn, tenant_id, q, now))

    @handles(c.MemberPlaces)
    def member_places(self, q: c.MemberPlaces, ctx: RequestContext) -> c.PlacesList:
        if ctx.actor.kind != "service":
            raise Forbidden(t("only Quartier's services may ask where members are"))
        tenant_id = ctx.require_tenant()
        if len(q.member_ids) > 500:
            raise InvalidInput(t("at most {limit} ids at once", limit=500), field="member_ids")
        ids = list(dict.fromkeys(q.member_ids))
        rows = self.read(lambda conn: views.member_rows(conn, tenant_id, ids))
        items = []
        for r in rows:
            work_km = home_km = None
            if q.centre is not None:
                if r.work_lat is not None:
                    work_km = views.haversine_km(q.centre.lat, q.centre.lon, r.work_lat, r.work_lon)
                if r.home_lat is not None:
                    home_km = views.haversine_km(q.centre.lat, q.centre.lon, r.home_lat, r.home_lon)
            items.append(
                c.Places(
                    member_id=r.member_id,
                    work_km=work_km,
                    home_km=home_km,
                    work_postcode=r.work_postcode,
                    home_postcode=r.home_postcode,
                    activity_code=r.activity_code,
                )
            )
        return c.PlacesList(items=items)

    @handles(c.MemberContacts)
    def member_contacts(self, q: c.MemberContacts, ctx: RequestContext) -> c.Contacts:
        """Addresses leave identity only here, to a service that writes to
        the members (and keeps no copy)."""
        if ctx.actor.kind != "service":
            raise Forbidden(t("only Quartier's services may ask for members' addresses"))
        tenant_id = ctx.require_tenant()
        if len(q.member_ids) > 500:
            raise InvalidInput(t("at most {limit} ids at once", limit=500), field="member_ids")
        ids = list(dict.fromkeys(q.member_ids))

        def query(conn: sa.Connection) -> tuple[c.Tenant | None, list[Any]]:
            return views.tenant_by_id(conn, tenant_id), views.member_rows(conn, tenant_id, ids)

        tenant, rows = self.read(query)
        if tenant is None:
            raise NotFound(t("network not found"))
        return c.Contacts(
            tenant_id=tenant_id,
            slug=tenant.slug,
            name=tenant.name,
            locale=tenant.locale,
            items=[
                c.Contact(member_id=r.member_id, email=r.email, display_name=r.display_name)
                for r in rows
                if r.email  # an erased member has none
            ],
        )


def _tenant_reply(tenant: Tenant) -> c.Tenant:
    return c.Tenant(
        tenant_id=tenant.tenant_id,
        slug=tenant.slug,
        name=tenant.name,
        created_at=tenant.created_on,
        locale="en" if tenant.locale == "en" else "fr",
    )
