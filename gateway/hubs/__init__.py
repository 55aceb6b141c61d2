"""GraphQL for the hubs service: hubs and their members (profile fields
through identity's DataLoader: one request per page, not one per member),
admissions by co-optation with objections, versioned rules, co-admins and the
facilitator roster.

One module per concern: `hub` (the types, and reading hubs), `rules`
(creating a hub, changing its rules), `admission`, `membership`, `roles`.

By convention (see `gateway.kit`): `Query`, `Mutation`, `types`, `nodes`."""

from __future__ import annotations

from strawberry.tools import merge_types

from gateway.hubs import admission, membership, roles, rules
from gateway.hubs.hub import Hub, Nomination, Query, hub_node
from gateway.kit import NodeLoader

__all__ = ["Mutation", "Query", "nodes", "types"]

# The parts in the order of their fields in schema.graphql.
Mutation = merge_types(
    "Mutation", (rules.Mutation, admission.Mutation, membership.Mutation, roles.Mutation)
)

types: list[type] = [Hub, Nomination]
nodes: dict[str, NodeLoader] = {"Hub": hub_node, "Nomination": admission.nomination_node}
