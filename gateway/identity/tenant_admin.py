"""What a tenant admin sets for the network: who else is a tenant admin, and
the language of its e-mails and link pages."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.identity.members import Member
from gateway.identity.networks import Locale, Tenant
from gateway.kit import command, result_union
from gateway.nodes import from_global_id
from services.identity import contract as c


@strawberry.type
class TenantAdminSet:
    member: Member


@strawberry.type
class TenantLocaleSet:
    tenant: Tenant


@strawberry.input
class SetTenantAdminInput:
    member_id: strawberry.ID
    admin: bool


@strawberry.input
class SetTenantLocaleInput:
    locale: Locale


SetTenantAdminResult = result_union("SetTenantAdminResult", TenantAdminSet)
SetTenantLocaleResult = result_union("SetTenantLocaleResult", TenantLocaleSet)


@strawberry.type
class Mutation:
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
