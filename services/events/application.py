"""The meetups application: the event store of meetups, answers, series,
polls, agendas, visitors, workshops, settings and feeds, and the two commands
whose rules span aggregates: answering (the seat bookkeeping on the meetup
and the answer on the member's Rsvp, saved together, with the waitlist
promoted in order) and closing (the meetup and its successor, saved together).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import ClassVar, TypeVar

from eventsourcing.domain import Aggregate

from services.events.domain import (
    Card,
    DatePoll,
    Draw,
    HubAgenda,
    Mark,
    Meetup,
    MeetupSeries,
    Rsvp,
    Venue,
    Visitor,
    agenda_id,
    deal,
    rsvp_id,
)
from services.runtime.eventstore import ServiceApplication

# Who is first in line for a meetup's freed seat: (meetup id, leaving member)
# -> member id or None. The handlers read it from the read model, caught up.
NextInLine = Callable[[str, str], str | None]

A = TypeVar("A", bound=Aggregate)


class Meetups(ServiceApplication):
    name = "events"
    snapshotting_intervals: ClassVar = {Meetup: 50, DatePoll: 50, Visitor: 20}
    state_types = (Venue, Mark, Draw, Card)

    def agenda(self, tenant_id: str, hub_id: str) -> HubAgenda:
        """The hub's agenda settings (the defaults, unsaved, if never set)."""
        found = self.find(agenda_id(tenant_id, hub_id), HubAgenda)
        return found if found is not None else HubAgenda(tenant_id=tenant_id, hub_id=hub_id)

    # -- answers -----------------------------------------------------------------------

    def answer(
        self,
        tenant_id: str,
        meetup_id: str,
        member_id: str,
        answer: str,
        now: datetime,
        next_in_line: NextInLine,
        by_link: bool = False,
    ) -> tuple[Meetup, Rsvp, str | None]:
        """Record a member's answer. A "yes" takes a seat, or a place in line
        when the meetup is full; leaving a seat gives it to the first in line.
        Returns the meetup, the answer, and who was promoted (if anyone)."""
        Rsvp.check_answer(answer)

        def unit() -> tuple[Sequence[Aggregate], tuple[Meetup, Rsvp, str | None]]:
            meetup = self.get(tenant_id, meetup_id, Meetup)
            meetup.check_answerable(now)
            rsvp = self.find(rsvp_id(meetup_id, member_id), Rsvp)
            if rsvp is not None and rsvp.answer == answer:
                return [], (meetup, rsvp, None)  # the same answer again: nothing to do
            old_answer = rsvp.answer if rsvp is not None else None
            old_seat = rsvp.seat if rsvp is not None else "none"
            changed: list[Aggregate] = [meetup]
            promoted: str | None = None
            first: Rsvp | None = None  # the first in line, promoted by this answer
            seat, ticket = old_seat, rsvp.ticket if rsvp is not None else None
            if answer == "yes":
                seat = meetup.take_seat(member_id)
                ticket = meetup.next_ticket - 1 if seat == "waiting" else None
            else:
                if old_seat == "seated":
                    promoted = next_in_line(meetup_id, member_id)
                    meetup.release_seat(member_id, promoted)
                    if promoted is not None:
                        first = self.get(tenant_id, rsvp_id(meetup_id, promoted), Rsvp)
                        first.promote(now)
                elif old_seat == "waiting":
                    meetup.leave_waitlist(member_id)
                seat, ticket = "none", None
            meetup.count_answer(old_answer, answer)
            if rsvp is None:
                rsvp = Rsvp(
                    tenant_id=tenant_id,
                    hub_id=meetup.hub_id,
                    meetup_id=meetup_id,
                    member_id=member_id,
                    answer=answer,
                    seat=seat,
                    ticket=ticket,
                    by_link=by_link,
                    at=now,
                )
            else:
                rsvp.change(answer, seat, ticket, by_link, now)
            # the answer, then the promotion it caused: the stream tells them in that order
            changed.append(rsvp)
            if first is not None:
                changed.append(first)
            return changed, (meetup, rsvp, promoted)

        return self.transact(unit)

    def fill_seats(
        self, tenant_id: str, meetup_id: str, now: datetime, next_in_line: NextInLine
    ) -> list[str]:
        """After the capacity grew: the first in line take the new seats."""
        promoted: list[str] = []
        while True:
            meetup = self.get(tenant_id, meetup_id, Meetup)
            if not meetup.has_room() or meetup.waiting == 0:
                return promoted
            first = next_in_line(meetup_id, "")
            if first is None:
                return promoted

            def unit(first: str = first) -> tuple[Sequence[Aggregate], None]:
                meetup = self.get(tenant_id, meetup_id, Meetup)
                rsvp = self.get(tenant_id, rsvp_id(meetup_id, first), Rsvp)
                meetup.promote(first)
                rsvp.promote(now)
                return [meetup, rsvp], None

            self.transact(unit)
            promoted.append(first)

    # -- closing --------------------------------------------------------------------------

    def close_meetup(
        self,
        tenant_id: str,
        meetup_id: str,
        by: str,
        now: datetime,
        next_meetup_id: str | None,
        make_next: Callable[[Meetup], Meetup | None],
        held_cards: Callable[[str], set[str]],
        check: Callable[[Meetup], object],
    ) -> tuple[Meetup, Meetup]:
        """Close a meetup with its successor — an existing meetup, or a new
        one (`make_next`, from the meetup: None when no date was given) saved
        in the same transaction — and deal the mission cards to the members
        present. `check` authorises against the loaded meetup."""

        def unit() -> tuple[Sequence[Aggregate], tuple[Meetup, Meetup]]:
            meetup = self.get(tenant_id, meetup_id, Meetup)
            check(meetup)
            # a new successor is saved first: the stream tells of the next meetup
            # before the close that names it
            changed: list[Aggregate] = []
            if next_meetup_id is not None:
                successor: Meetup | None = self.get(tenant_id, next_meetup_id, Meetup)
            else:
                successor = make_next(meetup)
                if successor is not None:
                    changed.append(successor)
            changed.append(meetup)
            seed = random.SystemRandom().randrange(2**53)
            deck = self.agenda(tenant_id, meetup.hub_id).cards
            draws = [
                Draw(str(uuid.uuid4()), member, card.card_id, card.title, card.single_holder)
                for member, card in deal(
                    deck, meetup.present_members(), held_cards(meetup.hub_id), seed
                )
            ]
            meetup.close(successor, seed, draws, now, by)
            assert successor is not None
            return changed, (meetup, successor)

        return self.transact(unit)

    def series(self, tenant_id: str, series_id: str) -> MeetupSeries:
        return self.get(tenant_id, series_id, MeetupSeries)
