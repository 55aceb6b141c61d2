"""Admission: co-optation of a candidate by a member (its future godparent),
objections within the window, the admins' decision; or joining an open hub."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.hubs.hub import HubInput, HubMember, Nomination
from gateway.kit import ask, command, id_with_context, raw_id, require_member, result_union
from services.hubs import contract as c


@strawberry.type
class NominationPayload:
    nomination: Nomination


@strawberry.type
class HubMembershipPayload:
    membership: HubMember


@strawberry.input(
    description="Name a member of the network (`candidateId`) or a new person (`email`)."
)
class NominateCandidateInput:
    hub_id: strawberry.ID
    candidate_id: strawberry.ID | None = None
    email: str | None = None
    note: str = ""
    exception_reason: str | None = strawberry.field(
        default=None,
        description="Hub admins: admit past the one-per-profession rule, for this reason.",
    )


@strawberry.input
class RaiseObjectionInput:
    hub_id: strawberry.ID
    nomination_id: strawberry.ID
    reason: str


@strawberry.input
class AdmitCandidateInput:
    hub_id: strawberry.ID
    nomination_id: strawberry.ID
    exception_reason: str | None = None


@strawberry.input
class RejectCandidateInput:
    hub_id: strawberry.ID
    nomination_id: strawberry.ID
    reason: str


NominationResult = result_union("NominationResult", NominationPayload)


HubMembershipResult = result_union("HubMembershipResult", HubMembershipPayload)


def _nomination(reply: c.Nomination) -> NominationPayload:
    return NominationPayload(nomination=Nomination.from_contract(reply))


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Co-opt a candidate: a member of the network, or a new person by e-mail."
    )
    async def nominate_candidate(
        self,
        info: Info[Context, Any],
        input: NominateCandidateInput,
    ) -> NominationResult:
        return await command(
            info,
            lambda: c.NominateCandidate(
                hub_id=raw_id(input.hub_id, "Hub", "hub_id"),
                candidate_id=raw_id(input.candidate_id, "Member", "candidate_id")
                if input.candidate_id
                else None,
                email=input.email,
                note=input.note,
                exception_reason=input.exception_reason,
            ),
            _nomination,
        )

    @strawberry.mutation(description="Join an open hub of your network.")
    async def join_hub(self, info: Info[Context, Any], input: HubInput) -> HubMembershipResult:
        return await command(
            info,
            lambda: c.JoinHub(hub_id=raw_id(input.hub_id, "Hub", "hub_id")),
            lambda m: HubMembershipPayload(membership=HubMember.from_contract(m)),
        )

    @strawberry.mutation(description="Object to a candidate while the objection window is open.")
    async def raise_objection(
        self,
        info: Info[Context, Any],
        input: RaiseObjectionInput,
    ) -> NominationResult:
        return await command(
            info,
            lambda: c.RaiseObjection(
                hub_id=raw_id(input.hub_id, "Hub", "hub_id"),
                nomination_id=raw_id(input.nomination_id, "Nomination", "nomination_id"),
                reason=input.reason,
            ),
            _nomination,
        )

    @strawberry.mutation(
        description="Hub admin: admit a candidate (with an exception reason if the rule requires it)."
    )
    async def admit_candidate(
        self,
        info: Info[Context, Any],
        input: AdmitCandidateInput,
    ) -> NominationResult:
        return await command(
            info,
            lambda: c.AdmitCandidate(
                hub_id=raw_id(input.hub_id, "Hub", "hub_id"),
                nomination_id=raw_id(input.nomination_id, "Nomination", "nomination_id"),
                exception_reason=input.exception_reason,
            ),
            _nomination,
        )

    @strawberry.mutation(description="Hub admin: refuse a candidate, with the reason.")
    async def reject_candidate(
        self,
        info: Info[Context, Any],
        input: RejectCandidateInput,
    ) -> NominationResult:
        return await command(
            info,
            lambda: c.RejectCandidate(
                hub_id=raw_id(input.hub_id, "Hub", "hub_id"),
                nomination_id=raw_id(input.nomination_id, "Nomination", "nomination_id"),
                reason=input.reason,
            ),
            _nomination,
        )


# -- its Node loader (node(id:))


async def nomination_node(info: Info[Context, Any], raw: str) -> Nomination | None:
    """A nomination, for the members of its hub, like `Hub.nominations`. Its
    id carries its hub (`Nomination:uuid:hub uuid`), which `GetNomination`
    needs; an id without one (issued before) is null."""
    found = id_with_context(raw)
    if found is None:
        return None
    nomination_id, hub_id = found
    nomination = await ask(
        info,
        c.GetNomination(hub_id=hub_id, nomination_id=nomination_id),
        require_member(info),
        missing_as_none=True,
    )
    return Nomination.from_contract(nomination) if nomination else None
