"""GraphQL for the meetups service (`services/events/`): a hub's series (its
rhythm) and meetups, RSVPs with a waitlist, date polls, attendance, mission
cards, workshops, visitors, reminders and calendar feeds. Profiles come
through identity's DataLoader, hubs through hubs' module (lazily: it imports
this one to give `Hub` its meetup fields, `HubMeetupFields`).

Times: a meetup keeps its **local** start in its hub's IANA time zone; the
API shows it as a `LocalDateTime` (ISO 8601 without an offset,
`2026-03-12T12:30:00`) with the zone beside it (`timezone`), and the instants
derived from it (`startsAt`, `endsAt`, `rsvpDeadline`) as `DateTime` (UTC).
Inputs take local times the same way: in the hub's time zone.

By convention (see `gateway.kit`): `Query`, `Mutation`, `types`, `nodes`,
`scalars`."""

from __future__ import annotations

import asyncio
import re
from datetime import date, datetime, time
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, NewType

import msgspec
import strawberry
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from gateway.context import Context
from gateway.errors import InvalidToken
from gateway.identity import Member, load_member
from gateway.kit import (
    Connection,
    NodeLoader,
    ask,
    command,
    connection,
    public_errors,
    require_member,
    result_union,
)
from gateway.nodes import Node, from_global_id, parse_page, split_raw_id, to_global_id
from services.events import contract as c
from services.runtime import errors as e
from services.runtime.messages import Request

if TYPE_CHECKING:
    from gateway.hubs import Hub

HubRef = Annotated["Hub", strawberry.lazy("gateway.hubs")]

# -- the local time scalar ---------------------------------------------------------

LocalDateTime = NewType("LocalDateTime", datetime)
"""A wall-clock reading without an offset: in the time zone given beside it."""

LOCAL = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$")


def _serialize_local(value: datetime) -> str:
    return value.replace(tzinfo=None).isoformat()


def _parse_local(value: object) -> datetime:
    if not isinstance(value, str) or not LOCAL.fullmatch(value):
        raise ValueError(
            "a LocalDateTime is a local date and time without an offset, "
            "like 2026-03-12T12:30 (its time zone is the hub's)"
        )
    return datetime.fromisoformat(value)


scalars: dict[object, Any] = {
    LocalDateTime: strawberry.scalar(
        name="LocalDateTime",
        description="A local date and time, ISO 8601 without an offset "
        "(`2026-03-12T12:30:00`), read in the time zone given beside it "
        "(the hub's IANA zone, e.g. `Europe/Paris`).",
        serialize=_serialize_local,
        parse_value=_parse_local,
    )
}


# -- enums -----------------------------------------------------------------------


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


@strawberry.enum(description="What the facilitator records for a member (a visitor: PRESENT).")
class AttendanceMark(Enum):
    PRESENT = "present"
    LATE = "late"
    ABSENT = "absent"
    EXCUSED = "excused"
    REPLACED = "replaced"


@strawberry.enum
class PollVote(Enum):
    YES = "yes"
    IF_NEED_BE = "if_need_be"
    NO = "no"


@strawberry.enum
class PollState(Enum):
    OPEN = "open"
    CLOSED = "closed"


@strawberry.enum
class MeetupWhen(Enum):
    UPCOMING = "upcoming"
    PAST = "past"


@strawberry.enum(description="A hub's calendar, or a member's own (every hub of theirs).")
class FeedScope(Enum):
    HUB = "hub"
    MEMBER = "member"


@strawberry.enum
class LinkKind(Enum):
    RSVP = "rsvp"
    VOTE = "vote"
    VISITOR = "visitor"
    UNSUBSCRIBE = "unsubscribe"


# -- loaders ---------------------------------------------------------------------


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
    from gateway.hubs import Hub
    from services.hubs import contract as hc

    with public_errors():
        found = await _loader(info, "hubs.hubs", lambda h: hc.GetHub(hub_id=h)).load(hub_id)
    return Hub.from_contract(found) if found else None


# -- types -------------------------------------------------------------------------


@strawberry.type
class Venue:
    name: str
    address: str

    @classmethod
    def from_contract(cls, v: c.Venue) -> Venue:
        return cls(name=v.name, address=v.address)


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


@strawberry.type(
    description="A calendar feed's secret address token: the iCalendar feed is served at "
    "that token without signing in. Shown to its owner only; `revokeCalendarFeed` makes a "
    "new one and the old address stops working."
)
class CalendarFeed:
    scope: FeedScope
    token: str
    hub_id: strawberry.ID | None = strawberry.field(description="A hub's feed: the hub.")


@strawberry.type
class ReminderSettings:
    reminders: bool = strawberry.field(description="E-mail reminders before your meetups.")


@strawberry.type(
    description="What a link from an e-mail (RSVP, vote, visitor's answer) would record. "
    "Reading it changes nothing; `answerByLink` records it."
)
class LinkInfo:
    kind: LinkKind
    valid: bool
    reason: str | None = strawberry.field(description="Why the link is not valid, if it is not.")
    title: str
    hub_name: str
    local_start: LocalDateTime | None
    timezone: str | None
    venue: Venue | None
    answer: str | None = strawberry.field(description="What the link records.")
    slot_id: str | None
    current: str | None = strawberry.field(description="What was answered before, if anything.")

    @classmethod
    def from_contract(cls, i: c.LinkInfo) -> LinkInfo:
        return cls(
            kind=LinkKind(i.kind),
            valid=i.valid,
            reason=i.reason,
            title=i.title,
            hub_name=i.hub_name,
            local_start=LocalDateTime(i.local_start) if i.local_start else None,
            timezone=i.timezone,
            venue=Venue.from_contract(i.venue) if i.venue else None,
            answer=i.answer,
            slot_id=i.slot_id,
            current=i.current,
        )


# -- a hub's meetup fields (gateway/hubs.py's Hub inherits them) -----------------------


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
        rctx = require_member(info)
        with public_errors():
            offset, limit = parse_page(first, after)
        page = await ask(
            info,
            c.ListMeetups(hub_id=self.hub_id, when=when.value, offset=offset, limit=limit),
            rctx,
        )
        return connection(page.items, offset, page.total, Meetup.from_contract)

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


# -- payloads ------------------------------------------------------------------------


@strawberry.type
class HubAgendaPayload:
    agenda: HubAgenda


@strawberry.type
class MeetupSeriesPayload:
    series: MeetupSeries


@strawberry.type
class MeetupPayload:
    meetup: Meetup


@strawberry.type(description="The meetup is closed, its successor fixed, the cards drawn.")
class MeetupClosed:
    closed: Meetup
    next: Meetup
    cards: list[CardDraw]


@strawberry.type(description="A link's answer was recorded.")
class LinkAnswered:
    kind: LinkKind
    answer: str | None
    seat: Seat | None = strawberry.field(description='An RSVP "yes": a seat, or a place in line.')
    meetup_id: strawberry.ID | None
    poll_id: strawberry.ID | None


@strawberry.type
class LinksRevoked:
    ok: bool


@strawberry.type
class DatePollPayload:
    poll: DatePoll


@strawberry.type
class AttendancePayload:
    attendance: list[AttendanceEntry]


@strawberry.type(description="The visit is counted; the visitor's name and address stay here.")
class VisitorInvited:
    visitor_id: strawberry.ID
    visits: int = strawberry.field(description="Visits to this hub's meetups, this one included.")
    max_visits: int = strawberry.field(description="The hub's limit, after which they must apply.")
    meetup_id_raw: strawberry.Private[str]

    @strawberry.field
    async def meetup(self, info: Info[Context, Any]) -> Meetup | None:
        return await load_meetup(info, self.meetup_id_raw)


@strawberry.type
class CardCompleted:
    card: OpenCard


@strawberry.type
class WorkshopProposalPayload:
    proposal: WorkshopProposal


@strawberry.type
class CalendarFeedPayload:
    feed: CalendarFeed


# -- inputs --------------------------------------------------------------------------


@strawberry.input
class VenueInput:
    name: str
    address: str = ""

    def to_contract(self) -> c.Venue:
        return c.Venue(name=self.name, address=self.address)


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


@strawberry.input
class CreateSeriesInput:
    hub_id: strawberry.ID
    name: str
    rrule: str = strawberry.field(description="RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=TH.")
    starts_on: date
    start_time: time = strawberry.field(description="Local, in the hub's time zone.")
    venue: VenueInput
    duration_minutes: int = 120
    capacity: int | None = None
    rsvp_deadline_hours: int = 24
    reminder_hours: list[int] = strawberry.field(default_factory=lambda: [48, 2])


@strawberry.input(description="Changes to a series: fields left out are unchanged.")
class SeriesChangesInput:
    name: str | None = strawberry.UNSET
    rrule: str | None = strawberry.UNSET
    start_time: time | None = strawberry.UNSET
    duration_minutes: int | None = strawberry.UNSET
    venue: VenueInput | None = strawberry.UNSET
    capacity: int | None = strawberry.field(default=strawberry.UNSET, description="null: no limit.")
    rsvp_deadline_hours: int | None = strawberry.UNSET
    reminder_hours: list[int] | None = strawberry.UNSET
    active: bool | None = strawberry.UNSET

    def to_contract(self) -> c.SeriesChanges:
        values: dict[str, Any] = {}
        for name in c.SeriesChanges.__struct_fields__:
            value = getattr(self, name)
            if value is strawberry.UNSET or (value is None and name != "capacity"):
                continue  # only the capacity may be cleared
            values[name] = value.to_contract() if isinstance(value, VenueInput) else value
        return c.SeriesChanges(**values)


@strawberry.input
class ChangeSeriesInput:
    series_id: strawberry.ID
    changes: SeriesChangesInput


@strawberry.input(
    description="In a series, what is left out comes from the series (title, venue, duration, "
    "capacity); `localStart` is in the hub's time zone."
)
class ScheduleMeetupInput:
    hub_id: strawberry.ID
    local_start: LocalDateTime
    series_id: strawberry.ID | None = None
    title: str | None = None
    duration_minutes: int | None = None
    venue: VenueInput | None = None
    capacity: int | None = None


@strawberry.input(description="Fields left out are unchanged; `capacity: null` lifts the limit.")
class RescheduleMeetupInput:
    meetup_id: strawberry.ID
    local_start: LocalDateTime | None = strawberry.UNSET
    duration_minutes: int | None = strawberry.UNSET
    venue: VenueInput | None = strawberry.UNSET
    capacity: int | None = strawberry.UNSET


@strawberry.input
class CancelMeetupInput:
    meetup_id: strawberry.ID
    reason: str


@strawberry.input(
    description="Close with the successor fixed: a meetup already scheduled "
    "(`nextMeetupId`), or a new one at `nextLocalStart` (the series proposes one: "
    "`MeetupSeries.nextLocalStart`), at `nextVenue` (the series' or this meetup's by default)."
)
class CloseMeetupInput:
    meetup_id: strawberry.ID
    next_meetup_id: strawberry.ID | None = None
    next_local_start: LocalDateTime | None = None
    next_venue: VenueInput | None = None


@strawberry.input
class GiveRsvpInput:
    meetup_id: strawberry.ID
    answer: RsvpAnswer


@strawberry.input(description="The token of a link from an e-mail: no sign-in needed.")
class AnswerByLinkInput:
    token: str


@strawberry.input(
    description="A meetup's or a poll's links stop working: your own, or (the facilitator, "
    "a hub admin) a member's or everyone's (`memberId` left out)."
)
class RevokeLinksInput:
    meetup_id: strawberry.ID | None = None
    poll_id: strawberry.ID | None = None
    member_id: strawberry.ID | None = None


@strawberry.input
class OpenDatePollInput:
    hub_id: strawberry.ID
    title: str
    slots: list[LocalDateTime] = strawberry.field(
        description="2 to 20 candidate local starts, in the hub's time zone."
    )
    venue: VenueInput
    series_id: strawberry.ID | None = None
    duration_minutes: int = 120


@strawberry.input
class SlotVoteInput:
    slot_id: str
    vote: PollVote


@strawberry.input(description="Votes on some or all slots; a later vote on a slot replaces it.")
class VoteOnPollInput:
    poll_id: strawberry.ID
    votes: list[SlotVoteInput]


@strawberry.input
class CloseDatePollInput:
    poll_id: strawberry.ID
    slot_id: str


@strawberry.input(description="A member (`memberId`) or a visitor (`visitorId`).")
class AttendanceEntryInput:
    status: AttendanceMark
    member_id: strawberry.ID | None = None
    visitor_id: strawberry.ID | None = None
    substitute: str | None = strawberry.field(
        default=None, description="Who came instead: with REPLACED only."
    )


@strawberry.input
class RecordAttendanceInput:
    meetup_id: strawberry.ID
    entries: list[AttendanceEntryInput]


@strawberry.input
class MeetupInput:
    meetup_id: strawberry.ID


@strawberry.input(
    description="The visitor's name and address are kept by the meetups service only."
)
class InviteVisitorInput:
    meetup_id: strawberry.ID
    name: str
    email: str


@strawberry.input
class CompleteCardInput:
    draw_id: strawberry.ID = strawberry.field(description="A `CardDraw` (or `OpenCard`) id.")


@strawberry.input
class ProposeWorkshopInput:
    hub_id: strawberry.ID
    topic: str
    description: str = ""


@strawberry.input
class ScheduleWorkshopInput:
    proposal_id: strawberry.ID
    local_start: LocalDateTime
    venue: VenueInput
    duration_minutes: int = 120
    capacity: int | None = None


@strawberry.input
class SetRemindersInput:
    reminders: bool


@strawberry.input(description="A hub's feed (`hubId`), or your own (scope MEMBER, no hub).")
class CalendarFeedInput:
    scope: FeedScope
    hub_id: strawberry.ID | None = None


HubAgendaResult = result_union("HubAgendaResult", HubAgendaPayload)
MeetupSeriesResult = result_union("MeetupSeriesResult", MeetupSeriesPayload)
MeetupResult = result_union("MeetupResult", MeetupPayload)
CloseMeetupResult = result_union("CloseMeetupResult", MeetupClosed)
AnswerByLinkResult = result_union("AnswerByLinkResult", LinkAnswered, InvalidToken)
RevokeLinksResult = result_union("RevokeLinksResult", LinksRevoked)
DatePollResult = result_union("DatePollResult", DatePollPayload)
AttendanceResult = result_union("AttendanceResult", AttendancePayload)
InviteVisitorResult = result_union("InviteVisitorResult", VisitorInvited)
CompleteCardResult = result_union("CompleteCardResult", CardCompleted)
WorkshopProposalResult = result_union("WorkshopProposalResult", WorkshopProposalPayload)
ReminderSettingsResult = result_union("ReminderSettingsResult", ReminderSettings)
CalendarFeedResult = result_union("CalendarFeedResult", CalendarFeedPayload)


# -- ids -----------------------------------------------------------------------------


def _id(value: str, type_name: str, field: str) -> str:
    return from_global_id(value, type_name, field=field)


def _opt_id(value: str | None, type_name: str, field: str) -> str | None:
    return None if value is None else from_global_id(value, type_name, field=field)


# -- queries -------------------------------------------------------------------------


@strawberry.type
class Query:
    @strawberry.field(description="A meetup of your network by global id, or null.")
    async def meetup(self, info: Info[Context, Any], id: strawberry.ID) -> Meetup | None:
        rctx = require_member(info)
        with public_errors():
            raw = _id(id, "Meetup", "id")
        found = await ask(info, c.GetMeetup(meetup_id=raw), rctx, missing_as_none=True)
        return Meetup.from_contract(found) if found else None

    @strawberry.field(description="A date poll of your network by global id, or null.")
    async def date_poll(self, info: Info[Context, Any], id: strawberry.ID) -> DatePoll | None:
        rctx = require_member(info)
        with public_errors():
            raw = _id(id, "DatePoll", "id")
        found = await ask(info, c.GetDatePoll(poll_id=raw), rctx, missing_as_none=True)
        return DatePoll.from_contract(found) if found else None

    @strawberry.field(
        description="Your upcoming meetups in every hub of yours, soonest first, each with "
        "your own answer (`myRsvp`)."
    )
    async def my_agenda(
        self, info: Info[Context, Any], first: int = 20, after: str | None = None
    ) -> Connection[Meetup]:
        rctx = require_member(info)
        with public_errors():
            offset, limit = parse_page(first, after)
        page = await ask(info, c.MyAgenda(offset=offset, limit=limit), rctx)
        return connection(page.items, offset, page.total, Meetup.from_contract)

    @strawberry.field(description="Your reminder settings.")
    async def my_reminder_settings(self, info: Info[Context, Any]) -> ReminderSettings:
        found = await ask(info, c.GetReminderSettings(), require_member(info))
        return ReminderSettings(reminders=found.reminders)

    @strawberry.field(
        description="What a link from an e-mail would record (no sign-in; changes nothing). "
        "An invalid link is described (`valid: false` and the reason), not refused."
    )
    async def link(self, info: Info[Context, Any], token: str) -> LinkInfo:
        found = await ask(info, c.DescribeLink(token=token), info.context.anonymous())
        return LinkInfo.from_contract(found)


# -- mutations -----------------------------------------------------------------------


def _meetup(reply: c.Meetup) -> MeetupPayload:
    return MeetupPayload(meetup=Meetup.from_contract(reply))


def _poll(reply: c.DatePoll) -> DatePollPayload:
    return DatePollPayload(poll=DatePoll.from_contract(reply))


def _series(reply: c.Series) -> MeetupSeriesPayload:
    return MeetupSeriesPayload(series=MeetupSeries.from_contract(reply))


def _attendance(reply: list[c.AttendanceEntry]) -> AttendancePayload:
    return AttendancePayload(attendance=[AttendanceEntry.from_contract(a) for a in reply])


def _feed(reply: c.CalendarFeed) -> CalendarFeedPayload:
    return CalendarFeedPayload(
        feed=CalendarFeed(
            scope=FeedScope(reply.scope),
            token=reply.token,
            hub_id=to_global_id("Hub", reply.hub_id) if reply.hub_id else None,
        )
    )


def _closed(reply: c.CloseResult) -> MeetupClosed:
    return MeetupClosed(
        closed=Meetup.from_contract(reply.closed),
        next=Meetup.from_contract(reply.next),
        cards=[CardDraw.from_contract(d, reply.closed.meetup_id) for d in reply.draws],
    )


# A change's field is named as hubs' rules changes are (`rules: {maxVisits}` →
# `maxVisits`), whether the service's text policy or its own checks refuse it.
CHANGES_FIELDS = {
    f"changes.{name}": name for name in ("name", "rrule", "venue.name", "venue.address")
}


def _given(value: Any) -> Any:
    """A partial update's field: the service's UNSET when left out (or null
    where null means nothing)."""
    return msgspec.UNSET if value is None or value is strawberry.UNSET else value


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Hub admin: the hub's time zone and deck of mission cards.")
    async def set_hub_agenda(
        self, info: Info[Context, Any], input: SetHubAgendaInput
    ) -> HubAgendaResult:
        def build() -> Request[Any]:
            cards = _given(input.cards)
            return c.SetHubAgenda(
                hub_id=_id(input.hub_id, "Hub", "hub_id"),
                timezone=_given(input.timezone),
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

    @strawberry.mutation(description="Hub admin or the facilitator: a rhythm of meetups.")
    async def create_series(
        self, info: Info[Context, Any], input: CreateSeriesInput
    ) -> MeetupSeriesResult:
        return await command(
            info,
            lambda: c.CreateSeries(
                hub_id=_id(input.hub_id, "Hub", "hub_id"),
                name=input.name,
                rrule=input.rrule,
                starts_on=input.starts_on,
                start_time=input.start_time,
                venue=input.venue.to_contract(),
                duration_minutes=input.duration_minutes,
                capacity=input.capacity,
                rsvp_deadline_hours=input.rsvp_deadline_hours,
                reminder_hours=list(input.reminder_hours),
            ),
            _series,
        )

    @strawberry.mutation(description="Hub admin or the facilitator: change a series.")
    async def change_series(
        self, info: Info[Context, Any], input: ChangeSeriesInput
    ) -> MeetupSeriesResult:
        return await command(
            info,
            lambda: c.ChangeSeries(
                series_id=_id(input.series_id, "MeetupSeries", "series_id"),
                changes=input.changes.to_contract(),
            ),
            _series,
            fields=CHANGES_FIELDS,
        )

    @strawberry.mutation(description="Hub admin or the facilitator: schedule a meetup.")
    async def schedule_meetup(
        self, info: Info[Context, Any], input: ScheduleMeetupInput
    ) -> MeetupResult:
        return await command(
            info,
            lambda: c.ScheduleMeetup(
                hub_id=_id(input.hub_id, "Hub", "hub_id"),
                local_start=input.local_start,
                series_id=_opt_id(input.series_id, "MeetupSeries", "series_id"),
                title=input.title,
                duration_minutes=input.duration_minutes,
                venue=input.venue.to_contract() if input.venue else None,
                capacity=input.capacity,
            ),
            _meetup,
        )

    @strawberry.mutation(
        description="Hub admin or the facilitator: move a meetup, change its length, venue or "
        "capacity (a bigger capacity seats the first in line)."
    )
    async def reschedule_meetup(
        self, info: Info[Context, Any], input: RescheduleMeetupInput
    ) -> MeetupResult:
        def build() -> Request[Any]:
            venue = _given(input.venue)
            return c.RescheduleMeetup(
                meetup_id=_id(input.meetup_id, "Meetup", "meetup_id"),
                local_start=_given(input.local_start),
                duration_minutes=_given(input.duration_minutes),
                venue=venue if venue is msgspec.UNSET else venue.to_contract(),
                # null lifts the limit; left out, it stays
                capacity=msgspec.UNSET if input.capacity is strawberry.UNSET else input.capacity,
            )

        return await command(info, build, _meetup)

    @strawberry.mutation(
        description="Hub admin or the facilitator: cancel a meetup, with a reason."
    )
    async def cancel_meetup(
        self, info: Info[Context, Any], input: CancelMeetupInput
    ) -> MeetupResult:
        return await command(
            info,
            lambda: c.CancelMeetup(
                meetup_id=_id(input.meetup_id, "Meetup", "meetup_id"), reason=input.reason
            ),
            _meetup,
        )

    @strawberry.mutation(
        description="The facilitator or a hub admin closes a meetup that has begun, with the "
        "next one fixed (refused otherwise: RuleViolation `next_date_required`); the members "
        "present draw their mission cards."
    )
    async def close_meetup(
        self, info: Info[Context, Any], input: CloseMeetupInput
    ) -> CloseMeetupResult:
        return await command(
            info,
            lambda: c.CloseMeetup(
                meetup_id=_id(input.meetup_id, "Meetup", "meetup_id"),
                next_meetup_id=_opt_id(input.next_meetup_id, "Meetup", "next_meetup_id"),
                next_local_start=input.next_local_start,
                next_venue=input.next_venue.to_contract() if input.next_venue else None,
            ),
            _closed,
            fields={
                "local_start": "next_local_start",
                "venue": "next_venue",
                "next": "next_meetup_id",
            },
        )

    @strawberry.mutation(
        description='Answer a meetup: a "yes" takes a seat, or a place on the waitlist when '
        "it is full; leaving a seat gives it to the first in line."
    )
    async def give_rsvp(self, info: Info[Context, Any], input: GiveRsvpInput) -> MeetupResult:
        return await command(
            info,
            lambda: c.GiveRsvp(
                meetup_id=_id(input.meetup_id, "Meetup", "meetup_id"),
                answer=input.answer.value,
            ),
            _meetup,
        )

    @strawberry.mutation(
        description="Record what a link from an e-mail says (an RSVP, a vote, a visitor's "
        "answer): no sign-in, the link's token is the credential."
    )
    async def answer_by_link(
        self, info: Info[Context, Any], input: AnswerByLinkInput
    ) -> AnswerByLinkResult:
        return await command(
            info,
            lambda: c.AnswerByLink(token=input.token),
            lambda a: LinkAnswered(
                kind=LinkKind(a.kind),
                answer=a.answer,
                seat=Seat(a.seat) if a.seat else None,
                meetup_id=to_global_id("Meetup", a.meetup_id) if a.meetup_id else None,
                poll_id=to_global_id("DatePoll", a.poll_id) if a.poll_id else None,
            ),
            caller="anonymous",
        )

    @strawberry.mutation(description="Links already sent for a meetup or a poll stop working.")
    async def revoke_links(
        self, info: Info[Context, Any], input: RevokeLinksInput
    ) -> RevokeLinksResult:
        return await command(
            info,
            lambda: c.RevokeLinks(
                meetup_id=_opt_id(input.meetup_id, "Meetup", "meetup_id"),
                poll_id=_opt_id(input.poll_id, "DatePoll", "poll_id"),
                member_id=_opt_id(input.member_id, "Member", "member_id"),
            ),
            lambda _: LinksRevoked(ok=True),
        )

    @strawberry.mutation(
        description="Hub admin or the facilitator: members vote on candidate dates."
    )
    async def open_date_poll(
        self, info: Info[Context, Any], input: OpenDatePollInput
    ) -> DatePollResult:
        return await command(
            info,
            lambda: c.OpenDatePoll(
                hub_id=_id(input.hub_id, "Hub", "hub_id"),
                title=input.title,
                slots=list(input.slots),
                venue=input.venue.to_contract(),
                series_id=_opt_id(input.series_id, "MeetupSeries", "series_id"),
                duration_minutes=input.duration_minutes,
            ),
            _poll,
        )

    @strawberry.mutation(description="Members of the hub: vote on some or all slots.")
    async def vote_on_poll(
        self, info: Info[Context, Any], input: VoteOnPollInput
    ) -> DatePollResult:
        def build() -> Request[Any]:
            votes: dict[str, Any] = {}
            for v in input.votes:
                if v.slot_id in votes:
                    raise e.InvalidInput("one vote per slot", field="votes")
                votes[v.slot_id] = v.vote.value
            return c.VoteOnPoll(poll_id=_id(input.poll_id, "DatePoll", "poll_id"), votes=votes)

        return await command(info, build, _poll)

    @strawberry.mutation(
        description="Hub admin or the facilitator: choose a slot; the meetup is scheduled on it."
    )
    async def close_date_poll(
        self, info: Info[Context, Any], input: CloseDatePollInput
    ) -> DatePollResult:
        return await command(
            info,
            lambda: c.CloseDatePoll(
                poll_id=_id(input.poll_id, "DatePoll", "poll_id"), slot_id=input.slot_id
            ),
            _poll,
        )

    @strawberry.mutation(
        description="The facilitator or a hub admin takes attendance (from an hour before)."
    )
    async def record_attendance(
        self, info: Info[Context, Any], input: RecordAttendanceInput
    ) -> AttendanceResult:
        return await command(
            info,
            lambda: c.RecordAttendance(
                meetup_id=_id(input.meetup_id, "Meetup", "meetup_id"),
                entries=[
                    c.AttendanceRecordInput(
                        status=x.status.value,
                        member_id=_opt_id(x.member_id, "Member", "member_id"),
                        visitor_id=_opt_id(x.visitor_id, "Visitor", "visitor_id"),
                        substitute=x.substitute,
                    )
                    for x in input.entries
                ],
            ),
            _attendance,
            fields={"entries.substitute": "substitute"},  # as the service's own checks name it
        )

    @strawberry.mutation(description="A member of the hub checks in while the meetup runs.")
    async def check_in(self, info: Info[Context, Any], input: MeetupInput) -> AttendanceResult:
        return await command(
            info,
            lambda: c.CheckIn(meetup_id=_id(input.meetup_id, "Meetup", "meetup_id")),
            _attendance,
        )

    @strawberry.mutation(
        description="A member of the hub invites a non-member; past the hub's `maxVisits` the "
        "visitor must apply (RuleViolation `max_visits`)."
    )
    async def invite_visitor(
        self, info: Info[Context, Any], input: InviteVisitorInput
    ) -> InviteVisitorResult:
        return await command(
            info,
            lambda: c.InviteVisitor(
                meetup_id=_id(input.meetup_id, "Meetup", "meetup_id"),
                name=input.name,
                email=input.email,
            ),
            lambda v: VisitorInvited(
                visitor_id=to_global_id("Visitor", v.visitor_id),
                visits=v.visits,
                max_visits=v.max_visits,
                meetup_id_raw=v.meetup_id,
            ),
        )

    @strawberry.mutation(description="The holder marks their mission card done.")
    async def complete_card(
        self, info: Info[Context, Any], input: CompleteCardInput
    ) -> CompleteCardResult:
        return await command(
            info,
            lambda: c.CompleteCard(draw_id=_id(input.draw_id, "CardDraw", "draw_id")),
            lambda o: CardCompleted(card=OpenCard.from_contract(o)),
        )

    @strawberry.mutation(description="A member of the hub offers to lead a workshop.")
    async def propose_workshop(
        self, info: Info[Context, Any], input: ProposeWorkshopInput
    ) -> WorkshopProposalResult:
        return await command(
            info,
            lambda: c.ProposeWorkshop(
                hub_id=_id(input.hub_id, "Hub", "hub_id"),
                topic=input.topic,
                description=input.description,
            ),
            lambda w: WorkshopProposalPayload(proposal=WorkshopProposal.from_contract(w)),
        )

    @strawberry.mutation(
        description="The facilitator or a hub admin: the proposal becomes a workshop led by "
        "its proposer."
    )
    async def schedule_workshop(
        self, info: Info[Context, Any], input: ScheduleWorkshopInput
    ) -> MeetupResult:
        return await command(
            info,
            lambda: c.ScheduleWorkshop(
                proposal_id=_id(input.proposal_id, "WorkshopProposal", "proposal_id"),
                local_start=input.local_start,
                venue=input.venue.to_contract(),
                duration_minutes=input.duration_minutes,
                capacity=input.capacity,
            ),
            _meetup,
        )

    @strawberry.mutation(description="E-mail reminders before your meetups, on or off.")
    async def set_reminders(
        self, info: Info[Context, Any], input: SetRemindersInput
    ) -> ReminderSettingsResult:
        return await command(
            info,
            lambda: c.SetReminders(reminders=input.reminders),
            lambda r: ReminderSettings(reminders=r.reminders),
        )

    @strawberry.mutation(
        description="The secret address token of a hub's calendar feed (members of the hub) or "
        "of your own; made on first use, the same afterwards."
    )
    async def calendar_feed(
        self, info: Info[Context, Any], input: CalendarFeedInput
    ) -> CalendarFeedResult:
        return await command(
            info,
            lambda: c.GetCalendarFeed(
                scope=input.scope.value,
                hub_id=_opt_id(input.hub_id, "Hub", "hub_id"),
            ),
            _feed,
        )

    @strawberry.mutation(
        description="A new secret address for the feed: the old one stops working."
    )
    async def revoke_calendar_feed(
        self, info: Info[Context, Any], input: CalendarFeedInput
    ) -> CalendarFeedResult:
        return await command(
            info,
            lambda: c.RevokeCalendarFeed(
                scope=input.scope.value,
                hub_id=_opt_id(input.hub_id, "Hub", "hub_id"),
            ),
            _feed,
        )


# -- Node types and their loaders (node(id:)) -------------------------------------
# As their own fields answer them, in the caller's own network: another
# network's id is null, like a missing one.


async def meetup_node(info: Info[Context, Any], raw_id: str) -> Meetup | None:
    """A meetup of your network, like `meetup(id:)`."""
    parts = split_raw_id(raw_id)
    if parts is None:
        return None
    rctx = require_member(info)
    found = await ask(info, c.GetMeetup(meetup_id=parts[0]), rctx, missing_as_none=True)
    return Meetup.from_contract(found) if found else None


async def poll_node(info: Info[Context, Any], raw_id: str) -> DatePoll | None:
    """A date poll of your network, like `datePoll(id:)`."""
    parts = split_raw_id(raw_id)
    if parts is None:
        return None
    rctx = require_member(info)
    found = await ask(info, c.GetDatePoll(poll_id=parts[0]), rctx, missing_as_none=True)
    return DatePoll.from_contract(found) if found else None


def _with_context(raw_id: str) -> tuple[str, str] | None:
    """(uuid, context uuid) of an id that carries what finds it again."""
    parts = split_raw_id(raw_id)
    context = split_raw_id(parts[1]) if parts and len(parts) == 2 else None
    return (parts[0], context[0]) if parts and context else None


async def series_node(info: Info[Context, Any], raw_id: str) -> MeetupSeries | None:
    """A series, like `Hub.series` (its id carries its hub)."""
    found = _with_context(raw_id)
    if found is None:
        return None
    series_id, hub_id = found
    listed = await ask(
        info, c.ListSeries(hub_id=hub_id), require_member(info), missing_as_none=True
    )
    match = next((s for s in listed or () if s.series_id == series_id), None)
    return MeetupSeries.from_contract(match) if match else None


async def proposal_node(info: Info[Context, Any], raw_id: str) -> WorkshopProposal | None:
    """A workshop proposal, like `Hub.workshopProposals` (its id carries its hub)."""
    found = _with_context(raw_id)
    if found is None:
        return None
    proposal_id, hub_id = found
    listed = await ask(
        info, c.ListWorkshopProposals(hub_id=hub_id), require_member(info), missing_as_none=True
    )
    match = next((w for w in listed or () if w.proposal_id == proposal_id), None)
    return WorkshopProposal.from_contract(match) if match else None


async def draw_node(info: Info[Context, Any], raw_id: str) -> CardDraw | None:
    """A card drawn, like `Meetup.cards` (its id carries its meetup)."""
    found = _with_context(raw_id)
    if found is None:
        return None
    draw_id, meetup_id = found
    listed = await ask(
        info, c.ListDraws(meetup_id=meetup_id), require_member(info), missing_as_none=True
    )
    match = next((d for d in listed or () if d.draw_id == draw_id), None)
    return CardDraw.from_contract(match, meetup_id) if match else None


types: list[type] = [Meetup, DatePoll, MeetupSeries, WorkshopProposal, CardDraw]
nodes: dict[str, NodeLoader] = {
    "Meetup": meetup_node,
    "DatePoll": poll_node,
    "MeetupSeries": series_node,
    "WorkshopProposal": proposal_node,
    "CardDraw": draw_node,
}
