"""GraphQL for the identity service: networks (tenants), sign-in, sessions,
password reset, invitations, members and their profile cards, the profession
taxonomy; and tenant API keys (`gateway/apikeys.py`). Other services' modules
show members through `members.load_member` and `load_members` (identity's
DataLoader: one request per page, not one per member).

One module per concern: `members` (the types, reading members, one's own
profile card), `professions`, `sessions` (sign-in, refresh, sign-out, the
sessions list, passwords), `networks`, `invitations`, `tenant_admin`.

node(id:) answers what the caller may see through the type's own field, in
their own network: another network's id is null, like a missing one.

By convention (see `gateway.kit`): `Query`, `Mutation`, `types`, `nodes`."""

from __future__ import annotations

from strawberry.tools import merge_types

from gateway.apikeys import ApiKeyMutation, ApiKeyQuery
from gateway.identity import invitations, members, networks, professions, sessions, tenant_admin
from gateway.identity.invitations import Invitation
from gateway.identity.members import Member
from gateway.identity.networks import Tenant
from gateway.kit import NodeLoader

__all__ = ["Mutation", "Query", "nodes", "types"]

# The parts in the order of their fields in schema.graphql.
Query = merge_types(
    "Query",
    (
        ApiKeyQuery,
        members.Query,
        sessions.Query,
        professions.Query,
        networks.Query,
        invitations.Query,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        ApiKeyMutation,
        networks.Mutation,
        invitations.Mutation,
        sessions.Mutation,
        members.Mutation,
        tenant_admin.Mutation,
    ),
)

types: list[type] = [Member, Tenant, Invitation]
nodes: dict[str, NodeLoader] = {
    "Member": members.member_node,
    "Tenant": networks.tenant_node,
    "Invitation": invitations.invitation_node,
}
