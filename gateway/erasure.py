"""Erasure of a member's personal data (docs/erasure.md): a member asks for
themselves, a tenant admin on a member's behalf; admins list the erasures.
Served by identity (`RequestErasure`, `ListErasures`); the other services
follow identity's `MemberErased`. Merged into the schema by `gateway.schema`
(`EXTRA_MODULES`)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.identity.members import Member, load_member
from gateway.kit import (
    Connection,
    ask,
    command,
    connection,
    public_errors,
    require_member,
    result_union,
)
from gateway.nodes import Node, from_global_id, parse_page, to_global_id
from services.events import contract as ec
from services.identity import contract as c
from services.referrals import contract as rc


@strawberry.enum(description="requested → completed (done at once; asking again is safe).")
class ErasureStatus(Enum):
    REQUESTED = "requested"
    COMPLETED = "completed"


@strawberry.type(
    description="A member's erasure: their personal data made unreadable everywhere; "
    "they read as a former member."
)
class Erasure(Node):
    member_id: strawberry.ID = strawberry.field(
        description="The erased member's UUID, as on the event stream (`MemberErased`)."
    )
    status: ErasureStatus
    requested_at: datetime
    completed_at: datetime | None

    @strawberry.field(description="The member, as they now read (a former member).")
    async def member(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, str(self.member_id))

    @classmethod
    def from_contract(cls, info: c.ErasureInfo) -> Erasure:
        return cls(
            id=to_global_id("Erasure", info.erasure_id),
            member_id=strawberry.ID(info.member_id),
            status=ErasureStatus(info.status),
            requested_at=info.requested_at,
            completed_at=info.completed_at,
        )


@strawberry.input
class RequestErasureInput:
    member_id: strawberry.ID = strawberry.field(
        description="A Member's global id: yourself, or (tenant admin) any member."
    )


@strawberry.type(description="The member's personal data has been erased.")
class ErasureRequested:
    erasure: Erasure


RequestErasureResult = result_union("RequestErasureResult", ErasureRequested)


@strawberry.input
class EraseVisitorInput:
    visitor_id: strawberry.ID = strawberry.field(description="A visitor's global id.")


@strawberry.type(description="The visitor's name and address have been erased.")
class VisitorErased:
    visitor_id: strawberry.ID


EraseVisitorResult = result_union("EraseVisitorResult", VisitorErased)


@strawberry.input
class EraseProspectInput:
    referral_id: strawberry.ID = strawberry.field(description="A Slip's global id.")


@strawberry.type(description="The slip's outside prospect has been erased.")
class ProspectErased:
    referral_id: strawberry.ID


EraseProspectResult = result_union("EraseProspectResult", ProspectErased)


@strawberry.type
class Query:
    @strawberry.field(description="Tenant admins: erasures of the network, newest first.")
    async def erasures(
        self, info: Info[Context, Any], first: int = 20, after: str | None = None
    ) -> Connection[Erasure]:
        rctx = require_member(info)
        with public_errors():
            offset, limit = parse_page(first, after)
        page = await ask(info, c.ListErasures(offset=offset, limit=limit), rctx)
        return connection(page.items, offset, page.total, Erasure.from_contract)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Erase a member's personal data (name, e-mail, card, places, texts; "
        "the visitors and prospects they brought): yourself, or a tenant admin on a "
        "member's behalf. Their account is closed; their roles (tenant admin, hub co-admin, "
        "facilitator) and meetup seats are handed on; events, memberships, counts and other "
        "members' records stay. The network's only tenant admin is refused "
        "(`last_tenant_admin`). Asking again answers the same erasure."
    )
    async def request_erasure(
        self, info: Info[Context, Any], input: RequestErasureInput
    ) -> RequestErasureResult:
        return await command(
            info,
            lambda: c.RequestErasure(
                member_id=from_global_id(input.member_id, "Member", field="member_id")
            ),
            lambda done: ErasureRequested(erasure=Erasure.from_contract(done)),
        )

    @strawberry.mutation(
        description="A co-admin of the visitor's hub or a tenant admin: erase one visitor's "
        "name and address (their visits stay, as a former visitor). Asking again is safe."
    )
    async def erase_visitor(
        self, info: Info[Context, Any], input: EraseVisitorInput
    ) -> EraseVisitorResult:
        return await command(
            info,
            lambda: ec.EraseVisitor(
                visitor_id=from_global_id(input.visitor_id, "Visitor", field="visitor_id")
            ),
            lambda _: VisitorErased(visitor_id=input.visitor_id),
        )

    @strawberry.mutation(
        description="The slip's giver, a co-admin of its hub or a tenant admin: erase the "
        "slip's outside prospect (the slip, its status and value stay). Asking again is safe."
    )
    async def erase_prospect(
        self, info: Info[Context, Any], input: EraseProspectInput
    ) -> EraseProspectResult:
        return await command(
            info,
            lambda: rc.EraseProspect(
                referral_id=from_global_id(input.referral_id, "Slip", field="referral_id")
            ),
            lambda _: ProspectErased(referral_id=input.referral_id),
        )


async def _load_erasure(info: Info[Context, Any], raw_id: str) -> Erasure | None:
    """`node(id:)`: an erasure of the caller's network (tenant admins)."""
    rctx = require_member(info)
    page = await ask(info, c.ListErasures(erasure_id=raw_id.split(":")[0], limit=1), rctx)
    return Erasure.from_contract(page.items[0]) if page.items else None


types = [Erasure]
nodes = {"Erasure": _load_erasure}
