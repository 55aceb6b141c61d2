"""The meetups service over real NATS, with identity and hubs: hubs' events
reach its directory, the weekly rhythm, RSVPs with a waitlist, closing with
the next date fixed, cards drawn."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest

from services.events import contract as ec
from services.hubs import contract as hc
from services.runtime.bus import Bus
from services.runtime.clock import MovableClock
from services.runtime.errors import Forbidden, InvalidInput, NotFound, RuleViolation
from services.runtime.host import ServiceHost
from tests.support.identity import as_member, create_network
from tests.support.meetups import VOLTAIRE, given_hub
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio

VENUE = ec.Venue(name="Le Bistrot Voltaire", address="12 boulevard Voltaire, Paris")


def next_thursday(clock: MovableClock) -> datetime:
    today = clock.now().date()
    days = (3 - today.weekday()) % 7 or 7
    return datetime.combine(today + timedelta(days=days), time(12, 30))


async def test_the_weekly_lunch(events: ServiceHost, client_bus: Bus, clock: MovableClock) -> None:
    given = await given_hub(client_bus, events)
    admin = given.ctx(given.admin)
    series = await client_bus.request(
        ec.CreateSeries(
            hub_id=given.hub.hub_id,
            name="Déjeuner du jeudi",
            rrule="FREQ=WEEKLY;BYDAY=TH",
            starts_on=clock.now().date(),
            start_time=time(12, 30),
            venue=VENUE,
            capacity=2,
        ),
        admin,
    )
    assert series.next_local_start == next_thursday(clock)
    meetup = await client_bus.request(
        ec.ScheduleMeetup(
            hub_id=given.hub.hub_id, series_id=series.series_id, local_start=series.next_local_start
        ),
        admin,
    )
    assert meetup.capacity == 2 and meetup.timezone == "Europe/Paris" and meetup.venue == VENUE
    # three yes for two seats: the third waits
    answers = []
    for m in given.members[:3]:
        answers.append(
            await client_bus.request(
                ec.GiveRsvp(meetup_id=meetup.meetup_id, answer="yes"), given.ctx(m)
            )
        )
    assert [a.my_rsvp.seat for a in answers] == ["seated", "seated", "waiting"]
    assert answers[2].my_rsvp.waitlist_position == 1
    # the first cancels: the one in line is promoted, once, whatever the repeats
    for _ in range(2):
        after = await client_bus.request(
            ec.GiveRsvp(meetup_id=meetup.meetup_id, answer="no"), given.ctx(given.members[0])
        )
    assert (after.seated, after.waiting, after.declined) == (2, 0, 1)
    rsvps = await client_bus.request(ec.ListRsvps(meetup_id=meetup.meetup_id), admin)
    seats = {r.member_id: r.seat for r in rsvps}
    assert seats[given.members[2].member_id] == "seated"
    # a non-member of the hub cannot answer
    with pytest.raises(NotFound):
        await client_bus.request(ec.GiveRsvp(meetup_id="not-an-id", answer="yes"), admin)
    # the meetup takes place; closing without the next date is refused
    clock.advance(meetup.starts_at - clock.now() + timedelta(minutes=5))
    await client_bus.request(
        ec.RecordAttendance(
            meetup_id=meetup.meetup_id,
            entries=[
                ec.AttendanceRecordInput(member_id=given.members[1].member_id, status="present"),
                ec.AttendanceRecordInput(member_id=given.members[2].member_id, status="late"),
                ec.AttendanceRecordInput(member_id=given.members[0].member_id, status="excused"),
            ],
        ),
        admin,
    )
    with pytest.raises(RuleViolation) as refused:
        await client_bus.request(ec.CloseMeetup(meetup_id=meetup.meetup_id), admin)
    assert refused.value.rule == "next_date_required"
    with pytest.raises(Forbidden):
        await client_bus.request(
            ec.CloseMeetup(meetup_id=meetup.meetup_id, next_local_start=series.next_local_start),
            given.ctx(given.members[1]),
        )
    closed = await client_bus.request(
        ec.CloseMeetup(
            meetup_id=meetup.meetup_id,
            next_local_start=meetup.local_start + timedelta(days=7),
        ),
        admin,
    )
    assert closed.closed.state == "closed"
    assert closed.closed.next_meetup_id == closed.next.meetup_id
    assert closed.next.local_start == meetup.local_start + timedelta(days=7)
    assert closed.next.venue == VENUE and closed.next.capacity == 2
    assert sorted(d.member_id for d in closed.draws) == sorted(
        [given.members[1].member_id, given.members[2].member_id]
    )
    assert len({d.card_id for d in closed.draws}) == 2
    # bad input: past dates, unknown zones, negative capacities
    with pytest.raises(InvalidInput):
        await client_bus.request(
            ec.ScheduleMeetup(
                hub_id=given.hub.hub_id, local_start=datetime(2000, 1, 1, 12), venue=VENUE
            ),
            admin,
        )
    with pytest.raises(InvalidInput):
        await client_bus.request(
            ec.SetHubAgenda(hub_id=given.hub.hub_id, timezone="Mars/Olympus"), admin
        )
    with pytest.raises(InvalidInput):
        await client_bus.request(
            ec.ScheduleMeetup(
                hub_id=given.hub.hub_id,
                local_start=meetup.local_start + timedelta(days=30),
                venue=VENUE,
                capacity=-1,
            ),
            admin,
        )


async def test_a_hub_created_with_its_own_rules_is_known_with_them(
    events: ServiceHost, client_bus: Bus
) -> None:
    """HubCreated carries the rules a hub starts with: a hub created with a
    `max_visits` of its own is counted against it from the start, with no
    HubRulesChanged needed."""
    from services.events.views import directory

    tenant, admin = await create_network(client_bus, "pole-rules")
    hub = await client_bus.request(
        hc.CreateHub(
            name="Club des artisans",
            kind="trade_club",
            area=VOLTAIRE,
            rules=hc.Rules(admission_mode="open", non_competition=False, max_visits=1),
        ),
        as_member(admin),
    )

    def known() -> int | None:
        with events.engine.connect() as conn:
            row = directory.hub_row(conn, tenant.tenant_id, hub.hub_id)
        return None if row is None else row.max_visits

    assert await eventually(known) == 1
