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


class Identity(ServiceApplication):
    name = "identity"
    snapshotting_intervals: ClassVar = {RefreshFamily: 20, Member: 50}

    def __init__(self, env: dict[str, str] | None = None, hasher: PasswordHasher | None = None):
        super().__init__(env)
        self.hasher = hasher or PasswordHasher()

    # -- loading ---------------------------------------------------------------

    def tenant(self, tenant_id: str) -> Tenant:
        return self.get(tenant_id, tenant_id, Tenant)

    def tenant_by_slug(self, slug: str) -> Tenant:
        tenant = self.find(tenant_id_for(slug), Tenant)
        if tenant is None:
            raise NotFound(f"no network with slug {slug!r}")
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
        try:
            self.save(tenant, invitation)
        except Conflict:
            raise Conflict(f"the slug {slug!r} is taken", field="slug") from None
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
                raise InvalidToken("this invitation link is not valid")
            invitation.check(secret, now)
            if self.find(email_key(invitation.tenant_id, invitation.email), EmailIndex):
                raise Conflict("this address already belongs to a member", field="email")
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
        family = self.find(family_id, RefreshFamily)
        if family is None:
            raise InvalidToken("this refresh token is not valid")
        new = new_secret()
        family.rotate(secret, hash_secret(new), now)
        self.save(family)
        if family.revoked:
            raise InvalidToken(
                "this refresh token was already used: the session has been revoked, sign in again"
            )
        member = self.get(family.tenant_id, family.member_id, Member)
        return member, join_token(family.id, new)

    def end_session(self, token: str) -> None:
        family_id, secret = split_token(token)
        family = self.find(family_id, RefreshFamily)
        if family is None or family.current_hash != hash_secret(secret):
            raise InvalidToken("this refresh token is not valid")
        family.revoke(reason="signed out")
        self.save(family)

    def change_password(self, tenant_id: str, member_id: str, current: str, new: str) -> None:
        member = self.get(tenant_id, member_id, Member)
        if not self.hasher.verify(member.password_hash, current):
            raise InvalidCredentials("the current password is wrong")
        member.change_password(self.hasher.hash(new))
        self.save(member)

    # -- members ---------------------------------------------------------------

    def update_card(self, tenant_id: str, member_id: str, changes: dict[str, Any]) -> Member:
        return self.update(tenant_id, member_id, Member, lambda m: m.update_card(changes))[0]

    def set_tenant_admin(
        self, tenant_id: str, member_id: str, admin: bool, known_admins: Callable[[], list[str]]
    ) -> Member:
        """Grant or revoke the tenant admin role: the member's roles and the
        network's list of admins change together (a network keeps at least
        one). `known_admins` says who the admins are, for a network registered
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
            member.set_roles(sorted(roles))
            return [tenant, member], member

        return self.transact(unit)
