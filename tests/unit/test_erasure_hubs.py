"""A hub hands on what an erased member held (docs/erasure.md, "Roles and
places handed on"), without I/O: the facilitator role to the next volunteer
as a hand-over does (or to nobody), their roster place, their co-admin seat
(the last one too), a nomination of theirs still pending; their membership
stays, and asking again does nothing."""

from __future__ import annotations

from datetime import timedelta

from services.hubs import contract as c
from services.hubs.domain import Candidate, CandidatePlaces, Rules
from tests.unit.test_hubs_terms import T0, hub_with_roster, published

LATER = T0 + timedelta(days=3)


def test_the_facilitator_hands_over_to_the_next_volunteer() -> None:
    hub = hub_with_roster(Rules(), "karim", "ines", "lea")
    hub.hand_over(T0, by="founder", by_admin=True)
    hub.collect_events()
    assert (hub.facilitator_id, hub.roster) == ("karim", ["ines", "lea"])

    assert hub.hand_on_erased("karim", LATER)
    events = published(hub)
    assert [type(e) for e in events] == [c.FacilitatorChanged]
    changed = events[0]
    assert (changed.facilitator_id, changed.previous_id) == ("ines", "karim")
    assert hub.roster == ["lea"]  # not put back at its end
    assert changed.term_ends_at == LATER + timedelta(days=Rules().facilitator_term_days)
    assert not changed.automatic
    assert "karim" in hub.members  # the membership stays
    assert not hub.hand_on_erased("karim", LATER)  # again: nothing
    assert published(hub) == []


def test_with_nobody_on_the_roster_the_hub_has_no_facilitator() -> None:
    hub = hub_with_roster(Rules(), "karim")
    hub.hand_over(T0, by="founder", by_admin=True)
    hub.collect_events()
    assert hub.hand_on_erased("karim", LATER)
    [changed] = published(hub)
    assert isinstance(changed, c.FacilitatorChanged)
    assert (changed.facilitator_id, changed.previous_id, changed.term_ends_at) == (
        None,
        "karim",
        None,
    )
    assert (hub.facilitator_id, hub.term_ends_at, hub.roster) == (None, None, [])
    assert not hub.meetup_closed("m-1", LATER)  # no term to count in


def test_a_volunteer_leaves_the_roster_and_a_co_admin_their_seat() -> None:
    hub = hub_with_roster(Rules(), "karim", "ines")
    hub.collect_events()
    assert hub.hand_on_erased("ines", LATER)
    assert [type(e) for e in published(hub)] == [c.FacilitatorRosterChanged]
    assert hub.roster == ["karim"]
    # the founder is the hub's only co-admin: the seat goes all the same
    assert hub.hand_on_erased("founder", LATER)
    [removed] = published(hub)
    assert isinstance(removed, c.CoAdminRemoved)
    assert (removed.member_id, removed.removed_by) == ("founder", "founder")
    assert hub.co_admins == []


def test_a_pending_nomination_of_theirs_is_refused() -> None:
    hub = hub_with_roster(Rules())
    candidate = Candidate(member_id="zoe", activity_code="baker", places=CandidatePlaces(0.4))
    hub.nominate("n-zoe", "karim", candidate, "", {}, None, T0)
    hub.collect_events()
    assert hub.hand_on_erased("zoe", LATER)
    [refused] = published(hub)
    assert isinstance(refused, c.AdmissionRejected)
    assert (refused.candidate_id, refused.rule, refused.decided_by) == ("zoe", "erased", None)
    assert not hub.nominations["n-zoe"].is_pending
    assert not hub.hand_on_erased("zoe", LATER)
