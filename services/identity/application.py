"""The identity application: one method per command. Synchronous (the
eventsourcing library is); handlers call it from the worker thread pool."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from services.identity.domain import (
    EmailIndex,
    Invitation,
    Member,
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
from services.runtime.errors import Conflict, InvalidCredentials, InvalidToken, NotFound
from services.runtime.eventstore import ServiceApplication
from services.runtime.tenancy import guard_tenant


class Identity(ServiceApplication):
    name = "identity"
    snapshotting_intervals: ClassVar = {RefreshFamily: 20, Member: 50}

    def __init__(self, env: dict[str, str] | None = None, hasher: PasswordHasher | None = None):
        super().__init__(env)
        self.hasher = hasher or PasswordHasher()

    # -- loading ---------------------------------------------------------------

    def _get(self, aggregate_id: UUID) -> Any | None:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def tenant(self, tenant_id: str) -> Tenant:
        tenant = self._get(UUID(tenant_id))
        if not isinstance(tenant, Tenant):
            raise NotFound("network not found")
        return tenant

    def tenant_by_slug(self, slug: str) -> Tenant:
        tenant = self._get(tenant_id_for(slug))
        if not isinstance(tenant, Tenant):
            raise NotFound(f"no network with slug {slug!r}")
        return tenant

    def member(self, tenant_id: str, member_id: str | UUID) -> Member:
        try:
            found = self._get(UUID(str(member_id)))
        except ValueError:
            found = None
        if not isinstance(found, Member):
            found = None
        return guard_tenant(found, tenant_id, "member")

    def invitation(self, tenant_id: str, invitation_id: str | UUID) -> Invitation:
        try:
            found = self._get(UUID(str(invitation_id)))
        except ValueError:
            found = None
        if not isinstance(found, Invitation):
            found = None
        return guard_tenant(found, tenant_id, "invitation")

    def member_by_email(self, tenant_id: str, email: str) -> Member | None:
        index = self._get(email_key(tenant_id, email))
        if not isinstance(index, EmailIndex):
            return None
        return self.member(tenant_id, index.member_id)

    # -- tenants ---------------------------------------------------------------

    def create_tenant(
        self, slug: str, name: str, admin_email: str, now: datetime, ttl: int
    ) -> tuple[Tenant, Invitation, str]:
        """A network and the invitation of its first admin, saved together."""
        slug = validate_slug(slug)
        tenant = Tenant(tenant_id=str(tenant_id_for(slug)), slug=slug, name=validate_name(name))
        invitation, token = self._new_invitation(
            tenant.tenant_id, admin_email, None, ["tenant_admin"], now, ttl
        )
        try:
            self.save(tenant, invitation)
        except Conflict:
            raise Conflict(f"the slug {slug!r} is taken", field="slug") from None
        return tenant, invitation, token

    # -- invitations -----------------------------------------------------------

    def issue_invitation(
        self,
        tenant_id: str,
        email: str,
        invited_by: str | None,
        roles: list[str],
        now: datetime,
        ttl: int,
    ) -> tuple[Invitation, str]:
        self.tenant(tenant_id)
        invitation, token = self._new_invitation(tenant_id, email, invited_by, roles, now, ttl)
        if self.member_by_email(tenant_id, invitation.email) is not None:
            raise Conflict("this address already belongs to a member", field="email")
        self.save(invitation)
        return invitation, token

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
        invitation = self.invitation(tenant_id, invitation_id)
        invitation.revoke()
        self.save(invitation)
        return invitation

    def accept_invitation(
        self, token: str, password: str, card: dict[str, Any], now: datetime
    ) -> Member:
        invitation_id, secret = split_token(token)
        invitation = self._get(invitation_id)
        if not isinstance(invitation, Invitation):
            raise InvalidToken("this invitation link is not valid")
        invitation.check(secret, now)
        profile = ProfileCard().with_changes(card).validate(complete=True)
        password_hash = self.hasher.hash(password)
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
        try:
            self.save(member, index, invitation)
        except Conflict:
            raise Conflict("this address already belongs to a member", field="email") from None
        return member

    # -- sessions --------------------------------------------------------------

    def authenticate(self, tenant_id: str, email: str, password: str) -> Member:
        try:
            email = normalise_email(email)
        except Exception:
            email = ""
        member = self.member_by_email(tenant_id, email) if email else None
        if member is None:
            self.hasher.waste_time(password)
            raise InvalidCredentials("wrong e-mail address or password")
        if not self.hasher.verify(member.password_hash, password):
            raise InvalidCredentials("wrong e-mail address or password")
        if self.hasher.needs_rehash(member.password_hash):
            member.change_password(self.hasher.hash(password))
            self.save(member)
        return member

    def start_session(self, member: Member, now: datetime, ttl: int) -> str:
        secret = new_secret()
        family = RefreshFamily(
            tenant_id=member.tenant_id,
            member_id=member.id,
            token_hash=hash_secret(secret),
            expires_at=now + timedelta(seconds=ttl),
        )
        self.save(family)
        return join_token(family.id, secret)

    def refresh_session(self, token: str, now: datetime) -> tuple[Member, str]:
        family_id, secret = split_token(token)
        family = self._get(family_id)
        if not isinstance(family, RefreshFamily):
            raise InvalidToken("this refresh token is not valid")
        new = new_secret()
        family.rotate(secret, hash_secret(new), now)
        self.save(family)
        if family.revoked:
            raise InvalidToken(
                "this refresh token was already used: the session has been revoked, sign in again"
            )
        member = self.member(family.tenant_id, family.member_id)
        return member, join_token(family.id, new)

    def end_session(self, token: str) -> None:
        family_id, secret = split_token(token)
        family = self._get(family_id)
        if not isinstance(family, RefreshFamily) or family.current_hash != hash_secret(secret):
            raise InvalidToken("this refresh token is not valid")
        family.revoke(reason="signed out")
        self.save(family)

    def change_password(self, tenant_id: str, member_id: str, current: str, new: str) -> None:
        member = self.member(tenant_id, member_id)
        if not self.hasher.verify(member.password_hash, current):
            raise InvalidCredentials("the current password is wrong")
        member.change_password(self.hasher.hash(new))
        self.save(member)

    # -- members ---------------------------------------------------------------

    def update_card(self, tenant_id: str, member_id: str, changes: dict[str, Any]) -> Member:
        member = self.member(tenant_id, member_id)
        if member.update_card(changes):
            self.save(member)
        return member

    def set_roles(self, tenant_id: str, member_id: str, roles: list[str]) -> Member:
        member = self.member(tenant_id, member_id)
        if member.set_roles(roles):
            self.save(member)
        return member
