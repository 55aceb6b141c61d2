"""Facilitator terms, without I/O: a term ends after its closed meetups
(`facilitator_term_meetups`) or its days (`facilitator_term_days`), whichever
comes first; the next volunteer takes over (the outgoing one to the end of the
roster), or, with nobody on the roster, the facilitator stays for a new term.
The rule is versioned like the others, and a term keeps the length it began
with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.hubs import contract as c
from services.hubs.domain import Area, Candidate, CandidatePlaces, Hub, Rules
from services.hubs.publication import to_public
from services.runtime.errors import InvalidInput, RuleViolation

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def hub_with_roster(rules: Rules, *volunteers: str) -> Hub:
    hub = Hub.new(
        "tenant",
        "Voltaire",
        "neighbourhood",
        Area(lat=48.8575, lon=2.3795, radius_km=1.5),
        rules,
        "founder",
        "coach",
        T0,
    )
    for name in ("karim", "ines", "lea"):
        candidate = Candidate(member_id=name, activity_code=name, places=CandidatePlaces(0.4))
        hub.nominate(f"n-{name}", "founder", candidate, "", {}, None, T0)
        hub.admit(f"n-{name}", "founder", {}, None, T0)
    for name in volunteers:
        hub.volunteer(name)
    return hub


def published(hub: Hub) -> list[Any]:
    """The public events of what the hub has done since it was last read."""
    events = [to_public(e) for e in hub.collect_events()]
    return [e for e in events if e is not None]


def facilitator_changes(hub: Hub) -> list[c.FacilitatorChanged]:
    return [e for e in published(hub) if isinstance(e, c.FacilitatorChanged)]


# -- the rule ----------------------------------------------------------------------


@pytest.mark.parametrize("meetups", [0, -1, 53])
def test_a_term_in_meetups_is_1_to_52_or_none(meetups: int) -> None:
    with pytest.raises(InvalidInput) as caught:
        Rules(facilitator_term_meetups=meetups).validate()
    assert caught.value.field == "facilitator_term_meetups"
    assert Rules(facilitator_term_meetups=None).validate()
    assert Rules(facilitator_term_meetups=1).validate()
    assert Rules(facilitator_term_meetups=52).validate()


def test_the_term_in_meetups_is_a_versioned_rule() -> None:
    hub = hub_with_roster(Rules())
    assert hub.rules.facilitator_term_meetups is None  # by default, terms count in days
    hub.change_rules({"facilitator_term_meetups": 4}, "founder", "about a month", T0 + WEEK)
    hub.change_rules({"facilitator_term_meetups": None}, "founder", None, T0 + 2 * WEEK)
    assert [v.rules.facilitator_term_meetups for v in hub.rules_history] == [None, 4, None]
    assert hub.rules_at(T0 + WEEK + timedelta(days=1)).rules.facilitator_term_meetups == 4
    with pytest.raises(InvalidInput):
        hub.change_rules({"facilitator_term_meetups": 0}, "founder", None, T0)
    changed = [e for e in published(hub) if isinstance(e, c.HubRulesChanged)]
    assert [e.rules.facilitator_term_meetups for e in changed] == [4, None]


# -- the end of a term ---------------------------------------------------------------


def test_a_term_ends_after_its_meetups_and_the_next_volunteer_takes_over() -> None:
    hub = hub_with_roster(Rules(facilitator_term_meetups=2), "karim", "ines", "lea")
    hub.hand_over(T0, by="founder", by_admin=True)
    assert hub.facilitator_id == "karim"
    assert hub.term_meetup_limit == 2 and hub.meetups_this_term == 0
    [manual] = facilitator_changes(hub)
    assert not manual.automatic and manual.term_ended_by is None and manual.term_meetups == 2

    assert hub.meetup_closed("m1", T0 + WEEK)
    assert hub.facilitator_id == "karim" and hub.meetups_this_term == 1
    assert facilitator_changes(hub) == []  # counting publishes nothing

    assert hub.meetup_closed("m2", T0 + 2 * WEEK)
    assert hub.facilitator_id == "ines"
    assert hub.roster == ["lea", "karim"]  # the outgoing facilitator to the end
    assert hub.meetups_this_term == 0
    assert hub.term_ends_at == T0 + 2 * WEEK + timedelta(days=28)  # a fresh term
    [changed] = facilitator_changes(hub)
    assert changed.facilitator_id == "ines" and changed.previous_id == "karim"
    assert changed.automatic and changed.term_ended_by == "meetups"
    assert changed.term_meetups == 2 and changed.term_ends_at == hub.term_ends_at


def test_a_term_ends_at_its_days_when_they_come_before_its_meetups() -> None:
    hub = hub_with_roster(
        Rules(facilitator_term_days=28, facilitator_term_meetups=4), "karim", "ines"
    )
    hub.hand_over(T0, by="founder", by_admin=True)
    assert hub.meetup_closed("m1", T0 + WEEK)  # one meetup only: the others were cancelled
    hub.collect_events()
    assert not hub.end_term_if_due(T0 + timedelta(days=27))
    assert hub.collect_events() == []
    assert hub.end_term_if_due(T0 + timedelta(days=28))
    assert hub.facilitator_id == "ines" and hub.roster == ["karim"]
    assert hub.meetups_this_term == 0
    [changed] = facilitator_changes(hub)
    assert changed.automatic and changed.term_ended_by == "days"
    assert not hub.end_term_if_due(T0 + timedelta(days=28))  # once


def test_terms_in_days_only_count_meetups_but_end_by_days() -> None:
    hub = hub_with_roster(Rules(facilitator_term_days=14), "karim", "ines")
    hub.hand_over(T0, by="founder", by_admin=True)
    assert hub.meetup_closed("m1", T0 + WEEK)
    assert hub.meetup_closed("m2", T0 + 2 * WEEK - timedelta(hours=1))
    assert hub.facilitator_id == "karim" and hub.meetups_this_term == 2
    assert hub.end_term_if_due(T0 + 2 * WEEK)
    assert hub.facilitator_id == "ines"


def test_with_an_empty_roster_the_facilitator_stays_for_a_new_term() -> None:
    hub = hub_with_roster(Rules(facilitator_term_meetups=1), "karim")
    hub.hand_over(T0, by="founder", by_admin=True)
    assert hub.roster == []
    hub.collect_events()
    hub.meetup_closed("m1", T0 + WEEK)
    assert hub.facilitator_id == "karim" and hub.roster == []
    assert hub.meetups_this_term == 0 and hub.term_ends_at == T0 + WEEK + timedelta(days=28)
    [renewed] = facilitator_changes(hub)
    assert renewed.facilitator_id == renewed.previous_id == "karim"
    assert renewed.automatic and renewed.term_ended_by == "meetups"
    # by days too; and a hand-over on demand still needs a volunteer
    assert hub.end_term_if_due(T0 + WEEK + timedelta(days=28))
    assert hub.facilitator_id == "karim"
    with pytest.raises(RuleViolation):
        hub.hand_over(T0 + 6 * WEEK, by="founder", by_admin=True)
    # someone volunteers: they take over at the end of the term
    hub.volunteer("ines")
    hub.meetup_closed("m2", T0 + 6 * WEEK)
    assert hub.facilitator_id == "ines" and hub.roster == ["karim"]


def test_without_a_facilitator_no_meetup_counts() -> None:
    hub = hub_with_roster(Rules(facilitator_term_meetups=1), "karim")
    hub.collect_events()
    assert not hub.meetup_closed("m1", T0 + WEEK)  # the rotation has not started
    assert not hub.end_term_if_due(T0 + 52 * WEEK)
    assert hub.collect_events() == [] and hub.facilitator_id is None
    hub.hand_over(T0 + WEEK, by="founder", by_admin=True)
    hub.meetup_closed("m2", T0 + 2 * WEEK)
    assert hub.facilitator_id == "karim"  # renewed: nobody else volunteered
    # the facilitator leaves the hub: the role is vacant, nothing counts
    hub.volunteer("ines")
    hub.leave("karim", T0 + 3 * WEEK)
    assert hub.facilitator_id is None and hub.term_meetup_limit is None
    assert not hub.meetup_closed("m3", T0 + 3 * WEEK)
    assert hub.facilitator_id is None and hub.roster == ["ines"]


def test_a_term_keeps_the_length_it_began_with() -> None:
    hub = hub_with_roster(Rules(facilitator_term_meetups=3), "karim", "ines", "lea")
    hub.hand_over(T0, by="founder", by_admin=True)
    hub.meetup_closed("m1", T0 + WEEK)
    # shortening the term applies from the next term, as the days do
    hub.change_rules(
        {"facilitator_term_meetups": 1, "facilitator_term_days": 7}, "founder", None, T0 + WEEK
    )
    assert hub.term_ends_at == T0 + timedelta(days=28)
    hub.meetup_closed("m2", T0 + 2 * WEEK)
    assert hub.facilitator_id == "karim"
    hub.meetup_closed("m3", T0 + 3 * WEEK)
    assert hub.facilitator_id == "ines"  # after the 3 meetups it began with
    assert hub.term_meetup_limit == 1 and hub.term_ends_at == T0 + 3 * WEEK + timedelta(days=7)
    hub.meetup_closed("m4", T0 + 4 * WEEK)
    assert hub.facilitator_id == "lea"
    # a term begun under "days only" stays so when the rule comes in
    other = hub_with_roster(Rules(), "karim", "ines")
    other.hand_over(T0, by="founder", by_admin=True)
    other.change_rules({"facilitator_term_meetups": 1}, "founder", None, T0)
    other.meetup_closed("m1", T0 + WEEK)
    assert other.facilitator_id == "karim" and other.meetups_this_term == 1


def test_a_hand_over_stored_before_terms_counted_meetups_still_applies() -> None:
    """FacilitatorChanged events stored before this change have neither
    `term_meetups` nor `ended_by`: they replay as terms in days, on demand."""
    hub = hub_with_roster(Rules(facilitator_term_meetups=2), "karim")
    hub.hand_over(T0, by="founder", by_admin=True)
    old = next(e for e in hub.collect_events() if isinstance(e, Hub.FacilitatorChanged))
    del old.__dict__["term_meetups"], old.__dict__["ended_by"]
    replayed = hub_with_roster(Rules(facilitator_term_meetups=2), "karim")
    replayed.collect_events()
    old.apply(replayed)
    assert replayed.facilitator_id == "karim" and replayed.term_meetup_limit is None
    public = to_public(old)
    assert isinstance(public, c.FacilitatorChanged)
    assert not public.automatic and public.term_ended_by is None and public.term_meetups is None
