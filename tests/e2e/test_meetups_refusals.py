"""Every meetups mutation's refusals, through GraphQL over HTTP: signed out
(or the operator, or a garbage token), a member of the network who is not a
member of the hub, a member of the hub who is not its facilitator or an
admin, another network's ids (answered exactly like missing ones); then bad
input, several shapes for each mutation. Each refusal is a typed error of
the mutation's result union, and nothing changes: the services' event counts
and what the hub and its meetups show are the same before and after. Then
the same valid inputs, from the right people, go through.

The tests share one system per store (`shared_system`): each opens its own
two networks (`given_agendas`), and the shared clock only moves forward."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.events import Mutation
from services.events.links import Link, link_key, sign
from services.runtime.clock import MovableClock
from tests.e2e.conftest import System, assert_error
from tests.e2e.meetups import (
    BISTROT,
    CAFE,
    MUTATIONS,
    Agenda,
    act,
    given_agendas,
    global_id,
    hub_fields,
    hub_meetups,
    local,
    meetup_page,
    ok,
    paris_now,
)
from tests.support.env import OPERATOR_TOKEN

pytestmark = [pytest.mark.asyncio, pytest.mark.shared_system]

BAD_IDS = ["garbage", "", global_id("Meetup", "not-a-uuid")]
NODE_FIELDS = {
    "Meetup": "id meetupId title state",
    "CardDraw": "id drawId cardId doneAt member { id }",
    "DatePoll": "id pollId title state",
    "MeetupSeries": "id seriesId name rrule",
    "WorkshopProposal": "id proposalId topic host { id }",
}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


async def test_the_toolkit_knows_every_meetups_mutation() -> None:
    defined = {camel(f.python_name) for f in Mutation.__strawberry_definition__.fields}  # type: ignore[attr-defined]
    assert defined == set(MUTATIONS)
    assert len(defined) == 22


async def snapshot(system: System, agenda: Agenda) -> dict[str, Any]:
    """What the hub and its meetups show, and the services' event counts."""
    club, viewer = agenda.club, agenda.club.admin
    return {
        "counts": [await system.event_count(s) for s in ("events", "hubs", "identity")],
        "hub": await hub_fields(system, club.hub_id, viewer),
        "upcoming": await hub_meetups(system, club.hub_id, viewer),
        "past": await hub_meetups(system, club.hub_id, viewer, "PAST"),
        "meetups": [
            await meetup_page(system, m["id"], viewer)
            for m in (agenda.breakfast, agenda.lunch, agenda.next_lunch, agenda.later)
        ],
    }


def signed_link(
    system: System,
    agenda: Agenda,
    holder: str,
    target: str,
    *,
    kind: str = "rsvp",
    answer: str = "yes",
    secret: str | None = None,
    expires_in: timedelta = timedelta(days=30),
    version: int = 0,
) -> str:
    """A link as the e-mails carry it (signed with the links' key)."""
    key = link_key(secret or system.settings.jwt_secret)
    return sign(
        key,
        Link(
            kind=kind,
            tenant_id=agenda.club.net.tenant_id,
            target_id=target,
            holder_id=holder,
            answer=answer,
            slot_id=None,
            version=version,
            expires_at=datetime.now(UTC) + expires_in,
        ),
    )


# (input field, type) that names the object each mutation acts on
TARGETS: dict[str, tuple[str, str]] = {
    "setHubAgenda": ("hubId", "Hub"),
    "createSeries": ("hubId", "Hub"),
    "changeSeries": ("seriesId", "MeetupSeries"),
    "scheduleMeetup": ("hubId", "Hub"),
    "rescheduleMeetup": ("meetupId", "Meetup"),
    "cancelMeetup": ("meetupId", "Meetup"),
    "closeMeetup": ("meetupId", "Meetup"),
    "giveRsvp": ("meetupId", "Meetup"),
    "revokeLinks": ("meetupId", "Meetup"),
    "openDatePoll": ("hubId", "Hub"),
    "voteOnPoll": ("pollId", "DatePoll"),
    "closeDatePoll": ("pollId", "DatePoll"),
    "recordAttendance": ("meetupId", "Meetup"),
    "checkIn": ("meetupId", "Meetup"),
    "inviteVisitor": ("meetupId", "Meetup"),
    "completeCard": ("drawId", "CardDraw"),
    "proposeWorkshop": ("hubId", "Hub"),
    "scheduleWorkshop": ("proposalId", "WorkshopProposal"),
    "calendarFeed": ("hubId", "Hub"),
    "revokeCalendarFeed": ("hubId", "Hub"),
}


def their_id(theirs: Agenda, field: str) -> str:
    """The other network's object of the kind `field` names."""
    return {
        "hubId": theirs.club.hub_id,
        "seriesId": theirs.series["id"],
        "meetupId": theirs.next_lunch["id"],
        "pollId": theirs.poll["id"],
        "drawId": next(iter(theirs.cards.values()))["id"],
        "proposalId": theirs.proposal["id"],
    }[field]


async def test_every_meetups_mutation_refuses_strangers_plain_members_and_other_networks(
    system: System, clock: MovableClock
) -> None:
    ours, theirs = await given_agendas(system, clock, "pole-11e", "other-net")
    club = ours.club
    admin, karim, outsider = club.admin, club.facilitator, club.outsider
    ines, paul, lea = club.members
    H, day = club.hub_id, ours.day
    ines_card = ours.cards[ines.id]

    # each mutation: who may, with a valid input (in an order that works)
    valid: list[tuple[str, Any, dict[str, Any], str]] = [
        ("setHubAgenda", admin, {"hubId": H, "timezone": "Europe/Paris"}, "HubAgendaPayload"),
        (
            "createSeries",
            karim,
            {
                "hubId": H,
                "name": "Afterwork du mois",
                "rrule": "FREQ=MONTHLY;BYDAY=1TU",
                "startsOn": day.date().isoformat(),
                "startTime": "19:00",
                "venue": CAFE,
            },
            "MeetupSeriesPayload",
        ),
        (
            "changeSeries",
            karim,
            {"seriesId": ours.series["id"], "changes": {"capacity": 3}},
            "MeetupSeriesPayload",
        ),
        (
            "scheduleMeetup",
            karim,
            {
                "hubId": H,
                "localStart": local(day + timedelta(days=21)),
                "title": "Déjeuner de rentrée",
                "venue": BISTROT,
            },
            "MeetupPayload",
        ),
        (
            "rescheduleMeetup",
            karim,
            {"meetupId": ours.next_lunch["id"], "venue": CAFE},
            "MeetupPayload",
        ),
        ("giveRsvp", lea, {"meetupId": ours.next_lunch["id"], "answer": "YES"}, "MeetupPayload"),
        (
            "answerByLink",
            None,
            {"token": signed_link(system, ours, lea.member_id, ours.later["meetupId"])},
            "LinkAnswered",
        ),
        (
            "revokeLinks",
            ines,
            {"meetupId": ours.next_lunch["id"], "memberId": ines.id},
            "LinksRevoked",
        ),
        (
            "openDatePoll",
            karim,
            {
                "hubId": H,
                "title": "Pique-nique",
                "slots": [local(day + timedelta(days=30)), local(day + timedelta(days=31))],
                "venue": {"name": "Square Maurice-Gardette"},
            },
            "DatePollPayload",
        ),
        (
            "voteOnPoll",
            ines,
            {"pollId": ours.poll["id"], "votes": [{"slotId": "s1", "vote": "YES"}]},
            "DatePollPayload",
        ),
        ("closeDatePoll", karim, {"pollId": ours.poll["id"], "slotId": "s1"}, "DatePollPayload"),
        (
            "recordAttendance",
            karim,
            {"meetupId": ours.lunch["id"], "entries": [{"memberId": paul.id, "status": "LATE"}]},
            "AttendancePayload",
        ),
        ("checkIn", lea, {"meetupId": ours.lunch["id"]}, "AttendancePayload"),
        (
            "inviteVisitor",
            paul,
            {"meetupId": ours.next_lunch["id"], "name": "Jeanne Petit", "email": "j@exemple.fr"},
            "VisitorInvited",
        ),
        ("completeCard", ines, {"drawId": ines_card["id"]}, "CardCompleted"),
        (
            "proposeWorkshop",
            paul,
            {"hubId": H, "topic": "La photo de produit", "description": "Avec un téléphone."},
            "WorkshopProposalPayload",
        ),
        (
            "scheduleWorkshop",
            karim,
            {
                "proposalId": ours.proposal["id"],
                "localStart": local(day + timedelta(days=3, hours=6)),
                "venue": CAFE,
            },
            "MeetupPayload",
        ),
        ("setReminders", paul, {"reminders": False}, "ReminderSettings"),
        ("calendarFeed", paul, {"scope": "HUB", "hubId": H}, "CalendarFeedPayload"),
        ("revokeCalendarFeed", paul, {"scope": "HUB", "hubId": H}, "CalendarFeedPayload"),
        (
            "closeMeetup",
            karim,
            {"meetupId": ours.lunch["id"], "nextMeetupId": ours.next_lunch["id"]},
            "MeetupClosed",
        ),
        ("cancelMeetup", karim, {"meetupId": ours.later["id"], "reason": "Férié"}, "MeetupPayload"),
    ]
    assert {name for name, *_ in valid} == set(MUTATIONS)
    before = await snapshot(system, ours)
    their_before = await snapshot(system, theirs)

    for name, _, input, _ in valid:
        if name == "answerByLink":
            continue  # no sign-in: the link is the credential (its refusals: bad input)
        # no credential, the operator's (no member), a garbage token
        for token in (None, OPERATOR_TOKEN):
            assert_error(
                await act(system, name, input, token), "Unauthenticated", "unauthenticated"
            )
        garbage = await act(system, name, input, headers={"Authorization": "Bearer not.a.jwt"})
        assert_error(garbage, "Unauthenticated", "unauthenticated")
        if name not in TARGETS:
            continue
        # another network's object is answered exactly like one that does not exist
        field, type_name = TARGETS[name]
        random_id = global_id(type_name, str(uuid.uuid4()), str(uuid.uuid4()))
        missing = await act(system, name, {**input, field: random_id}, theirs.club.admin)
        assert_error(missing, "NotFound", "not_found")
        assert await act(system, name, input, theirs.club.admin) == missing, name
        mine_elsewhere = {**input, field: their_id(theirs, field)}
        assert await act(system, name, mine_elsewhere, admin) == missing, name
        assert await act(system, name, {**input, field: random_id}, admin) == missing, name

    # a member of the network who is not a member of the hub
    for name, _, input, _ in valid:
        if name in TARGETS and name != "completeCard":
            assert_error(await act(system, name, input, outsider), "Forbidden", "forbidden")
    # a member of the hub who is neither its facilitator nor an admin: no planning,
    # no attendance, no closing, nobody else's links
    organising = {
        "setHubAgenda",
        "createSeries",
        "changeSeries",
        "scheduleMeetup",
        "rescheduleMeetup",
        "cancelMeetup",
        "closeMeetup",
        "openDatePoll",
        "closeDatePoll",
        "recordAttendance",
        "scheduleWorkshop",
    }
    for name, _, input, _ in valid:
        if name in organising:
            assert_error(await act(system, name, input, paul), "Forbidden", "forbidden")
    # the facilitator is no admin: the hub's settings are the admins'
    assert_error(await act(system, "setHubAgenda", valid[0][2], karim), "Forbidden", "forbidden")
    for links in (
        {"meetupId": ours.next_lunch["id"]},  # everyone's
        {"meetupId": ours.next_lunch["id"], "memberId": ines.id},  # someone else's
        {"pollId": ours.poll["id"]},
    ):
        assert_error(await act(system, "revokeLinks", links, paul), "Forbidden", "forbidden")
    # a card is completed by its holder only
    for who in (paul, karim, admin, outsider):
        assert_error(
            await act(system, "completeCard", {"drawId": ines_card["id"]}, who),
            "RuleViolation",
            "rule_violation",
            rule="card_holder",
        )

    # nothing changed, here or there
    assert await snapshot(system, ours) == before
    assert await snapshot(system, theirs) == their_before
    # node(id:) answers what each type's own field answers; another network's
    # object is null, exactly like a missing one
    for type_name, key in (("Meetup", "meetup"), ("DatePoll", "datePoll")):
        query = f"query($id: ID!) {{ {key}(id: $id) {{ id }} node(id: $id) {{ id }} }}"
        theirs_id = theirs.next_lunch["id"] if type_name == "Meetup" else theirs.poll["id"]
        for gid in (theirs_id, global_id(type_name, str(uuid.uuid4()))):
            assert await system.gql(query, {"id": gid}, admin.access) == {
                "data": {key: None, "node": None}
            }
    own = (
        await system.gql(
            f"""query($meetup: ID!, $poll: ID!, $hub: ID!) {{
              meetup(id: $meetup) {{ {NODE_FIELDS["Meetup"]} cards {{ {NODE_FIELDS["CardDraw"]} }} }}
              datePoll(id: $poll) {{ {NODE_FIELDS["DatePoll"]} }}
              hub(id: $hub) {{ series {{ {NODE_FIELDS["MeetupSeries"]} }}
                              workshopProposals {{ {NODE_FIELDS["WorkshopProposal"]} }} }}
            }}""",
            {"meetup": ours.breakfast["id"], "poll": ours.poll["id"], "hub": H},
            lea.access,
        )
    )["data"]
    shown = {
        "Meetup": {k: v for k, v in own["meetup"].items() if k != "cards"},
        "CardDraw": own["meetup"]["cards"][0],
        "DatePoll": own["datePoll"],
        "MeetupSeries": own["hub"]["series"][0],
        "WorkshopProposal": own["hub"]["workshopProposals"][0],
    }
    theirs_ids = {
        "Meetup": theirs.breakfast["id"],
        "CardDraw": next(iter(theirs.cards.values()))["id"],
        "DatePoll": theirs.poll["id"],
        "MeetupSeries": theirs.series["id"],
        "WorkshopProposal": theirs.proposal["id"],
    }
    for type_name, expected in shown.items():
        query = (
            f"query($id: ID!) {{ node(id: $id) {{ __typename"
            f" ... on {type_name} {{ {NODE_FIELDS[type_name]} }} }} }}"
        )
        found = await system.gql(query, {"id": expected["id"]}, lea.access)
        assert found == {"data": {"node": {"__typename": type_name, **expected}}}, type_name
        # theirs, and a random one (with and without what finds it again), are null
        for gid in (
            theirs_ids[type_name],
            global_id(type_name, str(uuid.uuid4()), str(uuid.uuid4())),
            global_id(type_name, str(uuid.uuid4())),
        ):
            answer = await system.gql(query, {"id": gid}, admin.access)
            assert answer == {"data": {"node": None}}, (type_name, answer)
        anonymous = await system.gql(query, {"id": expected["id"]})
        assert [e["extensions"]["code"] for e in anonymous["errors"]] == ["UNAUTHENTICATED"]

    # the same inputs, from the right people, go through
    for name, who, input, success in valid:
        await ok(system, name, input, who, success)
    assert (await system.event_count("events")) > before["counts"][0]
    # the link revoked by Inès no longer works; Léa's answered (she had a link)
    revoked = signed_link(system, ours, ines.member_id, ours.next_lunch["meetupId"], answer="no")
    assert_error(
        await act(system, "answerByLink", {"token": revoked}), "InvalidToken", "invalid_token"
    )
    later = await meetup_page(system, ours.later["id"], admin)
    assert [(r["member"]["id"], r["answer"]) for r in later["rsvps"]] == [(lea.id, "YES")]


async def test_bad_input_to_every_meetups_mutation_changes_nothing(
    system: System, clock: MovableClock
) -> None:
    ours, theirs = await given_agendas(system, clock, "pole-11e", "other-net")
    club = ours.club
    admin, karim, outsider = club.admin, club.facilitator, club.outsider
    ines, paul, lea = club.members
    H, day = club.hub_id, ours.day
    B, L, N, P = ours.breakfast["id"], ours.lunch["id"], ours.next_lunch["id"], ours.poll["id"]
    past = local(paris_now(clock) - timedelta(hours=1))
    future = local(day + timedelta(days=21))
    random_member = global_id("Member", str(uuid.uuid4()))
    random_meetup = global_id("Meetup", str(uuid.uuid4()))

    # (mutation, who, input, error type, field or rule)
    cases: list[tuple[str, Any, dict[str, Any], str, str | None]] = []

    def refuse(
        name: str,
        who: Any,
        input: dict[str, Any],
        field: str | None,
        typename: str = "ValidationError",
    ) -> None:
        cases.append((name, who, input, typename, field))

    def rule(name: str, who: Any, input: dict[str, Any], rule_name: str) -> None:
        cases.append((name, who, input, "RuleViolation", rule_name))

    def missing(name: str, who: Any, input: dict[str, Any]) -> None:
        cases.append((name, who, input, "NotFound", None))

    # ids: malformed, or of another type, name the input field
    with_ids: list[tuple[str, Any, dict[str, Any], str]] = [
        ("setHubAgenda", admin, {"timezone": "Europe/Paris"}, "hubId"),
        ("changeSeries", karim, {"changes": {"capacity": 3}}, "seriesId"),
        ("scheduleMeetup", karim, {"localStart": future, "venue": BISTROT}, "hubId"),
        ("rescheduleMeetup", karim, {"venue": CAFE}, "meetupId"),
        ("cancelMeetup", karim, {"reason": "x"}, "meetupId"),
        ("closeMeetup", karim, {"nextMeetupId": N}, "meetupId"),
        ("giveRsvp", lea, {"answer": "YES"}, "meetupId"),
        ("voteOnPoll", ines, {"votes": [{"slotId": "s1", "vote": "YES"}]}, "pollId"),
        ("closeDatePoll", karim, {"slotId": "s1"}, "pollId"),
        ("checkIn", lea, {}, "meetupId"),
        ("inviteVisitor", paul, {"name": "Jeanne", "email": "j@exemple.fr"}, "meetupId"),
        ("completeCard", ines, {}, "drawId"),
        ("proposeWorkshop", paul, {"topic": "x"}, "hubId"),
        ("scheduleWorkshop", karim, {"localStart": future, "venue": CAFE}, "proposalId"),
        ("calendarFeed", paul, {"scope": "HUB"}, "hubId"),
        ("revokeCalendarFeed", paul, {"scope": "HUB"}, "hubId"),
    ]
    for name, who, rest, field in with_ids:
        for bad in [*BAD_IDS, paul.id]:  # a member's id names no meetup, hub or poll
            refuse(name, who, {**rest, field: bad}, field)
    for bad in [*BAD_IDS, H]:
        refuse(
            "scheduleMeetup", karim, {"hubId": H, "localStart": future, "seriesId": bad}, "seriesId"
        )
        refuse("closeMeetup", karim, {"meetupId": L, "nextMeetupId": bad}, "nextMeetupId")
        refuse(
            "recordAttendance",
            karim,
            {"meetupId": L, "entries": [{"memberId": bad, "status": "PRESENT"}]},
            "memberId",
        )
        refuse(
            "recordAttendance",
            karim,
            {"meetupId": L, "entries": [{"visitorId": bad, "status": "PRESENT"}]},
            "visitorId",
        )
        refuse("revokeLinks", karim, {"meetupId": N, "memberId": bad}, "memberId")
        refuse("revokeLinks", karim, {"pollId": bad}, "pollId")

    # the hub's agenda: an IANA time zone, a deck of 1 to 60 cards
    for zone in ("Mars/Olympus", "", "../../etc/passwd", "/etc/localtime", "Europe/" + "x" * 70):
        refuse("setHubAgenda", admin, {"hubId": H, "timezone": zone}, "timezone")
    for cards, field in (
        ([], "cards"),
        ([{"title": ""}], "cards[0].title"),
        ([{"title": "ok"}, {"title": "t" * 121}], "cards[1].title"),
        ([{"title": "ok", "cardId": "Pas Un Id"}], "cards"),
        ([{"title": "a", "cardId": "same"}, {"title": "b", "cardId": "same"}], "cards"),
        ([{"title": f"Carte {i}"} for i in range(61)], "cards"),
    ):
        refuse("setHubAgenda", admin, {"hubId": H, "cards": cards}, field)

    # series: a rhythm that gives dates, a name, bounded numbers, a venue
    series = {
        "hubId": H,
        "name": "Déjeuner",
        "rrule": "FREQ=WEEKLY;BYDAY=TH",
        "startsOn": day.date().isoformat(),
        "startTime": "12:30",
        "venue": BISTROT,
    }
    for rrule in (
        "",
        "FREQ=HOURLY",
        "nonsense",
        "FREQ=WEEKLY;BYDAY=XX",
        "FREQ=WEEKLY;INTERVAL=0",
        "FREQ=DAILY;BYHOUR=9,12",
        "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=31",
        "R" * 201,
    ):
        refuse("createSeries", karim, {**series, "rrule": rrule}, "rrule")
        refuse(
            "changeSeries",
            karim,
            {"seriesId": ours.series["id"], "changes": {"rrule": rrule}},
            "rrule",
        )
    for starts_on in ("1900-01-01", (day - timedelta(days=400)).date().isoformat(), "2999-01-01"):
        refuse("createSeries", karim, {**series, "startsOn": starts_on}, "startsOn")
    numbers: list[tuple[str, Any]] = [
        ("name", ""),
        ("name", "   "),
        ("name", "n" * 121),
        ("name", "Déjeuner\u202e"),
        ("capacity", 0),
        ("capacity", -1),
        ("capacity", 10_001),
        ("durationMinutes", 0),
        ("durationMinutes", -30),
        ("durationMinutes", 1441),
        ("rsvpDeadlineHours", -1),
        ("rsvpDeadlineHours", 721),
        ("reminderHours", [0]),
        ("reminderHours", [721]),
        ("reminderHours", [1, 2, 3, 4, 5, 6]),
    ]
    for field, value in numbers:
        refuse("createSeries", karim, {**series, field: value}, field)
        refuse(
            "changeSeries", karim, {"seriesId": ours.series["id"], "changes": {field: value}}, field
        )
    for venue, field in (
        ({"name": ""}, "venue.name"),
        ({"name": "v" * 121}, "venue.name"),
        ({"name": "Chez nous", "address": "a" * 301}, "venue.address"),
    ):
        refuse("createSeries", karim, {**series, "venue": venue}, field)
        refuse(
            "changeSeries",
            karim,
            {"seriesId": ours.series["id"], "changes": {"venue": venue}},
            field,
        )
        refuse("scheduleMeetup", karim, {"hubId": H, "localStart": future, "venue": venue}, field)
        refuse("rescheduleMeetup", karim, {"meetupId": N, "venue": venue}, field)
        refuse(
            "openDatePoll",
            karim,
            {
                "hubId": H,
                "title": "x",
                "slots": [future, local(day + timedelta(days=22))],
                "venue": venue,
            },
            field,
        )
        refuse(
            "scheduleWorkshop",
            karim,
            {"proposalId": ours.proposal["id"], "localStart": future, "venue": venue},
            field,
        )
    missing("changeSeries", karim, {"seriesId": theirs.series["id"], "changes": {"capacity": 3}})

    # meetups: in the future, bounded numbers, a venue (or a series that has one)
    meetup = {"hubId": H, "localStart": future, "title": "Déjeuner", "venue": BISTROT}
    for start in (past, "2000-01-01T12:00", local(paris_now(clock) - timedelta(minutes=1))):
        refuse("scheduleMeetup", karim, {**meetup, "localStart": start}, "localStart")
        refuse("rescheduleMeetup", karim, {"meetupId": N, "localStart": start}, "localStart")
        refuse(
            "scheduleWorkshop",
            karim,
            {"proposalId": ours.proposal["id"], "localStart": start, "venue": CAFE},
            "localStart",
        )
        refuse("closeMeetup", karim, {"meetupId": L, "nextLocalStart": start}, "nextLocalStart")
    for field, value in (
        ("capacity", 0),
        ("capacity", -1),
        ("capacity", 10_001),
        ("durationMinutes", 0),  # was taken as "not given" (the default) and accepted
        ("durationMinutes", 10),
        ("durationMinutes", -5),
        ("durationMinutes", 24 * 60 + 1),
    ):
        refuse("scheduleMeetup", karim, {**meetup, field: value}, field)
        refuse("rescheduleMeetup", karim, {"meetupId": N, field: value}, field)
        refuse(
            "scheduleWorkshop",
            karim,
            {"proposalId": ours.proposal["id"], "localStart": future, "venue": CAFE, field: value},
            field,
        )
    for title in ("t" * 121, "Déjeuner\u0007"):
        refuse("scheduleMeetup", karim, {**meetup, "title": title}, "title")
    refuse("scheduleMeetup", karim, {"hubId": H, "localStart": future, "title": "x"}, "venue")
    for series_id in (global_id("MeetupSeries", str(uuid.uuid4())), theirs.series["id"]):
        missing("scheduleMeetup", karim, {**meetup, "seriesId": series_id})
    rule("rescheduleMeetup", karim, {"meetupId": N, "capacity": 1}, "capacity")  # two are seated
    rule("rescheduleMeetup", karim, {"meetupId": L, "venue": CAFE}, "meetup_started")
    rule("rescheduleMeetup", karim, {"meetupId": B, "venue": CAFE}, "meetup_closed")
    for reason in ("", "   ", "r" * 501):
        refuse("cancelMeetup", karim, {"meetupId": N, "reason": reason}, "reason")
    rule("cancelMeetup", karim, {"meetupId": B, "reason": "Trop tard"}, "meetup_closed")

    # closing: begun, open, with its successor
    rule("closeMeetup", karim, {"meetupId": L}, "next_date_required")
    rule("closeMeetup", karim, {"meetupId": L, "nextMeetupId": B}, "next_date_required")
    rule("closeMeetup", karim, {"meetupId": N, "nextMeetupId": ours.later["id"]}, "not_started")
    rule("closeMeetup", karim, {"meetupId": B, "nextMeetupId": N}, "meetup_closed")
    refuse(
        "closeMeetup",
        karim,
        {"meetupId": L, "nextMeetupId": N, "nextLocalStart": future},
        "nextMeetupId",
    )
    refuse("closeMeetup", karim, {"meetupId": L, "nextMeetupId": L}, "nextMeetupId")
    refuse(
        "closeMeetup",
        karim,
        {"meetupId": L, "nextLocalStart": future, "nextVenue": {"name": ""}},
        "nextVenue.name",
    )
    for next_id in (random_meetup, theirs.next_lunch["id"]):
        missing("closeMeetup", karim, {"meetupId": L, "nextMeetupId": next_id})

    # answers: open meetups, before their deadline
    rule("giveRsvp", lea, {"meetupId": L, "answer": "YES"}, "rsvp_deadline")
    rule("giveRsvp", lea, {"meetupId": B, "answer": "NO"}, "meetup_closed")
    rule(
        "inviteVisitor",
        paul,
        {"meetupId": L, "name": "Jeanne", "email": "j@exemple.fr"},
        "rsvp_deadline",
    )
    rule(
        "inviteVisitor",
        paul,
        {"meetupId": B, "name": "Jeanne", "email": "j@exemple.fr"},
        "meetup_closed",
    )
    for email in ("not-an-address", "", "jeanne@", "@exemple.fr", "a@b", "j" * 250 + "@exemple.fr"):
        refuse("inviteVisitor", paul, {"meetupId": N, "name": "Jeanne", "email": email}, "email")
    for name in ("", "   ", "n" * 81, "Jeanne\u202e"):
        refuse(
            "inviteVisitor", paul, {"meetupId": N, "name": name, "email": "j@exemple.fr"}, "name"
        )
    refuse("revokeLinks", karim, {}, "meetupId")
    refuse("revokeLinks", karim, {"meetupId": N, "pollId": P}, "meetupId")
    missing("revokeLinks", karim, {"meetupId": random_meetup})
    missing("revokeLinks", karim, {"pollId": global_id("DatePoll", str(uuid.uuid4()))})

    # date polls: 2 to 20 future slots, a title, one vote per slot of the poll
    poll = {"hubId": H, "title": "Afterwork", "venue": CAFE}
    for slots in (
        [],
        [future],
        [future, future],  # the same slot twice is one slot
        [past, future],
        [local(day + timedelta(days=20 + i)) for i in range(21)],
    ):
        refuse("openDatePoll", karim, {**poll, "slots": slots}, "slots")
    two = [future, local(day + timedelta(days=22))]
    for field, value in (("title", ""), ("title", "t" * 121), ("durationMinutes", 0)):
        refuse("openDatePoll", karim, {**poll, "slots": two, field: value}, field)
    for series_id in (global_id("MeetupSeries", str(uuid.uuid4())), theirs.series["id"]):
        # was accepted, and the poll could then never close ("series not found")
        missing("openDatePoll", karim, {**poll, "slots": two, "seriesId": series_id})
    refuse("voteOnPoll", ines, {"pollId": P, "votes": []}, "votes")
    refuse(
        "voteOnPoll",
        ines,
        {"pollId": P, "votes": [{"slotId": "s1", "vote": "YES"}, {"slotId": "s1", "vote": "NO"}]},
        "votes",
    )
    for slot in ("s9", "", "s1; DROP TABLE"):
        missing("voteOnPoll", ines, {"pollId": P, "votes": [{"slotId": slot, "vote": "YES"}]})
        missing("closeDatePoll", karim, {"pollId": P, "slotId": slot})

    # attendance: 1 to 200 entries, each a member of the hub or a visitor of the meetup
    entry = {"memberId": paul.id, "status": "PRESENT"}
    for entries, field in (
        ([], "entries"),
        ([entry] * 201, "entries"),
        ([{"status": "PRESENT"}], "entries"),
        ([{**entry, "status": "REPLACED"}], "substitute"),
        ([{**entry, "substitute": "Anne"}], "substitute"),
        ([{**entry, "status": "REPLACED", "substitute": "s" * 81}], "substitute"),
    ):
        refuse("recordAttendance", karim, {"meetupId": L, "entries": entries}, field)
    for who_id in (outsider.id, random_member, theirs.club.members[0].id):
        missing(
            "recordAttendance", karim, {"meetupId": L, "entries": [{**entry, "memberId": who_id}]}
        )
    missing(
        "recordAttendance",
        karim,
        {
            "meetupId": L,
            "entries": [
                {"visitorId": global_id("Visitor", str(uuid.uuid4())), "status": "PRESENT"}
            ],
        },
    )
    rule("recordAttendance", karim, {"meetupId": N, "entries": [entry]}, "too_early")
    rule("recordAttendance", karim, {"meetupId": B, "entries": [entry]}, "meetup_closed")
    rule("checkIn", lea, {"meetupId": N}, "check_in_window")
    rule("checkIn", lea, {"meetupId": B}, "meetup_closed")

    # cards, workshops, feeds
    missing(
        "completeCard",
        ines,
        {"drawId": global_id("CardDraw", str(uuid.uuid4()), str(uuid.uuid4()))},
    )
    missing("completeCard", ines, {"drawId": next(iter(theirs.cards.values()))["id"]})
    for field, value in (
        ("topic", ""),
        ("topic", "   "),
        ("topic", "t" * 201),
        ("description", "d" * 2001),
    ):
        refuse("proposeWorkshop", paul, {"hubId": H, "topic": "Photo", field: value}, field)
    for feed in ("calendarFeed", "revokeCalendarFeed"):
        refuse(feed, paul, {"scope": "HUB"}, "hubId")
        refuse(feed, paul, {"scope": "MEMBER", "hubId": H}, "hubId")
        missing(feed, paul, {"scope": "HUB", "hubId": global_id("Hub", str(uuid.uuid4()))})

    # links: anything but a valid, current link of ours is an invalid token
    lea_id, later = lea.member_id, ours.later["meetupId"]
    for token in (
        "",
        "garbage",
        "x" * 3000,
        signed_link(system, ours, lea_id, later, secret="another-secret-" + "y" * 40),
        signed_link(system, ours, lea_id, later, expires_in=timedelta(days=-1)),
        signed_link(system, ours, lea_id, later, version=1),  # not the current version
        signed_link(system, ours, outsider.member_id, later),  # not a member of the hub
        signed_link(system, ours, lea_id, theirs.later["meetupId"]),  # another network's
        signed_link(system, ours, lea_id, str(uuid.uuid4())),
        signed_link(system, ours, lea_id, later, kind="unsubscribe"),
    ):
        cases.append(("answerByLink", None, {"token": token}, "InvalidToken", None))

    snap = await snapshot(system, ours)
    their_snap = await snapshot(system, theirs)
    mails = len(list(system.settings.mail_dir.glob("*.eml")))
    for name, who, input, typename, detail in cases:
        result = await act(system, name, input, who)
        code = {
            "ValidationError": "invalid_input",
            "RuleViolation": "rule_violation",
            "NotFound": "not_found",
            "InvalidToken": "invalid_token",
        }[typename]
        if typename == "RuleViolation":
            assert_error(result, typename, code, rule=detail)
        else:
            assert_error(result, typename, code, field=detail)

    # local times that are not LocalDateTimes, and unknown enum values, are request
    # errors: nothing runs
    document = (
        "mutation($input: ScheduleMeetupInput!) { scheduleMeetup(input: $input) { __typename } }"
    )
    for start in (
        "tomorrow",
        "2026-03-12",
        "2026-03-12T12:30:00+01:00",
        "2026-03-12T12:30:00Z",
        "2026-13-45T12:30",
        "12/03/2026 12:30",
        1_773_315_000,
    ):
        answer = await system.gql(
            document, {"input": {**meetup, "localStart": start}}, karim.access
        )
        assert "data" not in answer, answer
        assert [e["extensions"]["code"] for e in answer["errors"]] == ["BAD_USER_INPUT"], answer
    answer = await system.gql(
        "mutation($input: GiveRsvpInput!) { giveRsvp(input: $input) { __typename } }",
        {"input": {"meetupId": N, "answer": "PERHAPS"}},
        lea.access,
    )
    assert [e["extensions"]["code"] for e in answer["errors"]] == ["BAD_USER_INPUT"], answer
    # queries: malformed ids and pages are field errors, not internal failures
    for query, variables in (
        ("query($id: ID!) { meetup(id: $id) { id } }", {"id": "garbage"}),
        ("query($id: ID!) { datePoll(id: $id) { id } }", {"id": H}),
        ("{ myAgenda(first: 0) { totalCount } }", {}),
        ("{ myAgenda(first: 51) { totalCount } }", {}),
        ('{ myAgenda(after: "bad") { totalCount } }', {}),
        ("query($id: ID!) { hub(id: $id) { meetups(first: 0) { totalCount } } }", {"id": H}),
    ):
        answer = await system.gql(query, variables, admin.access)
        assert [e["extensions"]["code"] for e in answer["errors"]] == ["INVALID_INPUT"], answer

    assert await snapshot(system, ours) == snap
    assert await snapshot(system, theirs) == their_snap
    assert len(list(system.settings.mail_dir.glob("*.eml"))) == mails
    assert len(cases) > 250


async def test_refusals_are_said_in_french_when_the_request_asks_for_it(
    system: System, clock: MovableClock
) -> None:
    """`Accept-Language: fr` has the refusals said in French (the service's
    catalogue, services/events/locale/fr.po); without it, in English as ever."""
    (ours,) = await given_agendas(system, clock, "pole-11e")
    karim, (ines, paul, _) = ours.club.facilitator, ours.club.members
    french = {"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"}
    random_meetup = global_id("Meetup", str(uuid.uuid4()))
    expired = signed_link(
        system, ours, ines.member_id, ours.later["meetupId"], expires_in=timedelta(hours=-1)
    )
    cases: list[tuple[str, Any, dict[str, Any], str, str]] = [
        (  # a rule, from the domain
            "completeCard",
            paul,
            {"drawId": ours.cards[ines.id]["id"]},
            "only the holder marks a card done",
            "seul le détenteur d'une carte la marque comme faite",
        ),
        (  # a value, with the template's placeholders filled alike
            "createSeries",
            karim,
            {
                "hubId": ours.club.hub_id,
                "name": "Afterwork",
                "rrule": "FREQ=WEEKLY;INTERVAL=500",
                "startsOn": ours.day.date().isoformat(),
                "startTime": "19:00",
                "venue": CAFE,
            },
            "INTERVAL is 1 to 99",
            "INTERVAL va de 1 à 99",
        ),
        (  # the store's "<noun> not found", across the bus
            "giveRsvp",
            ines,
            {"meetupId": random_meetup, "answer": "YES"},
            "meetup not found",
            "rencontre introuvable",
        ),
        (  # a link, no sign-in
            "answerByLink",
            None,
            {"token": expired},
            "this link has expired",
            "ce lien a expiré",
        ),
    ]
    for name, who, input, english, said in cases:
        auth = {"Authorization": f"Bearer {who.access}"} if who else {}
        in_english = await act(system, name, input, who)
        in_french = await act(system, name, input, headers={**auth, **french})
        assert in_english["message"] == english, (name, in_english)
        assert in_french["message"] == said, (name, in_french)
        # the same error otherwise: type, code, field or rule
        assert {**in_french, "message": english} == in_english, name

    # a link's page says why the link is not valid in the request's language too
    document = "query($t: String!) { link(token: $t) { valid reason } }"
    for headers, reason in (({}, "this link has expired"), (french, "ce lien a expiré")):
        response = await system.client.post(
            "/graphql", json={"query": document, "variables": {"t": expired}}, headers=headers
        )
        assert response.json()["data"]["link"] == {"valid": False, "reason": reason}
