"""A hub's agenda settings in this service: its IANA time zone (meetups'
default; Europe/Paris unless set) and its deck of mission cards. One per hub,
its id derived from the hub's; absent means the defaults."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import event

from services.events.domain.calendar import DEFAULT_TIMEZONE, zone
from services.events.domain.cards import DEFAULT_DECK, Card, check_deck
from services.events.domain.meetup import NAMESPACE
from services.runtime.eventstore import TenantAggregate
from services.runtime.i18n import t


def agenda_id(tenant_id: str, hub_id: str) -> UUID:
    return uuid5(NAMESPACE, f"agenda:{tenant_id}:{hub_id}")


class HubAgenda(TenantAggregate):
    noun = "hub"
    not_found = t("hub not found")
    event_context = ("tenant_id", "hub_id")

    class Event(TenantAggregate.Event):
        hub_id: str

    Created: ClassVar[type[Any]]
    TimezoneSet: ClassVar[type[Any]]
    DeckSet: ClassVar[type[Any]]

    @staticmethod
    def create_id(tenant_id: str, hub_id: str) -> UUID:
        return agenda_id(tenant_id, hub_id)

    @event("Created")
    def __init__(self, tenant_id: str, hub_id: str):
        self.tenant_id = tenant_id
        self.hub_id = hub_id
        self.timezone = DEFAULT_TIMEZONE
        self.cards: list[Card] = list(DEFAULT_DECK)

    def set_timezone(self, timezone: str) -> bool:
        zone(timezone)
        if timezone == self.timezone:
            return False
        self._timezone_set(timezone=timezone)
        return True

    @event("TimezoneSet")
    def _timezone_set(self, timezone: str) -> None:
        self.timezone = timezone

    def set_deck(self, cards: Iterable[Card]) -> bool:
        checked = check_deck(cards)
        if list(checked) == self.cards:
            return False
        self._deck_set(cards=[vars(c) | {} for c in checked])
        return True

    @event("DeckSet")
    def _deck_set(self, cards: list[dict[str, Any]]) -> None:
        self.cards = [Card.from_dict(c) for c in cards]
