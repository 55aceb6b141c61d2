"""Date polls: when the date of a meetup is not settled (the next afterwork),
members vote yes / if-need-be / no on candidate slots (the Doodle practice,
also by link); closing the poll schedules the meetup on the chosen slot."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from eventsourcing.domain import event

from services.events.domain.calendar import check_local, to_utc, zone
from services.events.domain.values import VOTES, Venue, check_duration
from services.runtime.errors import InvalidInput, NotFound, RuleViolation
from services.runtime.eventstore import TenantAggregate
from services.runtime.i18n import t
from services.runtime.text import single_line

MAX_SLOTS = 20


class DatePoll(TenantAggregate):
    noun = "date poll"
    not_found = t("date poll not found")
    event_context = ("tenant_id", "hub_id")

    class Event(TenantAggregate.Event):
        hub_id: str

    Opened: ClassVar[type[Any]]
    Voted: ClassVar[type[Any]]
    Closed: ClassVar[type[Any]]
    LinksRevoked: ClassVar[type[Any]]
    AllLinksRevoked: ClassVar[type[Any]]

    @event("Opened")
    def __init__(
        self,
        tenant_id: str,
        hub_id: str,
        title: str,
        slots: dict[str, datetime],
        timezone: str,
        duration_minutes: int,
        venue: dict[str, str],
        series_id: str | None,
        opened_by: str,
    ):
        self.tenant_id = tenant_id
        self.hub_id = hub_id
        self.title = title
        self.slots = dict(slots)  # slot id -> local start
        self.timezone = timezone
        self.duration_minutes = duration_minutes
        self.venue = Venue.from_dict(venue)
        self.series_id = series_id
        self.opened_by = opened_by
        self.votes: dict[str, dict[str, str]] = {}  # member -> slot -> vote
        self.state = "open"
        self.chosen_slot_id: str | None = None
        self.meetup_id: str | None = None
        self.links_version = 0
        self.link_versions: dict[str, int] = {}

    @staticmethod
    def new(
        tenant_id: str,
        hub_id: str,
        title: str,
        slots: list[datetime],
        timezone: str,
        duration_minutes: int,
        venue: Venue,
        series_id: str | None,
        opened_by: str,
        now: datetime,
    ) -> DatePoll:
        zone(timezone)
        starts = sorted({check_local(s, timezone, "slots") for s in slots})
        if not 2 <= len(starts) <= MAX_SLOTS:
            raise InvalidInput(
                t("a poll offers 2 to {limit} different slots", limit=MAX_SLOTS), field="slots"
            )
        if any(to_utc(s, timezone) <= now for s in starts):
            raise InvalidInput(t("every slot is in the future"), field="slots")
        return DatePoll(
            tenant_id=tenant_id,
            hub_id=hub_id,
            title=single_line(title, "title", 120, required=True),
            slots={f"s{i + 1}": s for i, s in enumerate(starts)},
            timezone=timezone,
            duration_minutes=check_duration(duration_minutes),
            venue=venue.to_dict(),
            series_id=series_id,
            opened_by=opened_by,
        )

    def link_version(self, holder_id: str) -> int:
        return self.links_version + self.link_versions.get(holder_id, 0)

    def _check_open(self) -> None:
        if self.state != "open":
            raise RuleViolation(t("this poll is closed"), rule="poll_closed")

    def vote(self, member_id: str, votes: dict[str, str], at: datetime) -> bool:
        """Votes on some or all slots (a later vote on a slot replaces the
        earlier one). Returns False if nothing changed."""
        self._check_open()
        if not votes:
            raise InvalidInput(t("vote on at least one slot"), field="votes")
        for slot_id, vote in votes.items():
            if slot_id not in self.slots:
                raise NotFound(t("no slot {slot} in this poll", slot=repr(slot_id[:20])))
            if vote not in VOTES:
                raise InvalidInput(t("a vote is one of {votes}", votes=VOTES), field="votes")
        current = self.votes.get(member_id, {})
        if all(current.get(s) == v for s, v in votes.items()):
            return False
        self._voted(member_id=member_id, votes=dict(votes), at=at)
        return True

    @event("Voted")
    def _voted(self, member_id: str, votes: dict[str, str], at: datetime) -> None:
        self.votes[member_id] = {**self.votes.get(member_id, {}), **votes}

    def tally(self) -> dict[str, dict[str, int]]:
        counts = {s: dict.fromkeys(VOTES, 0) for s in self.slots}
        for member_votes in self.votes.values():
            for slot_id, vote in member_votes.items():
                counts[slot_id][vote] += 1
        return counts

    def closable_slot(self, slot_id: str, now: datetime) -> datetime:
        """The local start of a slot this poll may close on (open, the slot
        its own, not past): checked before the meetup on it is made."""
        self._check_open()
        if slot_id not in self.slots:
            raise NotFound(t("no slot {slot} in this poll", slot=repr(slot_id[:20])))
        start = self.slots[slot_id]
        if to_utc(start, self.timezone) <= now:
            raise RuleViolation(t("this slot is past: choose another one"), rule="slot_past")
        return start

    def close(self, slot_id: str, meetup_id: str, by: str, now: datetime) -> datetime:
        """Choose a slot; the meetup on it is saved with this close. Returns
        the slot's local start."""
        start = self.closable_slot(slot_id, now)
        self._closed(
            slot_id=slot_id,
            meetup_id=meetup_id,
            starts_at=to_utc(start, self.timezone),
            by=by,
            at=now,
        )
        return start

    @event("Closed")
    def _closed(
        self, slot_id: str, meetup_id: str, starts_at: datetime, by: str, at: datetime
    ) -> None:
        self.state = "closed"
        self.chosen_slot_id = slot_id
        self.meetup_id = meetup_id

    def revoke_links(self, holder_id: str | None) -> None:
        if holder_id is None:
            self._all_links_revoked(version=self.links_version + 1)
        else:
            self._links_revoked(
                holder_id=holder_id, version=self.link_versions.get(holder_id, 0) + 1
            )

    @event("LinksRevoked")
    def _links_revoked(self, holder_id: str, version: int) -> None:
        self.link_versions[holder_id] = version

    @event("AllLinksRevoked")
    def _all_links_revoked(self, version: int) -> None:
        self.links_version = version

    def state_for(self, member_id: str | None) -> dict[str, Any]:
        return self.votes.get(member_id or "", {})
