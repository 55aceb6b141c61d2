"""The hubs application alone (no NATS, no gateway): a hub's story told
through `get`/`update`/`transact` and the reaction's tracked command, on a
real store — SQLite files, and PostgreSQL when configured — with the read
models projected from it. What the handlers add (who may do what, gathering
from identity) is tested over NATS in test_hubs_service.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
import sqlalchemy as sa
from eventsourcing.persistence import Tracking

from services.hubs.application import Hubs
from services.hubs.domain import Area, Candidate, CandidatePlaces, Hub, Rules
from services.hubs.views import HubViews, hubs, nominations, rules
from services.runtime.errors import Conflict, NotFound, RuleViolation
from services.runtime.projection import Projector
from services.runtime.settings import Settings
from services.runtime.store import Store
from tests.support.env import POSTGRES_URL, drop_schemas, make_settings

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
TENANT = str(uuid4())
INSIDE = CandidatePlaces(work_km=0.4)
FOUNDER, KARIM, INES, LEA = (str(uuid4()) for _ in range(4))


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    database_url = POSTGRES_URL if request.param == "postgres" else None
    settings = make_settings(tmp_path, "nats://unused:4222", database_url)
    yield settings
    drop_schemas(settings)


@pytest.fixture
def store(store_settings: Settings) -> Store:
    return Store.for_service("hubs", store_settings)


@pytest.fixture
def app(store: Store) -> Iterator[Hubs]:
    app = Hubs(env=store.application_env(Hubs.name))
    yield app
    app.close()


@pytest.fixture
def projector(app: Hubs, store: Store) -> Iterator[Projector]:
    engine = store.views_engine()
    yield Projector(app, engine, HubViews())
    engine.dispose()


def candidate(member_id: str, activity: str) -> Candidate:
    return Candidate(member_id=member_id, activity_code=activity, places=INSIDE)


def new_hub(app: Hubs) -> str:
    hub = Hub.new(
        TENANT,
        "Cercle Voltaire",
        "neighbourhood",
        Area(lat=48.8575, lon=2.3795, radius_km=1.5),
        Rules(objection_window_days=7),
        FOUNDER,
        "coach",
        T0,
    )
    app.save(hub)
    return str(hub.id)


def read(projector: Projector, query: object) -> object:
    projector.catch_up()
    with projector.engine.connect() as conn:
        return query(conn)  # type: ignore[operator]


def test_a_hub_from_nomination_to_roster(app: Hubs, projector: Projector) -> None:
    hub_id = new_hub(app)
    app.update(
        TENANT,
        hub_id,
        Hub,
        lambda h: h.nominate("n1", FOUNDER, candidate(KARIM, "plumber"), "", {}, None, T0),
    )
    # the window closes in silence: admitted (silence means consent)
    closed = app.update(
        TENANT, hub_id, Hub, lambda h: h.close_window("n1", {}, T0 + timedelta(days=7))
    )[1]
    assert closed is True
    # a second plumber is refused by the one-per-profession rule ...
    with pytest.raises(RuleViolation) as refused:
        app.update(
            TENANT,
            hub_id,
            Hub,
            lambda h: h.nominate("n2", FOUNDER, candidate(INES, "plumber"), "", {}, None, T0),
        )
    assert refused.value.rule == "non_competition"
    # ... and nothing was saved
    assert "n2" not in app.get(TENANT, hub_id, Hub).nominations
    # an objection sends the next one to the admins, who admit
    app.update(
        TENANT,
        hub_id,
        Hub,
        lambda h: h.nominate("n3", KARIM, candidate(LEA, "baker"), "a neighbour", {}, None, T0),
    )
    app.update(TENANT, hub_id, Hub, lambda h: h.raise_objection("n3", FOUNDER, "never met", T0))
    app.update(TENANT, hub_id, Hub, lambda h: h.close_window("n3", {}, T0 + timedelta(days=8)))
    assert app.get(TENANT, hub_id, Hub).nominations["n3"].status == "awaiting_decision"
    app.update(TENANT, hub_id, Hub, lambda h: h.admit("n3", FOUNDER, {}, None, T0))
    # roles and the roster
    app.update(TENANT, hub_id, Hub, lambda h: h.add_co_admin(KARIM, FOUNDER))
    for m in (KARIM, LEA):
        app.update(TENANT, hub_id, Hub, lambda h, m=m: h.volunteer(m))
    app.update(TENANT, hub_id, Hub, lambda h: h.hand_over(T0, by=KARIM, by_admin=True))

    hub = app.get(TENANT, hub_id, Hub)
    assert set(hub.members) == {FOUNDER, KARIM, LEA}
    assert hub.members[LEA].sponsor_id == KARIM
    assert hub.facilitator_id == KARIM and hub.roster == [LEA]

    # the read models say the same
    row = read(projector, lambda conn: hubs.get_hub(conn, TENANT, hub_id))
    assert row is not None
    assert row.member_count == 3 and row.facilitator_id == KARIM  # type: ignore[attr-defined]
    assert sorted(row.co_admin_ids) == sorted([FOUNDER, KARIM])  # type: ignore[attr-defined]
    found = read(
        projector,
        lambda conn: nominations.list_nominations(conn, TENANT, hub_id, (), True),
    )
    assert [(n.nomination_id, n.status, n.objection_count) for n in found] == [  # type: ignore[attr-defined]
        ("n1", "admitted", 0),
        ("n3", "admitted", 1),
    ]


def test_rules_history_and_grandfathering(app: Hubs, projector: Projector) -> None:
    hub_id = new_hub(app)
    app.update(
        TENANT,
        hub_id,
        Hub,
        lambda h: h.change_rules({"non_competition": False}, FOUNDER, None, T0),
    )
    for nid, who in (("n1", KARIM), ("n2", INES)):
        app.update(
            TENANT,
            hub_id,
            Hub,
            lambda h, nid=nid, who=who: h.nominate(
                nid, FOUNDER, candidate(who, "plumber"), "", {}, None, T0
            ),
        )
        app.update(TENANT, hub_id, Hub, lambda h, nid=nid: h.admit(nid, FOUNDER, {}, None, T0))
    app.update(
        TENANT,
        hub_id,
        Hub,
        lambda h: h.change_rules(
            {"non_competition": True}, FOUNDER, "back to one each", T0 + timedelta(days=1)
        ),
    )
    hub = app.get(TENANT, hub_id, Hub)
    assert hub.members[KARIM].exception_reason is None  # the first one keeps the seat
    assert "came into force" in (hub.members[INES].exception_reason or "")
    versions = read(projector, lambda conn: rules.rules_versions(conn, TENANT, hub_id, None))
    assert [(v.version, v.rules.non_competition) for v in versions] == [  # type: ignore[attr-defined]
        (1, True),
        (2, False),
        (3, True),
    ]
    at_day_zero = read(projector, lambda conn: rules.rules_versions(conn, TENANT, hub_id, T0))
    assert [v.version for v in at_day_zero] == [2]  # type: ignore[attr-defined]


def test_other_tenants_and_missing_hubs_are_answered_alike(app: Hubs) -> None:
    hub_id = new_hub(app)
    answers = set()
    for tenant, aggregate_id in (
        (str(uuid4()), hub_id),
        (TENANT, str(uuid4())),
        (TENANT, "not-a-uuid"),
        (None, hub_id),
    ):
        with pytest.raises(NotFound) as info:
            app.get(tenant, aggregate_id, Hub)
        answers.add(info.value.message)
    assert answers == {"hub not found"}


def test_a_concurrent_change_is_retried_on_fresh_state(app: Hubs) -> None:
    hub_id = new_hub(app)
    app.update(
        TENANT,
        hub_id,
        Hub,
        lambda h: h.nominate("n1", FOUNDER, candidate(KARIM, "plumber"), "", {}, None, T0),
    )
    attempts: list[int] = []

    def volunteer_while_another_admits(h: Hub) -> None:
        attempts.append(h.version)
        if len(attempts) == 1:  # another writer saves meanwhile
            other = app.get(TENANT, hub_id, Hub)
            other.admit("n1", FOUNDER, {}, None, T0)
            app.save(other)
        h.volunteer(FOUNDER)

    app.update(TENANT, hub_id, Hub, volunteer_while_another_admits)
    assert len(attempts) == 2 and attempts[1] > attempts[0]
    hub = app.get(TENANT, hub_id, Hub)
    assert KARIM in hub.members and hub.roster == [FOUNDER]


def test_a_change_that_keeps_conflicting_gives_up_with_a_conflict(app: Hubs) -> None:
    hub_id = new_hub(app)

    def always_overtaken(h: Hub) -> None:
        other = app.get(TENANT, hub_id, Hub)
        other.volunteer(FOUNDER) if FOUNDER not in other.roster else other.withdraw(FOUNDER)
        app.save(other)
        h.change_rules({"max_visits": h.rules.max_visits + 1}, FOUNDER, None, T0)

    with pytest.raises(Conflict):
        app.update(TENANT, hub_id, Hub, always_overtaken)


def test_an_email_candidate_joins_once_whatever_the_redeliveries(
    app: Hubs, projector: Projector
) -> None:
    hub_id = new_hub(app)
    app.update(
        TENANT,
        hub_id,
        Hub,
        lambda h: h.nominate(
            "n1", FOUNDER, Candidate(invitation_id=str(uuid4())), "", {}, None, T0
        ),
    )
    tracking = Tracking("identity", 42)
    args = (TENANT, hub_id, "n1", KARIM, "plumber", INSIDE, {}, T0, tracking)
    assert app.candidate_joined(*args) is True
    assert app.candidate_joined(*args) is False  # redelivered: applied once
    hub = app.get(TENANT, hub_id, Hub)
    assert hub.nominations["n1"].status == "open" and hub.nominations["n1"].candidate_id == KARIM
    assert app.position("identity") == 42
    row = read(
        projector,
        lambda conn: conn.execute(
            sa.select(nominations.nominations.c.status).where(
                nominations.nominations.c.nomination_id == "n1"
            )
        ).scalar_one(),
    )
    assert row == "open"
