"""Referrals' rules, without I/O: the slip's lifecycle (every illegal move
refused), money, the meeting rule at its window's edges, engagement, needs,
one-to-ones, and the ledger's totals equal to a replay of its events."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.referrals.application import Referrals
from services.referrals.domain import (
    CURRENCIES,
    NEXT,
    Need,
    OneToOne,
    Referral,
    Thanks,
    check_money,
    engagement,
    met_recently,
    total,
)
from services.runtime.errors import Conflict, Forbidden, InvalidInput, RuleViolation

TENANT = str(uuid4())
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PROSPECT = {"name": "Boulangerie Martin", "email": "contact@martin.example"}


def slip(**kwargs: object) -> Referral:
    values: dict[str, object] = {"prospect": PROSPECT}
    values.update(kwargs)
    return Referral.new(TENANT, "giver", "receiver", "a bakery needs a new oven", 4, NOW, **values)  # type: ignore[arg-type]


# -- the lifecycle ------------------------------------------------------------------


STATUSES = list(NEXT)


@pytest.mark.parametrize(("start", "target"), list(itertools.product(STATUSES, STATUSES)))
def test_every_move_of_the_lifecycle(start: str, target: str) -> None:
    path = {
        "given": [],
        "accepted": ["accepted"],
        "declined": ["declined"],
        "contacted": ["accepted", "contacted"],
        "won": ["accepted", "contacted", "won"],
        "lost": ["accepted", "contacted", "lost"],
    }[start]
    r = slip()
    for step in path:
        r.move(step, "receiver", NOW, reason="no time", value=(Decimal("100"), "EUR"))
    assert r.status == start
    if target in NEXT[start]:
        r.move(target, "receiver", NOW, reason="no time", value=(Decimal("100"), "EUR"))
        assert r.status == target
    else:
        with pytest.raises(RuleViolation) as info:
            r.move(target, "receiver", NOW, reason="no time", value=(Decimal("100"), "EUR"))
        assert info.value.rule == "referral_lifecycle"
        assert r.status == start


def test_only_the_receiver_moves_a_slip_and_declining_needs_a_reason() -> None:
    r = slip()
    with pytest.raises(Forbidden):
        r.move("accepted", "giver", NOW)
    with pytest.raises(InvalidInput):
        r.move("declined", "receiver", NOW, reason=" ")
    r.move("declined", "receiver", NOW, reason="not my trade")
    assert r.history[-1]["reason"] == "not my trade"


def test_a_slip_is_checked() -> None:
    with pytest.raises(RuleViolation) as info:
        Referral.new(TENANT, "a", "a", "x", 3, NOW, prospect=PROSPECT)
    assert info.value.rule == "self_referral"
    for warmth in (0, 6, -1):
        with pytest.raises(InvalidInput):
            Referral.new(TENANT, "g", "r", "x", warmth, NOW, prospect=PROSPECT)
    with pytest.raises(InvalidInput):
        Referral.new(TENANT, "g", "r", "x", 3, NOW)  # no prospect
    with pytest.raises(InvalidInput):
        Referral.new(TENANT, "g", "r", "x", 3, NOW, prospect=PROSPECT, prospect_member_id="m")
    with pytest.raises(InvalidInput):
        Referral.new(TENANT, "g", "r", "x", 3, NOW, prospect_member_id="r")
    with pytest.raises(InvalidInput):
        Referral.new(TENANT, "g", "r", "x" * 1001, 3, NOW, prospect=PROSPECT)
    with pytest.raises(InvalidInput):
        Referral.new(TENANT, "g", "r", "x", 3, NOW, prospect={"name": "\u200b"})
    inside = Referral.new(TENANT, "g", "r", "x", 3, NOW, prospect_member_id="m")
    assert inside.inside and inside.prospect is None


# -- money -----------------------------------------------------------------------------


def test_money_is_exact_and_in_a_known_currency() -> None:
    assert check_money(Decimal("1200.5"), "eur") == (Decimal("1200.50"), "EUR")
    assert check_money(Decimal("5000"), "JPY") == (Decimal("5000"), "JPY")
    assert check_money(Decimal("1.234"), "TND") == (Decimal("1.234"), "TND")
    for amount, currency in (
        (Decimal("0"), "EUR"),
        (Decimal("-5"), "EUR"),
        (Decimal("NaN"), "EUR"),
        (Decimal("Infinity"), "EUR"),
        (Decimal("1.001"), "EUR"),
        (Decimal("1.5"), "JPY"),
        (Decimal("1e10"), "EUR"),
        (Decimal("10"), "EURO"),
        (Decimal("10"), "XAU"),
        (Decimal("10"), ""),
    ):
        with pytest.raises(InvalidInput):
            check_money(amount, currency)
    with pytest.raises(InvalidInput):
        check_money(1.5, "EUR")  # type: ignore[arg-type]  # a float is refused
    assert total([(Decimal("0.1"), "EUR")] * 3) == {"EUR": Decimal("0.3")}  # no float drift
    assert total([(Decimal("1"), "EUR"), (Decimal("2"), "USD")]) == {"EUR": 1, "USD": 2}
    assert len(CURRENCIES) > 150


# -- the meeting rule and engagement --------------------------------------------------------


def test_the_meeting_rule_at_its_window_edges() -> None:
    since = NOW - timedelta(days=30)
    assert met_recently([since], [], NOW, 30)  # a meetup exactly N days ago counts
    assert not met_recently([since - timedelta(seconds=1)], [], NOW, 30)
    assert met_recently([NOW], [], NOW, 30)
    assert not met_recently([NOW + timedelta(days=1)], [], NOW, 30)  # not yet happened
    # a one-to-one is a date: its window's first day counts whatever the hour
    assert met_recently([], [since.date()], NOW, 30)
    assert met_recently([], [since.date()], NOW.replace(hour=23, minute=59), 30)
    assert not met_recently([], [since.date() - timedelta(days=1)], NOW, 30)
    assert met_recently([], [NOW.date()], NOW, 0)  # N = 0: met today
    assert not met_recently([], [], NOW, 365)


def test_engagement_lights_core_and_drifting() -> None:
    weekly = [NOW - timedelta(weeks=w) for w in range(1, 14)]  # 13 weekly lunches
    e = engagement("m", weekly, referrals_given=6, one_to_ones=2, settings={}, now=NOW)
    assert e.in_core and not e.drifting and e.meetups_in_core_window == 12
    lights = {m.measure: m.light for m in e.measures}
    assert lights == {"meetups": "green", "referrals_given": "green", "one_to_ones": "amber"}
    assert e.light == "amber"  # the worst measure, named
    e = engagement("m", [NOW - timedelta(weeks=7)], 0, 0, {}, NOW)
    assert e.drifting and not e.in_core and e.light == "red"
    e = engagement("m", [NOW - timedelta(weeks=5)], 0, 0, {"drifting_weeks": 4}, NOW)
    assert e.drifting
    # exactly at the thresholds
    e = engagement("m", weekly[:2] + weekly[:1], 2, 6, {"core_meetups": 3, "amber_meetups": 3}, NOW)
    assert e.in_core and {m.measure: m.light for m in e.measures}["meetups"] == "amber"
    assert engagement("m", [], 0, 0, {}, NOW).last_meetup_at is None


# -- one-to-ones and needs --------------------------------------------------------------------


def test_a_one_to_one_counts_once_confirmed_by_the_other() -> None:
    o = OneToOne.new(TENANT, "a", "b", date(2026, 5, 30), NOW.date(), NOW)
    with pytest.raises(Forbidden):
        o.answer("a", True, NOW)
    assert o.answer("b", True, NOW) is True
    assert o.answer("b", True, NOW) is False
    with pytest.raises(Conflict):
        o.answer("b", False, NOW)
    with pytest.raises(InvalidInput):
        OneToOne.new(TENANT, "a", "a", date(2026, 5, 30), NOW.date(), NOW)
    with pytest.raises(InvalidInput):
        OneToOne.new(TENANT, "a", "b", date(2026, 6, 2), NOW.date(), NOW)


def test_ask_the_network_first() -> None:
    need = Need.new(TENANT, "p", ["plumber"], "", "a leak", None, ["m1", "p", "m2"], 7, NOW)
    assert need.matches == ["m1", "m2"]
    need.answer("m1", "I can help tomorrow", NOW)
    with pytest.raises(Conflict):
        need.answer("m1", "again", NOW)
    with pytest.raises(InvalidInput):
        need.answer("p", "me", NOW)
    with pytest.raises(RuleViolation) as early:
        need.release("p", NOW + timedelta(days=6))
    assert early.value.rule == "ask_the_network_first"
    with pytest.raises(Forbidden):
        need.release("m1", NOW + timedelta(days=8))
    need.release("p", NOW + timedelta(days=7))
    assert need.status == "released"
    with pytest.raises(RuleViolation):
        need.met("p", "m1", NOW)
    with pytest.raises(InvalidInput):
        Need.new(TENANT, "p", [], " ", "", None, [], 7, NOW)
    with pytest.raises(InvalidInput):
        Need.new(TENANT, "p", ["x"], "", "", date(2026, 5, 1), [], 7, NOW)


# -- the ledger's totals are a replay of its events -------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["slip-won", "slip-lost", "thanks"]),
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from(["a", "b", "c"]),
            st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999"), places=2),
            st.sampled_from(["EUR", "USD"]),
        ),
        max_size=25,
    )
)
def test_ledger_totals_equal_a_replay_of_its_events(
    moves: list[tuple[str, str, str, Decimal, str]],
) -> None:
    app = Referrals(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    expected: dict[tuple[str, str], Decimal] = {}
    for kind, giver, receiver, amount, currency in moves:
        if giver == receiver:
            continue
        if kind == "thanks":
            app.save(Thanks.new(TENANT, giver, receiver, (amount, currency), "business", NOW))
        else:
            r = Referral.new(TENANT, giver, receiver, "x", 3, NOW, prospect=PROSPECT)
            app.save(r)
            steps = ["accepted", "contacted"] + (["lost"] if kind == "slip-lost" else [])
            for step in steps:
                app.update(
                    TENANT, str(r.id), Referral, lambda x, s=step, by=receiver: x.move(s, by, NOW)
                )
            if kind == "slip-lost":
                continue
            app.win(TENANT, str(r.id), receiver, (amount, currency), NOW)
        key = (giver, currency)
        expected[key] = expected.get(key, Decimal(0)) + amount
    # replay: every Thanks.Recorded in the notification log
    replayed: dict[tuple[str, str], Decimal] = {}
    for n in app.notifications_after(0, 10_000):
        e = app.mapper.to_domain_event(n)
        if isinstance(e, Thanks.Recorded):
            key = (e.giver_id, e.currency)
            replayed[key] = replayed.get(key, Decimal(0)) + Decimal(e.amount)
    assert replayed == expected
