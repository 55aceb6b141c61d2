"""The runtime's guarantees over a real NATS server and real stores: the
outbox relay publishes each event exactly once across failures and restarts,
a reaction never applies a redelivered event twice, and only one replica runs
the singletons."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from eventsourcing.persistence import IntegrityError, Tracking
from nats.js import JetStreamContext
from nats.js.api import StreamInfo
from nats.js.errors import NotFoundError

from infra.nats_server import NatsServer, start_nats_server
from services.identity import contract as idc
from services.identity.service import build
from services.runtime.bus import Bus
from services.runtime.clock import MovableClock
from services.runtime.host import ServiceHost
from services.runtime.reactions import Reaction, ReactionConsumer, decode_data
from services.runtime.settings import Settings
from services.runtime.stream import STREAM, CloudEvent, ensure_stream, stream_config
from services.runtime.tenancy import RequestContext
from services.runtime.views import TrackedTables
from tests.support.identity import add_member, card, create_network


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def stream_info(bus: Bus) -> StreamInfo:
    return await bus.jetstream().stream_info(STREAM)


def public_event_count(host: ServiceHost) -> int:
    app = host.context["app"]
    translate = host.relays[0].translate
    return sum(
        1
        for n in app.notifications_after(0, 100_000)
        if translate(app.mapper.to_domain_event(n)) is not None
    )


async def test_relay_publishes_each_event_once_across_failures_and_restarts(
    settings: Settings, client_bus: Bus, clock: MovableClock
) -> None:
    host = build(settings, clock=clock)
    await host.start()
    tenant, _ = await create_network(client_bus, "pole-11e")
    await add_member(client_bus, tenant.tenant_id, "a@pole.example", card("A"))

    async def published() -> int:
        return (await stream_info(client_bus)).state.messages

    async def published_equals(n: int) -> bool:
        return await published() == n

    expected = public_event_count(host)
    await eventually(lambda: published_equals(expected))

    # A crash between publishing a batch and persisting the position: the
    # relay publishes the batch again, JetStream drops the duplicates.
    app = host.context["app"]
    real_set_position = app.set_position
    failures = []

    def crash_once(name: str, position: int) -> None:
        if not failures:
            failures.append(position)
            raise OSError("simulated crash before the position was saved")
        real_set_position(name, position)

    app.set_position = crash_once
    await add_member(client_bus, tenant.tenant_id, "b@pole.example", card("B"))
    expected = public_event_count(host)
    await eventually(lambda: failures and app.position("__relay__") >= app.max_notification_id())
    assert await published() == expected
    await host.stop()

    # A restart resumes from the persisted position.
    host = build(settings, clock=clock)
    await host.start()
    try:
        await add_member(client_bus, tenant.tenant_id, "c@pole.example", card("C"))
        expected = public_event_count(host)
        await eventually(lambda: published_equals(expected))
        # the relay is done with everything stored (nothing else in flight)
        newest = host.context["app"].max_notification_id()
        await eventually(lambda: (host.relays[0].published_up_to or 0) >= newest)
        assert await published() == expected
        info = await stream_info(client_bus)
        ids = set()
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await client_bus.jetstream().get_msg(STREAM, seq)
            ids.add(msg.headers["Nats-Msg-Id"])
        assert len(ids) == expected  # every message a distinct notification
    finally:
        await host.stop()


async def test_relay_republishing_the_whole_log_adds_nothing(
    sqlite_settings: Settings, client_bus: Bus, clock: MovableClock
) -> None:
    """Rebuilding the stream from the notification log (position reset) is a
    no-op while JetStream remembers the message ids."""
    host = build(sqlite_settings, clock=clock)
    await host.start()
    try:
        await create_network(client_bus, "pole-11e")
        expected = public_event_count(host)
        app = host.context["app"]
        relay = host.relays[0]
        newest = app.max_notification_id()

        def done_up_to(position: int) -> bool:
            # the relay's position moves (and `published` with it) once a
            # batch is acknowledged: then nothing of it is still in flight
            return (relay.published_up_to or 0) >= position

        await eventually(lambda: done_up_to(newest))
        await eventually(lambda: count_is(client_bus, expected))
        before = relay.published
        relay.rewind()
        await eventually(lambda: relay.published - before >= expected and done_up_to(newest))
        assert relay.published - before == expected  # each public event once more
        assert (await stream_info(client_bus)).state.messages == expected
    finally:
        await host.stop()


async def test_a_rewind_asked_for_while_a_batch_is_in_flight_is_kept(
    sqlite_settings: Settings,
    client_bus: Bus,
    clock: MovableClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The relay's loop does not overwrite a rewind with the position of the
    batch that was being acknowledged: everything is published again."""
    host = build(sqlite_settings, clock=clock)
    relay = host.relays[0]
    acknowledged = relay._acknowledged
    in_flight: list[int] = []  # the size of the batch during which the rewind came

    async def rewind_meanwhile(futures: list[asyncio.Future[Any]]) -> None:
        if not in_flight:
            in_flight.append(len(futures))
            relay.rewind()
        await acknowledged(futures)

    monkeypatch.setattr(relay, "_acknowledged", rewind_meanwhile)
    await host.start()
    try:
        await create_network(client_bus, "pole-11e")
        expected = public_event_count(host)
        newest = host.context["app"].max_notification_id()
        await eventually(
            lambda: (
                in_flight
                and relay.published == in_flight[0] + expected
                and (relay.published_up_to or 0) >= newest
            )
        )
        assert (await stream_info(client_bus)).state.messages == expected
    finally:
        await host.stop()


async def stream_ids(bus: Bus) -> list[str]:
    info = await stream_info(bus)
    ids = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            msg = await bus.jetstream().get_msg(STREAM, seq)
        except NotFoundError:  # a deleted message
            continue
        ids.append(msg.headers["Nats-Msg-Id"])
    return ids


@pytest.mark.parametrize("lost", [1, 3, "all"])
async def test_a_stream_that_lost_its_tail_is_refilled(
    sqlite_settings: Settings,
    client_bus: Bus,
    clock: MovableClock,
    nats_server: NatsServer,
    lost: int | str,
) -> None:
    """A NATS server that crashed before syncing its disk loses the last
    messages it had acknowledged: the relay notices when it starts leading (or
    after a reconnection) and publishes them again, each once."""
    host = build(sqlite_settings, clock=clock)
    await host.start()
    try:
        await create_network(client_bus, "pole-gap")
        await create_network(client_bus, "pole-gap-2")
        expected = public_event_count(host)
        await eventually(lambda: count_is(client_bus, expected))
    finally:
        await host.stop()
    js = client_bus.jetstream()
    info = await stream_info(client_bus)
    count = expected if lost == "all" else int(lost)
    for seq in range(info.state.last_seq, info.state.last_seq - count, -1):
        await js.delete_msg(STREAM, seq)  # as if never synced to disk
    assert len(await stream_ids(client_bus)) == expected - count
    # the server restarts: its memory of recent message ids is rebuilt from
    # what it stored, as after a crash
    nats_server.stop()
    restarted = start_nats_server(nats_server.store_dir, port=nats_server.port)
    nats_server.process = restarted.process
    await eventually(lambda: client_bus.is_connected)

    host = build(sqlite_settings, clock=clock)
    await host.start()
    try:
        await eventually(lambda: count_is(client_bus, expected))
        ids = await stream_ids(client_bus)
        assert len(ids) == len(set(ids)) == expected  # each event once, none missing
        assert host.relays[0].published == count
    finally:
        await host.stop()


async def count_is(bus: Bus, n: int) -> bool:
    return (await stream_info(bus)).state.messages == n


async def test_a_batch_never_acknowledged_is_published_again(
    settings: Settings, client_bus: Bus, clock: MovableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by tests/e2e/test_faults.py: NATS killed while a batch was in
    flight never acknowledged it, and the relay waited for those
    acknowledgements for ever (nats-py's futures have no timeout): nothing
    more of the service reached the stream until the service restarted. Now
    a batch not acknowledged in time is published again."""
    real_publish_async = JetStreamContext.publish_async
    lost: list[str] = []

    async def publish_async(self: JetStreamContext, subject: str, *args: Any, **kwargs: Any) -> Any:
        if len(lost) < 2:  # sent to a server that died: no acknowledgement, ever
            lost.append(subject)
            return asyncio.get_running_loop().create_future()
        return await real_publish_async(self, subject, *args, **kwargs)

    monkeypatch.setattr(JetStreamContext, "publish_async", publish_async)
    host = build(settings, clock=clock)
    relay = host.relays[0]
    relay.ack_timeout = 0.5
    await host.start()
    try:
        await create_network(client_bus, "pole-acks")
        expected = public_event_count(host)
        await eventually(lambda: count_is(client_bus, expected))
        assert len(lost) == 2
        ids = await stream_ids(client_bus)
        assert len(ids) == len(set(ids)) == expected
    finally:
        await host.stop()


# -- reactions -------------------------------------------------------------------

joined = sa.Table(
    "joined_count",
    sa.MetaData(),
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("members", sa.Integer, nullable=False),
)
COUNT = TrackedTables("count", joined.metadata)


def counting_reaction(
    engine: sa.Engine,
    calls: list[int],
    fail_after_commit: set[int],
    fail_before: dict[int, int] | None = None,
    on_joined: Callable[[int], None] | None = None,
) -> Reaction:
    """Counts MemberJoined per tenant; for sequences in `fail_after_commit`,
    commits its effects and then fails once, as if the ack had been lost; for
    sequences in `fail_before`, fails that many times before doing anything
    (a passing fault: a database restarting). `on_joined(sequence)` is told
    of each MemberJoined first, and may arm those failures for it."""
    failing = fail_before if fail_before is not None else {}

    async def handle(event: CloudEvent, tracking: Tracking) -> None:
        calls.append(event.sequence)
        if on_joined is not None and event.type == idc.MemberJoined.type_name():
            on_joined(event.sequence)
        if failing.get(event.sequence, 0) > 0:
            failing[event.sequence] -= 1
            raise ConnectionError("the database is restarting")
        if event.type != idc.MemberJoined.type_name():
            COUNT.apply(engine, tracking, lambda conn: None)
            return
        data = decode_data(event, idc.MemberJoined)

        def apply(conn: sa.Connection) -> None:
            row = conn.execute(
                sa.select(joined).where(joined.c.tenant_id == data.tenant_id)
            ).first()
            if row is None:
                conn.execute(joined.insert().values(tenant_id=data.tenant_id, members=1))
            else:
                conn.execute(
                    joined.update()
                    .where(joined.c.tenant_id == data.tenant_id)
                    .values(members=row.members + 1)
                )

        COUNT.apply(engine, tracking, apply)
        if event.sequence in fail_after_commit:
            fail_after_commit.discard(event.sequence)
            raise ConnectionError("the ack was lost")

    return Reaction(name="count-joined", upstream="identity", handle=handle)


def members_counted(engine: sa.Engine, tenant_id: str) -> int:
    with engine.connect() as conn:
        return (
            conn.execute(
                sa.select(joined.c.members).where(joined.c.tenant_id == tenant_id)
            ).scalar()
            or 0
        )


async def test_a_redelivered_event_does_not_apply_twice(
    sqlite_settings: Settings, client_bus: Bus, clock: MovableClock, tmp_path: Path
) -> None:
    host = build(sqlite_settings, clock=clock)
    await host.start()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'reaction.db'}")
    COUNT.create(engine)
    calls: list[int] = []
    fail_after_commit: set[int] = set()
    armed_after: list[int] = []  # fail once after commit: the next MemberJoined after this
    joined: list[int] = []

    def arm(sequence: int) -> None:
        if armed_after and sequence > armed_after[0] and not joined:
            fail_after_commit.add(sequence)
            joined.append(sequence)

    consumer = ReactionConsumer(
        "test", counting_reaction(engine, calls, fail_after_commit, on_joined=arm), client_bus
    )
    stopping = asyncio.Event()
    task = asyncio.create_task(consumer.run(stopping))
    try:
        tenant, _ = await create_network(client_bus, "pole-11e")
        await eventually(lambda: members_counted(engine, tenant.tenant_id) == 1)

        # 1. Effects committed, then the handler fails before the ack: the
        #    message is redelivered and skipped by the tracking position.
        armed_after.append(host.context["app"].max_notification_id())
        await add_member(client_bus, tenant.tenant_id, "a@pole.example", card("A"))
        await eventually(lambda: joined and calls.count(joined[0]) >= 2)
        assert members_counted(engine, tenant.tenant_id) == 2

        # 2. The same event published again under another message id (a
        #    re-publication after JetStream's duplicate window): skipped too.
        last = await client_bus.jetstream().get_last_msg(
            STREAM, f"quartier.evt.{tenant.tenant_id}.identity.MemberJoined"
        )
        await client_bus.jetstream().publish(
            last.subject, last.data, headers={"Nats-Msg-Id": "replayed-later"}
        )
        handled = consumer.handled
        await eventually(lambda: consumer.handled > handled)
        assert members_counted(engine, tenant.tenant_id) == 2

        # 3. A restarted consumer (same durable) resumes without re-applying.
        stopping.set()
        await task
        stopping = asyncio.Event()
        consumer = ReactionConsumer("test", counting_reaction(engine, calls, set()), client_bus)
        task = asyncio.create_task(consumer.run(stopping))
        await add_member(client_bus, tenant.tenant_id, "b@pole.example", card("B"))
        await eventually(lambda: members_counted(engine, tenant.tenant_id) == 3)
    finally:
        stopping.set()
        await task
        await host.stop()
        engine.dispose()


async def test_a_failing_event_blocks_newer_ones_until_it_succeeds(
    sqlite_settings: Settings, client_bus: Bus, clock: MovableClock, tmp_path: Path
) -> None:
    """Positions only move forward: if a newer event were handled while an
    older one waits for a retry, the older one would be skipped for good."""
    host = build(sqlite_settings, clock=clock)
    await host.start()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'reaction.db'}")
    COUNT.create(engine)
    calls: list[int] = []
    fail_before: dict[int, int] = {}
    armed_after: list[int] = []
    joined: list[int] = []

    def arm(sequence: int) -> None:
        if armed_after and sequence > armed_after[0] and not joined:
            fail_before[sequence] = 2  # A's MemberJoined fails twice...
            joined.append(sequence)

    consumer = ReactionConsumer(
        "test", counting_reaction(engine, calls, set(), fail_before, on_joined=arm), client_bus
    )
    stopping = asyncio.Event()
    task = asyncio.create_task(consumer.run(stopping))
    try:
        tenant, _ = await create_network(client_bus, "pole-11e")
        await eventually(lambda: members_counted(engine, tenant.tenant_id) == 1)
        armed_after.append(host.context["app"].max_notification_id())
        await add_member(client_bus, tenant.tenant_id, "a@pole.example", card("A"))
        await eventually(lambda: bool(joined))
        a_joined = joined[0]
        await add_member(client_bus, tenant.tenant_id, "b@pole.example", card("B"))  # ...B comes
        await eventually(lambda: members_counted(engine, tenant.tenant_id) == 3, timeout=15)
        first_success = len(calls) - 1 - calls[::-1].index(a_joined)
        assert calls.count(a_joined) == 3  # two failures, then success
        assert all(seq < a_joined for seq in calls[: calls.index(a_joined)])
        assert all(seq > a_joined for seq in calls[first_success + 1 :])  # B only after A
        assert consumer.failures == 2
    finally:
        stopping.set()
        await task
        await host.stop()
        engine.dispose()


async def test_tracked_saves_refuse_a_position_already_recorded(settings: Settings) -> None:
    from services.identity.application import Identity
    from services.identity.domain import Tenant, tenant_id_for
    from services.runtime.store import Store

    app = Identity(env=Store.for_service("identity", settings).application_env("identity"))
    try:
        first = Tenant(tenant_id=str(tenant_id_for("one")), slug="one", name="One")
        app.save_tracked(first, tracking=Tracking("upstream", 5))
        assert app.has_processed(Tracking("upstream", 5))
        assert not app.has_processed(Tracking("upstream", 6))
        second = Tenant(tenant_id=str(tenant_id_for("two")), slug="two", name="Two")
        with pytest.raises(IntegrityError):
            app.save_tracked(second, tracking=Tracking("upstream", 5))
        assert app.max_notification_id() == 1  # the second save left nothing behind
    finally:
        app.close()


# -- singletons ------------------------------------------------------------------


async def test_one_replica_leads_and_another_takes_over(
    settings: Settings, client_bus: Bus, clock: MovableClock
) -> None:
    first = build(settings, clock=clock)
    second = build(settings, clock=clock)
    await first.start()
    await second.start()
    try:
        await eventually(lambda: first.is_leader or second.is_leader)
        await asyncio.sleep(0.3)
        assert first.is_leader != second.is_leader
        leader, standby = (first, second) if first.is_leader else (second, first)
        # both replicas answer requests (queue group); only the leader relays
        await create_network(client_bus, "pole-11e")
        expected = public_event_count(leader)
        await eventually(lambda: count_is(client_bus, expected))
        await leader.stop()
        await eventually(lambda: standby.is_leader, timeout=15)
        tenant = await client_bus.request(idc.GetTenant(slug="pole-11e"), _anonymous())
        await add_member(client_bus, tenant.tenant_id, "a@pole.example", card("A"))
        expected = public_event_count(standby)
        await eventually(lambda: count_is(client_bus, expected))
    finally:
        await first.stop()
        await second.stop()


def _anonymous() -> RequestContext:
    return RequestContext()


# -- start-up and failures ---------------------------------------------------------


def test_sigterm_while_waiting_for_nats_stops_the_service(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "QUARTIER_ENV": "test",
        "QUARTIER_DATA_DIR": str(tmp_path),
        "QUARTIER_NATS_URL": "nats://127.0.0.1:1",  # nothing listens there
    }
    log = tmp_path / "identity.log"
    with log.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.identity"],
            env=env,
            cwd=Path(__file__).parents[2],
            stderr=err,
        )
    try:
        deadline = time.monotonic() + 15
        while "nats.unreachable" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)  # running, signal handlers set, waiting for NATS
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()


async def test_an_existing_stream_is_left_as_the_operator_set_it(client_bus: Bus) -> None:
    js = client_bus.jetstream()
    tuned = stream_config(1)
    tuned.max_msgs = 1_000_000
    await js.add_stream(tuned)
    await ensure_stream(js, replicas=1)
    assert (await js.stream_info(STREAM)).config.max_msgs == 1_000_000


async def test_leadership_is_tried_again_after_a_failure(
    sqlite_settings: Settings, clock: MovableClock
) -> None:
    """A lock that cannot be reached (the database restarting) delays
    leadership; it does not end it for good."""
    host = build(sqlite_settings, clock=clock)
    real = host.leader_lock()
    failures = []

    class Flaky:
        def try_acquire(self) -> bool:
            if not failures:
                failures.append(1)
                raise OSError("the database is restarting")
            return real.try_acquire()

        def still_held(self) -> bool:
            return real.still_held()

        def release(self) -> None:
            real.release()

    host.leader_lock = Flaky  # type: ignore[method-assign]
    await host.start()
    try:
        await eventually(lambda: host.is_leader, timeout=10)
        assert failures == [1]
    finally:
        await host.stop()


async def test_a_list_of_servers_connects_to_any_that_answers(nats_server: NatsServer) -> None:
    """QUARTIER_NATS_URL may list a cluster's servers; one of them down (here
    the first) does not stop a process from starting."""
    from infra.nats_server import free_port

    down = f"nats://127.0.0.1:{free_port()}"
    for url in (f"{down},{nats_server.url}", f" {nats_server.url} , {down} "):
        bus = Bus(url, "test-cluster")
        await bus.connect(wait=10)
        try:
            assert bus.is_connected
        finally:
            await bus.close()
