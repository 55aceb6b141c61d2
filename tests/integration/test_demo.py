"""The demo network `pole-11e` (infra/demo.py and its meetups and referrals)
loaded in-process on every registered service, on the development clock
(a ShiftedClock, as `quartier up` runs them): its history is there — past
lunches closed with the next date fixed, attendance, cards, a waitlist, a
date poll, a workshop, a visitor; referrals in every state, a won one with its
value, one-to-ones, needs, a core and drifting members — the clock is back
where it was, and a second load adds nothing. One system for the whole story
(the real `quartier up --demo` is tests/e2e/test_launcher.py)."""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from infra import clock as movable
from infra.demo import ARTISANS, PASSWORD, VOLTAIRE, as_member, load_demo
from infra.demo_meetups import ATTENDANCE, LUNCH, NEXT_ANSWERS, POLL_TITLE, WORKSHOP
from infra.demo_referrals import SLIPS
from services.events import contract as ec
from services.hubs import contract as hc
from services.identity import contract as idc
from services.referrals import contract as rc
from services.runtime.auth import verify_access_token
from services.runtime.bus import Bus
from services.runtime.clock import ShiftedClock
from services.runtime.host import ServiceHost
from services.runtime.settings import Settings
from services.runtime.tenancy import RequestContext
from tests.support.logs import captured_logs
from tests.support.services import Services

pytestmark = pytest.mark.asyncio


def recorded(hosts: dict[str, ServiceHost]) -> dict[str, int]:
    """How many events each service has recorded (its notification log), but
    identity's: the demo signs its members in again, and each sign-in is
    recorded there (never on the stream); exports keeps no event store."""
    return {
        name: host.context["app"].max_notification_id()
        for name, host in hosts.items()
        if name != "identity" and "app" in host.context
    }


async def test_the_demo_has_a_history_and_loads_once(
    sqlite_settings: Settings, client_bus: Bus
) -> None:
    clock = ShiftedClock()
    services = Services(sqlite_settings, clock)  # type: ignore[arg-type]
    hosts = await services.start_all()
    try:
        with captured_logs(logging.INFO) as logs:
            sessions = await load_demo(client_bus, sqlite_settings.operator_token, sqlite_settings)
        # a first load tries no sign-in bound to fail (each would be logged as refused)
        handled = [(e["request"], e["outcome"]) for e in logs if e["event"] == "request.handled"]
        assert ("AcceptInvitation", "ok") in handled  # the lines are there
        assert [h for h in handled if h[0] == "Login" and h[1] != "ok"] == []
        # the clock is back where it was
        assert clock.offset == timedelta(0)
        admin = as_member(sessions["claire"])
        hubs = {h.name: h for h in await client_bus.request(hc.ListHubs(), admin)}
        voltaire, artisans = hubs[VOLTAIRE], hubs[ARTISANS]

        # -- meetups: five past lunches, closed with the next one fixed
        past = await client_bus.request(
            ec.ListMeetups(hub_id=voltaire.hub_id, when="past", limit=20), admin
        )
        lunches = sorted((m for m in past.items if m.title == LUNCH), key=lambda m: m.starts_at)
        assert [m.state for m in lunches] == ["closed"] * len(ATTENDANCE)
        assert lunches[-1].starts_at < datetime.now(UTC)
        assert lunches[0].starts_at < datetime.now(UTC) - timedelta(weeks=4)
        for before, after in itertools.pairwise(lunches):
            assert before.next_meetup_id == after.meetup_id
            assert after.local_start - before.local_start == timedelta(weeks=1)
        attendance = await client_bus.request(
            ec.GetAttendance(meetup_id=lunches[2].meetup_id), admin
        )
        statuses = Counter(a.status for a in attendance)
        assert statuses["present"] >= 4 and statuses["replaced"] == 1
        fourth = await client_bus.request(ec.GetAttendance(meetup_id=lunches[3].meetup_id), admin)
        assert [a.status for a in fourth if a.visitor_id] == ["visitor"]
        assert any(a.self_checked_in for a in fourth)
        draws = await client_bus.request(ec.ListDraws(meetup_id=lunches[0].meetup_id), admin)
        assert draws and all(d.done_at is not None for d in draws)
        open_cards = await client_bus.request(ec.ListOpenCards(hub_id=voltaire.hub_id), admin)
        assert open_cards  # the last lunch's

        # the next lunch: full, one in line, a maybe and a no
        upcoming = await client_bus.request(
            ec.ListMeetups(hub_id=voltaire.hub_id, when="upcoming", limit=5), admin
        )
        following = upcoming.items[0]
        assert following.meetup_id == lunches[-1].next_meetup_id
        assert following.state == "scheduled"
        assert (following.seated, following.waiting) == (following.capacity, 1)
        assert following.maybe == 1 and following.declined == 1
        assert following.seated + following.waiting + 2 == len(NEXT_ANSWERS)
        workshop = [m for m in upcoming.items if m.kind == "workshop"]
        assert [m.topic for m in workshop] == [WORKSHOP[1]]
        polls = await client_bus.request(ec.ListDatePolls(hub_id=artisans.hub_id), admin)
        assert [(p.title, p.state, p.voters) for p in polls] == [(POLL_TITLE, "open", 3)]

        # -- referrals: every state, a won one with its value
        slips = await client_bus.request(rc.ListSlips(direction="all", limit=50), admin)
        assert Counter(s.status for s in slips.items) == Counter(
            s.path[-1] if s.path else "given" for s in SLIPS
        )
        (at_lunch,) = [s for s in SLIPS if s.lunch is not None and s.path[-1:] == ("won",)]
        won = [s for s in slips.items if s.status == "won" and s.meetup_id]
        assert won and won[0].value == rc.Money(amount=at_lunch.value or Decimal(0))
        assert won[0].meetup_id == lunches[at_lunch.lunch or 0].meetup_id
        assert [h.status for h in won[0].history] == ["given", "accepted", "contacted", "won"]
        # given the day after that lunch, each step on its own later day
        day_after = lunches[at_lunch.lunch or 0].starts_at + timedelta(days=1)
        assert abs(won[0].given_at - day_after) < timedelta(minutes=1)
        assert all(a.at < b.at for a, b in itertools.pairwise(won[0].history))
        # the story spans months: given from five months ago to last week
        given = sorted(s.given_at for s in slips.items)
        assert given[0] < datetime.now(UTC) - timedelta(days=140)
        assert given[-1] > datetime.now(UTC) - timedelta(days=14)
        # and so do the events' times (the stream's `time`: the moved clock's)
        app = hosts["referrals"].context["app"]
        recorded_at = [
            app.mapper.to_domain_event(n).timestamp
            for n in app.recorder.select_notifications(start=1, limit=10_000)
        ]
        assert min(recorded_at) < datetime.now(UTC) - timedelta(days=140)
        assert len({(t.year, t.month) for t in recorded_at}) >= 5
        thanks = await client_bus.request(rc.ListThanks(direction="all", limit=50), admin)
        assert any(t.referral_id is None for t in thanks.items)
        one_to_ones = await client_bus.request(rc.ListOneToOnes(), as_member(sessions["amelie"]))
        assert [o.status for o in one_to_ones] == ["logged"]
        needs = {
            key: (await client_bus.request(rc.ListNeeds(mine=True), as_member(sessions[key]))).items
            for key in ("lea", "emilie")
        }
        assert [n.status for n in needs["lea"]] == ["met"]
        assert needs["lea"][0].met_by == sessions["lucas"].member_id
        assert [n.status for n in needs["emilie"]] == ["released"]
        engagement = await client_bus.request(rc.GetHubEngagement(hub_id=voltaire.hub_id), admin)
        assert sessions["claire"].member_id in engagement.core
        assert sessions["emilie"].member_id in engagement.drifting
        # the network's thresholds give lights of every colour
        lights = {e.member_id: e.light for e in engagement.members}
        assert set(lights.values()) == {"green", "amber", "red"}
        assert lights[sessions["claire"].member_id] == "green"
        assert lights[sessions["karim"].member_id] == "amber"
        assert lights[sessions["emilie"].member_id] == "red"

        # -- a second load adds nothing, and leaves the clock alone, even when a
        # demo member has changed their password meanwhile (found by the admin)
        lucas = sessions["lucas"]
        await client_bus.request(
            idc.ChangePassword(current_password=PASSWORD, new_password="lucas-own-secret"),
            RequestContext(
                tenant_id=lucas.tenant_id,
                actor=verify_access_token(sqlite_settings.jwt_secret, lucas.access_token).actor(),
            ),
        )
        before = recorded(hosts)
        again = await load_demo(client_bus, sqlite_settings.operator_token, sqlite_settings)
        assert recorded(hosts) == before
        assert again["lucas"].member_id == lucas.member_id
        assert clock.offset == timedelta(0)
        state = await movable.move_clock(client_bus, sqlite_settings, 0.0)
        assert state.offset_seconds == 0
        # production has no movable clock: nothing is even asked
        with pytest.raises(movable.ClockError, match="production"):
            await movable.move_clock(client_bus, sqlite_settings.with_(env="prod"), 3600)
        assert clock.offset == timedelta(0)
    finally:
        await services.stop()
