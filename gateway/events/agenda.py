"""A hub's agenda settings: its time zone and its deck of mission cards."""

from __future__ import annotations

from typing import Any

import msgspec
import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.kit import command, given, raw_id, result_union
from services.events import contract as c
from services.runtime.messages import Request


@strawberry.type(description="A mission card of a hub's deck.")
class Card:
    card_id: str
    title: str
    single_holder: bool = strawberry.field(description="Held by one member at a time.")


@strawberry.type(description="A hub's deck of mission cards.")
class Deck:
    cards: list[Card]


@strawberry.type(description="A hub's agenda settings: its time zone and its deck of cards.")
class HubAgenda:
    timezone: str = strawberry.field(
        description="The hub's IANA time zone: its meetups' local times are read in it."
    )
    deck: Deck

    @classmethod
    def from_contract(cls, d: c.Deck) -> HubAgenda:
        return cls(
            timezone=d.timezone,
            deck=Deck(
                cards=[
                    Card(card_id=x.card_id, title=x.title, single_holder=x.single_holder)
                    for x in d.cards
                ]
            ),
        )


@strawberry.type
class HubAgendaPayload:
    agenda: HubAgenda


@strawberry.input(description="A card of the deck; `cardId` is made from the title when left out.")
class CardInput:
    title: str
    card_id: str = ""
    single_holder: bool = False


@strawberry.input(description="Fields left out are unchanged.")
class SetHubAgendaInput:
    hub_id: strawberry.ID
    timezone: str | None = strawberry.field(
        default=strawberry.UNSET, description="An IANA time zone, e.g. Europe/Paris."
    )
    cards: list[CardInput] | None = strawberry.field(
        default=strawberry.UNSET, description="The whole deck (1 to 60 cards)."
    )


HubAgendaResult = result_union("HubAgendaResult", HubAgendaPayload)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Hub admin: the hub's time zone and deck of mission cards.")
    async def set_hub_agenda(
        self, info: Info[Context, Any], input: SetHubAgendaInput
    ) -> HubAgendaResult:
        def build() -> Request[Any]:
            cards = given(input.cards)
            return c.SetHubAgenda(
                hub_id=raw_id(input.hub_id, "Hub", "hub_id"),
                timezone=given(input.timezone),
                cards=cards
                if cards is msgspec.UNSET
                else [
                    c.Card(card_id=x.card_id, title=x.title, single_holder=x.single_holder)
                    for x in cards
                ],
            )

        return await command(
            info, build, lambda d: HubAgendaPayload(agenda=HubAgenda.from_contract(d))
        )
