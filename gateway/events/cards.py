"""Mission cards: drawn at a meetup's close (`scheduling`), held, and marked
done by their holder. The deck is the hub's agenda (`agenda`)."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.events.meetups import CardDraw, OpenCard
from gateway.kit import ask_listed, command, id_with_context, raw_id, result_union
from services.events import contract as c


@strawberry.type
class CardCompleted:
    card: OpenCard


@strawberry.input
class CompleteCardInput:
    draw_id: strawberry.ID = strawberry.field(description="A `CardDraw` (or `OpenCard`) id.")


CompleteCardResult = result_union("CompleteCardResult", CardCompleted)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="The holder marks their mission card done.")
    async def complete_card(
        self, info: Info[Context, Any], input: CompleteCardInput
    ) -> CompleteCardResult:
        return await command(
            info,
            lambda: c.CompleteCard(draw_id=raw_id(input.draw_id, "CardDraw", "draw_id")),
            lambda o: CardCompleted(card=OpenCard.from_contract(o)),
        )


async def draw_node(info: Info[Context, Any], raw: str) -> CardDraw | None:
    """A card drawn, like `Meetup.cards` (its id carries its meetup)."""
    found = id_with_context(raw)
    if found is None:
        return None
    draw_id, meetup_id = found
    return await ask_listed(
        info,
        c.ListDraws(meetup_id=meetup_id),
        lambda d: d.draw_id == draw_id,
        lambda d: CardDraw.from_contract(d, meetup_id),
    )
