"""People seen by this service: visitors (non-members invited to meetups,
their name and e-mail kept only here) and members' settings (reminders)."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import event

from services.events.domain.meetup import NAMESPACE
from services.runtime.errors import InvalidInput, RuleViolation
from services.runtime.eventstore import TenantAggregate
from services.runtime.i18n import t
from services.runtime.personal import OWNER, personal, personal_state
from services.runtime.text import single_line

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


def normalise_email(email: str) -> str:
    email = (email or "").strip()
    if len(email) > 254 or not EMAIL.fullmatch(email):
        raise InvalidInput(t("not a valid e-mail address"), field="email")
    local, domain = email.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def visitor_id(tenant_id: str, hub_id: str, email: str) -> UUID:
    """One visitor per hub and address (case-insensitive): visits are counted
    per hub and person."""
    digest = hashlib.sha256(email.lower().encode()).hexdigest()
    return uuid5(NAMESPACE, f"visitor:{tenant_id}:{hub_id}:{digest}")


class Visitor(TenantAggregate):
    """A non-member's visits to one hub's meetups. Past the hub's
    `max_visits`, the next invitation is refused: they must now apply."""

    noun = "visitor"
    not_found = t("visitor not found")
    event_context = ("tenant_id", "hub_id")

    class Event(TenantAggregate.Event):
        hub_id: str

    Registered: ClassVar[type[Any]]
    Invited: ClassVar[type[Any]]
    Answered: ClassVar[type[Any]]

    @staticmethod
    def create_id(tenant_id: str, hub_id: str, email: str) -> UUID:
        return visitor_id(tenant_id, hub_id, email)

    @event("Registered")
    def __init__(self, tenant_id: str, hub_id: str, email: str, name: str):
        self.tenant_id = tenant_id
        self.hub_id = hub_id
        self.email = email
        self.name = name
        self.visits: list[str] = []  # meetup ids
        self.invited_by: dict[str, str] = {}  # meetup id -> member id
        self.answers: dict[str, str] = {}  # meetup id -> "yes" or "no"

    def counted_visits(self) -> int:
        """Visits count unless the visitor declined them."""
        return sum(1 for m in self.visits if self.answers.get(m) != "no")

    @staticmethod
    def new(tenant_id: str, hub_id: str, email: str, name: str) -> Visitor:
        return Visitor(
            tenant_id=tenant_id,
            hub_id=hub_id,
            email=normalise_email(email),
            name=single_line(name, "name", 80, required=True),
        )

    def invite(self, meetup_id: str, by: str, max_visits: int, at: datetime) -> bool:
        """Count a visit; False if already invited to this meetup."""
        if meetup_id in self.visits:
            return False
        if self.counted_visits() >= max_visits:
            raise RuleViolation(
                t(
                    "this visitor has already come {visits} times (the hub allows {max_visits}): "
                    "they must now apply — nominate them to join the network",
                    visits=self.counted_visits(),
                    max_visits=max_visits,
                ),
                rule="max_visits",
            )
        self._invited(meetup_id=meetup_id, by=by, visits=self.counted_visits() + 1, at=at)
        return True

    @event("Invited")
    def _invited(self, meetup_id: str, by: str, visits: int, at: datetime) -> None:
        self.visits = [*self.visits, meetup_id]
        self.invited_by[meetup_id] = by

    def answer(self, meetup_id: str, answer: str, at: datetime) -> bool:
        """The visitor's answer to an invitation (by link): yes or no."""
        if answer not in ("yes", "no"):
            raise InvalidInput(t("a visitor answers yes or no"), field="answer")
        if meetup_id not in self.visits:
            raise RuleViolation(
                t("this visitor was not invited to this meetup"), rule="not_invited"
            )
        if self.answers.get(meetup_id) == answer:
            return False
        self._answered(meetup_id=meetup_id, answer=answer, at=at)
        return True

    @event("Answered")
    def _answered(self, meetup_id: str, answer: str, at: datetime) -> None:
        self.answers[meetup_id] = answer


def settings_id(tenant_id: str, member_id: str) -> UUID:
    return uuid5(NAMESPACE, f"settings:{tenant_id}:{member_id}")


class MemberSettings(TenantAggregate):
    """A member's choices in this service: reminders on or off."""

    noun = "settings"
    not_found = t("settings not found")

    Created: ClassVar[type[Any]]
    RemindersSet: ClassVar[type[Any]]

    @staticmethod
    def create_id(tenant_id: str, member_id: str) -> UUID:
        return settings_id(tenant_id, member_id)

    @event("Created")
    def __init__(self, tenant_id: str, member_id: str):
        self.tenant_id = tenant_id
        self.member_id = member_id
        self.reminders = True

    def set_reminders(self, on: bool, by_link: bool) -> bool:
        if on == self.reminders:
            return False
        self._reminders_set(on=on, by_link=by_link)
        return True

    @event("RemindersSet")
    def _reminders_set(self, on: bool, by_link: bool) -> None:
        self.reminders = on


# -- personal data (services/runtime/personal.py, docs/erasure.md) -------------
# A visitor's name and address, under the visitor's own key: destroyed with
# the erasure of a member who invited them.
personal(Visitor.Registered, email=OWNER, name=OWNER)
personal_state(Visitor, email=OWNER, name=OWNER)
