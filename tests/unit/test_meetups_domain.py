"""Meetups' rules, without I/O: local times across daylight saving, rhythms,
seats and the waitlist (property-tested), closing with the next date, the
card draw, polls, visitors, attendance."""

from __future__ import annotations

import collections
from datetime import UTC, date, datetime, time, timedelta
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.events.application import Meetups
from services.events.domain import (
    DEFAULT_DECK,
    Card,
    DatePoll,
    Meetup,
    MeetupSeries,
    Rsvp,
    Venue,
    Visitor,
    deal,
    rsvp_id,
)
from services.events.domain.agenda import HubAgenda
from services.events.domain.calendar import occurrences_after, parse_rrule, to_utc, zone
from services.events.domain.feeds import CalendarFeed
from services.events.domain.people import MemberSettings
from services.events.domain.workshops import WorkshopProposal
from services.runtime.errors import InvalidInput, NotFound, RuleViolation
from services.runtime.eventstore import noun

TENANT, HUB = str(uuid4()), str(uuid4())
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday in winter
VENUE = Venue("Le Bistrot Voltaire", "12 boulevard Voltaire")


def meetup(
    local_start: datetime = datetime(2026, 1, 8, 12, 30),
    capacity: int | None = None,
    now: datetime = NOW,
    deadline_hours: int = 2,
) -> Meetup:
    return Meetup.new(
        TENANT,
        HUB,
        local_start,
        "Europe/Paris",
        title="Déjeuner",
        venue=VENUE,
        now=now,
        capacity=capacity,
        rsvp_deadline_hours=deadline_hours,
    )


# -- time ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "local",
    [datetime(2026, 3, 29, 2, 0), datetime(2026, 3, 29, 2, 30), datetime(2026, 3, 29, 2, 59)],
)
def test_a_time_the_clocks_skip_is_refused(local: datetime) -> None:
    """Paris goes from 02:00 to 03:00 on 29 March 2026: nobody meets at 02:30."""
    with pytest.raises(InvalidInput, match="does not exist in Europe/Paris") as refused:
        meetup(local)
    assert refused.value.field == "local_start"
    assert "n'existe pas" in refused.value.message_in("fr")
    later = meetup(datetime(2026, 3, 29, 3, 0))
    assert to_utc(later.local_start, "Europe/Paris") == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    # a time read twice (25 October, 02:30) exists: the earlier reading
    twice = meetup(datetime(2026, 10, 25, 2, 30))
    assert to_utc(twice.local_start, "Europe/Paris") == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="does not exist"):
        meetup(datetime(2026, 3, 1, 12, 0)).reschedule(
            {"local_start": datetime(2026, 3, 29, 2, 15)}, now=NOW
        )


def test_a_weekly_lunch_stays_at_12_30_across_both_daylight_saving_changes() -> None:
    rule = parse_rrule("FREQ=WEEKLY;BYDAY=TH")
    starts = occurrences_after(rule, date(2026, 3, 19), time(12, 30), datetime(2026, 3, 18), 4)
    assert starts == [datetime(2026, 3, d, 12, 30) for d in (19, 26)] + [
        datetime(2026, 4, 2, 12, 30),
        datetime(2026, 4, 9, 12, 30),
    ]
    # Paris moves to summer time on Sunday 29 March 2026: 12:30 local is 11:30 then 10:30 UTC
    assert [to_utc(s, "Europe/Paris").hour for s in starts] == [11, 11, 10, 10]
    autumn = occurrences_after(rule, date(2026, 10, 15), time(12, 30), datetime(2026, 10, 14), 3)
    # ... and back on Sunday 25 October
    assert [to_utc(s, "Europe/Paris").hour for s in autumn] == [10, 10, 11]
    assert all(s.hour == 12 and s.minute == 30 for s in starts + autumn)


def test_a_meetup_scheduled_in_winter_for_summer_keeps_its_local_time() -> None:
    m = meetup(datetime(2026, 7, 2, 12, 30))
    assert m.local_start == datetime(2026, 7, 2, 12, 30)
    assert m.starts_at == datetime(2026, 7, 2, 10, 30, tzinfo=UTC)  # UTC+2 in July
    winter = meetup(datetime(2026, 1, 8, 12, 30))
    assert winter.starts_at == datetime(2026, 1, 8, 11, 30, tzinfo=UTC)  # UTC+1 in January


def test_a_monthly_rhythm_first_tuesday() -> None:
    rule = parse_rrule("rrule:freq=monthly;byday=1tu")
    assert rule == "FREQ=MONTHLY;BYDAY=1TU"
    starts = occurrences_after(rule, date(2026, 1, 1), time(19, 0), datetime(2026, 1, 1), 3)
    assert [s.date() for s in starts] == [date(2026, 1, 6), date(2026, 2, 3), date(2026, 3, 3)]


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "FREQ=HOURLY",
        "FREQ=MINUTELY;INTERVAL=5",
        "NOT A RULE",
        "FREQ=WEEKLY;BYDAY=XX",
        "X" * 300,
    ],
)
def test_bad_rhythms_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_rrule(bad)
    assert info.value.field == "rrule"


@pytest.mark.parametrize(
    "bad",
    [
        "FREQ=WEEKLY;INTERVAL=0",  # dateutil accepted it, then failed at each reading
        "FREQ=WEEKLY;COUNT=0",
        "FREQ=WEEKLY;COUNT=-1",
        "FREQ=DAILY;BYHOUR=9,12,18",  # three meetups a day under a daily rule
        "FREQ=DAILY;BYMINUTE=0,30",
        "FREQ=YEARLY;BYYEARDAY=100",
        "FREQ=WEEKLY;BYDAY=TH;INTERVAL=100",
    ],
)
def test_rules_a_meetup_rhythm_does_not_use_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_rrule(bad)
    assert info.value.field == "rrule"


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=31",  # never: searched up to year 9999 for seconds
        "FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=31",
        "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=6",
        "FREQ=WEEKLY;UNTIL=20250101T000000",  # ends before it starts
    ],
)
def test_a_rhythm_that_gives_no_date_is_refused(rule: str) -> None:
    # check_rhythm searches from a late calendar-identical year, so a rule that
    # never matches stops soon (it searched up to 9999 for 5.6 s before); no
    # wall-clock assertion here: the suite's timeout is the safety net.
    with pytest.raises(InvalidInput, match=r"no date|ends before") as info:
        MeetupSeries.new(
            TENANT, HUB, "x", rule, date(2026, 1, 1), time(12, 30), "Europe/Paris", VENUE, "f"
        )
    assert info.value.field == "rrule"


def test_a_series_starts_within_a_year_before_and_two_years_after_today() -> None:
    today = date(2026, 1, 5)
    for starts_on in (date(2024, 12, 31), date(1, 1, 1), date(2028, 3, 1)):
        with pytest.raises(InvalidInput) as info:
            MeetupSeries.new(
                TENANT,
                HUB,
                "x",
                "FREQ=WEEKLY",
                starts_on,
                time(12, 30),
                "Europe/Paris",
                VENUE,
                "f",
                today=today,
            )
        assert info.value.field == "starts_on"
    series = MeetupSeries.new(
        TENANT,
        HUB,
        "x",
        "FREQ=WEEKLY;BYDAY=TH",
        date(2025, 6, 1),
        time(12, 30),
        "Europe/Paris",
        VENUE,
        "f",
        today=today,
    )
    assert series.next_local_start(datetime(2026, 1, 5)) == datetime(2026, 1, 8, 12, 30)
    with pytest.raises(InvalidInput):  # a change is checked the same way
        series.change({"rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"})
    assert series.rrule == "FREQ=WEEKLY;BYDAY=TH"


@pytest.mark.parametrize(
    "name", ["Mars/Olympus", "", "../etc/passwd", "/etc/localtime", "Europe/Paris\x00"]
)
def test_unknown_time_zones_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        zone(name)


def test_past_dates_and_bad_values_are_refused() -> None:
    with pytest.raises(InvalidInput, match="future"):
        meetup(datetime(2025, 12, 1, 12, 30))
    with pytest.raises(InvalidInput, match="capacity"):
        meetup(capacity=-1)
    with pytest.raises(InvalidInput, match="capacity"):
        meetup(capacity=0)
    with pytest.raises(InvalidInput):
        Meetup.new(
            TENANT,
            HUB,
            datetime(2026, 1, 8, 12),
            "Europe/Paris",
            title="\u200b",
            venue=VENUE,
            now=NOW,
        )
    with pytest.raises(InvalidInput):
        Meetup.new(
            TENANT,
            HUB,
            datetime(2026, 1, 8, 12),
            "Europe/Paris",
            title="x",
            venue=VENUE,
            now=NOW,
            duration_minutes=0,
        )
    with pytest.raises(InvalidInput, match="host and a topic"):
        Meetup.new(
            TENANT,
            HUB,
            datetime(2026, 1, 8, 12),
            "Europe/Paris",
            title="x",
            venue=VENUE,
            now=NOW,
            kind="workshop",
        )


def test_a_series_proposes_its_next_date_and_checks_its_changes() -> None:
    series = MeetupSeries.new(
        TENANT,
        HUB,
        "Déjeuner du jeudi",
        "FREQ=WEEKLY;BYDAY=TH",
        date(2026, 1, 1),
        time(12, 30),
        "Europe/Paris",
        VENUE,
        "founder",
    )
    assert series.next_local_start(datetime(2026, 1, 8, 12, 30)) == datetime(2026, 1, 15, 12, 30)
    assert series.change({"capacity": 12}) is True
    assert series.change({"capacity": 12}) is False
    with pytest.raises(InvalidInput):
        series.change({"reminder_hours": [-1]})
    with pytest.raises(InvalidInput):
        series.change({"colour": "red"})


# -- seats and the waitlist -------------------------------------------------------------


def app() -> Meetups:
    return Meetups(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


KINDS = [
    Meetup,
    Rsvp,
    HubAgenda,
    CalendarFeed,
    MeetupSeries,
    DatePoll,
    WorkshopProposal,
    Visitor,
    MemberSettings,
]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_a_missing_aggregate_is_not_found_in_the_requesters_language(kind: type) -> None:
    """The store's NotFound says the class's own `not_found` (translated in
    services/events/locale/fr.po), "<noun> not found" in English."""
    with pytest.raises(NotFound) as refused:
        app().get("t1", uuid4(), kind)
    assert refused.value.message == f"{noun(kind)} not found"
    assert refused.value.text is kind.not_found
    assert refused.value.message_in("fr") != refused.value.message


def next_in_line(store: Meetups) -> object:
    """Ground truth, from the Rsvp aggregates themselves."""
    members: dict[str, set[str]] = collections.defaultdict(set)

    def first(meetup_id: str, exclude: str) -> str | None:
        waiting = []
        for member in members[meetup_id]:
            found = store.find(rsvp_id(meetup_id, member), Rsvp)
            if found is not None and found.seat == "waiting" and member != exclude:
                waiting.append((found.ticket, member))
        return min(waiting)[1] if waiting else None

    first.members = members  # type: ignore[attr-defined]
    return first


@settings(max_examples=60, deadline=None)
@given(
    capacity=st.integers(min_value=1, max_value=4),
    moves=st.lists(
        st.tuples(st.integers(min_value=0, max_value=7), st.sampled_from(["yes", "maybe", "no"])),
        max_size=40,
    ),
)
def test_never_over_capacity_and_the_waitlist_is_promoted_in_order(
    capacity: int, moves: list[tuple[int, str]]
) -> None:
    store = app()
    m = meetup(capacity=capacity)
    store.save(m)
    meetup_id = str(m.id)
    line = next_in_line(store)
    expected_line: list[str] = []  # the waitlist, as a reference model
    for who, answer in moves:
        member = f"member-{who}"
        line.members[meetup_id].add(member)  # type: ignore[attr-defined]
        before = store.find(rsvp_id(meetup_id, member), Rsvp)
        was = before.seat if before else "none"
        _, rsvp, promoted = store.answer(TENANT, meetup_id, member, answer, NOW, line)  # type: ignore[arg-type]
        current = store.get(TENANT, meetup_id, Meetup)
        assert current.seated <= capacity
        if answer != "yes" and was == "waiting":
            expected_line.remove(member)
        if answer == "yes" and was == "none" and rsvp.seat == "waiting":
            expected_line.append(member)
        if promoted is not None:
            assert promoted == expected_line.pop(0)  # first come, first served
        seated = [
            x
            for x in line.members[meetup_id]  # type: ignore[attr-defined]
            if (r := store.find(rsvp_id(meetup_id, x), Rsvp)) is not None and r.seat == "seated"
        ]
        assert len(seated) == current.seated
        assert current.waiting == len(expected_line)
        # nobody waits while a seat is free
        assert current.waiting == 0 or current.seated == capacity


def test_a_repeated_cancellation_promotes_once() -> None:
    store = app()
    m = meetup(capacity=1)
    store.save(m)
    line = next_in_line(store)
    line.members[str(m.id)] |= {"a", "b", "c"}  # type: ignore[attr-defined]
    for member in ("a", "b", "c"):
        store.answer(TENANT, str(m.id), member, "yes", NOW, line)  # type: ignore[arg-type]
    _, _, promoted = store.answer(TENANT, str(m.id), "a", "no", NOW, line)  # type: ignore[arg-type]
    assert promoted == "b"
    _, _, again = store.answer(TENANT, str(m.id), "a", "no", NOW, line)  # type: ignore[arg-type]
    assert again is None
    current = store.get(TENANT, str(m.id), Meetup)
    assert (current.seated, current.waiting, current.declined) == (1, 1, 1)


def test_answers_close_at_the_deadline_and_for_cancelled_meetups() -> None:
    m = meetup(deadline_hours=2)
    m.check_answerable(m.starts_at - timedelta(hours=2, seconds=1))
    with pytest.raises(RuleViolation) as info:
        m.check_answerable(m.starts_at - timedelta(hours=2))
    assert info.value.rule == "rsvp_deadline"
    m.cancel("la salle est fermée", "founder")
    with pytest.raises(RuleViolation):
        m.check_answerable(NOW)
    with pytest.raises(InvalidInput):
        Rsvp.check_answer("perhaps")


def test_the_capacity_cannot_go_below_the_seats_taken() -> None:
    m = meetup(capacity=3)
    for member in ("a", "b"):
        m.take_seat(member)
    with pytest.raises(RuleViolation) as info:
        m.reschedule({"capacity": 1}, NOW)
    assert info.value.rule == "capacity"
    assert m.reschedule({"capacity": 2}, NOW) is True
    assert m.sequence == 1
    assert m.reschedule({"capacity": 2}, NOW) is False


# -- the meetup itself and its close ----------------------------------------------------


def test_close_needs_the_next_date_and_deals_the_cards() -> None:
    m = meetup()
    during = m.starts_at + timedelta(minutes=10)
    with pytest.raises(RuleViolation) as early:
        m.close(None, 1, [], m.starts_at - timedelta(minutes=1), "founder")
    assert early.value.rule == "not_started"
    m.record("karim", None, "present", None, during)
    m.record("ines", None, "late", None, during)
    m.record("lea", None, "replaced", "Paul", during)
    with pytest.raises(RuleViolation) as refused:
        m.close(None, 1, [], during, "founder")
    assert refused.value.rule == "next_date_required"
    assert "next" in refused.value.message
    earlier = meetup(datetime(2026, 1, 7, 12, 30))
    with pytest.raises(RuleViolation):
        m.close(earlier, 1, [], during, "founder")
    following = meetup(datetime(2026, 1, 15, 12, 30))
    assert sorted(m.present_members()) == ["ines", "karim"]
    m.close(following, 7, [], during, "founder")
    assert m.state == "closed" and m.next_meetup_id == str(following.id) and m.draw_seed == 7
    with pytest.raises(RuleViolation):
        m.close(following, 7, [], during, "founder")


def test_attendance_and_check_in_windows() -> None:
    m = meetup()
    with pytest.raises(RuleViolation):
        m.record("karim", None, "present", None, m.starts_at - timedelta(hours=2))
    with pytest.raises(RuleViolation):
        m.check_in("karim", m.starts_at - timedelta(hours=1))
    assert m.check_in("karim", m.starts_at + timedelta(minutes=5)) is True
    assert m.check_in("karim", m.starts_at + timedelta(minutes=6)) is False
    assert m.check_in("ines", m.starts_at + timedelta(minutes=40)) is True
    assert m.attendance["ines"].status == "late" and m.state == "held"
    with pytest.raises(RuleViolation):
        m.check_in("lea", m.ends_at + timedelta(minutes=1))
    with pytest.raises(InvalidInput, match="substitute"):
        m.record("lea", None, "replaced", None, m.starts_at)
    with pytest.raises(InvalidInput, match="substitute"):
        m.record("lea", None, "present", "Paul", m.starts_at)
    with pytest.raises(InvalidInput):
        m.record("lea", None, "asleep", None, m.starts_at)
    assert m.record(None, "v1", "present", None, m.starts_at) is True
    assert m.attendance["visitor:v1"].status == "visitor"


def test_the_holder_completes_their_card() -> None:
    m = meetup()
    during = m.starts_at + timedelta(minutes=10)
    m.record("karim", None, "present", None, during)
    from services.events.domain import Draw

    m.close(
        meetup(datetime(2026, 1, 15, 12, 30)),
        3,
        [Draw("d1", "karim", "recap", "Compte rendu", True)],
        during,
        "f",
    )
    with pytest.raises(RuleViolation):
        m.complete_card("d1", "ines", during)
    with pytest.raises(NotFound):
        m.complete_card("nope", "karim", during)
    assert m.complete_card("d1", "karim", during).done_at == during
    assert m.open_draws() == []


# -- the card draw ------------------------------------------------------------------------


def test_the_draw_is_reproducible_from_its_seed() -> None:
    members = [f"m{i}" for i in range(5)]
    assert deal(DEFAULT_DECK, members, set(), 42) == deal(
        DEFAULT_DECK, reversed(members), set(), 42
    )
    assert deal(DEFAULT_DECK, members, set(), 42) != deal(DEFAULT_DECK, members, set(), 43)


@given(
    members=st.integers(min_value=0, max_value=20), seed=st.integers(min_value=0, max_value=2**53)
)
def test_no_card_twice_until_the_deck_runs_out_and_single_holders_once(
    members: int, seed: int
) -> None:
    deck = [
        Card("a", "A"),
        Card("b", "B"),
        Card("c", "C", single_holder=True),
        Card("d", "D", single_holder=True),
    ]
    draws = deal(deck, [f"m{i}" for i in range(members)], {"d"}, seed)
    cards = [card.card_id for _, card in draws]
    assert "d" not in cards  # still held by someone
    assert cards.count("c") <= 1
    first_round = cards[:3]
    assert len(set(first_round)) == len(first_round)  # a, b, c once each before any repeat
    # after c is dealt, the rounds alternate a and b only
    assert len(draws) == members
    assert len({m for m, _ in draws}) == len(draws)


def test_the_draw_is_fair() -> None:
    counts: collections.Counter[str] = collections.Counter()
    trials = 3000
    for seed in range(trials):
        (_, card), *_ = deal(DEFAULT_DECK, ["only"], set(), seed)
        counts[card.card_id] += 1
    expected = trials / len(DEFAULT_DECK)
    chi2 = sum((counts[c.card_id] - expected) ** 2 / expected for c in DEFAULT_DECK)
    assert chi2 < 20.5  # 5 degrees of freedom: p ≈ 0.001


# -- polls and visitors ------------------------------------------------------------------------


def test_a_date_poll() -> None:
    slots = [datetime(2026, 2, 3, 19), datetime(2026, 2, 5, 19), datetime(2026, 2, 3, 19)]
    poll = DatePoll.new(
        TENANT, HUB, "Afterwork de février", slots, "Europe/Paris", 120, VENUE, None, "f", NOW
    )
    assert len(poll.slots) == 2  # the duplicate folded
    assert poll.vote("karim", {"s1": "yes", "s2": "if_need_be"}, NOW) is True
    assert poll.vote("karim", {"s1": "yes"}, NOW) is False
    poll.vote("ines", {"s1": "no"}, NOW)
    assert poll.tally()["s1"] == {"yes": 1, "if_need_be": 0, "no": 1}
    with pytest.raises(NotFound):
        poll.vote("ines", {"s9": "yes"}, NOW)
    with pytest.raises(InvalidInput):
        poll.vote("ines", {"s1": "perhaps"}, NOW)
    assert poll.close("s2", "meetup-1", "f", NOW) == datetime(2026, 2, 5, 19)
    with pytest.raises(RuleViolation):
        poll.vote("lea", {"s1": "yes"}, NOW)
    with pytest.raises(InvalidInput):
        DatePoll.new(
            TENANT, HUB, "x", [datetime(2026, 2, 3, 19)], "Europe/Paris", 120, VENUE, None, "f", NOW
        )
    with pytest.raises(InvalidInput):
        DatePoll.new(
            TENANT,
            HUB,
            "x",
            [datetime(2025, 2, 3, 19), datetime(2026, 2, 3, 19)],
            "Europe/Paris",
            120,
            VENUE,
            None,
            "f",
            NOW,
        )


def test_a_visitor_comes_max_visits_times_then_must_apply() -> None:
    visitor = Visitor.new(TENANT, HUB, "Paul.Durand@Example.org", "Paul Durand")
    assert visitor.email == "Paul.Durand@example.org"
    for i in range(3):
        assert visitor.invite(f"m{i}", "karim", 3, NOW) is True
    assert visitor.invite("m1", "karim", 3, NOW) is False  # the same meetup again
    with pytest.raises(RuleViolation) as info:
        visitor.invite("m9", "karim", 3, NOW)
    assert info.value.rule == "max_visits" and "apply" in info.value.message
    visitor.answer("m2", "no", NOW)  # a declined visit does not count
    assert visitor.invite("m9", "karim", 3, NOW) is True
    with pytest.raises(InvalidInput):
        Visitor.new(TENANT, HUB, "not an address", "Paul")
    with pytest.raises(InvalidInput):
        Visitor.new(TENANT, HUB, "paul@example.org", "\u202e")
