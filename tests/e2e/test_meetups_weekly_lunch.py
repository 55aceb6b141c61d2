"""The weekly lunch of the Cercle Voltaire, through GraphQL over HTTP: the
facilitator sets the rhythm (Thursdays 12:30, eight seats at the bistrot),
schedules the next lunch, members answer and the waitlist fills; a seat
freed goes to the first in line, once however often it is freed; on the day
attendance is taken, the lunch cannot close until the next date is fixed,
and closes with it (the next lunch keeps the series' venue and capacity); the
members present draw their mission cards and complete them."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from services.runtime.clock import MovableClock
from tests.e2e.conftest import System, assert_error
from tests.e2e.meetups import (
    BISTROT,
    CAFE,
    MEETUP,
    PARIS,
    act,
    hub_fields,
    hub_meetups,
    instant,
    local,
    lunch_club,
    meetup_page,
    move_to,
    ok,
    parse_local,
    query,
    thursday_lunch,
)

pytestmark = pytest.mark.asyncio

MY_AGENDA = f"""
query($first: Int!, $after: String) {{
  myAgenda(first: $first, after: $after) {{
    totalCount pageInfo {{ hasNextPage hasPreviousPage endCursor }}
    edges {{ node {{ {MEETUP} hub {{ id name }} }} }}
  }}
}}
"""
NODE = "query($id: ID!) { node(id: $id) { __typename id ... on Meetup { title state } } }"


async def test_the_weekly_lunch_from_rsvps_to_the_next_date(
    system: System, clock: MovableClock
) -> None:
    club = await lunch_club(system)
    karim, admin = club.facilitator, club.admin
    ines, paul, lea, bruno = club.members

    # the facilitator sets the rhythm: Thursdays at 12:30, two seats (a small table)
    series = (
        await ok(
            system,
            "createSeries",
            {
                "hubId": club.hub_id,
                "name": "Déjeuner du jeudi",
                "rrule": "FREQ=WEEKLY;BYDAY=TH",
                "startsOn": clock.now().date().isoformat(),
                "startTime": "12:30",
                "venue": BISTROT,
                "capacity": 2,
            },
            karim,
            "MeetupSeriesPayload",
        )
    )["series"]
    assert (series["rrule"], series["startTime"], series["timezone"]) == (
        "FREQ=WEEKLY;BYDAY=TH",
        "12:30:00",
        "Europe/Paris",
    )
    assert (series["capacity"], series["durationMinutes"], series["reminderHours"]) == (
        2,
        120,
        [48, 2],
    )
    assert series["venue"] == BISTROT and series["hub"] == {"id": club.hub_id}
    proposed = parse_local(series["nextLocalStart"])
    assert (proposed.weekday(), proposed.hour, proposed.minute) == (3, 12, 30)

    # the next lunch, in the series: its venue and capacity come from the series
    day = thursday_lunch(clock)
    lunch = (
        await ok(
            system,
            "scheduleMeetup",
            {"hubId": club.hub_id, "seriesId": series["id"], "localStart": local(day)},
            karim,
            "MeetupPayload",
        )
    )["meetup"]
    assert lunch["title"] == "Déjeuner du jeudi" and lunch["kind"] == "MEETUP"
    assert (lunch["localStart"], lunch["timezone"]) == (local(day), "Europe/Paris")
    assert (lunch["venue"], lunch["capacity"], lunch["state"]) == (BISTROT, 2, "SCHEDULED")
    assert lunch["series"] == {"id": series["id"]}
    starts = instant(lunch["startsAt"])
    assert starts == day.replace(tzinfo=PARIS).astimezone(UTC)  # 12:30 in Paris, in UTC
    assert instant(lunch["endsAt"]) - starts == timedelta(minutes=120)
    assert instant(lunch["rsvpDeadline"]) == starts - timedelta(hours=24)

    # four yes for two seats: two wait, in the order they answered
    answers = {}
    for who in (ines, paul, lea, bruno):
        answers[who.id] = (
            await ok(
                system,
                "giveRsvp",
                {"meetupId": lunch["id"], "answer": "YES"},
                who,
                "MeetupPayload",
            )
        )["meetup"]
    assert [(a["myRsvp"]["seat"], a["myRsvp"]["waitlistPosition"]) for a in answers.values()] == [
        ("SEATED", None),
        ("SEATED", None),
        ("WAITING", 1),
        ("WAITING", 2),
    ]
    assert answers[bruno.id]["myRsvp"]["member"] == {"id": bruno.id}
    maybe = await ok(
        system, "giveRsvp", {"meetupId": lunch["id"], "answer": "MAYBE"}, karim, "MeetupPayload"
    )
    assert maybe["meetup"]["myRsvp"] == {
        "answer": "MAYBE",
        "seat": "NONE",
        "waitlistPosition": None,
        "member": {"id": karim.id},
    }

    # Inès cannot come: Léa, first in line, takes her seat; Inès says so twice, Léa is
    # promoted once and Bruno stays first in line
    counts = []
    for _ in range(2):
        freed = await ok(
            system, "giveRsvp", {"meetupId": lunch["id"], "answer": "NO"}, ines, "MeetupPayload"
        )
        assert freed["meetup"]["myRsvp"]["answer"] == "NO"
        assert (freed["meetup"]["seated"], freed["meetup"]["waiting"]) == (2, 1)
        counts.append(await system.event_count("events"))
    assert counts[0] == counts[1]  # the same answer again records nothing
    page = await meetup_page(system, lunch["id"], admin)
    assert (page["seated"], page["waiting"], page["maybe"], page["declined"]) == (2, 1, 1, 1)
    assert [
        (r["member"]["displayName"], r["answer"], r["seat"], r["waitlistPosition"])
        for r in page["rsvps"]
    ] == [
        ("Paul Girard", "YES", "SEATED", None),
        ("Léa Martin", "YES", "SEATED", None),
        ("Bruno Lefort", "YES", "WAITING", 1),
        ("Karim Benali", "MAYBE", "NONE", None),
        ("Inès Moreau", "NO", "NONE", None),
    ]
    assert page["hub"] == {"id": club.hub_id, "name": "Cercle Voltaire"}
    assert page["myRsvp"] is None  # the admin did not answer

    # the members' agendas: their upcoming meetups with their own answer
    agenda = (await query(system, MY_AGENDA, {"first": 10}, bruno))["myAgenda"]
    assert agenda["totalCount"] == 1
    [mine] = [e["node"] for e in agenda["edges"]]
    assert (mine["id"], mine["hub"]["name"]) == (lunch["id"], "Cercle Voltaire")
    assert (mine["myRsvp"]["seat"], mine["myRsvp"]["waitlistPosition"]) == ("WAITING", 1)
    outsider = (await query(system, MY_AGENDA, {"first": 10}, club.outsider))["myAgenda"]
    assert outsider == {
        "totalCount": 0,
        "pageInfo": {"hasNextPage": False, "hasPreviousPage": False, "endCursor": None},
        "edges": [],
    }

    # the lunch day: attendance is taken, Bruno (waiting) comes anyway as a late member
    move_to(clock, lunch["startsAt"], timedelta(minutes=5))
    taken = await ok(
        system,
        "recordAttendance",
        {
            "meetupId": lunch["id"],
            "entries": [
                {"memberId": paul.id, "status": "PRESENT"},
                {"memberId": lea.id, "status": "REPLACED", "substitute": "Sa collègue Anne"},
                {"memberId": ines.id, "status": "EXCUSED"},
            ],
        },
        karim,
        "AttendancePayload",
    )
    assert {(a["member"]["id"], a["status"]) for a in taken["attendance"]} == {
        (paul.id, "PRESENT"),
        (lea.id, "REPLACED"),
        (ines.id, "EXCUSED"),
    }
    move_to(clock, lunch["startsAt"], timedelta(minutes=20))
    checked = await ok(system, "checkIn", {"meetupId": lunch["id"]}, bruno, "AttendancePayload")
    bruno_line = next(a for a in checked["attendance"] if a["member"]["id"] == bruno.id)
    assert (bruno_line["status"], bruno_line["selfCheckedIn"]) == ("LATE", True)
    karim_in = await ok(system, "checkIn", {"meetupId": lunch["id"]}, karim, "AttendancePayload")
    assert len(karim_in["attendance"]) == 5
    held = await meetup_page(system, lunch["id"], karim)
    assert held["state"] == "HELD"
    assert {(a["member"]["id"], a["substitute"]) for a in held["attendance"]} >= {
        (lea.id, "Sa collègue Anne")
    }

    # closing without the next date is refused, naming the rule, and changes nothing
    events_before = await system.event_count("events")
    refused = await act(system, "closeMeetup", {"meetupId": lunch["id"]}, karim)
    assert_error(refused, "RuleViolation", "rule_violation", rule="next_date_required")
    assert "next" in refused["message"]
    assert await system.event_count("events") == events_before
    assert (await meetup_page(system, lunch["id"], karim))["state"] == "HELD"

    # the series proposes next Thursday: the facilitator closes with it
    series_now = (await hub_fields(system, club.hub_id, karim))["series"][0]
    next_day = parse_local(series_now["nextLocalStart"])
    assert next_day == day + timedelta(days=7)
    closed = await ok(
        system,
        "closeMeetup",
        {"meetupId": lunch["id"], "nextLocalStart": series_now["nextLocalStart"]},
        karim,
        "MeetupClosed",
    )
    assert closed["closed"]["state"] == "CLOSED"
    assert closed["closed"]["nextMeetup"] == {"id": closed["next"]["id"]}
    following = closed["next"]
    assert (following["localStart"], following["venue"], following["capacity"]) == (
        local(next_day),
        BISTROT,
        2,
    )
    assert following["series"] == {"id": series["id"]}
    assert following["previousMeetup"] == {"id": lunch["id"]}
    assert (following["state"], following["seated"], following["title"]) == (
        "SCHEDULED",
        0,
        "Déjeuner du jeudi",
    )
    # the next lunch is the hub's upcoming meetup; the closed one is past
    assert [m["id"] for m in await hub_meetups(system, club.hub_id, ines)] == [following["id"]]
    past = await hub_meetups(system, club.hub_id, ines, "PAST")
    assert [(m["id"], m["state"]) for m in past] == [(lunch["id"], "CLOSED")]

    # the members present (present or late: Paul, Bruno, Karim) drew a card each,
    # no card twice; Léa was replaced and Inès excused: no card for them
    cards = {c["member"]["id"]: c for c in closed["cards"]}
    assert set(cards) == {paul.id, bruno.id, karim.id}
    assert len({c["cardId"] for c in cards.values()}) == 3
    assert all(c["doneAt"] is None and c["meetup"] == {"id": lunch["id"]} for c in cards.values())
    shown = (await meetup_page(system, lunch["id"], ines))["cards"]
    assert sorted(shown, key=lambda c: c["id"]) == sorted(closed["cards"], key=lambda c: c["id"])
    open_cards = (await hub_fields(system, club.hub_id, lea))["openCards"]
    assert {c["id"] for c in open_cards} == {c["id"] for c in closed["cards"]}

    # only its holder completes a card
    paul_card = cards[paul.id]
    events_before = await system.event_count("events")
    not_his = await act(system, "completeCard", {"drawId": paul_card["id"]}, bruno)
    assert_error(not_his, "RuleViolation", "rule_violation", rule="card_holder")
    assert await system.event_count("events") == events_before
    done = await ok(system, "completeCard", {"drawId": paul_card["id"]}, paul, "CardCompleted")
    assert (done["card"]["id"], done["card"]["cardId"]) == (paul_card["id"], paul_card["cardId"])
    again = await ok(system, "completeCard", {"drawId": paul_card["id"]}, paul, "CardCompleted")
    assert again["card"]["id"] == paul_card["id"]  # done once: the same answer, nothing new
    remaining = (await hub_fields(system, club.hub_id, karim))["openCards"]
    assert {c["member"]["id"] for c in remaining} == {bruno.id, karim.id}
    drawn = {c["id"]: c for c in (await meetup_page(system, lunch["id"], karim))["cards"]}
    assert instant(drawn[paul_card["id"]]["doneAt"]) == clock.now()
    assert drawn[cards[bruno.id]["id"]]["doneAt"] is None

    # node(id:) finds the meetup, and the card drawn
    found = await system.gql(NODE, {"id": lunch["id"]}, ines.access)
    assert found == {
        "data": {
            "node": {
                "__typename": "Meetup",
                "id": lunch["id"],
                "title": "Déjeuner du jeudi",
                "state": "CLOSED",
            }
        }
    }
    card_node = await system.gql(
        "query($id: ID!) { node(id: $id) { __typename ... on CardDraw { cardId doneAt } } }",
        {"id": paul_card["id"]},
        ines.access,
    )
    assert card_node["data"]["node"]["cardId"] == paul_card["cardId"]
    assert card_node["data"]["node"]["doneAt"] is not None

    # next week a bigger room: the facilitator moves the lunch to the café, four seats
    moved = await ok(
        system,
        "rescheduleMeetup",
        {"meetupId": following["id"], "venue": CAFE, "capacity": 4},
        karim,
        "MeetupPayload",
    )
    assert (moved["meetup"]["venue"], moved["meetup"]["capacity"]) == (CAFE, 4)
    assert moved["meetup"]["sequence"] == 1
    assert moved["meetup"]["localStart"] == local(next_day)  # left out: unchanged
