"""Concrete results and engagement: what a member, a hub or the network did
over a period (values are totals per currency), a hub's core and drifting
members with each member's traffic light, and the network's settings of
them."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.events.meetups import HubRef, load_hub_of
from gateway.identity.members import Member, load_member, load_members
from gateway.kit import (
    ask,
    command,
    public_errors,
    raw_id,
    require_caller,
    require_member,
    result_union,
)
from gateway.nodes import from_global_id
from gateway.referrals.money import Money
from services.referrals import contract as c
from services.runtime.errors import Forbidden, InvalidInput
from services.runtime.i18n import t


@strawberry.enum(description="What a report is about.")
class ResultsScope(Enum):
    MEMBER = "member"
    HUB = "hub"
    TENANT = "tenant"


@strawberry.enum
class TrafficLight(Enum):
    GREEN = "green"
    AMBER = "amber"
    RED = "red"


@strawberry.enum(description="A measure of the traffic light (over its window of months).")
class EngagementMeasure(Enum):
    MEETUPS = "meetups"  # meetups of the hub attended (present or late)
    REFERRALS_GIVEN = "referrals_given"
    ONE_TO_ONES = "one_to_ones"  # confirmed


@strawberry.type(
    description="What a member, a hub or the network did over a period. Values are totals "
    "per currency (never summed across currencies)."
)
class Results:
    scope: ResultsScope
    subject_id: strawberry.ID = strawberry.field(
        description="The member's, the hub's or the network's UUID."
    )
    since: datetime
    until: datetime
    meetups_attended: int = strawberry.field(
        description="A member: meetups attended; a hub or the network: attendances."
    )
    referrals_given: int
    referrals_received: int
    referrals_won: int
    value_given: list[Money] = strawberry.field(description="Business brought to others (thanked).")
    value_received: list[Money] = strawberry.field(description="Business received (thanked).")
    one_to_ones: int = strawberry.field(description="Confirmed ones.")
    missions_done: int
    needs_posted: int
    needs_met_inside: int

    @strawberry.field(
        description="The member, for a member's report (members only: an API key reads "
        "figures and ids, not members' cards; FORBIDDEN)."
    )
    async def member(self, info: Info[Context, Any]) -> Member | None:
        if self.scope is not ResultsScope.MEMBER:
            return None
        _no_cards_for_keys(info, "member")
        return await load_member(info, self.subject_id)

    @strawberry.field(
        description="The hub, for a hub's report (members only: an API key reads figures "
        "and ids; FORBIDDEN)."
    )
    async def hub(self, info: Info[Context, Any]) -> HubRef | None:
        if self.scope is not ResultsScope.HUB:
            return None
        _no_cards_for_keys(info, "hub")
        return await load_hub_of(info, self.subject_id)

    @classmethod
    def from_contract(cls, r: c.Results) -> Results:
        return cls(
            scope=ResultsScope(r.scope),
            subject_id=strawberry.ID(r.subject_id),
            since=r.since,
            until=r.until,
            meetups_attended=r.meetups_attended,
            referrals_given=r.referrals_given,
            referrals_received=r.referrals_received,
            referrals_won=r.referrals_won,
            value_given=[Money.from_contract(m) for m in r.value_given.items],
            value_received=[Money.from_contract(m) for m in r.value_received.items],
            one_to_ones=r.one_to_ones,
            missions_done=r.missions_done,
            needs_posted=r.needs_posted,
            needs_met_inside=r.needs_met_inside,
        )


@strawberry.type(description="One measure of a traffic light and the colour it gave.")
class LightMeasure:
    measure: EngagementMeasure
    value: int
    light: TrafficLight


@strawberry.type(description="A member's engagement in a hub.")
class Engagement:
    light: TrafficLight = strawberry.field(description="The worst of its measures' lights.")
    measures: list[LightMeasure]
    meetups_in_core_window: int
    in_core: bool
    drifting: bool = strawberry.field(description="No meetup in the last `driftingWeeks`.")
    last_meetup_at: datetime | None
    member_id: strawberry.ID

    @strawberry.field(description="The measures that set the light (those of its colour).")
    def set_by(self) -> list[EngagementMeasure]:
        return [m.measure for m in self.measures if m.light == self.light]

    @strawberry.field
    async def member(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, self.member_id)

    @classmethod
    def from_contract(cls, e: c.Engagement) -> Engagement:
        return cls(
            light=TrafficLight(e.light),
            measures=[
                LightMeasure(
                    measure=EngagementMeasure(m.measure), value=m.value, light=TrafficLight(m.light)
                )
                for m in e.measures
            ],
            meetups_in_core_window=e.meetups_in_core_window,
            in_core=e.in_core,
            drifting=e.drifting,
            last_meetup_at=e.last_meetup_at,
            member_id=strawberry.ID(e.member_id),
        )


@strawberry.type(
    description="A hub's engagement now: its core (present at `coreMeetups` meetups in "
    "`coreDays` days), the members drifting away, and each member's traffic light."
)
class HubEngagement:
    members: list[Engagement]
    hub_id: strawberry.ID
    core_ids: strawberry.Private[list[str]]
    drifting_ids: strawberry.Private[list[str]]

    @strawberry.field
    async def hub(self, info: Info[Context, Any]) -> HubRef | None:
        return await load_hub_of(info, self.hub_id)

    @strawberry.field
    async def core(self, info: Info[Context, Any]) -> list[Member] | None:
        return await load_members(info, self.core_ids)

    @strawberry.field
    async def drifting(self, info: Info[Context, Any]) -> list[Member] | None:
        return await load_members(info, self.drifting_ids)

    @classmethod
    def from_contract(cls, h: c.HubEngagement) -> HubEngagement:
        return cls(
            members=[Engagement.from_contract(e) for e in h.members],
            hub_id=strawberry.ID(h.hub_id),
            core_ids=list(h.core),
            drifting_ids=list(h.drifting),
        )


@strawberry.type(
    description="A network's engagement settings (tenant admins set them). Each light's "
    "measure is green at or above its green threshold, amber at or above its amber one, red "
    "below, over the last `lightMonths` months (of 30 days)."
)
class EngagementSettings:
    core_meetups: int = strawberry.field(description="The core: present at this many meetups …")
    core_days: int = strawberry.field(description="… in this many days.")
    drifting_weeks: int = strawberry.field(description="Drifting: no meetup in this many weeks.")
    need_window_days: int = strawberry.field(
        description="A need goes to the network first for this many days."
    )
    light_months: int
    green_meetups: int
    amber_meetups: int
    green_referrals: int
    amber_referrals: int
    green_one_to_ones: int
    amber_one_to_ones: int

    @classmethod
    def from_contract(cls, s: c.EngagementSettings) -> EngagementSettings:
        return cls(**{name: getattr(s, name) for name in c.EngagementSettings.__struct_fields__})


@strawberry.type
class EngagementSettingsPayload:
    settings: EngagementSettings


EngagementSettingsResult = result_union("EngagementSettingsResult", EngagementSettingsPayload)


@strawberry.input(
    description="A network's engagement settings; left out, a field takes its default."
)
class EngagementSettingsInput:
    core_meetups: int = 3
    core_days: int = 90
    drifting_weeks: int = 6
    need_window_days: int = 7
    light_months: int = 6
    green_meetups: int = 12
    amber_meetups: int = 6
    green_referrals: int = 6
    amber_referrals: int = 2
    green_one_to_ones: int = 6
    amber_one_to_ones: int = 2

    def to_contract(self) -> c.EngagementSettings:
        return c.EngagementSettings(
            **{name: getattr(self, name) for name in c.EngagementSettings.__struct_fields__}
        )


def _no_cards_for_keys(info: Info[Context, Any], field: str) -> None:
    """An API key holding `reports:read` reads a report's figures and its
    `subjectId`, not the member's card nor the hub's (docs/api-keys.md): a
    key is authenticated, so the refusal is FORBIDDEN, not UNAUTHENTICATED."""
    if info.context.principal.key_id is not None:
        with public_errors():
            raise Forbidden(
                t(
                    "an API key reads a report's figures and subjectId, not its {field}: "
                    "ask for subjectId instead",
                    field=field,
                )
            )


def _subject(scope: ResultsScope, subject_id: str | None) -> str | None:
    """A report's subject: a Member id (member), a Hub id (hub), none (network)."""
    if subject_id is None:
        if scope is ResultsScope.HUB:
            raise InvalidInput(t("a hub's report needs subjectId, a Hub id"), field="subjectId")
        return None
    if scope is ResultsScope.TENANT:
        raise InvalidInput(t("a report of the network has no subject"), field="subjectId")
    expected = "Member" if scope is ResultsScope.MEMBER else "Hub"
    return from_global_id(subject_id, expected, field="subjectId")


@strawberry.type
class Query:
    @strawberry.field(
        description="Results over a period (default: the 90 days before `until`, itself "
        "default now; at most three years). `MEMBER`: yours, or (`subjectId`, a Member id) "
        "a member of a hub you administer; `HUB`: a hub (`subjectId`, a Hub id); `TENANT`: "
        "the network. Values are totals."
    )
    async def results(
        self,
        info: Info[Context, Any],
        scope: ResultsScope,
        subject_id: strawberry.ID | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Results:
        rctx = require_caller(info, "reports:read")  # a member, or a `reports:read` API key
        with public_errors():
            subject = _subject(scope, subject_id)
        found = await ask(
            info,
            c.GetResults(scope=scope.value, subject_id=subject, since=since, until=until),  # type: ignore[arg-type]
            rctx,
        )
        return Results.from_contract(found)

    @strawberry.field(
        description="A hub's engagement now (its members and admins): core, drifting, lights."
    )
    async def hub_engagement(
        self, info: Info[Context, Any], hub_id: strawberry.ID
    ) -> HubEngagement:
        rctx = require_member(info)
        with public_errors():
            raw = raw_id(hub_id, "Hub", "hubId")
        found = await ask(info, c.GetHubEngagement(hub_id=raw), rctx)
        return HubEngagement.from_contract(found)

    @strawberry.field(description="The network's engagement settings.")
    async def engagement_settings(self, info: Info[Context, Any]) -> EngagementSettings:
        found = await ask(info, c.GetEngagementSettings(), require_member(info))
        return EngagementSettings.from_contract(found)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Tenant admins: the network's engagement settings.")
    async def set_engagement_settings(
        self, info: Info[Context, Any], input: EngagementSettingsInput
    ) -> EngagementSettingsResult:
        return await command(
            info,
            lambda: c.SetEngagementSettings(settings=input.to_contract()),
            lambda s: EngagementSettingsPayload(settings=EngagementSettings.from_contract(s)),
            fields={"settings.": ""},  # the input is the settings
        )
