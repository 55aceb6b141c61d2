"""A meetup and what hangs off it, as the API shows them: its series (a
hub's rhythm), its RSVPs, its attendance, the mission cards drawn at its
close, the date poll that chose its date, the workshop proposal it came from;
and their DataLoaders (one request per object and GraphQL request). The use
cases that change them are the package's other modules."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from gateway.context import Context
from gateway.events.local_time import LocalDateTime
from gateway.identity.members import Member, load_member
from gateway.kit import ask, public_errors, require_member
from gateway.nodes import Node, to_global_id
from services.events import contract as c
from services.runtime import errors as e

if TYPE_CHECKING:
    from gateway.hubs.hub import Hub


HubRef = Annotated["Hub", strawberry.lazy("gateway.hubs.hub")]


@strawberry.enum
class MeetupKind(Enum):
    MEETUP = "meetup"
    WORKSHOP = "workshop"


@strawberry.enum(description="scheduled → held (attendance taken) → closed, or cancelled.")
class MeetupState(Enum):
    SCHEDULED = "scheduled"
    HELD = "held"
    CLOSED = "closed"
    CANCELLED = "cancelled"


@strawberry.enum
class RsvpAnswer(Enum):
    YES = "yes"
    MAYBE = "maybe"
    NO = "no"


@strawberry.enum(description='What a "yes" got: a seat, or a place on the waitlist.')
class Seat(Enum):
    SEATED = "seated"
    WAITING = "waiting"
    NONE = "none"


@strawberry.enum
class AttendanceStatus(Enum):
    PRESENT = "present"
    LATE = "late"
    ABSENT = "absent"
    EXCUSED = "excused"
    REPLACED = "replaced"
    VISITOR = "visitor"


@strawberry.enum
class PollVote(Enum):
    YES = "yes"
    IF_NEED_BE = "if_need_be"
    NO = "no"


@strawberry.enum
class PollState(Enum):
    OPEN = "open"
    CLOSED = "closed"


def _loader(
    info: Info[Context, Any], name: str, fetch: Any, missing: type[e.QuartierError] = e.NotFound
) -> DataLoader[str, Any]:
    """A DataLoader of one service object per key: `fetch(key)` is the
    request; a missing object (NOT_FOUND) is None. The service answers one
    key per request: the loader asks them concurrently, and each once per
    GraphQL request."""
    ctx = info.context

    def make() -> DataLoader[str, Any]:
        async def load(keys: list[str]) -> list[Any]:
            rctx = ctx.require_member()

            async def one(key: str) -> Any:
                try:
                    return await ctx.ask(fetch(key), rctx)
                except missing:
                    return None

            return list(await asyncio.gather(*(one(k) for k in keys)))

        return DataLoader(load_fn=load)

    return ctx.loader(name, make)


async def load_meetup(info: Info[Context, Any], meetup_id: str | None) -> Meetup | None:
    if not meetup_id:
        return None
    with public_errors():
        found = await _loader(info, "events.meetups", lambda i: c.GetMeetup(meetup_id=i)).load(
            meetup_id
        )
    return Meetup.from_contract(found) if found else None


async def load_poll(info: Info[Context, Any], poll_id: str | None) -> DatePoll | None:
    if not poll_id:
        return None
    with public_errors():
        found = await _loader(info, "events.polls", lambda i: c.GetDatePoll(poll_id=i)).load(
            poll_id
        )
    return DatePoll.from_contract(found) if found else None


async def load_series(info: Info[Context, Any], hub_id: str, series_id: str) -> MeetupSeries | None:
    """A series through its hub's list (one request per hub and GraphQL request)."""
    with public_errors():
        found = await _loader(info, "events.series", lambda h: c.ListSeries(hub_id=h)).load(hub_id)
    match = next((s for s in found or () if s.series_id == series_id), None)
    return MeetupSeries.from_contract(match) if match else None


async def load_hub_of(info: Info[Context, Any], hub_id: str) -> Hub | None:
    from gateway.hubs.hub import Hub
    from services.hubs import contract as hc

    with public_errors():
        found = await _loader(info, "hubs.hubs", lambda h: hc.GetHub(hub_id=h)).load(hub_id)
    return Hub.from_contract(found) if found else None


@strawberry.type
class Venue:
    name: str
    address: str

    @classmethod
    def from_contract(cls, v: c.Venue) -> Venue:
        return cls(name=v.name, address=v.address)


@strawberry.input
class VenueInput:
    name: str
    address: str = ""

    def to_contract(self) -> c.Venue:
        return c.Venue(name=self.name, address=self.address)


@strawberry.type(description="A member's answer to a meetup.")
class Rsvp:
    answer: RsvpAnswer
    seat: Seat
    answered_at: datetime
    waitlist_position: int | None = strawberry.field(
        description="On the waitlist: 1 for the first in line (who takes the next free seat)."
    )
    member_id: strawberry.Private[str]

    @strawberry.field
    async def member(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, self.member_id)

    @classmethod
    def from_contract(cls, r: c.Rsvp) -> Rsvp:
        return cls(
            answer=RsvpAnswer(r.answer),
            seat=Seat(r.seat),
            answered_at=r.answered_at,
            waitlist_position=r.waitlist_position,
            member_id=r.member_id,
        )


@strawberry.type(description="One line of a meetup's attendance: a member, or a visitor.")
class AttendanceEntry:
    status: AttendanceStatus
    substitute: str | None = strawberry.field(description="Who came instead (REPLACED).")
    recorded_at: datetime
    self_checked_in: bool
    visitor_id: strawberry.ID | None = strawberry.field(
        description="A visitor's id (as `inviteVisitor` gave it); null for a member."
    )
    member_id: strawberry.Private[str | None]

    @strawberry.field(description="Null for a visitor.")
    async def member(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, self.member_id)

    @classmethod
    def from_contract(cls, a: c.AttendanceEntry) -> AttendanceEntry:
        return cls(
            status=AttendanceStatus(a.status),
            substitute=a.substitute,
            recorded_at=a.recorded_at,
            self_checked_in=a.self_checked_in,
            visitor_id=to_global_id("Visitor", a.visitor_id) if a.visitor_id else None,
            member_id=a.member_id,
        )


@strawberry.type(description="A mission card drawn by a member present at a meetup's close.")
class CardDraw(Node):
    draw_id: strawberry.ID
    card_id: str
    title: str
    done_at: datetime | None
    member_id: strawberry.Private[str]
    meetup_id_raw: strawberry.Private[str]

    @strawberry.field(description="Who holds the card.")
    async def member(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, self.member_id)

    @strawberry.field(description="The meetup at whose close it was drawn.")
    async def meetup(self, info: Info[Context, Any]) -> Meetup | None:
        return await load_meetup(info, self.meetup_id_raw)

    @classmethod
    def from_contract(cls, d: c.CardDraw, meetup_id: str) -> CardDraw:
        return cls(
            id=to_global_id("CardDraw", d.draw_id, meetup_id),
            draw_id=strawberry.ID(d.draw_id),
            card_id=d.card_id,
            title=d.title,
            done_at=d.done_at,
            member_id=d.member_id,
            meetup_id_raw=meetup_id,
        )


@strawberry.type(
    description="A card drawn and not done yet, shown until the hub's next meetup ends. "
    "Its `id` is the draw's (a `CardDraw` id): its holder passes it to `completeCard`."
)
class OpenCard:
    id: strawberry.ID
    draw_id: strawberry.ID
    card_id: str
    title: str
    drawn_at: datetime
    member_id: strawberry.Private[str]
    meetup_id_raw: strawberry.Private[str]

    @strawberry.field(description="Who holds the card.")
    async def member(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, self.member_id)

    @strawberry.field(description="The meetup at whose close it was drawn.")
    async def meetup(self, info: Info[Context, Any]) -> Meetup | None:
        return await load_meetup(info, self.meetup_id_raw)

    @classmethod
    def from_contract(cls, o: c.OpenCard) -> OpenCard:
        return cls(
            id=to_global_id("CardDraw", o.draw_id, o.meetup_id),
            draw_id=strawberry.ID(o.draw_id),
            card_id=o.card_id,
            title=o.title,
            drawn_at=o.drawn_at,
            member_id=o.member_id,
            meetup_id_raw=o.meetup_id,
        )


@strawberry.type(description="A hub's rhythm of meetups (RFC 5545 recurrence, local times).")
class MeetupSeries(Node):
    series_id: strawberry.ID
    name: str
    rrule: str = strawberry.field(description="RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=TH.")
    starts_on: date
    start_time: time = strawberry.field(description="Local, in `timezone`.")
    timezone: str
    duration_minutes: int
    venue: Venue
    capacity: int | None = strawberry.field(description="Seats; null: no limit.")
    rsvp_deadline_hours: int = strawberry.field(
        description="Answers close this many hours before the start."
    )
    reminder_hours: list[int]
    active: bool
    next_local_start: LocalDateTime | None = strawberry.field(
        description="What the rhythm proposes next (to schedule, or to close a meetup with)."
    )
    hub_id_raw: strawberry.Private[str]

    @strawberry.field
    async def hub(self, info: Info[Context, Any]) -> HubRef | None:
        return await load_hub_of(info, self.hub_id_raw)

    @classmethod
    def from_contract(cls, s: c.Series) -> MeetupSeries:
        return cls(
            id=to_global_id("MeetupSeries", s.series_id, s.hub_id),
            series_id=strawberry.ID(s.series_id),
            name=s.name,
            rrule=s.rrule,
            starts_on=s.starts_on,
            start_time=s.start_time,
            timezone=s.timezone,
            duration_minutes=s.duration_minutes,
            venue=Venue.from_contract(s.venue),
            capacity=s.capacity,
            rsvp_deadline_hours=s.rsvp_deadline_hours,
            reminder_hours=list(s.reminder_hours),
            active=s.active,
            next_local_start=LocalDateTime(s.next_local_start) if s.next_local_start else None,
            hub_id_raw=s.hub_id,
        )


@strawberry.type(
    description="A meetup of a hub (a lunch, an afterwork) or a workshop led by a member."
)
class Meetup(Node):
    meetup_id: strawberry.ID
    kind: MeetupKind
    title: str
    topic: str | None = strawberry.field(description="A workshop's topic.")
    local_start: LocalDateTime = strawberry.field(description="In `timezone`.")
    timezone: str = strawberry.field(description="IANA time zone, e.g. Europe/Paris.")
    starts_at: datetime
    ends_at: datetime
    duration_minutes: int
    venue: Venue
    capacity: int | None = strawberry.field(description="Seats; null: no limit.")
    state: MeetupState
    cancel_reason: str | None
    rsvp_deadline: datetime = strawberry.field(description="Answers close then.")
    seated: int = strawberry.field(description='"Yes" answers with a seat.')
    waiting: int = strawberry.field(description='"Yes" answers on the waitlist.')
    maybe: int
    declined: int
    sequence: int = strawberry.field(description="Bumped by every change (iCalendar SEQUENCE).")
    my_rsvp: Rsvp | None = strawberry.field(description="Your own answer, if you gave one.")
    hub_id_raw: strawberry.Private[str]
    series_id_raw: strawberry.Private[str | None]
    host_id: strawberry.Private[str | None]
    poll_id_raw: strawberry.Private[str | None]
    previous_id: strawberry.Private[str | None]
    next_id: strawberry.Private[str | None]

    @strawberry.field(description="The hub (null only when hubs cannot be reached).")
    async def hub(self, info: Info[Context, Any]) -> HubRef | None:
        return await load_hub_of(info, self.hub_id_raw)

    @strawberry.field(description="The series it belongs to, if any.")
    async def series(self, info: Info[Context, Any]) -> MeetupSeries | None:
        if self.series_id_raw is None:
            return None
        return await load_series(info, self.hub_id_raw, self.series_id_raw)

    @strawberry.field(description="A workshop's host: the member who leads it.")
    async def host(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, self.host_id)

    @strawberry.field(description="The date poll that chose its date, if one did.")
    async def poll(self, info: Info[Context, Any]) -> DatePoll | None:
        return await load_poll(info, self.poll_id_raw)

    @strawberry.field(description="The meetup whose close fixed this one.")
    async def previous_meetup(self, info: Info[Context, Any]) -> Meetup | None:
        return await load_meetup(info, self.previous_id)

    @strawberry.field(description="Once closed: the meetup fixed at its close.")
    async def next_meetup(self, info: Info[Context, Any]) -> Meetup | None:
        return await load_meetup(info, self.next_id)

    @strawberry.field(
        description="Every answer: the seated (in the order they answered), then the "
        "waitlist in order (with positions), then the maybes and the noes."
    )
    async def rsvps(self, info: Info[Context, Any]) -> list[Rsvp]:
        found = await ask(info, c.ListRsvps(meetup_id=self.meetup_id), require_member(info))
        return [Rsvp.from_contract(r) for r in found]

    @strawberry.field(description="The attendance, as recorded or checked in.")
    async def attendance(self, info: Info[Context, Any]) -> list[AttendanceEntry]:
        found = await ask(info, c.GetAttendance(meetup_id=self.meetup_id), require_member(info))
        return [AttendanceEntry.from_contract(a) for a in found]

    @strawberry.field(description="The mission cards drawn at its close.")
    async def cards(self, info: Info[Context, Any]) -> list[CardDraw]:
        found = await ask(info, c.ListDraws(meetup_id=self.meetup_id), require_member(info))
        return [CardDraw.from_contract(d, self.meetup_id) for d in found]

    @classmethod
    def from_contract(cls, m: c.Meetup) -> Meetup:
        return cls(
            id=to_global_id("Meetup", m.meetup_id),
            meetup_id=strawberry.ID(m.meetup_id),
            kind=MeetupKind(m.kind),
            title=m.title,
            topic=m.topic,
            local_start=LocalDateTime(m.local_start),
            timezone=m.timezone,
            starts_at=m.starts_at,
            ends_at=m.ends_at,
            duration_minutes=m.duration_minutes,
            venue=Venue.from_contract(m.venue),
            capacity=m.capacity,
            state=MeetupState(m.state),
            cancel_reason=m.cancel_reason,
            rsvp_deadline=m.rsvp_deadline,
            seated=m.seated,
            waiting=m.waiting,
            maybe=m.maybe,
            declined=m.declined,
            sequence=m.sequence,
            my_rsvp=Rsvp.from_contract(m.my_rsvp) if m.my_rsvp else None,
            hub_id_raw=m.hub_id,
            series_id_raw=m.series_id,
            host_id=m.host_id,
            poll_id_raw=m.poll_id,
            previous_id=m.previous_meetup_id,
            next_id=m.next_meetup_id,
        )


@strawberry.type(description="A candidate date of a poll, with its tally.")
class PollSlot:
    slot_id: str
    local_start: LocalDateTime
    yes: int
    if_need_be: int
    no: int
    my_vote: PollVote | None = strawberry.field(description="Your own vote on this slot.")


@strawberry.type(description="Members vote on candidate dates; closing it schedules the meetup.")
class DatePoll(Node):
    poll_id: strawberry.ID
    title: str
    timezone: str = strawberry.field(description="The slots' local times are read in it.")
    duration_minutes: int
    venue: Venue
    slots: list[PollSlot] = strawberry.field(description="Soonest first.")
    state: PollState
    chosen_slot_id: str | None
    voters: int
    hub_id_raw: strawberry.Private[str]
    series_id_raw: strawberry.Private[str | None]
    meetup_id_raw: strawberry.Private[str | None]

    @strawberry.field
    async def hub(self, info: Info[Context, Any]) -> HubRef | None:
        return await load_hub_of(info, self.hub_id_raw)

    @strawberry.field(description="The series the meetup will belong to, if any.")
    async def series(self, info: Info[Context, Any]) -> MeetupSeries | None:
        if self.series_id_raw is None:
            return None
        return await load_series(info, self.hub_id_raw, self.series_id_raw)

    @strawberry.field(description="Once closed: the meetup scheduled on the chosen slot.")
    async def meetup(self, info: Info[Context, Any]) -> Meetup | None:
        return await load_meetup(info, self.meetup_id_raw)

    @classmethod
    def from_contract(cls, p: c.DatePoll) -> DatePoll:
        return cls(
            id=to_global_id("DatePoll", p.poll_id),
            poll_id=strawberry.ID(p.poll_id),
            title=p.title,
            timezone=p.timezone,
            duration_minutes=p.duration_minutes,
            venue=Venue.from_contract(p.venue),
            slots=[
                PollSlot(
                    slot_id=s.slot_id,
                    local_start=LocalDateTime(s.local_start),
                    yes=s.yes,
                    if_need_be=s.if_need_be,
                    no=s.no,
                    my_vote=PollVote(p.my_votes[s.slot_id]) if s.slot_id in p.my_votes else None,
                )
                for s in p.slots
            ],
            state=PollState(p.state),
            chosen_slot_id=p.chosen_slot_id,
            voters=p.voters,
            hub_id_raw=p.hub_id,
            series_id_raw=p.series_id,
            meetup_id_raw=p.meetup_id,
        )


@strawberry.type(description="A member offers to lead a workshop; once scheduled, a meetup.")
class WorkshopProposal(Node):
    proposal_id: strawberry.ID
    topic: str
    description: str
    proposed_at: datetime
    host_id: strawberry.Private[str]
    hub_id_raw: strawberry.Private[str]
    meetup_id_raw: strawberry.Private[str | None]

    @strawberry.field(description="The member who proposed it, and will lead it.")
    async def host(self, info: Info[Context, Any]) -> Member | None:
        return await load_member(info, self.host_id)

    @strawberry.field(description="Once scheduled: the workshop.")
    async def meetup(self, info: Info[Context, Any]) -> Meetup | None:
        return await load_meetup(info, self.meetup_id_raw)

    @classmethod
    def from_contract(cls, w: c.WorkshopProposal) -> WorkshopProposal:
        return cls(
            id=to_global_id("WorkshopProposal", w.proposal_id, w.hub_id),
            proposal_id=strawberry.ID(w.proposal_id),
            topic=w.topic,
            description=w.description,
            proposed_at=w.proposed_at,
            host_id=w.host_id,
            hub_id_raw=w.hub_id,
            meetup_id_raw=w.meetup_id,
        )
