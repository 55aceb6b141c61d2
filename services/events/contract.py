"""Meetups' published language: the only module of this service that the
gateway and other services may import.

The service lives in `services/events/` (the design card's name); in code its
things are *meetups*: a hub's `MeetupSeries` (a rhythm: RFC 5545 recurrence in
the hub's IANA time zone), its `Meetup`s (scheduled → held → closed, or
cancelled; a meetup closes only with its successor fixed), RSVPs with a
waitlist, `DatePoll`s, attendance, visitors, mission cards, workshops,
reminders and calendar feeds. "Event" alone means a domain event.

Times: a meetup keeps its **local** start (`local_start`, naive) and its time
zone (`timezone`, IANA); `starts_at` (UTC) is derived. A weekly 12:30 lunch
stays at 12:30 local time across daylight-saving changes.

Requests go to `quartier.cmd.events.<Name>` / `quartier.qry.events.<Name>`;
public events to `quartier.evt.<tenant>.events.<Name>` as
`quartier.events.<Name>.v<version>`: ids and non-personal facts only (no
names, e-mail addresses or free texts).
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import ClassVar, Literal

import msgspec
from msgspec import UNSET, UnsetType

from services.runtime.messages import Command, Done, Message, PublicEvent, Query, R

SERVICE = "events"

MeetupKind = Literal["meetup", "workshop"]
MeetupState = Literal["scheduled", "held", "closed", "cancelled"]
Answer = Literal["yes", "maybe", "no"]
Seat = Literal["seated", "waiting", "none"]  # what a "yes" got: a seat, or a place in line
AttendanceStatus = Literal["present", "late", "absent", "excused", "replaced", "visitor"]
Vote = Literal["yes", "if_need_be", "no"]
PollState = Literal["open", "closed"]
When = Literal["upcoming", "past"]
LinkKind = Literal["rsvp", "vote", "visitor", "unsubscribe"]
FeedScope = Literal["hub", "member"]


class EventsCommand(Command[R]):
    service: ClassVar[str] = SERVICE


class EventsQuery(Query[R]):
    service: ClassVar[str] = SERVICE


class EventsEvent(PublicEvent):
    service: ClassVar[str] = SERVICE


# -- values --------------------------------------------------------------------


class Venue(Message):
    name: str
    address: str = ""


class SeriesChanges(Message):
    name: str | UnsetType = UNSET
    rrule: str | UnsetType = UNSET
    start_time: time | UnsetType = UNSET
    duration_minutes: int | UnsetType = UNSET
    venue: Venue | UnsetType = UNSET
    capacity: int | UnsetType | None = UNSET
    rsvp_deadline_hours: int | UnsetType = UNSET
    reminder_hours: list[int] | UnsetType = UNSET
    active: bool | UnsetType = UNSET


class Series(Message):
    series_id: str
    hub_id: str
    name: str
    rrule: str  # RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=TH
    starts_on: date
    start_time: time  # local
    timezone: str
    duration_minutes: int
    venue: Venue
    capacity: int | None
    rsvp_deadline_hours: int  # answers close this long before the start
    reminder_hours: list[int]  # reminders this long before the start
    active: bool
    next_local_start: datetime | None  # what the rhythm proposes next (naive, local)


class Rsvp(Message):
    member_id: str
    answer: Answer
    seat: Seat
    answered_at: datetime
    waitlist_position: int | None  # 1 for the first in line


class AttendanceEntry(Message):
    member_id: str | None  # None for a visitor
    visitor_id: str | None
    status: AttendanceStatus
    substitute: str | None  # who came instead ("replaced")
    recorded_at: datetime
    self_checked_in: bool


class CardDraw(Message):
    draw_id: str
    member_id: str
    card_id: str
    title: str
    done_at: datetime | None


class Meetup(Message):
    meetup_id: str
    hub_id: str
    series_id: str | None
    kind: MeetupKind
    title: str
    topic: str | None  # workshops
    host_id: str | None  # workshops: the member who leads it
    local_start: datetime  # naive, in `timezone`
    timezone: str
    starts_at: datetime  # UTC
    ends_at: datetime  # UTC
    duration_minutes: int
    venue: Venue
    capacity: int | None
    state: MeetupState
    cancel_reason: str | None
    rsvp_deadline: datetime  # UTC
    seated: int
    waiting: int
    maybe: int
    declined: int
    previous_meetup_id: str | None
    next_meetup_id: str | None  # once closed
    sequence: int  # iCalendar SEQUENCE: bumped by every change
    poll_id: str | None = None  # the date poll that chose it
    my_rsvp: Rsvp | None = None  # the asking member's own answer


class MeetupPage(Message):
    items: list[Meetup]
    total: int


class CloseResult(Message):
    closed: Meetup
    next: Meetup
    draws: list[CardDraw]


class PollSlot(Message):
    slot_id: str
    local_start: datetime
    yes: int
    if_need_be: int
    no: int


class DatePoll(Message):
    poll_id: str
    hub_id: str
    title: str
    timezone: str
    duration_minutes: int
    venue: Venue
    series_id: str | None
    slots: list[PollSlot]
    state: PollState
    chosen_slot_id: str | None
    meetup_id: str | None  # scheduled when the poll closed
    voters: int
    my_votes: dict[str, Vote] = {}  # slot id -> the asking member's vote


class PollVote(Message):
    """One member's vote on one slot of a date poll."""

    poll_id: str
    slot_id: str
    member_id: str
    vote: Vote


class PollVotePage(Message):
    items: list[PollVote]
    total: int


class Card(Message):
    card_id: str
    title: str
    single_holder: bool  # held by one member at a time


class Deck(Message):
    hub_id: str
    cards: list[Card]
    timezone: str  # the hub's IANA time zone (meetups' default)


class OpenCard(Message):
    draw_id: str
    meetup_id: str
    member_id: str
    card_id: str
    title: str
    drawn_at: datetime


class WorkshopProposal(Message):
    proposal_id: str
    hub_id: str
    host_id: str
    topic: str
    description: str
    proposed_at: datetime
    meetup_id: str | None  # once scheduled


class VisitorInvitation(Message):
    visitor_id: str
    meetup_id: str
    visits: int  # with this one, in this hub
    max_visits: int


class LinkInfo(Message):
    """What a link's page shows (GET changes nothing): the meetup or poll and
    the answer the button would record."""

    kind: LinkKind
    title: str
    hub_name: str
    local_start: datetime | None
    timezone: str | None
    venue: Venue | None
    answer: str | None  # the answer (or vote) this link records
    slot_id: str | None
    current: str | None  # what was answered before, if anything
    valid: bool
    reason: str | None  # why not, when not valid
    # why not, as a code (pages say it in the network's language): link_invalid,
    # link_expired, link_revoked, link_not_member, closed
    reason_code: str | None = None
    # the reason in the other languages ({"fr": …}): the gateway says it in the request's
    reasons: dict[str, str] | None = None


class LinkAnswered(Message):
    kind: LinkKind
    answer: str | None
    seat: Seat | None
    meetup_id: str | None
    poll_id: str | None


class CalendarFeed(Message):
    scope: FeedScope
    hub_id: str | None
    token: str  # the secret of the feed's URL; shown to its owner only


class Calendar(Message):
    ics: str  # text/calendar, RFC 5545


class ReminderSettings(Message):
    reminders: bool


class UnsubscribeInfo(Message):
    """What an unsubscribe link's page shows (GET changes nothing)."""

    valid: bool
    reason: str | None  # why not, when not valid
    reason_code: str | None  # link_invalid, link_expired
    reminders: bool | None  # the member's current choice, when valid


class AttendanceRecordInput(Message):
    """One member (`member_id`) or visitor (`visitor_id`): a visitor who came
    is recorded as `present` and shows as `visitor`."""

    status: Literal["present", "late", "absent", "excused", "replaced"]
    member_id: str | None = None
    visitor_id: str | None = None
    substitute: str | None = None


# -- commands: series and meetups ------------------------------------------------


class SetHubAgenda(EventsCommand[Deck]):
    """Hub admin: the hub's time zone (IANA; Europe/Paris by default) and its
    deck of mission cards (the seeds' deck by default)."""

    hub_id: str
    timezone: str | UnsetType = UNSET
    cards: list[Card] | UnsetType = UNSET  # card_id may be "" for a new card


class CreateSeries(EventsCommand[Series]):
    """Hub admin or the facilitator: a rhythm of meetups."""

    idempotent: ClassVar[bool] = True
    hub_id: str
    name: str
    rrule: str
    starts_on: date
    start_time: time
    venue: Venue
    duration_minutes: int = 120
    capacity: int | None = None
    rsvp_deadline_hours: int = 24
    reminder_hours: list[int] = msgspec.field(default_factory=lambda: [48, 2])


class ChangeSeries(EventsCommand[Series]):
    series_id: str
    changes: SeriesChanges


class ScheduleMeetup(EventsCommand[Meetup]):
    """Hub admin or the facilitator. In a series, what is left out comes from
    the series (venue, duration, capacity); `local_start` is in the hub's time
    zone."""

    idempotent: ClassVar[bool] = True
    hub_id: str
    local_start: datetime
    series_id: str | None = None
    title: str | None = None
    duration_minutes: int | None = None
    venue: Venue | None = None
    capacity: int | None = None


class RescheduleMeetup(EventsCommand[Meetup]):
    meetup_id: str
    local_start: datetime | UnsetType = UNSET
    duration_minutes: int | UnsetType = UNSET
    venue: Venue | UnsetType = UNSET
    capacity: int | UnsetType | None = UNSET


class CancelMeetup(EventsCommand[Meetup]):
    meetup_id: str
    reason: str


class CloseMeetup(EventsCommand[CloseResult]):
    """The facilitator or a hub admin closes a held meetup, **with its
    successor**: an already scheduled meetup (`next_meetup_id`), or a new one
    at `next_local_start` (the series proposes one) and `next_venue` (the
    series' or this meetup's venue by default). Present members then draw
    their mission cards."""

    idempotent: ClassVar[bool] = True
    meetup_id: str
    next_meetup_id: str | None = None
    next_local_start: datetime | None = None
    next_venue: Venue | None = None


# -- commands: answers -----------------------------------------------------------------


class GiveRsvp(EventsCommand[Meetup]):
    meetup_id: str
    answer: Answer


class AnswerByLink(EventsCommand[LinkAnswered]):
    """No login: the link's signed token is the credential (POST only)."""

    token: str


class RevokeLinks(EventsCommand[Done]):
    """Invalidate the links sent for a meetup or a poll: a member their own,
    a hub admin or the facilitator everyone's (`member_id` None)."""

    meetup_id: str | None = None
    poll_id: str | None = None
    member_id: str | None = None


class OpenDatePoll(EventsCommand[DatePoll]):
    idempotent: ClassVar[bool] = True
    hub_id: str
    title: str
    slots: list[datetime]  # local starts, in the hub's time zone
    venue: Venue
    series_id: str | None = None
    duration_minutes: int = 120


class VoteOnPoll(EventsCommand[DatePoll]):
    poll_id: str
    votes: dict[str, Vote]  # slot id -> vote


class CloseDatePoll(EventsCommand[DatePoll]):
    """Schedules the meetup on the chosen slot."""

    poll_id: str
    slot_id: str


# -- commands: the meetup itself --------------------------------------------------------


class RecordAttendance(EventsCommand[list[AttendanceEntry]]):
    """The facilitator or a hub admin, for any members."""

    meetup_id: str
    entries: list[AttendanceRecordInput]


class CheckIn(EventsCommand[list[AttendanceEntry]]):
    """A member, while the meetup runs."""

    meetup_id: str


class InviteVisitor(EventsCommand[VisitorInvitation]):
    """A member invites a non-member (name and e-mail kept only here); past
    the hub's `max_visits` the visitor must now apply (be nominated)."""

    idempotent: ClassVar[bool] = True
    meetup_id: str
    name: str
    email: str


class CompleteCard(EventsCommand[OpenCard]):
    """The holder marks their mission card done."""

    draw_id: str


class ProposeWorkshop(EventsCommand[WorkshopProposal]):
    idempotent: ClassVar[bool] = True
    hub_id: str
    topic: str
    description: str = ""


class ScheduleWorkshop(EventsCommand[Meetup]):
    """The facilitator or a hub admin: the proposal becomes a meetup of kind
    workshop, led by its proposer."""

    idempotent: ClassVar[bool] = True
    proposal_id: str
    local_start: datetime
    venue: Venue
    duration_minutes: int = 120
    capacity: int | None = None


class SetReminders(EventsCommand[ReminderSettings]):
    reminders: bool


class UnsubscribeByLink(EventsCommand[ReminderSettings]):
    """No login: the signed token of a reminder's unsubscribe link (RFC 8058
    one-click, or its page's button) turns the member's reminders off.
    Again: nothing more changes."""

    token: str


class GetCalendarFeed(EventsCommand[CalendarFeed]):
    """The secret URL token of a hub's (member of it) or one's own feed; made
    on first use."""

    scope: FeedScope
    hub_id: str | None = None


class RevokeCalendarFeed(EventsCommand[CalendarFeed]):
    """A new secret; the old URL stops working."""

    scope: FeedScope
    hub_id: str | None = None


# -- queries ---------------------------------------------------------------------


class GetHubAgenda(EventsQuery[Deck]):
    hub_id: str


class ListSeries(EventsQuery[list[Series]]):
    hub_id: str


class ListMeetups(EventsQuery[MeetupPage]):
    hub_id: str
    when: When = "upcoming"
    offset: int = 0
    limit: int = 20


class GetMeetup(EventsQuery[Meetup]):
    meetup_id: str


class ListRsvps(EventsQuery[list[Rsvp]]):
    """Answers, seated first then the waitlist in order."""

    meetup_id: str


class GetAttendance(EventsQuery[list[AttendanceEntry]]):
    meetup_id: str


class ListDraws(EventsQuery[list[CardDraw]]):
    meetup_id: str


class ListOpenCards(EventsQuery[list[OpenCard]]):
    """Cards drawn and not done, visible until the hub's next meetup."""

    hub_id: str


class GetDatePoll(EventsQuery[DatePoll]):
    poll_id: str


class ListDatePolls(EventsQuery[list[DatePoll]]):
    hub_id: str
    state: PollState | None = None


class ListPollVotes(EventsQuery[PollVotePage]):
    """Tenant admins (the network's export): each member's votes on a date
    poll, by member then slot. Members see a poll's tallies only."""

    poll_id: str
    offset: int = 0
    limit: int = 50


class ListWorkshopProposals(EventsQuery[list[WorkshopProposal]]):
    hub_id: str


class MyAgenda(EventsQuery[MeetupPage]):
    """The asking member's upcoming meetups, in all their hubs."""

    offset: int = 0
    limit: int = 20


class DescribeLink(EventsQuery[LinkInfo]):
    """For a link's page (GET): changes nothing, even for a valid token."""

    token: str


class DescribeUnsubscribeLink(EventsQuery[UnsubscribeInfo]):
    """For an unsubscribe link's page (GET): changes nothing."""

    token: str


class GetCalendar(EventsQuery[Calendar]):
    """The iCalendar feed behind a secret URL token (no login)."""

    token: str


class GetReminderSettings(EventsQuery[ReminderSettings]):
    pass


class MeetupsAttended(EventsQuery[list[str]]):
    """Services: the meetup ids of a hub that a member attended (present or
    late) since a time."""

    hub_id: str
    member_id: str
    since: datetime


# -- public events ---------------------------------------------------------------


class SeriesCreated(EventsEvent):
    hub_id: str
    series_id: str
    rrule: str
    timezone: str


class MeetupScheduled(EventsEvent):
    hub_id: str
    meetup_id: str
    series_id: str | None
    kind: MeetupKind
    starts_at: datetime
    timezone: str
    capacity: int | None
    previous_meetup_id: str | None  # the meetup whose close fixed this one
    poll_id: str | None  # the date poll that chose it
    host_id: str | None


class MeetupRescheduled(EventsEvent):
    hub_id: str
    meetup_id: str
    starts_at: datetime
    capacity: int | None
    sequence: int


class MeetupCancelled(EventsEvent):
    hub_id: str
    meetup_id: str
    sequence: int


class RsvpGiven(EventsEvent):
    """A member's first answer."""

    hub_id: str
    meetup_id: str
    member_id: str
    answer: Answer
    seat: Seat
    by_link: bool


class RsvpChanged(EventsEvent):
    hub_id: str
    meetup_id: str
    member_id: str
    answer: Answer
    seat: Seat
    previous: Answer
    by_link: bool


class PromotedFromWaitlist(EventsEvent):
    hub_id: str
    meetup_id: str
    member_id: str


class DatePollOpened(EventsEvent):
    hub_id: str
    poll_id: str
    slots: int


class DatePollVoted(EventsEvent):
    hub_id: str
    poll_id: str
    member_id: str


class DatePollClosed(EventsEvent):
    hub_id: str
    poll_id: str
    meetup_id: str
    starts_at: datetime


class MeetupHeld(EventsEvent):
    hub_id: str
    meetup_id: str


class AttendanceRecorded(EventsEvent):
    """One entry per member (visitors are counted, never named)."""

    hub_id: str
    meetup_id: str
    member_id: str | None
    status: AttendanceStatus
    starts_at: datetime


class MeetupClosed(EventsEvent):
    hub_id: str
    meetup_id: str
    next_meetup_id: str
    present: int  # members present or late
    visitors: int


class MissionCardDrawn(EventsEvent):
    hub_id: str
    meetup_id: str
    draw_id: str
    member_id: str
    card_id: str
    seed: int  # the draw is reproducible from it


class MissionCardCompleted(EventsEvent):
    hub_id: str
    meetup_id: str
    draw_id: str
    member_id: str


class VisitorInvited(EventsEvent):
    """A visitor was invited (never who: an opaque id, per hub and person)."""

    hub_id: str
    meetup_id: str
    visitor_id: str
    invited_by: str
    visits: int


class ReminderSent(EventsEvent):
    """The reminders of a meetup for one lead time (hours before its start)
    are due and recorded, once: the members are mailed from it."""

    hub_id: str
    meetup_id: str
    lead_hours: int


class WorkshopProposed(EventsEvent):
    hub_id: str
    proposal_id: str
    host_id: str


class EraseVisitor(EventsCommand[Done]):
    """A co-admin of the visitor's hub or a tenant admin: erase a visitor's
    name and address (docs/erasure.md); their visits stay, counted, as a
    former visitor. Asked again: nothing more."""

    visitor_id: str
