"""The Hub aggregate's rules, without I/O: areas, the one-per-profession rule
and its lift, the objection window on a movable clock, decisions, leaving,
co-admins and the facilitator rotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.hubs.domain import Area, Candidate, CandidatePlaces, Hub, Rules, competitor
from services.runtime.clock import MovableClock
from services.runtime.errors import Conflict, Forbidden, InvalidInput, NotFound, RuleViolation

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
VOLTAIRE = Area(lat=48.8575, lon=2.3795, radius_km=1.5)
INSIDE = CandidatePlaces(work_km=0.4)
OUTSIDE = CandidatePlaces(work_km=12.0, home_km=15.0, work_postcode="78000", home_postcode="78000")


def new_hub(
    rules: Rules | None = None, area: Area = VOLTAIRE, founder_activity: str | None = "coach"
) -> Hub:
    return Hub.new(
        "tenant",
        "Voltaire",
        "neighbourhood",
        area,
        rules or Rules(),
        "founder",
        founder_activity,
        T0,
    )


def member(member_id: str, activity: str | None, places: CandidatePlaces = INSIDE) -> Candidate:
    return Candidate(member_id=member_id, activity_code=activity, places=places)


def admit_now(
    hub: Hub, candidate: Candidate, at: datetime = T0, exception: str | None = None
) -> None:
    hub.nominate(f"n-{candidate.member_id}", "founder", candidate, "", {}, exception, at)
    hub.admit(f"n-{candidate.member_id}", "founder", {}, exception, at)


# -- areas -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("places", "inside"),
    [
        (CandidatePlaces(work_km=1.4), True),
        (CandidatePlaces(home_km=1.5), True),
        (CandidatePlaces(work_km=1.6, home_km=3.0), False),
        (CandidatePlaces(), False),
    ],
)
def test_area_by_radius(places: CandidatePlaces, inside: bool) -> None:
    assert VOLTAIRE.check(places).inside is inside


@pytest.mark.parametrize(
    ("places", "inside"),
    [
        (CandidatePlaces(work_postcode="75011"), True),
        (CandidatePlaces(home_postcode="75 011"), True),
        (CandidatePlaces(work_postcode="75012", home_postcode="75020"), False),
    ],
)
def test_area_by_postcode(places: CandidatePlaces, inside: bool) -> None:
    assert Area(postcodes=("75011",)).check(places).inside is inside


def test_area_by_radius_or_postcode() -> None:
    both = Area(lat=48.8575, lon=2.3795, radius_km=1.0, postcodes=("75011",))
    assert both.check(CandidatePlaces(work_km=5.0, work_postcode="75011")).inside
    refusal = both.check(CandidatePlaces(work_km=5.0, work_postcode="75012"))
    assert not refusal.inside
    assert "5.0 km" in refusal.explanation and "75011" in refusal.explanation


@pytest.mark.parametrize(
    "area",
    [
        Area(),
        Area(lat=48.0, lon=2.0),
        Area(lat=48.0, lon=2.0, radius_km=0),
        Area(lat=48.0, lon=2.0, radius_km=51),
        Area(lat=91.0, lon=2.0, radius_km=1),
        Area(postcodes=("!!",)),
        Area(postcodes=tuple(f"750{i:02d}" for i in range(51))),
    ],
)
def test_invalid_areas(area: Area) -> None:
    with pytest.raises(InvalidInput) as caught:
        area.validate()
    assert caught.value.field == "area"


@pytest.mark.parametrize(
    "rules",
    [
        Rules(admission_mode="lottery"),
        Rules(non_competition_lift_at=1),
        Rules(objection_window_days=-1),
        Rules(objection_window_days=61),
        Rules(max_visits=21),
        Rules(facilitator_term_days=0),
    ],
)
def test_invalid_rules(rules: Rules) -> None:
    with pytest.raises(InvalidInput):
        rules.validate()


def test_invalid_hub_kind_and_name() -> None:
    with pytest.raises(InvalidInput):
        Hub.new("t", "Club", "secret_society", VOLTAIRE, Rules(), "f", None, T0)
    with pytest.raises(InvalidInput):
        Hub.new("t", "  ", "trade_club", VOLTAIRE, Rules(), "f", None, T0)


# -- admission -------------------------------------------------------------------


def test_a_candidate_outside_the_area_is_refused_with_the_reason() -> None:
    hub = new_hub()
    with pytest.raises(RuleViolation) as caught:
        hub.nominate("n1", "founder", member("far", "plumber", OUTSIDE), "", {}, None, T0)
    assert caught.value.rule == "area"
    assert "12.0 km" in caught.value.message
    assert hub.nominations == {}


def test_only_members_nominate() -> None:
    hub = new_hub()
    with pytest.raises(Forbidden):
        hub.nominate("n1", "stranger", member("c", "plumber"), "", {}, None, T0)


def test_second_plumber_refused_while_the_rule_holds_and_admitted_with_an_exception() -> None:
    hub = new_hub()
    admit_now(hub, member("karim", "plumber"))
    with pytest.raises(RuleViolation) as caught:
        hub.nominate("n2", "founder", member("paul", "plumber"), "", {}, None, T0)
    assert caught.value.rule == "non_competition"
    hub.nominate(
        "n2", "founder", member("paul", "plumber"), "", {}, "bathrooms only, Karim agrees", T0
    )
    hub.admit("n2", "founder", {}, None, T0)
    assert hub.members["paul"].exception_reason == "bathrooms only, Karim agrees"


def test_fresh_activities_from_identity_override_the_recorded_ones() -> None:
    hub = new_hub()
    admit_now(hub, member("karim", "plumber"))
    # Karim now works as an electrician: a plumber may join, an electrician may not.
    fresh = {"karim": "electrician"}
    hub.nominate("n2", "founder", member("paul", "plumber"), "", fresh, None, T0)
    with pytest.raises(RuleViolation):
        hub.nominate("n3", "founder", member("eve", "electrician"), "", fresh, None, T0)


def test_the_rule_lifts_automatically_at_the_threshold() -> None:
    hub = new_hub(Rules(non_competition_lift_at=3))
    admit_now(hub, member("karim", "plumber"))
    assert hub.non_competition_in_force()
    with pytest.raises(RuleViolation):
        hub.nominate("n-paul", "founder", member("paul", "plumber"), "", {}, None, T0)
    admit_now(hub, member("ines", "translator"))
    assert not hub.non_competition_in_force()
    assert hub.rules.non_competition_lifted and hub.rules_history[-1].changed_by is None
    admit_now(hub, member("paul", "plumber"))
    assert "paul" in hub.members


def test_lifting_by_decision_needs_a_reason_and_is_a_new_version() -> None:
    hub = new_hub()
    with pytest.raises(InvalidInput):
        hub.change_rules({"non_competition_lifted": True}, "founder", None, T0)
    assert hub.change_rules({"non_competition_lifted": True}, "founder", "we are 40 now", T0)
    assert hub.rules_version == 2
    assert not hub.change_rules({"non_competition_lifted": True}, "founder", "again", T0)
    with pytest.raises(InvalidInput):
        hub.change_rules({"secret_rule": 1}, "founder", None, T0)


def test_which_rules_applied_when_a_member_was_admitted() -> None:
    hub = new_hub()
    admit_now(hub, member("karim", "plumber"), at=T0 + timedelta(days=1))
    hub.change_rules({"objection_window_days": 3}, "founder", None, T0 + timedelta(days=2))
    admit_now(hub, member("ines", "translator"), at=T0 + timedelta(days=3))
    assert hub.members["karim"].rules_version == 1
    assert hub.members["ines"].rules_version == 2
    assert hub.rules_at(T0 + timedelta(days=1)).version == 1
    assert hub.rules_at(T0 + timedelta(days=5)).rules.objection_window_days == 3


# -- the objection window, on a movable clock --------------------------------------


def test_silence_means_consent_when_the_window_closes() -> None:
    clock = MovableClock(T0)
    hub = new_hub(Rules(objection_window_days=7))
    hub.nominate("n1", "founder", member("ines", "translator"), "neighbour", {}, None, clock.now())
    assert not hub.close_window("n1", {}, clock.advance(days=6))
    assert "ines" not in hub.members
    assert hub.close_window("n1", {}, clock.advance(days=1))
    assert hub.members["ines"].sponsor_id == "founder"
    assert hub.nominations["n1"].status == "admitted"


def test_an_objection_blocks_automatic_admission() -> None:
    clock = MovableClock(T0)
    hub = new_hub()
    admit_now(hub, member("karim", "plumber"))
    hub.nominate("n1", "founder", member("ines", "translator"), "", {}, None, clock.now())
    hub.raise_objection("n1", "karim", "we had a bad experience", clock.advance(days=2))
    assert hub.close_window("n1", {}, clock.advance(days=6))
    assert hub.nominations["n1"].status == "awaiting_decision"
    assert "ines" not in hub.members
    hub.admit("n1", "founder", {}, None, clock.now())
    assert "ines" in hub.members


def test_objections_are_refused_outside_the_window_twice_or_by_non_members() -> None:
    clock = MovableClock(T0)
    hub = new_hub()
    admit_now(hub, member("karim", "plumber"))
    hub.nominate("n1", "founder", member("ines", "translator"), "", {}, None, clock.now())
    with pytest.raises(Forbidden):
        hub.raise_objection("n1", "stranger", "why not", clock.now())
    with pytest.raises(InvalidInput):
        hub.raise_objection("n1", "karim", "   ", clock.now())
    hub.raise_objection("n1", "karim", "reason", clock.now())
    with pytest.raises(Conflict):
        hub.raise_objection("n1", "karim", "again", clock.now())
    with pytest.raises(RuleViolation):
        hub.raise_objection("n1", "founder", "too late", clock.advance(days=7))
    with pytest.raises(NotFound):
        hub.raise_objection("nope", "founder", "reason", clock.now())


def test_approval_mode_waits_for_an_admin_even_in_silence() -> None:
    clock = MovableClock(T0)
    hub = new_hub(Rules(admission_mode="approval"))
    hub.nominate("n1", "founder", member("ines", "translator"), "", {}, None, clock.now())
    hub.close_window("n1", {}, clock.advance(days=8))
    assert hub.nominations["n1"].status == "awaiting_decision"
    hub.reject("n1", "founder", "not now", clock.now())
    assert hub.nominations["n1"].status == "rejected"
    with pytest.raises(Conflict):
        hub.admit("n1", "founder", {}, None, clock.now())


def test_open_mode_admits_at_once() -> None:
    hub = new_hub(Rules(admission_mode="open"))
    hub.nominate("n1", "founder", member("ines", "translator"), "", {}, None, T0)
    assert "ines" in hub.members
    hub.join("lea", "caterer", INSIDE, {}, T0)
    assert hub.members["lea"].sponsor_id is None
    with pytest.raises(RuleViolation):
        new_hub().join("lea", "caterer", INSIDE, {}, T0)


def test_an_email_candidate_is_checked_when_they_join() -> None:
    clock = MovableClock(T0)
    hub = new_hub()
    admit_now(hub, member("karim", "plumber"))
    hub.nominate(
        "n1", "karim", Candidate(invitation_id="inv-1"), "my cousin", {}, None, clock.now()
    )
    assert hub.nominations["n1"].status == "invited"
    hub.candidate_joined("n1", "cousin", "translator", INSIDE, {}, clock.advance(days=1))
    n = hub.nominations["n1"]
    assert n.status == "open" and n.window_closes_at == clock.now() + timedelta(days=7)
    hub.nominate("n2", "karim", Candidate(invitation_id="inv-2"), "", {}, None, clock.now())
    hub.candidate_joined("n2", "far", "caterer", OUTSIDE, {}, clock.now())
    assert hub.nominations["n2"].status == "rejected" and hub.nominations["n2"].rule == "area"


# -- leaving and co-admins ---------------------------------------------------------


def test_a_hub_always_keeps_a_co_admin() -> None:
    hub = new_hub()
    admit_now(hub, member("karim", "plumber"))
    with pytest.raises(RuleViolation):
        hub.leave("founder", T0)
    with pytest.raises(RuleViolation):
        hub.remove_co_admin("founder", "founder")
    hub.add_co_admin("karim", "founder")
    with pytest.raises(Conflict):
        hub.add_co_admin("karim", "founder")
    hub.remove_co_admin("founder", "karim")
    hub.leave("founder", T0)
    assert hub.co_admins == ["karim"] and "founder" not in hub.members
    with pytest.raises(NotFound):
        hub.remove("founder", "karim", "gone", T0)
    with pytest.raises(NotFound):
        hub.add_co_admin("stranger", "karim")


# -- the rotating facilitator ------------------------------------------------------


def test_the_facilitator_role_rotates_among_volunteers() -> None:
    hub = new_hub(Rules(facilitator_term_days=28))
    for name in ("karim", "ines", "lea"):
        admit_now(hub, member(name, name))
        hub.volunteer(name)
    with pytest.raises(Conflict):
        hub.volunteer("karim")
    with pytest.raises(RuleViolation):
        new_hub().hand_over(T0, by="founder", by_admin=True)
    hub.hand_over(T0, by="founder", by_admin=True)
    assert hub.facilitator_id == "karim" and hub.term_ends_at == T0 + timedelta(days=28)
    assert hub.roster == ["ines", "lea"]
    hub.swap_turns("ines", "lea", by="founder", by_admin=True)
    assert hub.roster == ["lea", "ines"]
    hub.hand_over(T0 + timedelta(days=28), by="founder", by_admin=True)
    assert hub.facilitator_id == "lea" and hub.roster == ["ines", "karim"]
    hub.withdraw("ines")
    assert hub.roster == ["karim"]
    with pytest.raises(NotFound):
        hub.swap_turns("ines", "karim", by="founder", by_admin=True)
    with pytest.raises(Forbidden):
        hub.volunteer("stranger")
    hub.leave("lea", T0)
    assert hub.facilitator_id is None


def test_who_may_hand_over_and_swap_turns_is_a_rule_of_the_hub() -> None:
    hub = new_hub()
    for name in ("karim", "ines", "lea"):
        admit_now(hub, member(name, name))
        hub.volunteer(name)
    with pytest.raises(Forbidden, match="co-admin or the current facilitator"):
        hub.hand_over(T0, by="ines", by_admin=False)
    hub.hand_over(T0, by="founder", by_admin=True)  # karim takes over
    hub.hand_over(T0, by="karim", by_admin=False)  # the facilitator hands over
    assert hub.facilitator_id == "ines" and hub.roster == ["lea", "karim"]
    # a volunteer gives their own turn to someone after them, never jumps ahead
    hub.swap_turns("lea", "karim", by="lea", by_admin=False)
    assert hub.roster == ["karim", "lea"]
    with pytest.raises(Forbidden, match="give their own turn"):
        hub.swap_turns("karim", "lea", by="lea", by_admin=False)
    with pytest.raises(Forbidden):
        hub.swap_turns("karim", "lea", by="stranger", by_admin=False)
    with pytest.raises(InvalidInput):
        hub.swap_turns("karim", "karim", by="founder", by_admin=True)


# -- the invariant, by property ----------------------------------------------------

ACTIVITIES = ["plumber", "electrician", "baker", "lawyer", None]


def assert_invariant(hub: Hub) -> None:
    """While the rule is in force, no two members share an activity unless
    one of them has a recorded exception."""
    if not hub.non_competition_in_force():
        return
    seen: dict[str, str] = {}
    for mid, info in hub.members.items():
        code = info.activity_code
        if code is None or info.exception_reason:
            continue
        assert code not in seen, f"{mid} and {seen[code]} both {code} without exception"
        seen[code] = mid


OPERATIONS = st.one_of(
    st.tuples(st.just("nominate"), st.sampled_from(ACTIVITIES), st.booleans()),
    st.tuples(st.just("close_windows"), st.none(), st.none()),
    st.tuples(st.just("admit_pending"), st.none(), st.booleans()),
    st.tuples(st.just("leave"), st.integers(min_value=0, max_value=30), st.none()),
    st.tuples(st.just("rule_on"), st.none(), st.booleans()),
    st.tuples(st.just("rule_off"), st.none(), st.none()),
    st.tuples(st.just("lift"), st.none(), st.none()),
    st.tuples(st.just("lift_at"), st.integers(min_value=2, max_value=12), st.none()),
)


@settings(max_examples=200, deadline=None)
@given(
    operations=st.lists(OPERATIONS, min_size=1, max_size=40),
    lift_at=st.one_of(st.none(), st.integers(min_value=2, max_value=12)),
    mode=st.sampled_from(["cooptation", "approval", "open"]),
)
def test_no_two_members_share_an_activity_while_the_rule_holds_unless_excepted(
    operations: list[tuple[str, object, object]], lift_at: int | None, mode: str
) -> None:
    """Whatever happens — nominations, automatic and decided admissions,
    departures, the rule switched off, on again, lifted, its threshold moved —
    the invariant holds after every step, and a reached threshold lifts the rule."""
    clock = MovableClock(T0)
    hub = new_hub(
        Rules(non_competition_lift_at=lift_at, admission_mode=mode), founder_activity="coach"
    )
    counter = 0
    for op, arg, flag in operations:
        at = clock.advance(hours=1)
        try:
            if op == "nominate":
                counter += 1
                reason = "agreed by the hub" if flag else None
                candidate = member(f"m{counter}", arg)  # type: ignore[arg-type]
                hub.nominate(f"n{counter}", "founder", candidate, "", {}, reason, at)
            elif op == "close_windows":
                at = clock.advance(days=8)
                for nid in list(hub.nominations):
                    hub.close_window(nid, {}, at)
            elif op == "admit_pending":
                reason = "agreed by the hub" if flag else None
                for nid, n in list(hub.nominations.items()):
                    if n.status in ("open", "awaiting_decision"):
                        hub.admit(nid, "founder", {}, reason, at)
            elif op == "leave":
                others = [m for m in hub.members if m != "founder"]
                if others:
                    hub.leave(others[int(arg) % len(others)], at)  # type: ignore[call-overload]
            elif op == "rule_on":
                changes = {"non_competition": True, "non_competition_lifted": False}
                hub.change_rules(changes, "founder", None, at)
            elif op == "rule_off":
                hub.change_rules({"non_competition": False}, "founder", None, at)
            elif op == "lift":
                hub.change_rules({"non_competition_lifted": True}, "founder", "we grew", at)
            elif op == "lift_at":
                hub.change_rules({"non_competition_lift_at": arg}, "founder", None, at)
        except (RuleViolation, Conflict):
            pass
        assert_invariant(hub)
        rules = hub.rules
        if rules.non_competition_lift_at is not None and len(hub.members) >= (
            rules.non_competition_lift_at
        ):
            assert not hub.non_competition_in_force()


def test_switching_the_rule_on_again_keeps_members_as_recorded_exceptions() -> None:
    hub = new_hub(Rules(non_competition=False))
    admit_now(hub, member("karim", "plumber"))
    admit_now(hub, member("paul", "plumber"), at=T0 + timedelta(hours=1))
    hub.change_rules(
        {"non_competition": True}, "founder", "we want it back", T0 + timedelta(days=1)
    )
    assert hub.non_competition_in_force()
    assert hub.members["karim"].exception_reason is None  # the first one keeps the seat
    assert "came into force" in hub.members["paul"].exception_reason
    with pytest.raises(RuleViolation):  # and no third plumber
        hub.nominate("n3", "founder", member("eve", "plumber"), "", {}, None, T0)


def test_a_threshold_lowered_below_the_size_lifts_the_rule_for_good() -> None:
    hub = new_hub()
    admit_now(hub, member("karim", "plumber"))
    admit_now(hub, member("ines", "translator"))
    hub.change_rules({"non_competition_lift_at": 3}, "founder", None, T0 + timedelta(days=1))
    assert hub.rules.non_competition_lifted and hub.rules_version == 3  # the change, the lift
    assert hub.rules_history[-1].changed_by is None
    hub.leave("ines", T0 + timedelta(days=2))
    assert not hub.non_competition_in_force()  # a lift is definitive


def test_an_email_candidate_refused_by_the_rule_waits_for_the_admins() -> None:
    clock = MovableClock(T0)
    hub = new_hub()
    admit_now(hub, member("karim", "plumber"))
    hub.nominate("n1", "karim", Candidate(invitation_id="inv"), "", {}, None, clock.now())
    hub.candidate_joined("n1", "paul", "plumber", INSIDE, {}, clock.now())
    assert hub.nominations["n1"].status == "open"  # members may object meanwhile
    hub.close_window("n1", {}, clock.advance(days=8))
    assert hub.nominations["n1"].status == "awaiting_decision"
    hub.admit("n1", "founder", {}, "bathrooms only", clock.now())
    assert hub.members["paul"].exception_reason == "bathrooms only"


def test_competitor_ignores_the_candidate_and_unknown_activities() -> None:
    assert competitor("plumber", {"a": "plumber"}, exclude="a") is None
    assert competitor(None, {"a": None}) is None
    assert competitor("plumber", {"a": "baker", "b": "plumber"}) == "b"


def test_an_invited_candidate_can_be_refused_before_joining() -> None:
    hub = new_hub()
    hub.nominate("n1", "founder", Candidate(invitation_id="inv"), "", {}, None, T0)
    with pytest.raises(Conflict):
        hub.admit("n1", "founder", {}, None, T0)  # nobody to admit yet
    hub.reject("n1", "founder", "we changed our minds", T0)
    assert hub.nominations["n1"].status == "rejected"
    hub.candidate_joined("n1", "late", "baker", INSIDE, {}, T0)  # too late: nothing happens
    assert "late" not in hub.members


def test_a_postcode_area_explains_a_card_without_postcode() -> None:
    check = Area(postcodes=("75011",)).check(CandidatePlaces(work_km=0.1))
    assert not check.inside and "no postcode" in check.explanation


def test_the_automatic_lift_comes_after_the_admission_that_caused_it() -> None:
    hub = new_hub(Rules(non_competition_lift_at=2))
    admit_now(hub, member("karim", "plumber"), at=T0 + timedelta(days=1))
    assert hub.members["karim"].rules_version == 1
    assert hub.rules_version == 2
    admitted_at = hub.members["karim"].admitted_at
    assert hub.rules_at(admitted_at).version == 1
    assert hub.rules_at(admitted_at + timedelta(seconds=1)).version == 2


def test_nomination_texts_are_checked_before_anything_else() -> None:
    hub = new_hub()
    with pytest.raises(InvalidInput) as caught:
        hub.check_nomination("founder", "n" * 1001, None)
    assert caught.value.field == "note"
    with pytest.raises(InvalidInput):
        hub.check_nomination("founder", "", "x" * 501)
    with pytest.raises(Forbidden):
        hub.check_nomination("stranger", "", None)
