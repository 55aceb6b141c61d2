"""Roles without hierarchy: co-admins sharing the administration, and the
rotating facilitator ("animateur"), volunteers taking turns for short terms."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.hubs.hub import HubInput, HubResult, hub_payload
from gateway.kit import command, raw_id
from services.hubs import contract as c


@strawberry.input
class HubMemberInput:
    hub_id: strawberry.ID
    member_id: strawberry.ID


@strawberry.input
class SwapFacilitatorTurnsInput:
    hub_id: strawberry.ID
    first_member_id: strawberry.ID
    second_member_id: strawberry.ID


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Hub admin: make a member co-admin.")
    async def add_hub_co_admin(self, info: Info[Context, Any], input: HubMemberInput) -> HubResult:
        return await command(
            info,
            lambda: c.AddCoAdmin(
                hub_id=raw_id(input.hub_id, "Hub", "hub_id"),
                member_id=raw_id(input.member_id, "Member", "member_id"),
            ),
            hub_payload,
        )

    @strawberry.mutation(description="Hub admin: a co-admin steps back (a hub keeps at least one).")
    async def remove_hub_co_admin(
        self, info: Info[Context, Any], input: HubMemberInput
    ) -> HubResult:
        return await command(
            info,
            lambda: c.RemoveCoAdmin(
                hub_id=raw_id(input.hub_id, "Hub", "hub_id"),
                member_id=raw_id(input.member_id, "Member", "member_id"),
            ),
            hub_payload,
        )

    @strawberry.mutation(description="Volunteer for the rotating facilitator role.")
    async def volunteer_as_facilitator(
        self, info: Info[Context, Any], input: HubInput
    ) -> HubResult:
        return await command(
            info,
            lambda: c.VolunteerAsFacilitator(hub_id=raw_id(input.hub_id, "Hub", "hub_id")),
            hub_payload,
        )

    @strawberry.mutation(description="Leave the facilitator roster.")
    async def withdraw_from_facilitator_roster(
        self, info: Info[Context, Any], input: HubInput
    ) -> HubResult:
        return await command(
            info,
            lambda: c.WithdrawFromRoster(hub_id=raw_id(input.hub_id, "Hub", "hub_id")),
            hub_payload,
        )

    @strawberry.mutation(
        description="Hub admin or the facilitator: the next volunteer takes over for a term."
    )
    async def hand_over_facilitation(self, info: Info[Context, Any], input: HubInput) -> HubResult:
        return await command(
            info,
            lambda: c.HandOverFacilitation(hub_id=raw_id(input.hub_id, "Hub", "hub_id")),
            hub_payload,
        )

    @strawberry.mutation(
        description="Swap two turns of the roster: a hub admin, or a volunteer giving their "
        "own turn to someone after them."
    )
    async def swap_facilitator_turns(
        self,
        info: Info[Context, Any],
        input: SwapFacilitatorTurnsInput,
    ) -> HubResult:
        return await command(
            info,
            lambda: c.SwapFacilitatorTurns(
                hub_id=raw_id(input.hub_id, "Hub", "hub_id"),
                first_id=raw_id(input.first_member_id, "Member", "first_member_id"),
                second_id=raw_id(input.second_member_id, "Member", "second_member_id"),
            ),
            hub_payload,
            fields={"first_id": "first_member_id", "second_id": "second_member_id"},
        )
