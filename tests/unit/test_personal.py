"""Crypto-shredding (services/runtime/personal.py): personal fields are
stored sealed in events and in snapshots (nested ones too), read back plain,
and read as blanks once their key is destroyed — even if a key is made again
for the same person. On a real SQLite store, searched as raw bytes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.hubs.application import Hubs
from services.hubs.domain import Area, Candidate, CandidatePlaces, Hub, Rules
from services.runtime.personal import blank, erased

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOTE, REASON = "zqx7 a neighbour", "zqx7 we have not met"


def _hub() -> Hub:
    hub = Hub.new(
        "tenant", "Cercle", "neighbourhood", Area(48.86, 2.38, 1.0), Rules(), "founder", "baker", T0
    )
    for i in range(3):
        hub.nominate(
            f"n{i}",
            "founder",
            Candidate(member_id=f"m{i}", activity_code=f"a{i}", places=CandidatePlaces(0.5)),
            NOTE,
            {},
            None,
            T0,
        )
        hub.raise_objection(f"n{i}", "founder", REASON, T0 + timedelta(hours=1))
    hub.admit("n0", "founder", {}, None, T0 + timedelta(days=8))
    for _ in range(30):  # enough events for a snapshot (interval 50)
        hub.volunteer("m0")
        hub.withdraw("m0")
    return hub


def _raw(tmp_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())


def test_notes_are_sealed_in_events_and_snapshots_and_shredded(tmp_path: Path) -> None:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "h.db")}
    hub = _hub()
    app = Hubs(env=env)
    app.save(hub)
    assert app.snapshots is not None and list(app.snapshots.get(hub.id))
    assert b"zqx7" not in _raw(tmp_path)  # nowhere in clear: events, snapshots, WAL
    fresh = Hubs(env=env)  # no cache: read from the snapshot
    again = fresh.repository.get(hub.id)
    assert again.nominations["n1"].note == NOTE
    assert again.nominations["n1"].objections[0].reason == REASON
    assert again.__dict__ == hub.__dict__ | {"_pending_events": []}

    assert app.forget("tenant", ["founder"]) == 1
    assert app.forget("tenant", ["founder"]) == 0  # again: nothing more
    app.keyring.key("tenant", "founder", create=True)  # a new key opens nothing old
    for reader in (Hubs(env=env), app):
        erased_hub = reader.repository.get(hub.id)
        nomination = erased_hub.nominations["n1"]
        assert (nomination.note, nomination.objections[0].reason) == ("", "")
        assert nomination.sponsor_id == "founder" and erased_hub.name == "Cercle"
        assert len(erased_hub.nominations) == 3
        # the events too (read without the snapshot)
        events = list(reader.events.get(hub.id, lte=5))
        assert all(getattr(e, "note", "") == "" for e in events)
    fresh.close()
    app.close()


def test_blanks_keep_the_shape_and_say_they_are_erased() -> None:
    card = {"display_name": "Ann", "links": ["https://a.example"], "work": {"lat": 1.0}, "n": 3}
    assert blank(card) == {"display_name": "", "links": [], "work": None, "n": None}
    assert erased(blank(card)) and erased("") and not erased("Ann")
