"""Networks (tenants): a network and its language, reading one by slug (the
sign-in page shows its name), and the platform operator creating one with
the invitation of its first admin."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.identity.invitations import InvitationSent
from gateway.kit import ask, command, public, result_union
from gateway.nodes import Node, split_raw_id, to_global_id
from services.identity import contract as c

# -- types ---------------------------------------------------------------------


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
class TenantCreated:
    tenant: Tenant
    admin_invitation: InvitationSent


@strawberry.input
class CreateTenantInput:
    slug: str
    name: str
    admin_email: str


CreateTenantResult = result_union("CreateTenantResult", TenantCreated)


# -- queries and mutations -------------------------------------------------------


@strawberry.type
class Query:
    @strawberry.field(description="A network by slug (public: the sign-in page shows its name).")
    async def tenant(self, info: Info[Context, Any], slug: str) -> Tenant | None:
        found = await ask(
            info, c.GetTenant(slug=slug), info.context.anonymous(), missing_as_none=True
        )
        return Tenant.from_contract(found) if found else None


@strawberry.type
class Mutation:
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
