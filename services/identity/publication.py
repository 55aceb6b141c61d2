"""Which of identity's domain events go on the public stream, and as what.
Only ids and non-personal facts: no e-mail, name, coordinates or hashes.
Sessions, passwords and the e-mail index stay private."""

from __future__ import annotations

from typing import Any

from services.identity import contract as c
from services.identity.apikeys import ApiKey, prefix_of
from services.identity.domain import Invitation, Member, Tenant
from services.identity.erasure_domain import Erasure


def to_public(event: Any) -> c.IdentityEvent | None:
    tenant_id: str = event.tenant_id  # every event of a TenantAggregate carries it
    aggregate_id = str(event.originator_id)
    match event:
        case Tenant.Registered():
            return c.TenantRegistered(tenant_id=tenant_id, slug=event.slug, name=event.name)
        case Tenant.LocaleChanged():
            return c.TenantLocaleChanged(tenant_id=tenant_id, locale=event.locale)
        case Invitation.Issued():
            return c.InvitationIssued(
                tenant_id=tenant_id,
                invitation_id=aggregate_id,
                invited_by=event.invited_by,
                expires_at=event.expires_at,
            )
        case Invitation.Revoked():
            return c.InvitationRevoked(tenant_id=tenant_id, invitation_id=aggregate_id)
        case Member.Joined():
            return c.MemberJoined(
                tenant_id=tenant_id,
                member_id=aggregate_id,
                invitation_id=str(event.invitation_id) if event.invitation_id else None,
                invited_by=event.invited_by,
                activity_code=event.card.get("activity_code") or None,  # erased: ""
                roles=list(event.roles),
            )
        case Member.CardUpdated():
            return c.ProfileCardUpdated(
                tenant_id=tenant_id,
                member_id=aggregate_id,
                activity_code=event.card.get("activity_code") or None,  # erased: ""
                changed=list(event.changed),
            )
        case Member.RolesChanged():
            return c.MemberRolesChanged(
                tenant_id=tenant_id, member_id=aggregate_id, roles=list(event.roles)
            )
        case ApiKey.Created():
            return c.ApiKeyCreated(
                tenant_id=tenant_id,
                key_id=aggregate_id,
                prefix=prefix_of(event.originator_id),
                scopes=list(event.scopes),
                expires_at=event.expires_at,
                created_by=event.created_by,
            )
        case ApiKey.Revoked():
            return c.ApiKeyRevoked(tenant_id=tenant_id, key_id=aggregate_id, revoked_by=event.by)
        case Erasure.Completed():
            return c.MemberErased(tenant_id=tenant_id, member_id=event.member_id)
    return None
