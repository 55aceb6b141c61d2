"""Workshops: a member offers to lead one; the facilitator or a hub admin
schedules it as a meetup led by its proposer."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.events.local_time import LocalDateTime
from gateway.events.meetups import VenueInput, WorkshopProposal
from gateway.events.scheduling import MeetupResult, meetup_payload
from gateway.kit import ask_listed, command, id_with_context, raw_id, result_union
from services.events import contract as c


@strawberry.type
class WorkshopProposalPayload:
    proposal: WorkshopProposal


@strawberry.input
class ProposeWorkshopInput:
    hub_id: strawberry.ID
    topic: str
    description: str = ""


@strawberry.input
class ScheduleWorkshopInput:
    proposal_id: strawberry.ID
    local_start: LocalDateTime
    venue: VenueInput
    duration_minutes: int = 120
    capacity: int | None = None


WorkshopProposalResult = result_union("WorkshopProposalResult", WorkshopProposalPayload)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="A member of the hub offers to lead a workshop.")
    async def propose_workshop(
        self, info: Info[Context, Any], input: ProposeWorkshopInput
    ) -> WorkshopProposalResult:
        return await command(
            info,
            lambda: c.ProposeWorkshop(
                hub_id=raw_id(input.hub_id, "Hub", "hub_id"),
                topic=input.topic,
                description=input.description,
            ),
            lambda w: WorkshopProposalPayload(proposal=WorkshopProposal.from_contract(w)),
        )

    @strawberry.mutation(
        description="The facilitator or a hub admin: the proposal becomes a workshop led by "
        "its proposer."
    )
    async def schedule_workshop(
        self, info: Info[Context, Any], input: ScheduleWorkshopInput
    ) -> MeetupResult:
        return await command(
            info,
            lambda: c.ScheduleWorkshop(
                proposal_id=raw_id(input.proposal_id, "WorkshopProposal", "proposal_id"),
                local_start=input.local_start,
                venue=input.venue.to_contract(),
                duration_minutes=input.duration_minutes,
                capacity=input.capacity,
            ),
            meetup_payload,
        )


async def proposal_node(info: Info[Context, Any], raw: str) -> WorkshopProposal | None:
    """A workshop proposal, like `Hub.workshopProposals` (its id carries its hub)."""
    found = id_with_context(raw)
    if found is None:
        return None
    proposal_id, hub_id = found
    return await ask_listed(
        info,
        c.ListWorkshopProposals(hub_id=hub_id),
        lambda w: w.proposal_id == proposal_id,
        WorkshopProposal.from_contract,
    )
