"""The service host: runs a service's endpoints, outbox relay, projections,
reactions and background jobs in one process, and stops them gracefully.

Endpoints run on every replica (a NATS queue group shares the load). The
relay, reactions and background jobs are singletons: they run only while this
replica holds the service's leader lock; the others stand by.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine, Iterable
from contextlib import suppress
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from services.runtime.bus import Bus, Endpoint, Offloader
from services.runtime.clock import SYSTEM_CLOCK, Clock
from services.runtime.eventstore import ServiceApplication
from services.runtime.leader import FileLeaderLock, LeaderLock, PostgresLeaderLock, hold_leadership
from services.runtime.logging import get_logger
from services.runtime.projection import Projection, Projector
from services.runtime.reactions import Reaction, ReactionConsumer
from services.runtime.relay import OutboxRelay, Translate
from services.runtime.settings import Settings
from services.runtime.store import Store
from services.runtime.stream import ensure_stream
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

    def add_projection(self, app: ServiceApplication, projection: Projection) -> Projector:
        projector = Projector(app, self.engine, projection)
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
                )
            )

    def add_projector(self, projector: Projector) -> None:
        self.projectors.append(projector)

    def add_endpoints(self, endpoints: Iterable[Endpoint]) -> None:
        self.endpoints.extend(endpoints)

    def add_reaction(self, reaction: Reaction) -> None:
        self.reactions.append(ReactionConsumer(self.service, reaction, self.bus))

    def add_job(self, name: str, job: Job) -> None:
        self.jobs.append((name, job))

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
            await self.offload(projector.catch_up)
        await self.bus.serve(self.service, self.endpoints)
        self._spawn("projections", self._run_projections)
        self._spawn("leadership", self._lead)
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
        for t in self._tasks:
            t.cancel()
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
