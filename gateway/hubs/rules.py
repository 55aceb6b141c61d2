"""Creating a hub (its area and first rules) and changing its rules: each
change is a new version of them, with its reason."""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.hubs.hub import AdmissionMode, HubKind, HubResult, hub_payload
from gateway.identity.members import GeoPointInput
from gateway.kit import command, raw_id
from services.hubs import contract as c


@strawberry.input
class AreaInput:
    centre: GeoPointInput | None = None
    radius_km: float | None = None
    postcodes: list[str] = strawberry.field(default_factory=list)

    def to_contract(self) -> c.Area:
        centre = c.Point(lat=self.centre.lat, lon=self.centre.lon) if self.centre else None
        return c.Area(centre=centre, radius_km=self.radius_km, postcodes=list(self.postcodes))


@strawberry.input(description="A hub's rules; left out, a field takes its default.")
class HubRulesInput:
    admission_mode: AdmissionMode = AdmissionMode.COOPTATION
    non_competition: bool = True
    non_competition_lift_at: int | None = None
    objection_window_days: int = 7
    max_visits: int = 3
    facilitator_term_days: int = 28
    facilitator_term_meetups: int | None = None
    referrals_meeting_days: int | None = None

    def to_contract(self) -> c.Rules:
        return c.Rules(
            admission_mode=self.admission_mode.value,  # type: ignore[arg-type]
            non_competition=self.non_competition,
            non_competition_lift_at=self.non_competition_lift_at,
            objection_window_days=self.objection_window_days,
            max_visits=self.max_visits,
            facilitator_term_days=self.facilitator_term_days,
            facilitator_term_meetups=self.facilitator_term_meetups,
            referrals_meeting_days=self.referrals_meeting_days,
        )


CLEARABLE_RULES = ("non_competition_lift_at", "facilitator_term_meetups", "referrals_meeting_days")


@strawberry.input(description="Changes to a hub's rules: fields left out are unchanged.")
class HubRulesChangesInput:
    admission_mode: AdmissionMode | None = strawberry.UNSET
    non_competition: bool | None = strawberry.UNSET
    non_competition_lift_at: int | None = strawberry.UNSET
    non_competition_lifted: bool | None = strawberry.UNSET
    objection_window_days: int | None = strawberry.UNSET
    max_visits: int | None = strawberry.UNSET
    facilitator_term_days: int | None = strawberry.UNSET
    facilitator_term_meetups: int | None = strawberry.field(
        default=strawberry.UNSET, description="null: terms count in days only."
    )
    referrals_meeting_days: int | None = strawberry.field(
        default=strawberry.UNSET, description="null: referrals between any members."
    )

    def to_contract(self) -> c.RulesChanges:
        values: dict[str, Any] = {}
        for name in c.RulesChanges.__struct_fields__:
            value = getattr(self, name)
            if value is strawberry.UNSET:
                continue
            if value is None and name not in CLEARABLE_RULES:
                continue  # only the lift threshold and the term in meetups may be cleared
            values[name] = value.value if isinstance(value, Enum) else value
        return c.RulesChanges(**values)


@strawberry.input
class CreateHubInput:
    name: str
    kind: HubKind
    area: AreaInput
    rules: HubRulesInput | None = None


@strawberry.input
class ChangeHubRulesInput:
    hub_id: strawberry.ID
    rules: HubRulesChangesInput
    reason: str | None = strawberry.field(
        default=None, description="Required when lifting the one-per-profession rule."
    )


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Tenant admin: create a hub; you become its first member and co-admin."
    )
    async def create_hub(self, info: Info[Context, Any], input: CreateHubInput) -> HubResult:
        rules = input.rules.to_contract() if input.rules else c.Rules()
        return await command(
            info,
            lambda: c.CreateHub(
                name=input.name,
                kind=input.kind.value,
                area=input.area.to_contract(),
                rules=rules,  # type: ignore[arg-type]
            ),
            hub_payload,
            # the input's `rules`: `rules.maxVisits`, not `maxVisits`
            fields={name: f"rules.{name}" for name in c.Rules.__struct_fields__},
        )

    @strawberry.mutation(
        description="Hub admin: a new version of the rules (lift the one-per-profession rule here)."
    )
    async def change_hub_rules(
        self, info: Info[Context, Any], input: ChangeHubRulesInput
    ) -> HubResult:
        return await command(
            info,
            lambda: c.ChangeRules(
                hub_id=raw_id(input.hub_id, "Hub", "hub_id"),
                changes=input.rules.to_contract(),
                reason=input.reason,
            ),
            hub_payload,
            # the input's `rules`: `rules.maxVisits`, not `maxVisits`
            fields={name: f"rules.{name}" for name in c.RulesChanges.__struct_fields__},
        )
