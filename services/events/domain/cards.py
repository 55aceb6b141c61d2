"""Mission cards: a hub's deck and the draw at a meetup's close.

Source: DOMAIN.md, "Mission cards" — at the end of a meetup each attendee
draws a card ("fix the date of the next meetup", "find the restaurant",
"welcome the newcomer", "bring a visitor", "write the recap", "lead the next
workshop"); the deck is configurable per hub; completion is tracked.

The draw is random but reproducible: `deal` is a pure function of the deck,
the members present, the single-holder cards still held, and a seed that the
close records in its event (an auditor replays it). No card is dealt twice in
one draw until the deck runs out (then a new round of the deck begins); a
single-holder card is never held by two members at once.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from services.runtime.errors import InvalidInput
from services.runtime.i18n import t
from services.runtime.text import single_line

CARD_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
MAX_CARDS = 60


@dataclass(frozen=True)
class Card:
    card_id: str
    title: str
    single_holder: bool = False

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Card:
        return cls(**d)


# The seeds' deck (French: the practice comes from French networks; a hub
# renames or replaces cards with SetHubAgenda).
DEFAULT_DECK: tuple[Card, ...] = (
    Card("next-date", "Fixer la date de la prochaine rencontre", single_holder=True),
    Card("venue", "Trouver le lieu (le restaurant)", single_holder=True),
    Card("welcome", "Accueillir le nouveau"),
    Card("visitor", "Amener un visiteur"),
    Card("recap", "Écrire le compte rendu", single_holder=True),
    Card("workshop", "Animer le prochain atelier", single_holder=True),
)


def check_deck(cards: Iterable[Card]) -> tuple[Card, ...]:
    """A deck: 1 to MAX_CARDS cards with distinct ids (made from the title when
    empty) and titles."""
    checked: list[Card] = []
    seen: set[str] = set()
    for i, card in enumerate(cards):
        title = single_line(card.title, f"cards[{i}].title", 120, required=True)
        card_id = card.card_id or _slug(title, seen)
        if not CARD_ID.fullmatch(card_id):
            raise InvalidInput(
                t("a card id is lower-case letters, digits and dashes"), field="cards"
            )
        if card_id in seen:
            raise InvalidInput(
                t("two cards have the id {card_id}", card_id=repr(card_id)), field="cards"
            )
        seen.add(card_id)
        checked.append(Card(card_id, title, card.single_holder))
    if not 1 <= len(checked) <= MAX_CARDS:
        raise InvalidInput(t("a deck has 1 to {limit} cards", limit=MAX_CARDS), field="cards")
    return tuple(checked)


def _slug(title: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:32] or "card"
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


def deal(
    deck: Iterable[Card], members: Iterable[str], held: set[str], seed: int
) -> list[tuple[str, Card]]:
    """Who draws which card: each member present (in a shuffled order) takes
    the top card of a shuffled pile; when the pile runs out a new round of the
    deck is shuffled. Single-holder cards still held by someone (`held`), or
    dealt earlier in this draw, are left out; members who find no card left
    draw nothing."""
    rng = random.Random(seed)
    cards = [c for c in deck if not (c.single_holder and c.card_id in held)]
    order = sorted(set(members))
    rng.shuffle(order)
    dealt_single: set[str] = set()
    pile: list[Card] = []
    draws: list[tuple[str, Card]] = []
    for member in order:
        if not pile:
            pile = [c for c in cards if c.card_id not in dealt_single]
            rng.shuffle(pile)
        if not pile:
            break
        card = pile.pop()
        if card.single_holder:
            dealt_single.add(card.card_id)
        draws.append((member, card))
    return draws
