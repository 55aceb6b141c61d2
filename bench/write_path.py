"""Write-path benchmark: a profile-card update, raw and through the whole system.

What it measures, on one store and in one run (SQLite, and PostgreSQL when it
answers), each phase for `--seconds` after a `--warmup`:

(a)  The floor: raw `eventsourcing` application saves (configured as the
     service is: with the aggregate cache; (a0) is the same with the library's
     defaults). One thread, in a loop,
     `member = app.repository.get(id); member.update_card({"offers": ...});
     app.save(member)` with an `Identity` application opened on the very store
     the running identity service uses (same SQLite file, same PostgreSQL
     schema), in this process. This single-writer figure is the baseline of the
     ratio: it is what "raw eventsourcing application saves" means.
(a') The same raw saves from `--clients` threads (one member each), for
     reference: the library serialises the writes to one events table, so this
     shows what concurrency alone does to the floor, with none of our code.
(n)  The `UpdateProfileCard` command sent straight over NATS by `--clients`
     concurrent requesters (as a member, the way the gateway sends it): the
     identity service's own share of (b), without HTTP and GraphQL.
(b)  The GraphQL mutation `updateProfileCard` sent by `--clients` concurrent
     HTTP clients (httpx, one member and one access token each) to the gateway,
     which verifies the token, runs strawberry and sends the command over NATS
     to the identity service, which loads, updates and saves the member in its
     worker pool, brings its read model up to date (the caller reads its own
     write), reads the card back and replies. Only replies whose `__typename` is
     `ProfileCardUpdated` count.

It prints each phase's rate, p50 and p99 latency, the ratio (b)/(a), and the CPU
time each process used during (a), (n) and (b), per write: on a small machine
that says where the cores went. It never asserts a threshold.

By default (`--mode processes`) the system runs as it is deployed: NATS, the
identity service (`python -m services.identity`) and the gateway
(`python -m gateway`) are separate processes, each with its own interpreter and
GIL; the load generator is this process. `--mode in-process` runs the service
and the gateway (uvicorn) on this process's event loop instead, so that client,
gateway and service share one GIL: a worse and less realistic figure, kept for
comparison and for profilers that only see one process.

    .venv/bin/python bench/write_path.py                 # SQLite, and PostgreSQL if it answers
    .venv/bin/python bench/write_path.py --seconds 10 --postgres postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/write_path.py --py-spy /tmp/prof   # flame graphs of (a), (n), (b)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import itertools
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, TypeVar
from uuid import UUID

import httpx

from infra.nats_server import NatsServer, free_port, start_nats_server
from services.identity import contract as idc
from services.identity.application import Identity
from services.runtime.bus import Bus
from services.runtime.errors import QuartierError
from services.runtime.logging import configure_logging
from services.runtime.messages import Actor
from services.runtime.settings import Settings
from services.runtime.store import Store
from services.runtime.tenancy import RequestContext

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
JWT_SECRET = secrets.token_urlsafe(32)  # production refuses guessable secrets
OPERATOR_TOKEN = secrets.token_urlsafe(32)  # a throw-away system
PASSWORD = "correct horse battery"  # noqa: S105
MUTATION = """
mutation($input: ProfileCardInput!) {
  updateProfileCard(input: $input) {
    __typename
    ... on ProfileCardUpdated { member { id } }
    ... on Error { message }
  }
}
"""
CLK_TCK = os.sysconf("SC_CLK_TCK")
T = TypeVar("T")

RAW, RAW_THREADS, NATS, GRAPHQL = "raw", "raw_threads", "nats", "graphql"
RAW_DEFAULT = "raw_default"  # the library's defaults: no aggregate cache

# Every update writes a text never written before, so that each one is a real change.
_texts = itertools.count()


def new_text(tag: str) -> str:
    return f"{tag} {next(_texts)}"


# -- results -------------------------------------------------------------------


@dataclass
class Phase:
    label: str
    writes: int
    seconds: float
    latencies_ms: list[float] = field(repr=False)
    failures: int = 0
    first_failure: str | None = None
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    round_rates: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.writes / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "writes": self.writes,
            "seconds": round(self.seconds, 3),
            "rate": round(self.rate, 1),
            "p50_ms": round(self.percentile(50), 2),
            "p99_ms": round(self.percentile(99), 2),
            "failures": self.failures,
            "first_failure": self.first_failure,
            "round_rates": [round(r, 1) for r in self.round_rates],
            "cpu_ms_per_write": {
                name: round(sec / self.writes * 1000, 3) if self.writes else None
                for name, sec in self.cpu_seconds.items()
            },
        }


def merge(rounds: list[Phase]) -> Phase:
    """The rounds of one phase as one: total writes over total time."""
    cpu: dict[str, float] = {}
    for p in rounds:
        for name, sec in p.cpu_seconds.items():
            cpu[name] = cpu.get(name, 0.0) + sec
    failures = [p.first_failure for p in rounds if p.first_failure]
    return Phase(
        rounds[0].label,
        sum(p.writes for p in rounds),
        sum(p.seconds for p in rounds),
        [x for p in rounds for x in p.latencies_ms],
        failures=sum(p.failures for p in rounds),
        first_failure=failures[0] if failures else None,
        cpu_seconds=cpu,
        round_rates=[p.rate for p in rounds],
    )


@dataclass
class StoreResult:
    store: str
    mode: str
    clients: int
    phases: dict[str, Phase]

    @property
    def ratio(self) -> float:
        """(b)/(a): GraphQL through the gateway over single-writer raw saves."""
        raw = self.phases[RAW].rate
        return self.phases[GRAPHQL].rate / raw if raw else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "mode": self.mode,
            "clients": self.clients,
            "cpus": os.cpu_count(),
            "ratio_b_over_a": round(self.ratio, 3),
            "phases": {key: p.summary() for key, p in self.phases.items()},
        }


# -- CPU accounting (from /proc: user + system time of a process, all threads) --


def cpu_of(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def postgres_pids() -> list[int]:
    """The PostgreSQL server's processes (not ours: only read). All of them,
    so other clients of the same server count here too."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
    return pids


def machine_cpu() -> float:
    """CPU seconds the whole machine has been busy (all CPUs), from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


class CpuMeter:
    """CPU seconds used by named groups of processes between start() and stop(),
    plus `other`: what the rest of the machine used meanwhile (a benchmark on a
    shared machine is only as good as its quiet)."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]]):
        self.groups = groups
        self._start: dict[str, dict[int, float]] = {}
        self._machine = 0.0

    def _sample(self) -> dict[str, dict[int, float]]:
        return {name: {pid: cpu_of(pid) for pid in pids()} for name, pids in self.groups.items()}

    def start(self) -> None:
        self._start = self._sample()
        self._machine = machine_cpu()

    def stop(self) -> dict[str, float]:
        machine = machine_cpu() - self._machine
        used = {}
        for name, by_pid in self._sample().items():
            before = self._start.get(name, {})
            used[name] = sum(cpu - before.get(pid, 0.0) for pid, cpu in by_pid.items())
        used["other"] = max(0.0, machine - sum(used.values()))
        return used


# -- the system under test -----------------------------------------------------


class System:
    """NATS, the services (identity alone by default) and the gateway, as
    processes or in-process.

    The services run with QUARTIER_ENV=test, which only makes identity's argon2
    cheap (the set-up signs the members up; no password is hashed on the
    measured path). The gateway runs as in production (`--gateway-env`, prod by
    default: the environment only selects the schema's extensions)."""

    def __init__(
        self,
        workdir: Path,
        database_url: str | None,
        mode: str,
        gateway_env: str,
        services: tuple[str, ...] = ("identity",),
    ):
        self.workdir = workdir
        self.mode = mode
        self.services = services
        self.nats: NatsServer = start_nats_server(
            workdir / "nats", log_file=workdir / "nats-server.log"
        )
        env = {
            "QUARTIER_DATA_DIR": str(workdir / "data"),
            "QUARTIER_NATS_URL": self.nats.url,
            "QUARTIER_JWT_SECRET": JWT_SECRET,
            "QUARTIER_OPERATOR_TOKEN": OPERATOR_TOKEN,
            "QUARTIER_ACCESS_TOKEN_TTL": "7200",
            # The per-tenant limit (1200/min by default) would be all we measured.
            "QUARTIER_RATE_LIMIT": "100000000",
            "QUARTIER_MEMBER_RATE_LIMIT": "100000000",
            "QUARTIER_COST_LIMIT": "100000000",
            "QUARTIER_MEMBER_COST_LIMIT": "100000000",
            "QUARTIER_TENANT_CONCURRENCY": "100000",
            # Only these services run: the gateway is ready when they answer.
            "QUARTIER_SERVICES": ",".join(services),
            "QUARTIER_LOG_LEVEL": "warning",
        }
        if database_url:
            env["QUARTIER_DATABASE_URL"] = database_url
            env["QUARTIER_DB_SCHEMA_PREFIX"] = f"bench{uuid.uuid4().hex[:8]}_"
        self.port = free_port()
        self.service_env = {**env, "QUARTIER_ENV": "test"}
        self.gateway_env = {
            **env,
            "QUARTIER_ENV": gateway_env,
            "QUARTIER_HTTP_PORT": str(self.port),
        }
        self.settings = Settings.from_env(self.service_env)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []
        self._hosts: list[Any] = []
        self._server: Any = None
        self._server_task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_groups(self) -> dict[str, Callable[[], list[int]]]:
        me = os.getpid()
        name = "bench (client)" if self.mode == "processes" else "bench (all but nats)"
        groups: dict[str, Callable[[], list[int]]] = {name: lambda: [me]}
        for process_name, process in self.processes.items():
            groups[process_name] = lambda pid=process.pid: [pid]
        groups["nats-server"] = lambda: [self.nats.process.pid]
        if self.settings.database_url:
            groups["postgres"] = postgres_pids
        return groups

    def python_pids(self) -> dict[str, int]:
        """The Python processes py-spy may sample, by name."""
        return {"bench": os.getpid(), **{n: p.pid for n, p in self.processes.items()}}

    async def start(self) -> None:
        if self.mode == "processes":
            self._spawn()
        else:
            import uvicorn

            from gateway.app import create_app

            for name in self.services:
                build = importlib.import_module(f"services.{name}.service").build
                host = build(self.settings)
                await host.start()
                self._hosts.append(host)
            app = create_app(Settings.from_env(self.gateway_env))
            self._server = uvicorn.Server(
                uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
            )
            self._server_task = asyncio.create_task(self._server.serve())
        await self._wait_ready()

    def _spawn(self) -> None:
        for name, module, env in (
            *((name, f"services.{name}", self.service_env) for name in self.services),
            ("gateway", "gateway", self.gateway_env),
        ):
            log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 (closed in stop)
            self._logs.append(log)
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", module], env={**os.environ, **env}, stdout=log, stderr=log
            )

    async def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                for name, process in self.processes.items():
                    if process.poll() is not None:
                        raise RuntimeError(
                            f"{name} exited with {process.returncode}; see {self.workdir}/{name}.log"
                        )
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.get(f"{self.url}/health/ready", timeout=2)
                    if response.status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise RuntimeError(f"the system was not ready within {timeout:.0f}s")

    async def stop(self) -> None:
        for process in reversed(self.processes.values()):  # the gateway first, then the services
            if process.poll() is None:
                process.terminate()
                try:
                    await asyncio.to_thread(process.wait, 20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    await asyncio.to_thread(process.wait)
        if self._server is not None and self._server_task is not None:
            self._server.should_exit = True
            await self._server_task
        for host in reversed(self._hosts):
            await host.stop()
        for log in self._logs:
            log.close()
        self.nats.stop()
        drop_schemas(self.settings)


def drop_schemas(settings: Settings) -> None:
    """PostgreSQL: drop this run's schemas (they all start with its prefix)."""
    if not settings.database_url or not settings.db_schema_prefix:
        return
    import psycopg

    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
            (settings.db_schema_prefix.replace("_", r"\_") + "%",),
        ).fetchall()
        for (name,) in rows:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


# -- data: one network, one member (and access token) per client --------------


@dataclass(frozen=True)
class Seat:
    member_id: str
    tenant_id: str
    roles: tuple[str, ...]
    access_token: str

    def as_member(self) -> RequestContext:
        """What the gateway sends on behalf of this member (fresh correlation id)."""
        return RequestContext(
            tenant_id=self.tenant_id,
            actor=Actor(
                kind="member", member_id=self.member_id, tenant_id=self.tenant_id, roles=self.roles
            ),
        )


def plumber_card(i: int) -> idc.CardChanges:
    return idc.CardChanges(display_name=f"Member {i}", activity_code="plumber", offers="repairs")


async def create_members(
    nats_url: str, count: int, card: Callable[[int], idc.CardChanges] = plumber_card
) -> list[Seat]:
    """One network and `count` members (the first is its tenant admin), through
    identity's own commands; member i fills in `card(i)`."""
    bus = Bus(nats_url, "quartier-bench-setup", request_timeout=30)
    await bus.connect(wait=30)
    try:
        created = await bus.request(
            idc.CreateTenant(slug="bench", name="Bench network", admin_email="m0@bench.example"),
            RequestContext(actor=Actor(kind="operator"), credential=OPERATOR_TOKEN),
        )
        operator = RequestContext(
            tenant_id=created.tenant.tenant_id,
            actor=Actor(kind="operator"),
            credential=OPERATOR_TOKEN,
        )
        tokens = [created.admin_invitation.token]
        for i in range(1, count):
            sent = await bus.request(idc.InviteMember(email=f"m{i}@bench.example"), operator)
            tokens.append(sent.token)
        sessions = await asyncio.gather(
            *(
                bus.request(
                    idc.AcceptInvitation(token=token, password=PASSWORD, card=card(i)),
                    RequestContext(),
                )
                for i, token in enumerate(tokens)
            )
        )
    finally:
        await bus.close()
    return [Seat(s.member_id, s.tenant_id, tuple(s.roles), s.access_token) for s in sessions]


# -- (a) raw eventsourcing saves ------------------------------------------------


def raw_update(app: Identity, member_id: UUID, text: str) -> None:
    member = app.repository.get(member_id)
    member.update_card({"offers": text})
    app.save(member)


def raw_phase(
    label: str,
    write: Callable[[T, str], None],
    groups: list[list[T]],
    seconds: float,
    meter: CpuMeter,
) -> Phase:
    """One thread per group of aggregates, each writing to its aggregates in
    turn (`write(item, new_text)`) until the deadline; a single group is the
    single-writer baseline (run inline)."""
    results: list[list[float]] = [[] for _ in groups]
    meter.start()
    started = time.perf_counter()
    deadline = started + seconds

    def work(k: int) -> None:
        items = groups[k]
        latencies = results[k]
        i = 0
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            write(items[i % len(items)], new_text("raw"))
            latencies.append((time.perf_counter() - t0) * 1000)
            i += 1

    if len(groups) == 1:
        work(0)
    else:
        threads = [threading.Thread(target=work, args=(k,)) for k in range(len(groups))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    elapsed = time.perf_counter() - started
    cpu = meter.stop()
    latencies = [x for r in results for x in r]
    return Phase(label, len(latencies), elapsed, latencies, cpu_seconds=cpu)


# -- (n) and (b): closed-loop concurrent clients --------------------------------

Send = Callable[[int, Seat, str], Awaitable[str | None]]  # None on success, else why not


class Exhausted(Exception):
    """Raised by a sender that has nothing left to send (its worker stops)."""


async def drive(
    label: str, seats: list[Seat], send: Send, seconds: float, meter: CpuMeter
) -> Phase:
    """One worker per seat, each sending its next update as soon as the last
    one is answered, until the deadline."""
    latencies: list[float] = []
    failures: list[str] = []
    meter.start()
    started = time.perf_counter()
    deadline = started + seconds

    async def worker(k: int, seat: Seat) -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                failure = await send(k, seat, new_text(label[:3]))
            except Exhausted as e:
                failures.append(f"exhausted: {e}")
                return
            if failure is None:
                latencies.append((time.perf_counter() - t0) * 1000)
            else:
                failures.append(failure)

    await asyncio.gather(*(worker(k, seat) for k, seat in enumerate(seats)))
    elapsed = time.perf_counter() - started
    cpu = meter.stop()
    return Phase(
        label,
        len(latencies),
        elapsed,
        latencies,
        failures=len(failures),
        first_failure=failures[0] if failures else None,
        cpu_seconds=cpu,
    )


def graphql_sender(clients: list[httpx.AsyncClient]) -> Send:
    """Client k posts with its own httpx client (one keep-alive connection):
    one shared pool of 32 connections costs the load generator O(32) work per
    request in httpcore's pool bookkeeping, CPU the system under test needs."""

    async def send(k: int, seat: Seat, text: str) -> str | None:
        try:
            response = await clients[k].post(
                "/graphql",
                json={"query": MUTATION, "variables": {"input": {"offers": text}}},
                headers={"Authorization": f"Bearer {seat.access_token}"},
            )
        except httpx.HTTPError as e:
            return f"{type(e).__name__}: {e}"
        if response.status_code != 200:
            return f"HTTP {response.status_code}: {response.text[:200]}"
        body = response.json()
        result = (body.get("data") or {}).get("updateProfileCard") or {}
        if result.get("__typename") != "ProfileCardUpdated":
            return json.dumps(body)[:300]
        return None

    return send


def bus_sender(bus: Bus) -> Send:
    async def send(_k: int, seat: Seat, text: str) -> str | None:
        command = idc.UpdateProfileCard(changes=idc.CardChanges(offers=text))
        try:
            await bus.request(command, seat.as_member(), timeout=60)
        except QuartierError as e:
            return f"{e.code}: {e.message}"
        return None

    return send


# -- profiling -----------------------------------------------------------------


@contextlib.contextmanager
def sampled(
    out_dir: Path | None,
    label: str,
    pids: dict[str, int],
    seconds: float,
    fmt: str,
    gil: bool = False,
) -> Iterator[None]:
    """Sample the given processes with py-spy (non-blocking) while the block runs;
    with `gil`, only the samples of threads holding the GIL (Python CPU time)."""
    if out_dir is None:
        yield
        return
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out_dir.mkdir(parents=True, exist_ok=True)
    ext = {"raw": "txt", "flamegraph": "svg", "speedscope": "json"}[fmt]
    samplers = [
        subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(max(1, int(seconds))),
                "--rate",
                "250",
                "--nonblocking",
                "--threads",
                *(["--gil"] if gil else []),
                "--format",
                fmt,
                "--output",
                str(out_dir / f"{label}-{name}.{ext}"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    ]
    try:
        yield
    finally:
        for sampler in samplers:
            try:
                sampler.wait(timeout=seconds + 30)
            except subprocess.TimeoutExpired:
                sampler.terminate()


# -- one store -----------------------------------------------------------------


async def run_store(store: str, database_url: str | None, args: argparse.Namespace) -> StoreResult:
    workdir = Path(tempfile.mkdtemp(prefix=f"quartier-bench-{store}-", dir=args.data_dir))
    system = System(workdir, database_url, args.mode, args.gateway_env)
    rounds: dict[str, list[Phase]] = {
        RAW: [],
        RAW_DEFAULT: [],
        RAW_THREADS: [],
        NATS: [],
        GRAPHQL: [],
    }
    try:
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(system.stop)
            await system.start()
            print(f"  {store}: ready ({args.mode}); signing up {args.clients} members", flush=True)
            seats = await create_members(system.nats.url, args.clients)
            meter = CpuMeter(system.cpu_groups())

            # (a), (a'): an Identity application of our own, on the service's store.
            service_store = Store.for_service("identity", system.settings)
            pool = max(service_store.pool_size, args.clients)
            raw_env = replace(service_store, pool_size=pool).application_env("identity")
            raw_app = Identity(env=raw_env)
            stack.callback(raw_app.close)
            # (a0): the same, with the library's defaults (Quartier turns on its
            # aggregate cache, which speeds up (a) as much as the service).
            default_app = Identity(
                env={k: v for k, v in raw_env.items() if k != "AGGREGATE_CACHE_MAXSIZE"}
            )
            stack.callback(default_app.close)
            ids = [UUID(seat.member_id) for seat in seats]
            # (n): the command over NATS, as the gateway sends it.
            bus = Bus(system.nats.url, "quartier-bench-client", request_timeout=60)
            await bus.connect(wait=30)
            stack.push_async_callback(bus.close)
            # (b): one httpx client (one keep-alive connection) per simulated user.
            clients = [
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        base_url=system.url, limits=httpx.Limits(max_connections=1), timeout=60
                    )
                )
                for _ in seats
            ]

            def raw(
                groups: list[list[UUID]], app: Identity = raw_app
            ) -> Callable[[str, float], Awaitable[Phase]]:
                def write(member_id: UUID, text: str) -> None:
                    raw_update(app, member_id, text)

                async def run(label: str, seconds: float) -> Phase:
                    return await asyncio.to_thread(raw_phase, label, write, groups, seconds, meter)

                return run

            def driven(send: Send) -> Callable[[str, float], Awaitable[Phase]]:
                async def run(label: str, seconds: float) -> Phase:
                    return await drive(label, seats, send, seconds, meter)

                return run

            plan = [
                (RAW, "(a) raw app.save, 1 writer", raw([ids]), ["bench"]),
                (
                    RAW_DEFAULT,
                    "(a0) raw, library defaults, 1 writer",
                    raw([ids], default_app),
                    [],
                ),
                (
                    RAW_THREADS,
                    f"(a') raw app.save, {len(ids)} threads",
                    raw([[i] for i in ids]),
                    [],
                ),
                (
                    NATS,
                    f"(n) command over NATS, {len(seats)} clients",
                    driven(bus_sender(bus)),
                    ["identity", "bench"],
                ),
                (
                    GRAPHQL,
                    f"(b) GraphQL via gateway, {len(seats)} clients",
                    driven(graphql_sender(clients)),
                    ["identity", "gateway", "bench"],
                ),
            ]
            profile = Path(args.py_spy) if args.py_spy else None
            for r in range(args.rounds):
                for key, label, run, sample in plan:
                    print(f"  {store}: round {r + 1}/{args.rounds}: {label}", flush=True)
                    await run("warm-up", args.warmup)
                    pids = {n: pid for n, pid in system.python_pids().items() if n in sample}
                    with sampled(
                        profile if r == 0 else None,
                        f"{store}-{key}",
                        pids,
                        args.seconds,
                        args.py_spy_format,
                        args.py_spy_gil,
                    ):
                        rounds[key].append(await run(label, args.seconds))
                    # Let the service's relay and projection catch up before the next phase.
                    await asyncio.sleep(args.settle)
        return StoreResult(
            store, args.mode, args.clients, {key: merge(p) for key, p in rounds.items()}
        )
    finally:
        if args.keep:
            print(f"  {store}: data and logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


# -- output --------------------------------------------------------------------


def print_phases(store: str, mode: str, phases: dict[str, Phase]) -> None:
    """Each phase's writes, rate, p50 and p99 (and the rate of each round)."""
    print()
    print(f"== {store}: mode {mode}, {os.cpu_count()} CPUs ==")
    print(f"{'phase':<42} {'writes':>7} {'rate/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for p in phases.values():
        print(
            f"{p.label:<42} {p.writes:>7} {p.rate:>9.1f} {p.percentile(50):>8.2f} "
            f"{p.percentile(99):>8.2f}"
        )
        if len(p.round_rates) > 1:
            print(f"    rounds: {', '.join(f'{r:.1f}' for r in p.round_rates)} /s")
        if p.failures:
            print(f"    {p.failures} failed; first: {p.first_failure}")


def print_cpu(phases: list[Phase]) -> None:
    """CPU time per write of each process during each phase, and how busy the
    machine's cores were."""
    for p in phases:
        if not (p.cpu_seconds and p.writes):
            continue
        busy = sum(p.cpu_seconds.values()) / p.seconds
        parts = ", ".join(
            f"{name} {sec / p.writes * 1000:.2f}"
            for name, sec in p.cpu_seconds.items()
            if sec >= 0.01
        )
        print(
            f"CPU ms/write during {p.label.split()[0]} "
            f"({busy:.2f} of {os.cpu_count()} cores busy): {parts}"
        )
        other = p.cpu_seconds.get("other", 0.0) / p.seconds
        if other > 0.2:
            print(f"    warning: other processes kept {other:.2f} cores busy during this phase")


def report(result: StoreResult) -> None:
    print_phases(result.store, result.mode, result.phases)
    threads = result.phases[RAW_THREADS].rate
    default = result.phases[RAW_DEFAULT].rate
    graphql = result.phases[GRAPHQL].rate
    print(
        f"ratio (b)/(a) = {result.ratio:.3f}   "
        f"[(b)/(a') = {graphql / threads if threads else 0:.3f}, "
        f"(b)/(a0) = {graphql / default if default else 0:.3f}]"
    )
    print_cpu([result.phases[key] for key in (RAW, NATS, GRAPHQL)])


def postgres_answers(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every write-path benchmark takes (timing, stores, mode, output)."""
    parser.add_argument("--seconds", type=float, default=8.0, help="measured time per phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up time per phase")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the phases this many times, interleaved, and add them up (steadier on a "
        "shared machine)",
    )
    parser.add_argument("--settle", type=float, default=2.0, help="pause after each phase")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients and threads")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=os.environ.get("QUARTIER_BENCH_POSTGRES_URL"),
        help="run on this PostgreSQL too (default: $QUARTIER_BENCH_POSTGRES_URL, else "
        f"{DEFAULT_POSTGRES_URL} when it answers)",
    )
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument(
        "--mode",
        choices=("processes", "in-process"),
        default="processes",
        help="services and gateway as their own processes (default, as deployed) or on this "
        "process's event loop",
    )
    parser.add_argument(
        "--gateway-env",
        choices=("dev", "test", "prod"),
        default="prod",
        help="the gateway's QUARTIER_ENV (it only selects the schema's extensions)",
    )
    parser.add_argument("--data-dir", help="where the temporary SQLite files and logs go")
    parser.add_argument("--keep", action="store_true", help="keep the data and logs")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument(
        "--py-spy", metavar="DIR", help="sample the processes during (a), (n) and (b)"
    )
    parser.add_argument(
        "--py-spy-format", choices=("raw", "flamegraph", "speedscope"), default="flamegraph"
    )
    parser.add_argument(
        "--py-spy-gil",
        action="store_true",
        help="keep only samples holding the GIL (CPU) rather than all active threads (wall)",
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Profile-card updates: raw eventsourcing saves vs GraphQL via the gateway."
    )
    add_common_arguments(parser)
    return parser.parse_args(argv)


def stores_to_run(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    """SQLite unless --no-sqlite; PostgreSQL if given, or if the default URL answers."""
    stores: list[tuple[str, str | None]] = []
    if not args.no_sqlite:
        stores.append(("sqlite", None))
    if not args.no_postgres:
        if args.postgres:
            stores.append(("postgres", args.postgres))
        elif postgres_answers(DEFAULT_POSTGRES_URL):
            stores.append(("postgres", DEFAULT_POSTGRES_URL))
        else:
            print(f"PostgreSQL does not answer at {DEFAULT_POSTGRES_URL}: SQLite only")
    return stores


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging("console", "warning")
    stores = stores_to_run(args)
    print(
        f"write path: {args.clients} clients, {args.seconds:g}s per phase after a "
        f"{args.warmup:g}s warm-up, mode {args.mode}, {os.cpu_count()} CPUs, "
        f"load average {load_average()}",
        flush=True,
    )
    results = []
    for store, url in stores:
        result = asyncio.run(run_store(store, url, args))
        report(result)
        results.append(result)
    if len(results) > 1:
        print()
        print(
            f"{'store':<10} {'(a) /s':>9} {'(b) /s':>9} {'(b)/(a)':>8} {'(b) p50':>8} {'(b) p99':>8}"
        )
        for r in results:
            b = r.phases[GRAPHQL]
            print(
                f"{r.store:<10} {r.phases[RAW].rate:>9.1f} {b.rate:>9.1f} {r.ratio:>8.3f} "
                f"{b.percentile(50):>8.2f} {b.percentile(99):>8.2f}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps([r.summary() for r in results], indent=2) + "\n")


if __name__ == "__main__":
    main()
