"""GraphQL for the referrals service (`services/referrals/`): the ledger of
word of mouth — referral slips and their lifecycle, thanks for closed
business, one-to-ones, needs posted to the network first — and the reports
of results and engagement per member, hub and network.

Money is an exact decimal written as a string (`"1200.50"`) with its ISO
4217 currency, never a float. Who sees what is the service's decision: a
slip, its prospect and its value are shown to its giver, its receiver, the
admins of its hub and tenant admins; to anyone else the slip does not exist
(`null`, or `NotFound` for a mutation), like another network's. A value the
caller may not see is `null`. Profiles come through identity's DataLoader,
hubs and meetups through theirs (`gateway/events/`), and are nullable (see
docs/api.md, "Partial data").

One module per concern: `slips`, `thanks`, `one_to_ones`, `needs`,
`results` (and engagement), `money`.

By convention (see `gateway.kit`): `Query`, `Mutation`, `types`, `nodes`."""

from __future__ import annotations

from strawberry.tools import merge_types

from gateway.kit import NodeLoader
from gateway.referrals import needs, one_to_ones, results, slips, thanks
from gateway.referrals.needs import Need
from gateway.referrals.one_to_ones import OneToOne
from gateway.referrals.slips import Slip

__all__ = ["Mutation", "Query", "nodes", "types"]

# The parts in the order of their fields in schema.graphql.
PARTS = (slips, thanks, one_to_ones, needs, results)
Query = merge_types("Query", tuple(part.Query for part in PARTS))
Mutation = merge_types("Mutation", tuple(part.Mutation for part in PARTS))

types: list[type] = [Slip, OneToOne, Need]
nodes: dict[str, NodeLoader] = {
    "Slip": slips.slip_node,
    "OneToOne": one_to_ones.one_to_one_node,
    "Need": needs.need_node,
}
