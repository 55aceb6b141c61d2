"""The identity application: one method per command. Synchronous (the
eventsourcing library is); handlers call it from the worker thread pool."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate

from services.identity.domain import (
    EmailIndex,
    Invitation,
    InvitationSlot,
    Member,
    PasswordReset,
    ProfileCard,
    RefreshFamily,
    Tenant,
    email_key,
    fingerprint,
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
from services.runtime.errors import (
    Conflict,
    InvalidCredentials,
    InvalidInput,
    InvalidToken,
    NotFound,
)
from services.runtime.eventstore import ServiceApplication
from services.runtime.i18n import t


class Identity(ServiceApplication):
    name = "identity"
    snapshotting_intervals: ClassVar = {RefreshFamily: 20, Member: 50, InvitationSlot: 50}

    def __init__(self, env: dict[str, str] | None = None, hasher: PasswordHasher | None = None):
        super().__init__(env)
        self.hasher = hasher or PasswordHasher()

    # -- loading ---------------------------------------------------------------

    def tenant(self, tenant_id: str) -> Tenant:
        return self.get(tenant_id, tenant_id, Tenant)

    def tenant_by_slug(self, slug: str) -> Tenant:
        tenant = self.find(tenant_id_for(slug), Tenant)
        if tenant is None:
            raise NotFound(t("no network with slug {slug!r}", slug=slug))
        return tenant

    def member_by_email(self, tenant_id: str, email: str) -> Member | None:
        index = self.find(email_key(tenant_id, email), EmailIndex)
        if index is None:
            return None
        return self.get(tenant_id, index.member_id, Member)

    # -- tenants ---------------------------------------------------------------

    def create_tenant(
        self, slug: str, name: str, admin_email: str, now: datetime, ttl: int
    ) -> tuple[Tenant, Invitation, str]:
        """A network and the invitation of its first admin, saved together."""
        slug = validate_slug(slug)
        tenant = Tenant(
            tenant_id=str(tenant_id_for(slug)), slug=slug, name=validate_name(name), admin_ids=[]
        )
        invitation, token = self._new_invitation(
            tenant.tenant_id, admin_email, None, ["tenant_admin"], now, ttl
        )
        slot = InvitationSlot(
            tenant_id=tenant.tenant_id, email=invitation.email, invitation_id=invitation.id
        )
        try:
            self.save(tenant, invitation, slot)
        except Conflict:
            raise Conflict(t("the slug {slug!r} is taken", slug=slug), field="slug") from None
        return tenant, invitation, token

    def set_locale(self, tenant_id: str, locale: str, by: str) -> Tenant:
        return self.update(tenant_id, tenant_id, Tenant, lambda t: t.set_locale(locale, by))[0]

    # -- invitations -----------------------------------------------------------

    def issue_invitation(
        self,
        tenant_id: str,
        email: str,
        invited_by: str | None,
        roles: list[str],
        now: datetime,
        ttl: int,
    ) -> tuple[Invitation, str | None]:
        """A new invitation and its token; or, when an invitation to the same
        address (compared ignoring case) is pending and unexpired, that one
        and no token: inviting twice mails once (a retry, a second sponsor,
        the address typed in other letter cases). An invitation pending with
        other roles (admin, or not) is a Conflict: withdraw it first."""
        self.tenant(tenant_id)
        address = normalise_email(email)
        if self.member_by_email(tenant_id, address) is not None:
            raise Conflict(t("this address already belongs to a member"), field="email")

        def unit() -> tuple[list[Aggregate], tuple[Invitation, str | None]]:
            slot = self.find(InvitationSlot.create_id(tenant_id, address), InvitationSlot)
            if slot is not None and slot.tenant_id == tenant_id:
                pending = self.find(slot.invitation_id, Invitation)
                if pending is not None and pending.status == "pending" and now < pending.expires_at:
                    if sorted(pending.roles) != sorted(roles):
                        raise Conflict(
                            t(
                                "an invitation to this address with other roles is pending: "
                                "withdraw it first"
                            ),
                            field="email",
                        )
                    return [], (pending, None)
            invitation, token = self._new_invitation(
                tenant_id, address, invited_by, roles, now, ttl
            )
            if slot is None:
                slot = InvitationSlot(
                    tenant_id=tenant_id, email=address, invitation_id=invitation.id
                )
            else:
                slot.point_to(invitation.id)
            return [invitation, slot], (invitation, token)

        return self.transact(unit)

    @staticmethod
    def _new_invitation(
        tenant_id: str,
        email: str,
        invited_by: str | None,
        roles: list[str],
        now: datetime,
        ttl: int,
    ) -> tuple[Invitation, str]:
        secret = new_secret()
        invitation = Invitation(
            tenant_id=tenant_id,
            email=normalise_email(email),
            token_hash=hash_secret(secret),
            invited_by=invited_by,
            roles=roles,
            expires_at=now + timedelta(seconds=ttl),
        )
        return invitation, join_token(invitation.id, secret)

    def revoke_invitation(self, tenant_id: str, invitation_id: str) -> Invitation:
        return self.update(tenant_id, invitation_id, Invitation, Invitation.revoke)[0]

    def accept_invitation(
        self, token: str, password: str, card: dict[str, Any], now: datetime
    ) -> Member:
        """A new member from an invitation; an invitation with the tenant admin
        role also makes them an admin of the network (saved together)."""
        invitation_id, secret = split_token(token)
        profile = ProfileCard().with_changes(card).validate(complete=True)
        password_hash = self.hasher.hash(password)

        def unit() -> tuple[list[Aggregate], Member]:
            invitation = self.find(invitation_id, Invitation)
            if invitation is None:
                raise InvalidToken(t("this invitation link is not valid"))
            invitation.check(secret, now)
            if self.find(email_key(invitation.tenant_id, invitation.email), EmailIndex):
                raise Conflict(t("this address already belongs to a member"), field="email")
            member = Member(
                tenant_id=invitation.tenant_id,
                email=invitation.email,
                password_hash=password_hash,
                card=profile.to_dict(),
                roles=invitation.roles,
                invitation_id=invitation.id,
                invited_by=invitation.invited_by,
            )
            index = EmailIndex(
                tenant_id=invitation.tenant_id, email=invitation.email, member_id=member.id
            )
            invitation.accept(member.id)
            changed: list[Aggregate] = [member, index, invitation]
            if "tenant_admin" in invitation.roles:
                tenant = self.tenant(invitation.tenant_id)
                tenant.grant_admin(str(member.id))
                changed.append(tenant)
            return changed, member

        return self.transact(unit)

    # -- sessions --------------------------------------------------------------

    def authenticate(self, tenant_id: str, email: str, password: str) -> Member:
        try:
            email = normalise_email(email)
        except Exception:
            email = ""
        member = self.member_by_email(tenant_id, email) if email else None
        if member is None:
            self.hasher.waste_time(password)
            raise InvalidCredentials(t("wrong e-mail address or password"))
        if not self.hasher.verify(member.password_hash, password):
            raise InvalidCredentials(t("wrong e-mail address or password"))
        if self.hasher.needs_rehash(member.password_hash):
            member.change_password(self.hasher.hash(password), rehash=True)
            self.save(member)
        return member

    def start_session(self, member: Member, now: datetime, ttl: int) -> str:
        """A new session; its first refresh token (`<session id hex>.<secret>`)."""
        secret = new_secret()
        family = RefreshFamily(
            tenant_id=member.tenant_id,
            member_id=member.id,
            token_hash=hash_secret(secret),
            expires_at=now + timedelta(seconds=ttl),
            password_fingerprint=member.credential_fingerprint,
        )
        self.save(family)
        return join_token(family.id, secret)

    def refresh_session(self, token: str, now: datetime, grace: float = 0) -> tuple[Member, str]:
        """A new refresh token of the same session. A spent token presented
        again more than `grace` seconds after its first use revokes the
        session (InvalidToken); within it, it gets a token of its own."""
        family_id, secret = split_token(token)
        new = new_secret()

        def unit() -> tuple[list[Aggregate], tuple[RefreshFamily, Member, bool]]:
            family = self.find(family_id, RefreshFamily)
            if family is None:
                raise InvalidToken(t("this refresh token is not valid"))
            member = self.get(family.tenant_id, family.member_id, Member)
            if not family.revoked and not family.bound_to(member.credential_fingerprint):
                # started with an older password (a sign-in racing a change)
                if not family.is_live(secret):
                    raise InvalidToken(t("this refresh token is not valid"))
                family.revoke(reason="password changed")
                return [family], (family, member, True)
            family.rotate(secret, hash_secret(new), now, grace)
            return [family], (family, member, False)

        # concurrent refreshes: each on the fresh state
        family, member, stale = self.transact(unit)
        if stale:
            raise InvalidToken(
                t("the password has changed since this session began: sign in again")
            )
        if family.revoked:
            raise InvalidToken(
                t(
                    "this refresh token was already used: the session has been revoked, "
                    "sign in again"
                )
            )
        return member, join_token(family.id, new)

    def end_session(self, token: str) -> None:
        family_id, secret = split_token(token)
        family = self.find(family_id, RefreshFamily)
        if family is None or not family.is_live(secret):
            raise InvalidToken(t("this refresh token is not valid"))
        family.revoke(reason="signed out")
        self.save(family)

    def revoke_session(self, tenant_id: str, member_id: str, session_id: str) -> None:
        """A member ends one of their own sessions; another's is NotFound."""
        family = self.find(session_id, RefreshFamily)
        if (
            family is None
            or family.tenant_id != tenant_id
            or str(family.member_id) != member_id
            or family.revoked
        ):
            raise NotFound(t("session not found"))
        family.revoke(reason="revoked by its owner")
        self.save(family)

    def _ending(self, session_ids: list[str], reason: str, keep: str | None) -> list[Aggregate]:
        """The given sessions, revoked (but `keep`): to save with the change
        that ends them."""
        ended: list[Aggregate] = []
        for session_id in session_ids:
            if session_id == keep:
                continue
            family = self.find(session_id, RefreshFamily)
            if family is not None and family.revoke(reason=reason):
                ended.append(family)
        return ended

    def change_password(
        self,
        tenant_id: str,
        member_id: str,
        current: str,
        new: str,
        sessions: Callable[[], list[str]] = list,
        keep: str | None = None,
    ) -> None:
        """Change the password and end the member's other sessions (`sessions`
        says which are active; `keep` is the caller's own), saved together."""
        member = self.get(tenant_id, member_id, Member)
        if not self.hasher.verify(member.password_hash, current):
            raise InvalidCredentials(t("the current password is wrong"))
        new_hash = self.hasher.hash(new)

        def unit() -> tuple[list[Aggregate], None]:
            fresh = self.get(tenant_id, member_id, Member)
            fresh.change_password(new_hash)
            ended = self._ending(sessions(), "password changed", keep)
            changed: list[Aggregate] = [fresh, *ended]
            own = self.find(keep, RefreshFamily) if keep else None
            if (
                own is not None
                and not own.revoked
                and str(own.member_id) == member_id
                and all(a.id != own.id for a in ended)
            ):
                own.rebind(fresh.credential_fingerprint)  # the caller's session goes on
                changed.append(own)
            return changed, None

        self.transact(unit)

    # -- password reset ----------------------------------------------------------

    def request_password_reset(
        self, tenant_id: str, email: str, now: datetime, ttl: int
    ) -> tuple[Member, PasswordReset, str] | None:
        """A reset link for the member with this address, or None (no such
        member: the caller answers alike)."""
        try:
            address = normalise_email(email)
        except InvalidInput:
            return None
        member = self.member_by_email(tenant_id, address)
        if member is None:
            return None
        secret = new_secret()
        reset = PasswordReset(
            tenant_id=tenant_id,
            member_id=member.id,
            token_hash=hash_secret(secret),
            password_fingerprint=fingerprint(member.password_hash),
            expires_at=now + timedelta(seconds=ttl),
        )
        self.save(reset)
        return member, reset, join_token(reset.id, secret)

    def reset_password(
        self,
        tenant_id: str,
        token: str,
        new: str,
        now: datetime,
        sessions: Callable[[str], list[str]],
    ) -> Member:
        """Set a new password with a reset link of this network (another
        network's link is InvalidToken, like an unknown one); the link is
        spent and every session of the member ends, all saved together."""
        reset_id, secret = split_token(token)

        def valid() -> tuple[PasswordReset, Member]:
            reset = self.find(reset_id, PasswordReset)
            if reset is None or reset.tenant_id != tenant_id:
                raise InvalidToken(t("this password-reset link is not valid"))
            member = self.get(tenant_id, reset.member_id, Member)
            reset.check(secret, member.password_hash, now)
            return reset, member

        # the link is checked before the new password is hashed (a costly
        # argon2id hash): a made-up link costs a read, not a hash
        valid()
        new_hash = self.hasher.hash(new)

        def unit() -> tuple[list[Aggregate], Member]:
            reset, member = valid()  # again: it may have been spent meanwhile
            reset.use()
            member.change_password(new_hash)
            ended = self._ending(sessions(str(member.id)), "password reset", None)
            return [reset, member, *ended], member

        return self.transact(unit)

    # -- members ---------------------------------------------------------------

    def update_card(self, tenant_id: str, member_id: str, changes: dict[str, Any]) -> Member:
        return self.update(tenant_id, member_id, Member, lambda m: m.update_card(changes))[0]

    def set_tenant_admin(
        self,
        tenant_id: str,
        member_id: str,
        admin: bool,
        known_admins: Callable[[], list[str]],
        sessions: Callable[[], list[str]] = list,
    ) -> Member:
        """Grant or revoke the tenant admin role: the member's roles and the
        network's list of admins change together (a network keeps at least
        one), and when the roles change the member's sessions end (`sessions`
        says which are active): they sign in again with their new roles.
        `known_admins` says who the admins are, for a network registered
        before its admins were kept on it."""

        def unit() -> tuple[list[Aggregate], Member]:
            tenant = self.tenant(tenant_id)
            member = self.get(tenant_id, member_id, Member)
            tenant.record_admins(known_admins())
            roles = set(member.roles)
            if admin:
                tenant.grant_admin(str(member.id))
                roles.add("tenant_admin")
            else:
                tenant.revoke_admin(str(member.id))
                roles.discard("tenant_admin")
            changed = member.set_roles(sorted(roles))
            ended = self._ending(sessions(), "roles changed", None) if changed else []
            return [tenant, member, *ended], member

        return self.transact(unit)

    def is_tenant_admin(self, tenant_id: str, member_id: str) -> bool:
        """From the member's current state, not from a token."""
        member = self.find(member_id, Member)
        return (
            member is not None and member.tenant_id == tenant_id and "tenant_admin" in member.roles
        )
