"""Snapshots of the Hub aggregate: its typed state is stored and read back,
snapshots taken before the state was typed are upcast, and events stored
under the module's first topic still resolve."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from eventsourcing.domain import Snapshot
from eventsourcing.utils import resolve_topic

from services.hubs.application import Hubs
from services.hubs.domain import Area, Candidate, CandidatePlaces, Hub, Rules

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _hub_with_history() -> Hub:
    hub = Hub.new(
        "tenant", "Cercle", "neighbourhood", Area(48.86, 2.38, 1.0), Rules(), "founder", "baker", T0
    )
    for i in range(3):
        member_id = f"m{i}"
        hub.nominate(
            f"n{i}",
            "founder",
            Candidate(member_id=member_id, activity_code=f"a{i}", places=CandidatePlaces(0.5)),
            "a neighbour",
            {},
            None,
            T0,
        )
        hub.raise_objection(f"n{i}", "founder", "we have not met", T0 + timedelta(hours=1))
    hub.admit("n0", "founder", {}, None, T0 + timedelta(days=8))
    hub.change_rules({"objection_window_days": 3}, "founder", "faster", T0 + timedelta(days=9))
    for _ in range(30):  # enough events for a snapshot (interval 50)
        hub.volunteer("m0")
        hub.withdraw("m0")
    return hub


def test_typed_state_round_trips_through_a_snapshot(tmp_path: Path) -> None:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "h.db")}
    hub = _hub_with_history()
    app = Hubs(env=env)
    app.save(hub)
    assert app.snapshots is not None
    snapshots = list(app.snapshots.get(hub.id))
    assert snapshots, "a snapshot was taken"
    fresh = Hubs(env=env)  # no cache: the hub is read from the snapshot
    again = fresh.repository.get(hub.id)
    assert again.__dict__ == hub.__dict__ | {"_pending_events": []}
    assert again.nominations["n1"].objections[0].reason == "we have not met"
    assert again.rules_history[-1].rules.objection_window_days == 3
    assert again.area.postcodes == ()
    fresh.close()
    app.close()


def test_a_snapshot_taken_before_the_state_was_typed_is_upcast() -> None:
    hub = _hub_with_history()
    typed = Snapshot.take(hub)
    v1_state = {k: v for k, v in typed.state.items() if k != "class_version"}
    v1_state["area_data"] = v1_state.pop("area").to_dict()
    v1_state["rules_history"] = [
        {
            "version": v.version,
            "rules": v.rules.to_dict(),
            "changed_by": v.changed_by,
            "reason": v.reason,
            "at": v.at,
        }
        for v in hub.rules_history
    ]
    v1_state["members"] = {m: dict(vars(info)) for m, info in hub.members.items()}
    v1_state["nominations"] = {
        n: {**vars(info), "objections": [dict(vars(o)) for o in info.objections]}
        for n, info in hub.nominations.items()
    }
    old = Snapshot(
        originator_id=hub.id,
        originator_version=hub.version,
        timestamp=Snapshot.create_timestamp(),
        topic=typed.topic,
        state=v1_state,
    )
    restored = old.mutate(None)
    assert restored.__dict__ == hub.__dict__ | {"_pending_events": []}


def test_a_snapshot_taken_before_terms_counted_meetups_is_upcast() -> None:
    hub = _hub_with_history()
    hub.volunteer("m0")
    hub.hand_over(T0 + timedelta(days=10), by="founder", by_admin=True)
    typed = Snapshot.take(hub)
    v2_state = {
        k: v for k, v in typed.state.items() if k not in ("term_meetup_limit", "meetups_this_term")
    }
    v2_state["class_version"] = 2
    # the rules of that time had no term in meetups
    v2_state["rules_history"] = [
        replace(v, rules=Rules.from_dict(without_term_meetups(v.rules.to_dict())))
        for v in hub.rules_history
    ]
    old = Snapshot(
        originator_id=hub.id,
        originator_version=hub.version,
        timestamp=Snapshot.create_timestamp(),
        topic=typed.topic,
        state=v2_state,
    )
    restored = old.mutate(None)
    assert restored.facilitator_id == "m0" and restored.term_ends_at == hub.term_ends_at
    assert restored.term_meetup_limit is None and restored.meetups_this_term == 0
    assert restored.rules.facilitator_term_meetups is None
    assert restored.meetup_closed("meetup", T0 + timedelta(days=11))
    assert restored.meetups_this_term == 1


def without_term_meetups(rules: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in rules.items() if k != "facilitator_term_meetups"}


def test_events_stored_under_the_first_topic_still_resolve() -> None:
    assert resolve_topic("services.hubs.domain:Hub.Created") is Hub.Created
    assert resolve_topic("services.hubs.domain:Hub.MemberAdmitted") is Hub.MemberAdmitted
    assert resolve_topic("services.hubs.domain:Hub") is Hub


def test_a_copy_out_of_the_cache_is_independent_of_the_cached_hub() -> None:
    """The cache hands out deep copies on every load; frozen values are
    shared (cheaper), everything a command changes is copied."""
    import copy

    hub = _hub_with_history()
    cached = copy.deepcopy(hub)
    cached.admit("n1", "founder", {}, None, T0 + timedelta(days=9))
    cached.raise_objection("n2", "m0", "not convinced", T0 + timedelta(hours=2))
    cached.change_rules({"max_visits": 5}, "founder", None, T0 + timedelta(days=10))
    assert hub.nominations["n1"].status == "open"
    assert "m1" not in hub.members
    assert len(hub.nominations["n2"].objections) == 1
    assert hub.rules.max_visits == 3
    assert cached.area is hub.area  # frozen: shared
    assert cached.members["m0"] is not hub.members["m0"]
