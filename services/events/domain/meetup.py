"""The Meetup and Rsvp aggregates.

A meetup keeps what must change together: its state (scheduled → held →
closed, or cancelled), its time and place, its seat count and waitlist
counters, its attendance and its card draw. Each member's answer is an `Rsvp`
aggregate of its own, so that answering costs the same whether 3 or 1,000
members answered before; but every change of *seats* (a seat taken or freed,
a place in line, a promotion) is an event of the meetup too, so concurrent
answers conflict on the meetup's version and can never overfill it.

Sources: DOMAIN.md, "Regularity" (the next date is fixed before closing; RSVP
by a link), "Mission cards", "Visitors", "Workshops".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from services.events.domain.calendar import check_local, to_utc, zone
from services.events.domain.values import (
    ANSWERS,
    ATTENDANCE,
    KINDS,
    PRESENT,
    Draw,
    Mark,
    Venue,
    check_capacity,
    check_deadline_hours,
    check_duration,
    check_reminders,
)
from services.runtime.errors import Conflict, InvalidInput, NotFound, RuleViolation
from services.runtime.eventstore import TenantAggregate
from services.runtime.i18n import t
from services.runtime.personal import each, personal, personal_state
from services.runtime.text import single_line

NAMESPACE = uuid5(NAMESPACE_URL, "https://quartier.example/meetups")
CHECK_IN_BEFORE = timedelta(minutes=30)  # members may check in this early
ATTENDANCE_BEFORE = timedelta(hours=1)  # the facilitator may take attendance this early


def rsvp_id(meetup_id: str | UUID, member_id: str) -> UUID:
    return uuid5(NAMESPACE, f"rsvp:{meetup_id}:{member_id}")


class Meetup(TenantAggregate):
    noun = "meetup"
    not_found = t("meetup not found")
    event_context = ("tenant_id", "hub_id")

    class Event(TenantAggregate.Event):
        hub_id: str

    Scheduled: ClassVar[type[Any]]
    Rescheduled: ClassVar[type[Any]]
    Cancelled: ClassVar[type[Any]]
    AnswerCounted: ClassVar[type[Any]]
    SeatTaken: ClassVar[type[Any]]
    Waitlisted: ClassVar[type[Any]]
    SeatReleased: ClassVar[type[Any]]
    Promoted: ClassVar[type[Any]]
    LeftWaitlist: ClassVar[type[Any]]
    LinksRevoked: ClassVar[type[Any]]
    AllLinksRevoked: ClassVar[type[Any]]
    Held: ClassVar[type[Any]]
    AttendanceMarked: ClassVar[type[Any]]
    Closed: ClassVar[type[Any]]
    CardDrawn: ClassVar[type[Any]]
    CardCompleted: ClassVar[type[Any]]
    ReminderSent: ClassVar[type[Any]]

    @event("Scheduled")
    def __init__(
        self,
        tenant_id: str,
        hub_id: str,
        series_id: str | None,
        kind: str,
        title: str,
        topic: str | None,
        host_id: str | None,
        local_start: datetime,
        timezone: str,
        duration_minutes: int,
        venue: dict[str, str],
        capacity: int | None,
        rsvp_deadline_hours: int,
        reminder_hours: list[int],
        previous_meetup_id: str | None,
        poll_id: str | None,
        scheduled_by: str | None,
    ):
        self.tenant_id = tenant_id
        self.hub_id = hub_id
        self.series_id = series_id
        self.kind = kind
        self.title = title
        self.topic = topic
        self.host_id = host_id
        self.local_start = local_start
        self.timezone = timezone
        self.duration_minutes = duration_minutes
        self.venue = Venue.from_dict(venue)
        self.capacity = capacity
        self.rsvp_deadline_hours = rsvp_deadline_hours
        self.reminder_hours = list(reminder_hours)
        self.previous_meetup_id = previous_meetup_id
        self.poll_id = poll_id
        self.state = "scheduled"
        self.cancel_reason: str | None = None
        self.next_meetup_id: str | None = None
        self.sequence = 0
        self.seated = 0
        self.waiting = 0
        self.maybe = 0
        self.declined = 0
        self.next_ticket = 1
        self.attendance: dict[str, Mark] = {}
        self.draws: list[Draw] = []
        self.draw_seed: int | None = None
        self.reminders_sent: list[int] = []
        self.link_versions: dict[str, int] = {}  # member or visitor id -> version
        self.links_version = 0  # bumped when every link of the meetup is revoked

    @staticmethod
    def new(
        tenant_id: str,
        hub_id: str,
        local_start: datetime,
        timezone: str,
        *,
        title: str,
        venue: Venue,
        now: datetime,
        series_id: str | None = None,
        kind: str = "meetup",
        topic: str | None = None,
        host_id: str | None = None,
        duration_minutes: int = 120,
        capacity: int | None = None,
        rsvp_deadline_hours: int = 24,
        reminder_hours: list[int] | None = None,
        previous_meetup_id: str | None = None,
        poll_id: str | None = None,
        scheduled_by: str | None = None,
    ) -> Meetup:
        """A scheduled meetup, its values checked; it must start in the future."""
        if kind not in KINDS:
            raise InvalidInput(t("a meetup is one of {kinds}", kinds=KINDS), field="kind")
        zone(timezone)
        local_start = check_local(local_start, timezone)
        if to_utc(local_start, timezone) <= now:
            raise InvalidInput(t("a meetup is scheduled in the future"), field="local_start")
        if kind == "workshop" and (not host_id or not topic):
            raise InvalidInput(t("a workshop has a host and a topic"), field="topic")
        return Meetup(
            tenant_id=tenant_id,
            hub_id=hub_id,
            series_id=series_id,
            kind=kind,
            title=single_line(title, "title", 120, required=True),
            topic=single_line(topic, "topic", 200) or None,
            host_id=host_id,
            local_start=local_start,
            timezone=timezone,
            duration_minutes=check_duration(duration_minutes),
            venue=venue.to_dict(),
            capacity=check_capacity(capacity),
            rsvp_deadline_hours=check_deadline_hours(rsvp_deadline_hours),
            reminder_hours=check_reminders(reminder_hours if reminder_hours is not None else []),
            previous_meetup_id=previous_meetup_id,
            poll_id=poll_id,
            scheduled_by=scheduled_by,
        )

    # -- reading ---------------------------------------------------------------

    @property
    def starts_at(self) -> datetime:
        return to_utc(self.local_start, self.timezone)

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.duration_minutes)

    @property
    def rsvp_deadline(self) -> datetime:
        return self.starts_at - timedelta(hours=self.rsvp_deadline_hours)

    @property
    def is_open(self) -> bool:
        return self.state in ("scheduled", "held")

    def has_room(self) -> bool:
        return self.capacity is None or self.seated < self.capacity

    def link_version(self, holder_id: str) -> int:
        return self.links_version + self.link_versions.get(holder_id, 0)

    def present_members(self) -> list[str]:
        return [
            m.member_id
            for m in self.attendance.values()
            if m.member_id is not None and m.status in PRESENT
        ]

    def open_draws(self) -> list[Draw]:
        return [d for d in self.draws if d.done_at is None]

    # -- schedule ----------------------------------------------------------------

    def _check_scheduled(self) -> None:
        if self.state == "cancelled":
            raise RuleViolation(t("this meetup was cancelled"), rule="meetup_cancelled")
        if self.state == "closed":
            raise RuleViolation(t("this meetup is closed"), rule="meetup_closed")

    def reschedule(self, changes: Mapping[str, Any], now: datetime) -> bool:
        """Move it (`local_start`), lengthen it (`duration_minutes`), change
        its `venue` (a Venue) or its `capacity` (not below the seats already
        taken). Returns False when nothing changed."""
        self._check_scheduled()
        if self.state == "held":
            raise RuleViolation(t("this meetup has started"), rule="meetup_started")
        unknown = set(changes) - {"local_start", "duration_minutes", "venue", "capacity"}
        if unknown:
            raise InvalidInput(
                t("unknown fields {fields}", fields=sorted(unknown)), field=sorted(unknown)[0]
            )
        new_start = check_local(changes.get("local_start", self.local_start))
        if new_start != self.local_start:
            check_local(new_start, self.timezone)
        if new_start != self.local_start and to_utc(new_start, self.timezone) <= now:
            raise InvalidInput(t("a meetup is rescheduled to the future"), field="local_start")
        new_capacity = check_capacity(changes.get("capacity", self.capacity))
        if new_capacity is not None and new_capacity < self.seated:
            raise RuleViolation(
                t(
                    "{seated} members already have a seat: the capacity cannot go below that",
                    seated=self.seated,
                ),
                rule="capacity",
            )
        values = {
            "local_start": new_start,
            "duration_minutes": check_duration(
                changes.get("duration_minutes", self.duration_minutes)
            ),
            "venue": changes.get("venue", self.venue).to_dict(),
            "capacity": new_capacity,
        }
        current = {
            "local_start": self.local_start,
            "duration_minutes": self.duration_minutes,
            "venue": self.venue.to_dict(),
            "capacity": self.capacity,
        }
        if values == current:
            return False
        self._rescheduled(
            **values,
            starts_at=to_utc(new_start, self.timezone),
            sequence=self.sequence + 1,
        )
        return True

    @event("Rescheduled")
    def _rescheduled(
        self,
        local_start: datetime,
        duration_minutes: int,
        venue: dict[str, str],
        capacity: int | None,
        starts_at: datetime,
        sequence: int,
    ) -> None:
        self.local_start = local_start
        self.duration_minutes = duration_minutes
        self.venue = Venue.from_dict(venue)
        self.capacity = capacity
        self.sequence = sequence

    def cancel(self, reason: str, by: str) -> None:
        self._check_scheduled()
        self._cancelled(
            reason=single_line(reason, "reason", 500, required=True),
            by=by,
            sequence=self.sequence + 1,
        )

    @event("Cancelled")
    def _cancelled(self, reason: str, by: str, sequence: int) -> None:
        self.state = "cancelled"
        self.cancel_reason = reason
        self.sequence = sequence

    # -- answers (the seat bookkeeping; the answers are Rsvp aggregates) --------------

    def check_answerable(self, now: datetime) -> None:
        """Answers are open while scheduled and before the deadline."""
        self._check_scheduled()
        if self.state != "scheduled" or now >= self.rsvp_deadline:
            raise RuleViolation(
                t("answers for this meetup are closed (the deadline has passed)"),
                rule="rsvp_deadline",
            )

    def count_answer(self, old: str | None, new: str | None) -> None:
        """Keep the maybe / declined counters (only when they change)."""
        if old == new:
            return
        self._answer_counted(old=old, new=new)

    @event("AnswerCounted")
    def _answer_counted(self, old: str | None, new: str | None) -> None:
        if old == "maybe":
            self.maybe -= 1
        elif old == "no":
            self.declined -= 1
        if new == "maybe":
            self.maybe += 1
        elif new == "no":
            self.declined += 1

    def take_seat(self, member_id: str) -> str:
        """A "yes": a seat if there is room, else a place in line. Returns
        "seated" or "waiting"."""
        if self.has_room():
            self._seat_taken(member_id=member_id)
            return "seated"
        self._waitlisted(member_id=member_id, ticket=self.next_ticket)
        return "waiting"

    @event("SeatTaken")
    def _seat_taken(self, member_id: str) -> None:
        self.seated += 1

    @event("Waitlisted")
    def _waitlisted(self, member_id: str, ticket: int) -> None:
        self.waiting += 1
        self.next_ticket = ticket + 1

    def release_seat(self, member_id: str, next_in_line: str | None) -> None:
        """A seated member no longer comes; the first in line (if any) takes
        the seat."""
        self._seat_released(member_id=member_id)
        if next_in_line is not None:
            self._promoted(member_id=next_in_line)

    @event("SeatReleased")
    def _seat_released(self, member_id: str) -> None:
        self.seated -= 1

    @event("Promoted")
    def _promoted(self, member_id: str) -> None:
        self.waiting -= 1
        self.seated += 1

    def promote(self, member_id: str) -> None:
        """A seat appeared (the capacity grew): the first in line takes it."""
        if not self.has_room() or self.waiting == 0:
            raise Conflict(t("no seat to give"))
        self._promoted(member_id=member_id)

    def leave_waitlist(self, member_id: str) -> None:
        self._left_waitlist(member_id=member_id)

    @event("LeftWaitlist")
    def _left_waitlist(self, member_id: str) -> None:
        self.waiting -= 1

    # -- links -------------------------------------------------------------------------

    def revoke_links(self, holder_id: str | None) -> None:
        """Links already sent stop working: one holder's, or everyone's."""
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

    # -- the meetup itself ---------------------------------------------------------------

    def _check_can_take_attendance(self, now: datetime) -> None:
        self._check_scheduled()
        if now < self.starts_at - ATTENDANCE_BEFORE:
            raise RuleViolation(
                t("attendance is taken from an hour before the meetup"), rule="too_early"
            )

    def record(
        self,
        member_id: str | None,
        visitor_id: str | None,
        status: str,
        substitute: str | None,
        now: datetime,
    ) -> bool:
        """The facilitator or an admin marks one member (or visitor). Returns
        False if nothing changed."""
        self._check_can_take_attendance(now)
        if (member_id is None) == (visitor_id is None):
            raise InvalidInput(t("name a member or a visitor"), field="entries")
        if status not in ATTENDANCE:
            raise InvalidInput(
                t("attendance is one of {statuses}", statuses=ATTENDANCE), field="entries"
            )
        if visitor_id is not None:
            if status not in PRESENT:
                raise InvalidInput(t("a visitor is recorded as present"), field="entries")
            status = "visitor"
        substitute = single_line(substitute, "substitute", 80) or None
        if (status == "replaced") != (substitute is not None):
            raise InvalidInput(
                t("a member replaced by a substitute: give the substitute's name (and only then)"),
                field="substitute",
            )
        key = member_id or f"visitor:{visitor_id}"
        current = self.attendance.get(key)
        if current is not None and (current.status, current.substitute) == (status, substitute):
            return False
        self._hold(now)
        self._marked(
            key=key,
            member_id=member_id,
            visitor_id=visitor_id,
            status=status,
            substitute=substitute,
            self_checked_in=False,
            starts_at=self.starts_at,
            at=now,
        )
        return True

    def check_in(self, member_id: str, now: datetime) -> bool:
        """A member checks themself in while the meetup runs."""
        self._check_scheduled()
        if not self.starts_at - CHECK_IN_BEFORE <= now <= self.ends_at:
            raise RuleViolation(
                t("you can check in only while the meetup runs"), rule="check_in_window"
            )
        current = self.attendance.get(member_id)
        if current is not None and current.status in PRESENT:
            return False
        status = "late" if now > self.starts_at + timedelta(minutes=15) else "present"
        self._hold(now)
        self._marked(
            key=member_id,
            member_id=member_id,
            visitor_id=None,
            status=status,
            substitute=None,
            self_checked_in=True,
            starts_at=self.starts_at,
            at=now,
        )
        return True

    def _hold(self, now: datetime) -> None:
        if self.state == "scheduled":
            self._held(at=now)

    @event("Held")
    def _held(self, at: datetime) -> None:
        self.state = "held"

    @event("AttendanceMarked")
    def _marked(
        self,
        key: str,
        member_id: str | None,
        visitor_id: str | None,
        status: str,
        substitute: str | None,
        self_checked_in: bool,
        starts_at: datetime,
        at: datetime,
    ) -> None:
        self.attendance[key] = Mark(member_id, visitor_id, status, substitute, at, self_checked_in)

    def close(
        self,
        next_meetup: Meetup | None,
        seed: int,
        draws: list[Draw],
        now: datetime,
        by: str,
    ) -> None:
        """Close with the successor fixed (DOMAIN.md: "a meetup cannot be
        closed without its successor's date"), and record the card draw."""
        self._check_scheduled()
        if now < self.starts_at:
            raise RuleViolation(t("a meetup closes once it has begun"), rule="not_started")
        if next_meetup is None:
            raise RuleViolation(
                t(
                    "a meetup closes only with the next one fixed: give the next date and venue "
                    "(the series proposes one), or choose a meetup already scheduled"
                ),
                rule="next_date_required",
            )
        if next_meetup.id == self.id or next_meetup.hub_id != self.hub_id:
            raise InvalidInput(t("the next meetup is another meetup of this hub"), field="next")
        if next_meetup.state != "scheduled" or next_meetup.starts_at <= self.starts_at:
            raise RuleViolation(
                t("the next meetup must be scheduled after this one"), rule="next_date_required"
            )
        self._hold(now)
        visitors = sum(1 for m in self.attendance.values() if m.visitor_id is not None)
        self._closed(
            next_meetup_id=str(next_meetup.id),
            seed=seed,
            present=len(self.present_members()),
            visitors=visitors,
            by=by,
            at=now,
        )
        for draw in draws:
            self._card_drawn(
                draw_id=draw.draw_id,
                member_id=draw.member_id,
                card_id=draw.card_id,
                title=draw.title,
                single_holder=draw.single_holder,
                seed=seed,
                at=now,
            )

    @event("Closed")
    def _closed(
        self,
        next_meetup_id: str,
        seed: int,
        present: int,
        visitors: int,
        by: str,
        at: datetime,
    ) -> None:
        self.state = "closed"
        self.next_meetup_id = next_meetup_id
        self.draw_seed = seed

    @event("CardDrawn")
    def _card_drawn(
        self,
        draw_id: str,
        member_id: str,
        card_id: str,
        title: str,
        single_holder: bool,
        seed: int,
        at: datetime,
    ) -> None:
        self.draws = [*self.draws, Draw(draw_id, member_id, card_id, title, single_holder)]

    def complete_card(self, draw_id: str, member_id: str, now: datetime) -> Draw:
        for draw in self.draws:
            if draw.draw_id == draw_id:
                break
        else:
            raise NotFound(t("card not found"))
        if draw.member_id != member_id:
            raise RuleViolation(t("only the holder marks a card done"), rule="card_holder")
        if draw.done_at is not None:
            return draw
        self._card_completed(draw_id=draw_id, member_id=member_id, at=now)
        return next(d for d in self.draws if d.draw_id == draw_id)

    @event("CardCompleted")
    def _card_completed(self, draw_id: str, member_id: str, at: datetime) -> None:
        self.draws = [replace(d, done_at=at) if d.draw_id == draw_id else d for d in self.draws]

    def reminder_sent(self, lead_hours: int) -> None:
        if lead_hours not in self.reminders_sent:
            self._reminder_sent(lead_hours=lead_hours)

    @event("ReminderSent")
    def _reminder_sent(self, lead_hours: int) -> None:
        self.reminders_sent = [*self.reminders_sent, lead_hours]


class Rsvp(TenantAggregate):
    """One member's answer to one meetup (its id follows from the two)."""

    noun = "answer"
    not_found = t("answer not found")
    event_context = ("tenant_id", "hub_id", "meetup_id", "member_id")

    class Event(TenantAggregate.Event):
        hub_id: str
        meetup_id: str
        member_id: str

    Answered: ClassVar[type[Any]]
    Changed: ClassVar[type[Any]]
    Promoted: ClassVar[type[Any]]

    @staticmethod
    def create_id(meetup_id: str, member_id: str) -> UUID:
        return rsvp_id(meetup_id, member_id)

    @event("Answered")
    def __init__(
        self,
        tenant_id: str,
        hub_id: str,
        meetup_id: str,
        member_id: str,
        answer: str,
        seat: str,
        ticket: int | None,
        by_link: bool,
        at: datetime,
    ):
        self.tenant_id = tenant_id
        self.hub_id = hub_id
        self.meetup_id = meetup_id
        self.member_id = member_id
        self.answer = answer
        self.seat = seat
        self.ticket = ticket
        self.answered_at = at

    @staticmethod
    def check_answer(answer: str) -> str:
        if answer not in ANSWERS:
            raise InvalidInput(t("an answer is one of {answers}", answers=ANSWERS), field="answer")
        return answer

    def change(
        self, answer: str, seat: str, ticket: int | None, by_link: bool, at: datetime
    ) -> None:
        self._changed(
            answer=answer, seat=seat, ticket=ticket, previous=self.answer, by_link=by_link, at=at
        )

    @event("Changed")
    def _changed(
        self,
        answer: str,
        seat: str,
        ticket: int | None,
        previous: str,
        by_link: bool,
        at: datetime,
    ) -> None:
        self.answer = answer
        self.seat = seat
        self.ticket = ticket
        self.answered_at = at

    def promote(self, at: datetime) -> None:
        if self.seat != "waiting":
            raise Conflict(t("not on the waitlist"))
        self._promoted(at=at)

    @event("Promoted")
    def _promoted(self, at: datetime) -> None:
        self.seat = "seated"


# -- personal data (services/runtime/personal.py, docs/erasure.md) -------------
# A substitute's name, under the key of the member they stood in for, in the
# events and in the meetup's snapshots.
personal(Meetup.AttendanceMarked, substitute="member_id")
personal_state(Meetup, attendance=each(substitute="member_id"))
