"""Given state and a client's toolkit for the meetups end-to-end tests
(`test_meetups_*.py`): a network with a lunch club (an open hub of the 11e,
its admin, a facilitator and members), the meetups mutations with what a
client selects after each, and the local times a hub in Paris works with.

Time never passes by sleeping: the tests move the shared MovableClock and
wait on conditions (`eventually`)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.runtime.clock import MovableClock
from tests.e2e.conftest import (
    ERROR_FIELDS,
    Network,
    Session,
    System,
    join,
    mutate,
    open_network,
)
from tests.support.meetups import members_known
from tests.support.waiting import eventually

PARIS = ZoneInfo("Europe/Paris")
VOLTAIRE = {"centre": {"lat": 48.8575, "lon": 2.3795}, "radiusKm": 1.5}
IN_11E = {"lat": 48.8560, "lon": 2.3750, "postcode": "75011"}
BISTROT = {"name": "Le Bistrot Voltaire", "address": "12 boulevard Voltaire, 75011 Paris"}
CAFE = {"name": "Café de la Roquette", "address": "3 rue de la Roquette, 75011 Paris"}

# -- what a client selects ------------------------------------------------------

VENUE = "venue { name address }"
MEETUP = (
    "id meetupId kind title topic localStart timezone startsAt endsAt durationMinutes"
    f" {VENUE} capacity state cancelReason rsvpDeadline seated waiting maybe declined"
    " sequence myRsvp { answer seat waitlistPosition member { id } }"
    " host { id displayName } series { id } poll { id }"
    " previousMeetup { id } nextMeetup { id }"
)
SERIES = (
    "id seriesId name rrule startsOn startTime timezone durationMinutes"
    f" {VENUE} capacity rsvpDeadlineHours reminderHours active nextLocalStart hub {{ id }}"
)
POLL = (
    "id pollId title timezone durationMinutes"
    f" {VENUE} state chosenSlotId voters"
    " slots { slotId localStart yes ifNeedBe no myVote } meetup { id localStart } series { id }"
)
ATTENDANCE = "attendance { status substitute selfCheckedIn visitorId member { id } }"
DRAW = "id drawId cardId title doneAt member { id } meetup { id }"
OPEN_CARD = "id drawId cardId title drawnAt member { id } meetup { id }"
PROPOSAL = "id proposalId topic description proposedAt host { id displayName } meetup { id }"
AGENDA = "agenda { timezone deck { cards { cardId title singleHolder } } }"

MUTATIONS: dict[str, tuple[str, str]] = {
    # name: (input type, selection of its success type)
    "setHubAgenda": ("SetHubAgendaInput", f"... on HubAgendaPayload {{ {AGENDA} }}"),
    "createSeries": (
        "CreateSeriesInput",
        f"... on MeetupSeriesPayload {{ series {{ {SERIES} }} }}",
    ),
    "changeSeries": (
        "ChangeSeriesInput",
        f"... on MeetupSeriesPayload {{ series {{ {SERIES} }} }}",
    ),
    "scheduleMeetup": ("ScheduleMeetupInput", f"... on MeetupPayload {{ meetup {{ {MEETUP} }} }}"),
    "rescheduleMeetup": (
        "RescheduleMeetupInput",
        f"... on MeetupPayload {{ meetup {{ {MEETUP} }} }}",
    ),
    "cancelMeetup": ("CancelMeetupInput", f"... on MeetupPayload {{ meetup {{ {MEETUP} }} }}"),
    "closeMeetup": (
        "CloseMeetupInput",
        f"... on MeetupClosed {{ closed {{ {MEETUP} }} next {{ {MEETUP} }} cards {{ {DRAW} }} }}",
    ),
    "giveRsvp": ("GiveRsvpInput", f"... on MeetupPayload {{ meetup {{ {MEETUP} }} }}"),
    "answerByLink": (
        "AnswerByLinkInput",
        "... on LinkAnswered { kind answer seat meetupId pollId }",
    ),
    "revokeLinks": ("RevokeLinksInput", "... on LinksRevoked { ok }"),
    "openDatePoll": ("OpenDatePollInput", f"... on DatePollPayload {{ poll {{ {POLL} }} }}"),
    "voteOnPoll": ("VoteOnPollInput", f"... on DatePollPayload {{ poll {{ {POLL} }} }}"),
    "closeDatePoll": ("CloseDatePollInput", f"... on DatePollPayload {{ poll {{ {POLL} }} }}"),
    "recordAttendance": ("RecordAttendanceInput", f"... on AttendancePayload {{ {ATTENDANCE} }}"),
    "checkIn": ("MeetupInput", f"... on AttendancePayload {{ {ATTENDANCE} }}"),
    "inviteVisitor": (
        "InviteVisitorInput",
        "... on VisitorInvited { visitorId visits maxVisits meetup { id } }",
    ),
    "completeCard": ("CompleteCardInput", f"... on CardCompleted {{ card {{ {OPEN_CARD} }} }}"),
    "proposeWorkshop": (
        "ProposeWorkshopInput",
        f"... on WorkshopProposalPayload {{ proposal {{ {PROPOSAL} }} }}",
    ),
    "scheduleWorkshop": (
        "ScheduleWorkshopInput",
        f"... on MeetupPayload {{ meetup {{ {MEETUP} }} }}",
    ),
    "setReminders": ("SetRemindersInput", "... on ReminderSettings { reminders }"),
    "calendarFeed": (
        "CalendarFeedInput",
        "... on CalendarFeedPayload { feed { scope token hubId } }",
    ),
    "revokeCalendarFeed": (
        "CalendarFeedInput",
        "... on CalendarFeedPayload { feed { scope token hubId } }",
    ),
}

HUB_MEETUPS = f"""
query($id: ID!, $when: MeetupWhen!, $first: Int!, $after: String) {{
  hub(id: $id) {{
    id
    meetups(when: $when, first: $first, after: $after) {{
      totalCount pageInfo {{ hasNextPage endCursor }}
      edges {{ cursor node {{ {MEETUP} }} }}
    }}
  }}
}}
"""
HUB_MEETUP_FIELDS = f"""
query($id: ID!) {{
  hub(id: $id) {{
    series {{ {SERIES} }}
    datePolls {{ {POLL} }}
    openCards {{ {OPEN_CARD} }}
    workshopProposals {{ {PROPOSAL} }}
    {AGENDA}
  }}
}}
"""
MEETUP_PAGE = f"""
query($id: ID!) {{
  meetup(id: $id) {{
    {MEETUP}
    rsvps {{ answer seat waitlistPosition answeredAt member {{ id displayName }} }}
    {ATTENDANCE}
    cards {{ {DRAW} }}
    hub {{ id name }}
  }}
}}
"""


def mutation_document(name: str) -> str:
    input_type, success = MUTATIONS[name]
    return (
        f"mutation($input: {input_type}!) {{ {name}(input: $input) {{ __typename {success}"
        f" ...Err }} }}{ERROR_FIELDS}"
    )


async def act(
    system: System,
    name: str,
    input: dict[str, Any],
    who: Session | str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run one meetups mutation as `who` (a session, a raw token, or nobody);
    its result, a success or an error type (a top-level error fails the test)."""
    token = who.access if isinstance(who, Session) else who
    if headers is None:
        answer = await system.gql(mutation_document(name), {"input": input}, token)
    else:
        response = await system.client.post(
            "/graphql",
            json={"query": mutation_document(name), "variables": {"input": input}},
            headers=headers,
        )
        answer = response.json()
    assert "errors" not in answer, (name, answer)
    return answer["data"][name]


async def ok(
    system: System, name: str, input: dict[str, Any], who: Session | None, typename: str
) -> dict[str, Any]:
    result = await act(system, name, input, who)
    assert result["__typename"] == typename, (name, result)
    return result


async def query(
    system: System, document: str, variables: dict[str, Any], who: Session
) -> dict[str, Any]:
    answer = await system.gql(document, variables, who.access)
    assert "errors" not in answer, answer
    return answer["data"]


async def meetup_page(system: System, meetup_id: str, who: Session) -> dict[str, Any]:
    found = (await query(system, MEETUP_PAGE, {"id": meetup_id}, who))["meetup"]
    assert found is not None
    return found


async def hub_meetups(
    system: System, hub_id: str, who: Session, when: str = "UPCOMING"
) -> list[dict[str, Any]]:
    data = await query(system, HUB_MEETUPS, {"id": hub_id, "when": when, "first": 50}, who)
    return [e["node"] for e in data["hub"]["meetups"]["edges"]]


async def hub_fields(system: System, hub_id: str, who: Session) -> dict[str, Any]:
    hub = (await query(system, HUB_MEETUP_FIELDS, {"id": hub_id}, who))["hub"]
    assert hub is not None
    return hub


# -- time ---------------------------------------------------------------------------


def local(value: datetime) -> str:
    """A LocalDateTime as the API writes it."""
    return value.replace(tzinfo=None).isoformat()


def parse_local(value: str) -> datetime:
    return datetime.fromisoformat(value)


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def paris_now(clock: MovableClock) -> datetime:
    return clock.now().astimezone(PARIS).replace(tzinfo=None)


def thursday_lunch(clock: MovableClock, weeks: int = 0) -> datetime:
    """A Thursday 12:30 in Paris at least two days ahead (answers close 24 h
    before), `weeks` later."""
    today = paris_now(clock).date()
    days = (3 - today.weekday()) % 7
    if days < 2:
        days += 7
    day = today + timedelta(days=days + 7 * weeks)
    return datetime(day.year, day.month, day.day, 12, 30)


def move_to(clock: MovableClock, starts_at: str, after: timedelta = timedelta()) -> None:
    """Move the clock to `after` past a meetup's start (a DateTime, UTC)."""
    target = instant(starts_at) + after
    clock.advance(target - clock.now())


def global_id(type_name: str, *parts: str) -> str:
    return base64.urlsafe_b64encode(":".join((type_name, *parts)).encode()).decode()


# -- given: a lunch club ----------------------------------------------------------------


@dataclass
class Club:
    """A network's open neighbourhood hub, known to the meetups service: its
    admin (founder, co-admin), Karim its facilitator, and members; Véra is a
    member of the network but not of the hub."""

    net: Network
    hub: dict[str, Any]
    facilitator: Session
    members: list[Session]
    outsider: Session
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def admin(self) -> Session:
        return self.net.admin

    @property
    def hub_id(self) -> str:
        return str(self.hub["id"])


NAMES = [
    ("ines", "Inès Moreau", "translator"),
    ("paul", "Paul Girard", "electrician"),
    ("lea", "Léa Martin", "baker"),
    ("bruno", "Bruno Lefort", "florist"),
]


async def lunch_club(system: System, slug: str = "pole-11e", members: int = 4) -> Club:
    net = await open_network(system, slug)
    domain = f"{slug}.example"
    karim = await join(system, net, f"karim@{domain}", "Karim Benali", "plumber", work=IN_11E)
    people = [
        await join(system, net, f"{key}@{domain}", name, activity, work=IN_11E)
        for key, name, activity in NAMES[:members]
    ]
    vera = await join(system, net, f"vera@{domain}", "Véra Dumas", "lawyer", work=IN_11E)
    created = await mutate(
        system,
        "createHub",
        {
            "name": "Cercle Voltaire",
            "kind": "NEIGHBOURHOOD",
            "area": VOLTAIRE,
            "rules": {"admissionMode": "OPEN"},
        },
        net.admin.access,
    )
    assert created["__typename"] == "HubPayload", created
    hub = created["hub"]
    for person in (karim, *people):
        joined = await mutate(system, "joinHub", {"hubId": hub["id"]}, person.access)
        assert joined["__typename"] == "HubMembershipPayload", joined
    volunteered = await mutate(system, "volunteerAsFacilitator", {"hubId": hub["id"]}, karim.access)
    assert volunteered["__typename"] == "HubPayload", volunteered
    handed = await mutate(system, "handOverFacilitation", {"hubId": hub["id"]}, net.admin.access)
    assert handed["hub"]["facilitator"]["id"] == karim.id, handed
    club = Club(net=net, hub=hub, facilitator=karim, members=people, outsider=vera)
    await known(system, club, 2 + members, facilitator=karim)
    return club


async def known(
    system: System, club: Club, members: int, facilitator: Session | None = None
) -> None:
    """Wait until the meetups service has learnt the hub's members (and its
    facilitator) from hubs' events: a reaction, in the background."""
    from services.events.views import directory

    host = system.hosts["events"]
    await members_known(host, club.net.tenant_id, club.hub["hubId"], members)
    if facilitator is not None:

        def has_facilitator() -> bool:
            with host.engine.connect() as conn:
                row = directory.hub_row(conn, club.net.tenant_id, club.hub["hubId"])
                return row is not None and row.facilitator_id == facilitator.member_id

        await eventually(has_facilitator)


async def max_visits_known(system: System, club: Club, max_visits: int) -> None:
    from services.events.views import directory

    host = system.hosts["events"]

    def changed() -> bool:
        with host.engine.connect() as conn:
            row = directory.hub_row(conn, club.net.tenant_id, club.hub["hubId"])
            return row is not None and row.max_visits == max_visits

    await eventually(changed)


def utc_now(clock: MovableClock) -> datetime:
    return clock.now().astimezone(UTC)


# -- given: a hub's agenda with one of everything ----------------------------------------


@dataclass
class Agenda:
    """A lunch club's agenda, the clock on day D at 12:35 (Paris): `breakfast`
    (D 12:00) closed, its cards drawn to Inès and Paul; `lunch` (D 12:30, in
    the series) running, Inès marked present; `next_lunch` (D+7) with Inès and
    Paul seated (two seats); `later` (D+14); an open date poll (D+8, D+9); a
    workshop proposed by Inès."""

    club: Club
    day: datetime
    series: dict[str, Any]
    breakfast: dict[str, Any]
    lunch: dict[str, Any]
    next_lunch: dict[str, Any]
    later: dict[str, Any]
    poll: dict[str, Any]
    proposal: dict[str, Any]
    cards: dict[str, dict[str, Any]]  # member global id -> the card drawn at breakfast


async def _plan(system: System, club: Club, day: datetime) -> dict[str, Any]:
    karim = club.facilitator
    ines, paul = club.members[:2]
    series = (
        await ok(
            system,
            "createSeries",
            {
                "hubId": club.hub_id,
                "name": "Déjeuner du jeudi",
                "rrule": "FREQ=WEEKLY;BYDAY=TH",
                "startsOn": day.date().isoformat(),
                "startTime": "12:30",
                "venue": BISTROT,
                "capacity": 2,
            },
            karim,
            "MeetupSeriesPayload",
        )
    )["series"]

    async def schedule(start: datetime, **extra: Any) -> dict[str, Any]:
        done = await ok(
            system,
            "scheduleMeetup",
            {"hubId": club.hub_id, "localStart": local(start), **extra},
            karim,
            "MeetupPayload",
        )
        return dict(done["meetup"])

    planned: dict[str, Any] = {
        "series": series,
        "breakfast": await schedule(day.replace(hour=12, minute=0), title="Café", venue=CAFE),
        "lunch": await schedule(day, seriesId=series["id"]),
        "next_lunch": await schedule(day + timedelta(days=7), seriesId=series["id"]),
        "later": await schedule(day + timedelta(days=14), seriesId=series["id"]),
    }
    for who in (ines, paul):
        await ok(
            system,
            "giveRsvp",
            {"meetupId": planned["next_lunch"]["id"], "answer": "YES"},
            who,
            "MeetupPayload",
        )
    evening = day.replace(hour=19, minute=0)
    planned["poll"] = (
        await ok(
            system,
            "openDatePoll",
            {
                "hubId": club.hub_id,
                "title": "Afterwork",
                "slots": [local(evening + timedelta(days=8)), local(evening + timedelta(days=9))],
                "venue": CAFE,
            },
            karim,
            "DatePollPayload",
        )
    )["poll"]
    planned["proposal"] = (
        await ok(
            system,
            "proposeWorkshop",
            {"hubId": club.hub_id, "topic": "Facturer sans douleur"},
            ines,
            "WorkshopProposalPayload",
        )
    )["proposal"]
    return planned


async def _hold(system: System, club: Club, planned: dict[str, Any]) -> dict[str, Any]:
    karim = club.facilitator
    ines, paul = club.members[:2]
    present = [{"memberId": m.id, "status": "PRESENT"} for m in (ines, paul)]
    await ok(
        system,
        "recordAttendance",
        {"meetupId": planned["breakfast"]["id"], "entries": present},
        karim,
        "AttendancePayload",
    )
    closed = await ok(
        system,
        "closeMeetup",
        {"meetupId": planned["breakfast"]["id"], "nextMeetupId": planned["lunch"]["id"]},
        karim,
        "MeetupClosed",
    )
    await ok(
        system,
        "recordAttendance",
        {"meetupId": planned["lunch"]["id"], "entries": present[:1]},
        karim,
        "AttendancePayload",
    )
    return {"cards": {c["member"]["id"]: c for c in closed["cards"]}}


async def given_agendas(system: System, clock: MovableClock, *slugs: str) -> list[Agenda]:
    """One `Agenda` per network (the clock is shared: all are planned, then
    the clock moves to day D 12:35, then all are held)."""
    clubs = [await lunch_club(system, slug, members=3) for slug in slugs]
    day = thursday_lunch(clock)
    plans = [await _plan(system, club, day) for club in clubs]
    move_to(clock, plans[0]["lunch"]["startsAt"], timedelta(minutes=5))
    agendas = []
    for club, planned in zip(clubs, plans, strict=True):
        held = await _hold(system, club, planned)
        agendas.append(Agenda(club=club, day=day, **planned, **held))
    return agendas
