"""Leaving a hub, and a hub admin removing a member (with the reason)."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.hubs.hub import HubInput
from gateway.kit import command, raw_id, result_union
from services.hubs import contract as c


@strawberry.type
class LeftHub:
    hub_id: strawberry.ID


@strawberry.type
class HubMemberRemoved:
    hub_id: strawberry.ID
    member_id: strawberry.ID


@strawberry.input
class RemoveHubMemberInput:
    hub_id: strawberry.ID
    member_id: strawberry.ID
    reason: str


LeaveHubResult = result_union("LeaveHubResult", LeftHub)


RemoveHubMemberResult = result_union("RemoveHubMemberResult", HubMemberRemoved)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Leave a hub.")
    async def leave_hub(self, info: Info[Context, Any], input: HubInput) -> LeaveHubResult:
        return await command(
            info,
            lambda: c.LeaveHub(hub_id=raw_id(input.hub_id, "Hub", "hub_id")),
            lambda _: LeftHub(hub_id=input.hub_id),
        )

    @strawberry.mutation(description="Hub admin: remove a member, with the reason.")
    async def remove_hub_member(
        self,
        info: Info[Context, Any],
        input: RemoveHubMemberInput,
    ) -> RemoveHubMemberResult:
        return await command(
            info,
            lambda: c.RemoveMember(
                hub_id=raw_id(input.hub_id, "Hub", "hub_id"),
                member_id=raw_id(input.member_id, "Member", "member_id"),
                reason=input.reason,
            ),
            lambda _: HubMemberRemoved(hub_id=input.hub_id, member_id=input.member_id),
        )
