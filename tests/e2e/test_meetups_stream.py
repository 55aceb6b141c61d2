"""Meetups' events on the tenant's stream, read by a tenant admin through the
`tenantEvents` subscription: every public event type of the service, with
ids and non-personal facts only — no member's or visitor's name or e-mail
address, no venue, title, reason, topic or description."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest

from infra.catalogue import event_schemas
from services.events import contract as ec
from services.events.publication import to_public
from services.runtime.bus import Bus
from services.runtime.clock import MovableClock
from services.runtime.stream import cloud_event_decoder, read_tenant_events
from tests.e2e.conftest import System, subscription_results
from tests.e2e.meetups import local, lunch_club, move_to, ok, thursday_lunch
from tests.e2e.test_event_schemas import validate_published
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio

STREAM = (
    "subscription($limit: Int) { tenantEvents(fromStart: true, limit: $limit)"
    " { id type source subject tenant sequence data } }"
)
SECRETS = {
    "venue": {"name": "Chez Mémé Josette", "address": "7 passage Josset, 75011 Paris"},
    "other_venue": {"name": "L'atelier de Léon", "address": "21 rue Keller"},
    "series": "Les jeudis de Josette",
    "title": "Afterwork chez Léon",
    "reason": "Karim est souffrant",
    "topic": "Négocier avec sa banque",
    "description": "Mes trois échecs et ma réussite",
    "substitute": "Anne Dupont",
    "visitor": "Jeanne Petit",
    "visitor_email": "jeanne.petit@exemple.fr",
}


async def published_meetups_events(system: System, tenant_id: str) -> list[bytes]:
    """The tenant's events (CloudEvents JSON) from JetStream, once the relay has
    published every public event the meetups store holds for the tenant (it
    works in the background)."""
    app = system.hosts["events"].context["app"]

    def expected() -> list[int]:
        found = []
        for n in app.notifications_after(0, 100_000):
            public = to_public(app.mapper.to_domain_event(n))
            if public is not None and public.tenant_id == tenant_id:
                found.append(n.id)
        return found

    sequences = await asyncio.to_thread(expected)
    bus = Bus(system.settings.nats_url, "test-stream-reader")
    await bus.connect(wait=10)
    try:

        async def published() -> list[bytes] | None:
            raw = [
                e
                async for e in read_tenant_events(
                    bus.jetstream(), tenant_id, from_start=True, follow=False
                )
            ]
            decoded = [cloud_event_decoder.decode(e) for e in raw]
            seen = [e.sequence for e in decoded if e.source == "quartier/events"]
            return raw if seen == sequences else None

        return await eventually(published)
    finally:
        await bus.close()


async def test_meetups_events_reach_the_tenant_stream_without_personal_data(
    system: System, clock: MovableClock
) -> None:
    club = await lunch_club(system, members=3)
    karim, admin = club.facilitator, club.admin
    ines, paul, lea = club.members
    day = thursday_lunch(clock)

    series = (
        await ok(
            system,
            "createSeries",
            {
                "hubId": club.hub_id,
                "name": SECRETS["series"],
                "rrule": "FREQ=WEEKLY;BYDAY=TH",
                "startsOn": day.date().isoformat(),
                "startTime": "12:30",
                "venue": SECRETS["venue"],
                "capacity": 2,
            },
            karim,
            "MeetupSeriesPayload",
        )
    )["series"]
    lunch = (
        await ok(
            system,
            "scheduleMeetup",
            {"hubId": club.hub_id, "seriesId": series["id"], "localStart": local(day)},
            karim,
            "MeetupPayload",
        )
    )["meetup"]
    for who in (ines, paul, lea):  # two seats: Léa waits
        await ok(
            system, "giveRsvp", {"meetupId": lunch["id"], "answer": "YES"}, who, "MeetupPayload"
        )
    await ok(system, "giveRsvp", {"meetupId": lunch["id"], "answer": "NO"}, ines, "MeetupPayload")
    visitor = await ok(
        system,
        "inviteVisitor",
        {
            "meetupId": lunch["id"],
            "name": SECRETS["visitor"],
            "email": SECRETS["visitor_email"],
        },
        paul,
        "VisitorInvited",
    )
    await ok(
        system,
        "rescheduleMeetup",
        {"meetupId": lunch["id"], "venue": SECRETS["other_venue"]},
        karim,
        "MeetupPayload",
    )
    poll = (
        await ok(
            system,
            "openDatePoll",
            {
                "hubId": club.hub_id,
                "title": SECRETS["title"],
                "slots": [local(day + timedelta(days=1, hours=6)), local(day + timedelta(days=2))],
                "venue": SECRETS["other_venue"],
            },
            karim,
            "DatePollPayload",
        )
    )["poll"]
    await ok(
        system,
        "voteOnPoll",
        {"pollId": poll["id"], "votes": [{"slotId": "s1", "vote": "YES"}]},
        lea,
        "DatePollPayload",
    )
    afterwork = (
        await ok(
            system,
            "closeDatePoll",
            {"pollId": poll["id"], "slotId": "s1"},
            karim,
            "DatePollPayload",
        )
    )["poll"]["meetup"]
    await ok(
        system,
        "cancelMeetup",
        {"meetupId": afterwork["id"], "reason": SECRETS["reason"]},
        karim,
        "MeetupPayload",
    )
    proposal = (
        await ok(
            system,
            "proposeWorkshop",
            {
                "hubId": club.hub_id,
                "topic": SECRETS["topic"],
                "description": SECRETS["description"],
            },
            ines,
            "WorkshopProposalPayload",
        )
    )["proposal"]
    await ok(
        system,
        "scheduleWorkshop",
        {
            "proposalId": proposal["id"],
            "localStart": local(day + timedelta(days=3)),
            "venue": SECRETS["venue"],
        },
        karim,
        "MeetupPayload",
    )
    # an hour before the lunch its reminders are due (the series': 48 h and 2 h)
    reminders = system.hosts["events"].context["reminders"]
    move_to(clock, lunch["startsAt"], -timedelta(hours=1))
    await eventually(lambda: reminders.recorded >= 2)
    move_to(clock, lunch["startsAt"], timedelta(minutes=10))
    await ok(
        system,
        "recordAttendance",
        {
            "meetupId": lunch["id"],
            "entries": [
                {"memberId": paul.id, "status": "PRESENT"},
                {"memberId": lea.id, "status": "REPLACED", "substitute": SECRETS["substitute"]},
                {"visitorId": visitor["visitorId"], "status": "PRESENT"},
            ],
        },
        karim,
        "AttendancePayload",
    )
    closed = await ok(
        system,
        "closeMeetup",
        {"meetupId": lunch["id"], "nextLocalStart": local(day + timedelta(days=7))},
        karim,
        "MeetupClosed",
    )
    [card] = closed["cards"]  # Paul, the only member present
    await ok(system, "completeCard", {"drawId": card["id"]}, paul, "CardCompleted")

    raw = await published_meetups_events(system, club.net.tenant_id)
    results = await subscription_results(
        system, STREAM, {"limit": len(raw)}, admin.access, len(raw)
    )
    stream = [r["tenantEvents"] for r in results]
    # every one validates against the JSON Schema published for its type
    seen = await validate_published(system, [json.loads(e) for e in raw])
    assert {t for t in seen if t.startswith("quartier.events.")} == {
        t for t in event_schemas() if t.startswith("quartier.events.")
    }
    assert [e["id"] for e in stream] == [cloud_event_decoder.decode(e).id for e in raw]
    events = [e for e in stream if e["source"] == "quartier/events"]
    names = [e["type"].split(".")[2] for e in events]
    for e, name in zip(events, names, strict=True):
        assert e["type"] == f"quartier.events.{name}.v1"
        assert e["tenant"] == club.net.tenant_id == e["data"]["tenant_id"]
        assert e["data"]["hub_id"] == club.hub["hubId"]
    # every public event type of the service, in the order things happened
    catalogued = {cls.__name__ for cls in ec.EventsEvent.__subclasses__()}
    assert set(names) == catalogued, catalogued ^ set(names)
    assert names[:7] == [
        "SeriesCreated",
        "MeetupScheduled",
        "RsvpGiven",
        "RsvpGiven",
        "RsvpGiven",
        "RsvpChanged",  # Inès leaves her seat ...
        "PromotedFromWaitlist",  # ... which goes to Léa
    ]
    # the next lunch is scheduled before the close that names it
    assert names[-4:] == [
        "MeetupScheduled",
        "MeetupClosed",
        "MissionCardDrawn",
        "MissionCardCompleted",
    ]

    def data(name: str) -> list[dict[str, Any]]:
        return [e["data"] for e, n in zip(events, names, strict=True) if n == name]

    seats = [(d["member_id"], d["seat"]) for d in data("RsvpGiven")]
    assert seats == [
        (ines.member_id, "seated"),
        (paul.member_id, "seated"),
        (lea.member_id, "waiting"),
    ]
    assert data("PromotedFromWaitlist") == [
        {
            "tenant_id": club.net.tenant_id,
            "hub_id": club.hub["hubId"],
            "meetup_id": lunch["meetupId"],
            "member_id": lea.member_id,
        }
    ]
    invited = data("VisitorInvited")[0]
    assert (invited["invited_by"], invited["visits"]) == (paul.member_id, 1)
    attendance = {d["member_id"]: d["status"] for d in data("AttendanceRecorded")}
    assert attendance == {paul.member_id: "present", lea.member_id: "replaced", None: "visitor"}
    closing = data("MeetupClosed")[0]
    assert (closing["present"], closing["visitors"]) == (1, 1)
    scheduled = data("MeetupScheduled")
    assert [d["kind"] for d in scheduled] == ["meetup", "meetup", "workshop", "meetup"]
    assert scheduled[1]["poll_id"] == poll["pollId"]
    assert scheduled[2]["host_id"] == ines.member_id
    assert scheduled[3]["previous_meetup_id"] == lunch["meetupId"]
    drawn = data("MissionCardDrawn")[0]
    assert (drawn["member_id"], drawn["draw_id"]) == (paul.member_id, card["drawId"])

    # no personal data: no names, e-mail addresses, venues, titles or free texts
    published = json.dumps([e["data"] for e in events], ensure_ascii=False)
    people = [s.email for s in (admin, karim, ines, paul, lea)]
    people += ["Karim Benali", "Inès Moreau", "Paul Girard", "Léa Martin", "Admin pole-11e"]
    texts = [v for v in SECRETS.values() if isinstance(v, str)]
    texts += [part for v in SECRETS.values() if isinstance(v, dict) for part in v.values()]
    for personal in (*people, *texts, "Josette", "jeanne"):
        assert personal not in published, personal
    for d in (e["data"] for e in events):
        assert not {
            "name",
            "title",
            "venue",
            "address",
            "reason",
            "topic",
            "description",
            "substitute",
            "email",
        } & set(d), d
