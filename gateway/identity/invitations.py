"""Invitations: a tenant admin e-mails one to an address, lists and withdraws
them; the invitee accepts with its token (a password, the profile card) and
is signed in."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from gateway.context import Context
from gateway.errors import InvalidToken
from gateway.identity.members import Member, ProfileCardInput, load_member
from gateway.identity.sessions import AuthPayload
from gateway.kit import (
    Connection,
    ask,
    command,
    connection,
    public_errors,
    require_member,
    result_union,
)
from gateway.nodes import Node, from_global_id, parse_page, split_raw_id, to_global_id
from services.identity import contract as c

# -- types ---------------------------------------------------------------------


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


@strawberry.type
class InvitationRevoked:
    invitation_id: strawberry.ID


# -- inputs --------------------------------------------------------------------


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


InviteMemberResult = result_union("InviteMemberResult", InvitationSent)
RevokeInvitationResult = result_union("RevokeInvitationResult", InvitationRevoked)
AcceptInvitationResult = result_union("AcceptInvitationResult", AuthPayload, InvalidToken)


# -- queries and mutations -------------------------------------------------------


@strawberry.type
class Query:
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


@strawberry.type
class Mutation:
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


# -- the Node loader -------------------------------------------------------------


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
