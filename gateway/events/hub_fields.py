"""The fields the meetups service gives a hub (hubs' `Hub` type inherits
them): its series, meetups, date polls, open cards, workshop
proposals and agenda."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any

import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.events.agenda import HubAgenda
from gateway.events.meetups import (
    DatePoll,
    Meetup,
    MeetupSeries,
    OpenCard,
    PollState,
    WorkshopProposal,
)
from gateway.kit import Connection, ask, ask_page, require_member
from services.events import contract as c


@strawberry.enum
class MeetupWhen(Enum):
    UPCOMING = "upcoming"
    PAST = "past"


@strawberry.type
class HubMeetupFields:
    """The fields the meetups service gives a hub. Nullable: with the meetups
    service down, they are null with an UNAVAILABLE error, and the rest of the
    hub stands."""

    if TYPE_CHECKING:
        hub_id: strawberry.ID

    @strawberry.field(description="The hub's rhythms of meetups.")
    async def series(self, info: Info[Context, Any]) -> list[MeetupSeries] | None:
        found = await ask(info, c.ListSeries(hub_id=self.hub_id), require_member(info))
        return [MeetupSeries.from_contract(s) for s in found]

    @strawberry.field(
        description="Upcoming meetups (not ended, soonest first) or past ones (latest first: "
        "ended, closed or cancelled)."
    )
    async def meetups(
        self,
        info: Info[Context, Any],
        when: MeetupWhen = MeetupWhen.UPCOMING,
        first: int = 20,
        after: str | None = None,
    ) -> Connection[Meetup] | None:
        return await ask_page(
            info,
            first,
            after,
            lambda offset, limit: c.ListMeetups(
                hub_id=self.hub_id, when=when.value, offset=offset, limit=limit
            ),
            Meetup.from_contract,
        )

    @strawberry.field(description="The hub's date polls, newest first; all of them by default.")
    async def date_polls(
        self, info: Info[Context, Any], state: PollState | None = None
    ) -> list[DatePoll] | None:
        found = await ask(
            info,
            c.ListDatePolls(hub_id=self.hub_id, state=state.value if state else None),
            require_member(info),
        )
        return [DatePoll.from_contract(p) for p in found]

    @strawberry.field(description="Mission cards drawn and not done yet.")
    async def open_cards(self, info: Info[Context, Any]) -> list[OpenCard] | None:
        found = await ask(info, c.ListOpenCards(hub_id=self.hub_id), require_member(info))
        return [OpenCard.from_contract(o) for o in found]

    @strawberry.field(description="Workshops members offer to lead, newest first.")
    async def workshop_proposals(self, info: Info[Context, Any]) -> list[WorkshopProposal] | None:
        found = await ask(info, c.ListWorkshopProposals(hub_id=self.hub_id), require_member(info))
        return [WorkshopProposal.from_contract(w) for w in found]

    @strawberry.field(description="The hub's time zone and deck of mission cards.")
    async def agenda(self, info: Info[Context, Any]) -> HubAgenda | None:
        found = await ask(info, c.GetHubAgenda(hub_id=self.hub_id), require_member(info))
        return HubAgenda.from_contract(found)
