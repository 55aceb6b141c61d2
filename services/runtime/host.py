"""The service host: runs a service's endpoints, outbox relay, projections,
reactions and background jobs in one process, and stops them gracefully.

Endpoints run on every replica (a NATS queue group shares the load). The
relay, reactions and background jobs are singletons: they run only while this
replica holds the service's leader lock; the others stand by.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import Callable, Coroutine, Iterable
from contextlib import suppress
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import sqlalchemy as sa
from nats.aio.msg import Msg

from services.runtime import metrics
from services.runtime import operations as ops
from services.runtime.bus import Bus, Endpoint, Offloader
from services.runtime.clock import SYSTEM_CLOCK, Clock, ShiftedClock
from services.runtime.errors import NotFound, QuartierError, Unavailable
from services.runtime.eventstore import ServiceApplication
from services.runtime.i18n import t
from services.runtime.idempotency import IdempotencyStore
from services.runtime.leader import FileLeaderLock, LeaderLock, PostgresLeaderLock, hold_leadership
from services.runtime.logging import configure_logging, get_logger
from services.runtime.mail_drop import mail_drop
from services.runtime.messages import Actor, Done
from services.runtime.parking import ParkingLot
from services.runtime.projection import Projection, Projector
from services.runtime.reactions import Reaction, ReactionConsumer
from services.runtime.relay import OutboxRelay, Translate
from services.runtime.settings import ConfigurationError, Settings
from services.runtime.store import Store
from services.runtime.stream import ensure_stream
from services.runtime.tenancy import RequestContext
from services.runtime.views import TrackedTables
from services.runtime.wakeup import sleep_unless

log = get_logger("quartier.host")

Job = Callable[[asyncio.Event], Coroutine[Any, Any, None]]  # an async function: it becomes a task
App = TypeVar("App", bound=ServiceApplication)


class ServiceHost:
    def __init__(
        self,
        service: str,
        settings: Settings,
        clock: Clock = SYSTEM_CLOCK,
        store: Store | None = None,
    ):
        self.service = service
        self.settings = settings
        self.clock = clock
        self.store = store or Store.for_service(service, settings)
        self.offload = Offloader(settings.workers, service)
        self.bus = Bus(
            settings.nats_url or "nats://127.0.0.1:4222",
            name=f"quartier-{service}",
            request_timeout=settings.request_timeout,
            credentials=settings.nats_credentials,
        )
        self.endpoints: list[Endpoint] = []
        self.projectors: list[Projector] = []
        self.relays: list[OutboxRelay] = []
        self.reactions: list[ReactionConsumer] = []
        self.jobs: list[tuple[str, Job]] = []
        self.apps: list[ServiceApplication] = []
        self.closers: list[Callable[[], Any]] = []
        self.context: dict[str, Any] = {}  # the service's parts, for tests and tools
        self.stopping = asyncio.Event()
        self.is_leader = False
        self._tasks: list[asyncio.Task[None]] = []
        self._lock: LeaderLock | None = None

    # -- assembly ---------------------------------------------------------------

    @cached_property
    def engine(self) -> sa.Engine:
        """The service's views database (read models and reactions' tables)."""
        engine = self.store.views_engine()
        self.closers.append(engine.dispose)
        return engine

    def new_app(self, cls: type[App], translate: Translate | None = None, **kwargs: Any) -> App:
        """An application on this service's store (`cls.name` names its events
        table or file); with `translate`, its public events are relayed."""
        app = cls(env=self.store.application_env(cls.name), **kwargs)
        self.add_app(app, translate)
        return app

    @cached_property
    def idempotency(self) -> IdempotencyStore:
        """First outcomes of commands sent with an idempotency key."""
        store = IdempotencyStore(self.engine, self.offload, wait=self.settings.request_timeout)
        store.create()
        return store

    def _has_idempotent_endpoints(self) -> bool:
        return any(e.request.idempotent for e in self.endpoints)

    @cached_property
    def parking(self) -> ParkingLot:
        """Where the service's projections and reactions park the events they
        cannot apply (services/runtime/parking.py)."""
        lot = ParkingLot(self.engine, self.service)
        lot.create()
        return lot

    def add_projection(self, app: ServiceApplication, projection: Projection) -> Projector:
        projector = Projector(app, self.engine, projection, parking=self.parking)
        self.add_projector(projector)
        return projector

    def add_tables(self, tables: TrackedTables) -> TrackedTables:
        tables.create(self.engine)
        return tables

    def add_app(self, app: ServiceApplication, translate: Translate | None = None) -> None:
        self.apps.append(app)
        if translate is not None:
            self.relays.append(
                OutboxRelay(
                    self.service,
                    app,
                    translate,
                    self.bus,
                    self.offload,
                    poll_interval=self.settings.relay_poll_interval,
                    reflected=lambda: self._reflected(app),
                )
            )

    def _reflected(self, app: ServiceApplication) -> int | None:
        """How far the app's read models go (caught up first): the relay
        publishes no further."""
        positions = [p.catch_up() for p in self.projectors if p.app is app]
        return min(positions) if positions else None

    def add_projector(self, projector: Projector) -> None:
        self.projectors.append(projector)

    def add_endpoints(self, endpoints: Iterable[Endpoint]) -> None:
        self.endpoints.extend(endpoints)

    def add_reaction(self, reaction: Reaction) -> None:
        self.reactions.append(
            ReactionConsumer(
                self.service,
                reaction,
                self.bus,
                self.parking,
                self.offload,
                fetch_wait=self.settings.reaction_fetch_wait,
            )
        )

    def add_job(self, name: str, job: Job) -> None:
        self.jobs.append((name, job))

    async def _serve_clock(self) -> None:
        """Outside production, on a ShiftedClock: `quartier clock` moves it
        (every replica hears the move; the offset is kept in the data dir, so
        a restart keeps the time where it was)."""
        clock = self.clock
        if self.settings.is_prod or not isinstance(clock, ShiftedClock):
            return
        token = self.settings.operator_token

        async def on_move(msg: Msg) -> None:
            try:
                move = msgspec.json.decode(msg.data, type=ops.MoveClock)
                ops.require_operator(
                    RequestContext(actor=Actor(kind="operator"), credential=move.credential), token
                )
                if move.seconds and clock.move(move.move_id, timedelta(seconds=move.seconds)):
                    await self.offload(save_clock_offset, self.settings, clock.offset)
                    log.warning("clock.moved", service=self.service, seconds=move.seconds)
                state = ops.ClockState(
                    service=self.service,
                    offset_seconds=clock.offset.total_seconds(),
                    now=clock.now(),
                )
            except (msgspec.DecodeError, QuartierError) as e:
                state = ops.ClockState(
                    service=self.service, offset_seconds=0, now=clock.now(), error=str(e)
                )
            if msg.reply:
                await msg.respond(msgspec.json.encode(state))

        await self.bus.subscribe(ops.CLOCK_SUBJECT, on_move)

    def _serve_metrics(self) -> None:
        port = self.settings.metrics_port_of(self.service)
        if port is not None:
            metrics.serve(port, self.settings.http_host)

    async def _health(self) -> dict[str, Any]:
        """What the service says when pinged (the gateway's readiness detail)."""
        drop = {"mail_drop": mail_drop(self.settings)}  # replicas must share it
        if "parking" not in self.__dict__:
            return {"parked": 0, **drop}
        return {"parked": await self.offload(self.parking.count), **drop}

    def _operations(self) -> list[Endpoint]:
        """Operators' requests (services/runtime/operations.py): the stream's
        rebuild, and parked events if the service has anything to park."""
        rebuild = self._rebuild_operations()
        if not self.projectors and not self.reactions:
            return rebuild
        token = self.settings.operator_token

        async def list_parked(q: ops.ListParked, ctx: RequestContext) -> list[ops.ParkedInfo]:
            ops.require_operator(ctx, token)
            found = await self.offload(self.parking.list, q.consumer, q.status)
            return [ops.ParkedInfo(**vars(p)) for p in found]

        async def retry_parked(q: ops.RetryParked, ctx: RequestContext) -> ops.RetryOutcome:
            ops.require_operator(ctx, token)
            applied = 0
            for projector in self.projectors:
                if q.consumer in (None, projector.key):
                    done, _ = await self.offload(projector.retry_parked)
                    applied += done
            for consumer in self.reactions:
                if q.consumer in (None, consumer.durable):
                    done, _ = await consumer.retry_parked()
                    applied += done
            left = await self.offload(self.parking.list, q.consumer, "parked")
            return ops.RetryOutcome(applied=applied, parked=len(left))

        async def skip_parked(q: ops.SkipParked, ctx: RequestContext) -> Done:
            ops.require_operator(ctx, token)
            if not await self.offload(self.parking.skip, q.consumer, q.position):
                raise NotFound(t("no such parked event"))
            return Done()

        return [
            *rebuild,
            Endpoint(ops.for_service(ops.ListParked, self.service), list_parked),
            Endpoint(ops.for_service(ops.RetryParked, self.service), retry_parked),
            Endpoint(ops.for_service(ops.SkipParked, self.service), skip_parked),
        ]

    def _rebuild_operations(self) -> list[Endpoint]:
        """`quartier stream rebuild`: the leader's relays publish again what
        the stream lacks (services/runtime/relay.py)."""
        token = self.settings.operator_token

        def leading() -> None:
            if self.relays and not self.is_leader:
                raise Unavailable(
                    t(
                        "this replica of {service} does not lead its relay now: ask again",
                        service=self.service,
                    )
                )

        async def progress(rebuild_id: str) -> ops.RebuildProgress:
            found = [r.rebuild for r in self.relays if r.rebuild and r.rebuild.id == rebuild_id]
            if len(found) != len(self.relays):
                raise NotFound(
                    t(
                        "{service} runs no rebuild {rebuild_id}: it was interrupted "
                        "(its leader changed?): run the rebuild again",
                        service=self.service,
                        rebuild_id=rebuild_id,
                    )
                )
            lag = 0
            for relay in self.relays:
                newest = await self.offload(relay.app.max_notification_id)
                lag += max(0, newest - (relay.published_up_to or 0))
            states = {r.state for r in found}
            state = next((s for s in ("failed", "running", "queued") if s in states), "done")
            return ops.RebuildProgress(
                service=self.service,
                rebuild_id=rebuild_id,
                state=state,
                checked=sum(r.checked for r in found),
                republished=sum(r.republished for r in found),
                purged_tenants=sum(r.purged_tenants for r in found),
                lag=lag,
                started_at=min((r.started_at for r in found if r.started_at), default=None),
                finished_at=max((r.finished_at for r in found if r.finished_at), default=None)
                if state in ("done", "failed")
                else None,
                error=next((r.error for r in found if r.error), None),
            )

        async def rebuild_stream(q: ops.RebuildStream, ctx: RequestContext) -> ops.RebuildProgress:
            ops.require_operator(ctx, token)
            leading()
            await ensure_stream(self.bus.jetstream(), self.settings.stream_replicas)
            rebuild_id = uuid.uuid4().hex
            running = [r.rebuild for r in self.relays if r.rebuild and r.rebuild.active]
            if running:
                rebuild_id = running[0].id
            for relay in self.relays:
                relay.request_rebuild(rebuild_id)
            return await progress(rebuild_id)

        async def rebuild_progress(
            q: ops.GetRebuildProgress, ctx: RequestContext
        ) -> ops.RebuildProgress:
            ops.require_operator(ctx, token)
            leading()
            return await progress(q.rebuild_id)

        return [
            Endpoint(ops.for_service(ops.RebuildStream, self.service), rebuild_stream),
            Endpoint(ops.for_service(ops.GetRebuildProgress, self.service), rebuild_progress),
        ]

    def leader_lock(self) -> LeaderLock:
        if self.store.is_postgres:
            return PostgresLeaderLock(
                self.store.conninfo(), f"quartier:{self.store.schema}:singletons"
            )
        return FileLeaderLock(Path(self.store.data_dir) / f"{self.service}.leader.lock")

    # -- life cycle -------------------------------------------------------------

    async def start(self, connect_wait: float | None = 30.0) -> None:
        await self.bus.connect(wait=connect_wait)
        await ensure_stream(self.bus.jetstream(), self.settings.stream_replicas)
        for projector in self.projectors:
            try:
                await self.offload(projector.catch_up)
            except Exception:  # start anyway: the background catch-up retries
                log.exception("projection.failed_at_start", projection=projector.key)
        await self.bus.serve(
            self.service,
            [*self.endpoints, *self._operations()],
            health=self._health,
            idempotency=self.idempotency if self._has_idempotent_endpoints() else None,
        )
        self._spawn("projections", self._run_projections)
        self._spawn("leadership", self._lead)
        self._serve_metrics()
        await self._serve_clock()
        log.info("service.started", service=self.service, endpoints=len(self.endpoints))

    def _spawn(self, name: str, job: Job) -> None:
        async def guarded() -> None:
            try:
                await job(self.stopping)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("service.job_crashed", service=self.service, job=name)

        self._tasks.append(asyncio.create_task(guarded(), name=f"{self.service}:{name}"))

    async def _lead(self, stopping: asyncio.Event) -> None:
        """Hold the leader lock and run the singletons; stand by otherwise.
        The leader checks its lock every second and a standby retries every
        three, so that a leader whose lock went away stops before a standby
        takes over."""
        self._lock = self.leader_lock()
        while not stopping.is_set():
            try:
                await self._lead_once(stopping, self._lock)
            except Exception:
                log.exception("service.leadership_failed", service=self.service)
                self.is_leader = False
                await sleep_unless(stopping, 3.0)

    async def _lead_once(self, stopping: asyncio.Event, lock: LeaderLock) -> None:
        if not await hold_leadership(lock, stopping, retry=3.0):
            return
        self.is_leader = True
        log.info("service.leading", service=self.service)
        tasks = [asyncio.create_task(r.run(stopping)) for r in self.relays]
        tasks += [asyncio.create_task(c.run(stopping)) for c in self.reactions]
        tasks += [asyncio.create_task(job(stopping)) for _, job in self.jobs]
        lost = False
        try:
            while not stopping.is_set():
                await sleep_unless(stopping, 1.0)
                if not stopping.is_set() and not await self.offload(lock.still_held):
                    lost = True
                    break
        finally:
            if lost:
                for t in tasks:
                    t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.is_leader = False
            await self.offload(lock.release)
        if lost:
            log.warning("service.leadership_lost", service=self.service)

    async def _run_projections(self, stopping: asyncio.Event) -> None:
        """Catch up with events written by other replicas (own saves are
        projected by the commands themselves)."""
        while not stopping.is_set():
            await sleep_unless(stopping, self.settings.relay_poll_interval)
            for projector in self.projectors:
                try:
                    await self.offload(projector.catch_up)
                except Exception:
                    log.exception("projection.failed", projection=projector.key)

    async def stop(self) -> None:
        if self.stopping.is_set():
            return
        log.info("service.stopping", service=self.service)
        await self.bus.stop_serving()
        self.stopping.set()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=15)
        for task in self._tasks:
            task.cancel()
        await self.bus.close()
        self.offload.shutdown()
        for closer in self.closers:
            closer()
        for app in self.apps:
            app.close()
        log.info("service.stopped", service=self.service)

    async def run_until_signalled(self) -> None:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, done.set)
        # A signal during start-up (NATS unreachable, say) stops it too.
        starting = asyncio.create_task(self.start(connect_wait=None))
        signalled = asyncio.create_task(done.wait())
        await asyncio.wait({starting, signalled}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            with suppress(asyncio.CancelledError):
                await starting
        else:
            starting.result()  # a failed start raises here
            await signalled
        await self.stop()


# -- running a service ---------------------------------------------------------------

CLOCK_FILE = "clock.offset"


def clock_offset(settings: Settings) -> timedelta:
    """The offset `quartier clock` left in the data dir (zero if none)."""
    path = Path(settings.data_dir) / CLOCK_FILE
    try:
        return timedelta(seconds=float(path.read_text().strip() or 0))
    except (OSError, ValueError):
        return timedelta(0)


def save_clock_offset(settings: Settings, offset: timedelta) -> None:
    path = Path(settings.data_dir) / CLOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{CLOCK_FILE}.{os.getpid()}")
    tmp.write_text(str(offset.total_seconds()))
    tmp.replace(path)


def run_service(service: str, build: Callable[..., ServiceHost]) -> None:
    """`python -m services.<name>`: settings from the environment, logging,
    the clock (the system's in production; elsewhere shifted by what
    `quartier clock` set), and the service until SIGTERM or SIGINT.
    A bad setting or an unreachable NATS stops it with one line on stderr
    (`quartier-<service>: cannot start: …`) and exit status 2 or 1, not a
    traceback."""
    try:
        settings = Settings.from_env()
        configure_logging(settings.log_format, settings.log_level, service=service)
        clock: Clock = SYSTEM_CLOCK if settings.is_prod else ShiftedClock(clock_offset(settings))
        asyncio.run(build(settings, clock=clock).run_until_signalled())
    except ConfigurationError as e:
        print(f"quartier-{service}: configuration error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except QuartierError as e:
        print(f"quartier-{service}: cannot start: {e.message}", file=sys.stderr)
        raise SystemExit(1) from None
