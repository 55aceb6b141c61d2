"""Fault injection: the real `quartier up --demo` (a subprocess on its own data
dir and ports) under a GraphQL write load, while each of its processes is
killed with SIGKILL in turn — every service of `services/registry.py`, the
gateway, NATS — and restarted by the launcher. Each kill waits until a write
going through that process is under way, so that it cuts one short: the
client cannot know whether that write was done.

Writers, each with its own HTTP client and a client timeout:

* two members update their profile card, each write with a unique marker in
  the bio (identity);
* the network's admin creates hubs with unique names (hubs, which asks
  identity for the founder's activity), sending an `Idempotency-Key` and
  retrying with the same key after a clear error;
* the admin nominates new people by e-mail into a hub of the run, a unique
  marker in the note (hubs, which asks identity to invite them), with an
  `Idempotency-Key` and retries as well.

Every answer is recorded: a success, a typed error, a top-level error with a
code, a transport error; a client timeout is a hang. Afterwards, once
`/health/ready` says 200: every acknowledged write (a mutation that answered
its success type) is in its service's store exactly once (its notification
log, read with the service's own application), every public event of the
stores is on the JetStream stream exactly once (`Nats-Msg-Id` = CloudEvent
`id`), in order, with no gap; the longest unavailability each writer saw is
printed (not asserted: the machine is shared). docs/reliability.md records
the figures and the method.

One run per store, shared by the checks below (SQLite; PostgreSQL as well
when QUARTIER_TEST_POSTGRES_URL is set).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

import httpx
import nats
import pytest
from nats.js.api import DeliverPolicy

from infra import nats_auth
from infra.demo import ADMIN_EMAIL, MEMBERS, PASSWORD, SLUG
from services import registry
from services.runtime.settings import Settings
from services.runtime.stream import STREAM
from tests.e2e.test_launcher import LOGIN, Launcher, descendants, environment, process_table
from tests.support.env import POSTGRES_URL, drop_schemas

T = TypeVar("T")

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="finds the system's processes through /proc"
)

REQUEST_TIMEOUT = 5.0  # QUARTIER_REQUEST_TIMEOUT of the system: a request over NATS fails after it
CLIENT_TIMEOUT = 30.0  # a client's own limit on one answer: anything later is a hang
RETRY_DEADLINE = 60.0  # how long a writer retries one idempotent write (same key)
RECOVERY_DEADLINE = 90.0  # a kill: the process restarted, ready, every writer served again
CATCH_UP_DEADLINE = 60.0  # the relays put every stored public event on the stream
PAUSE = 0.5  # seconds of load between a recovery and the next kill
IN_FLIGHT = 0.015  # a kill waits until a write through the process has been under way this long
THINK = 0.1  # a writer's pause between two writes (keeps a 2-core machine breathing)
BACKOFF = 0.2  # a writer's pause after an error before it writes again

SUCCESS = {
    "updateProfileCard": "ProfileCardUpdated",
    "createHub": "HubPayload",
    "nominateCandidate": "NominationPayload",
}
CARD = """
mutation Card($input: ProfileCardInput!) {
  updateProfileCard(input: $input) {
    __typename
    ... on ProfileCardUpdated { member { memberId } }
    ... on Error { code message }
    ... on Conflict { field }
  }
}
"""
HUB = """
mutation Hub($input: CreateHubInput!) {
  createHub(input: $input) {
    __typename
    ... on HubPayload { hub { id hubId name } }
    ... on Error { code message }
    ... on Conflict { field }
  }
}
"""
NOMINATE = """
mutation Nominate($input: NominateCandidateInput!) {
  nominateCandidate(input: $input) {
    __typename
    ... on NominationPayload { nomination { nominationId status } }
    ... on Error { code message }
    ... on Conflict { field }
  }
}
"""
AREA = {"postcodes": ["75011", "75012"]}
# a typed refusal worth another try with the same key: the first request
# failed transiently, or has not finished (a conflict on the key itself,
# `idempotencyKey`, is final: the first request was cut short)
RETRYABLE_TYPED = {"typed:conflict"}
CUT_SHORT = "typed:conflict:idempotencyKey"


# -- what the writers saw ----------------------------------------------------------


@dataclass
class Attempt:
    """One request and its answer."""

    writer: str
    marker: str
    started: float  # time.monotonic()
    ended: float
    # success | typed:<code>[:<field>] | error:<CODES> | transport:<Error> | hung | unclear:<…>
    outcome: str
    ids: dict[str, str] = field(default_factory=dict)  # what a success named (hubId, …)

    @property
    def ok(self) -> bool:
        return self.outcome == "success"

    @property
    def clear(self) -> bool:
        return self.outcome.split(":", 1)[0] in ("success", "typed", "error", "transport")


@dataclass
class Write:
    """One write a user meant, sent once or (with an idempotency key) retried."""

    writer: str
    service: str  # whose store must hold it
    marker: str  # a unique text of its input, found in the stored event
    input: dict[str, Any] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def acknowledged(self) -> Attempt | None:
        return next((a for a in self.attempts if a.ok), None)


@dataclass
class Kill:
    target: str
    pid: int
    at: float
    restarted_at: float = 0.0  # a new process seen
    ready_at: float = 0.0  # /health/ready 200 again


@dataclass
class Outcome:
    """What one faulty run produced, for the checks."""

    store: str
    launcher: Launcher
    env: dict[str, str]
    writes: list[Write]
    kills: list[Kill]
    started: float  # `quartier up` started
    ended: float  # the last writer answered

    @property
    def attempts(self) -> list[Attempt]:
        return [a for w in self.writes for a in w.attempts]

    def writer_names(self) -> list[str]:
        return sorted({w.writer for w in self.writes})


# -- a writer ----------------------------------------------------------------------------


def classify(response: httpx.Response, mutation: str) -> tuple[str, dict[str, Any] | None]:
    try:
        body = response.json()
    except ValueError:
        return f"unclear:HTTP {response.status_code} without JSON", None
    if not isinstance(body, dict):
        return f"unclear:HTTP {response.status_code}", None
    data = (body.get("data") or {}).get(mutation)
    if isinstance(data, dict) and data.get("__typename") == SUCCESS[mutation]:
        return "success", data  # perhaps with field errors (partial data): the command succeeded
    if isinstance(data, dict) and data.get("code"):
        on = f":{data['field']}" if data.get("field") else ""
        return f"typed:{data['code']}{on}", data
    errors = body.get("errors") or []
    codes = sorted({str((e.get("extensions") or {}).get("code")) for e in errors})
    if errors and "None" not in codes:
        return "error:" + ",".join(codes), None
    return f"unclear:HTTP {response.status_code} {json.dumps(body)[:200]}", None


class Writer:
    """Sends one kind of write again and again until told to stop."""

    def __init__(
        self,
        name: str,
        service: str,
        base_url: str,
        token: str,
        mutation: str,
        document: str,
        make_input: Callable[[str, int], dict[str, Any]],
        ids: Callable[[dict[str, Any]], dict[str, str]],
        idempotent: bool = False,
        reaches: tuple[str, ...] = (),
    ):
        self.name = name
        self.service = service
        self.base_url = base_url
        self.token = token
        self.mutation = mutation
        self.document = document
        self.make_input = make_input
        self.ids = ids
        self.idempotent = idempotent
        self.reaches = {service, *reaches, "gateway", "nats"}  # the processes its writes go through
        self.writes: list[Write] = []
        self.in_flight: float | None = None  # when the request now waiting was sent

    def successes_after(self, moment: float) -> bool:
        """Whether a request sent after `moment` succeeded."""
        return any(a.ok and a.started > moment for w in self.writes for a in w.attempts)

    def busy_since(self, moment: float) -> bool:
        """Whether a request of it has been waiting for its answer since `moment`."""
        return self.in_flight is not None and self.in_flight <= moment

    async def run(self, stop: asyncio.Event, run_id: str) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=CLIENT_TIMEOUT) as client:
            n = 0
            while not stop.is_set():
                n += 1
                marker = f"fault {run_id} {self.name} {n}"
                write = Write(self.name, self.service, marker, self.make_input(marker, n))
                self.writes.append(write)
                await self._write(client, write, write.input)
                await asyncio.sleep(THINK)

    async def _write(self, client: httpx.AsyncClient, write: Write, input: dict[str, Any]) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        if self.idempotent:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        first = time.monotonic()
        while True:
            attempt = await self._send(client, write.marker, input, headers)
            write.attempts.append(attempt)
            kind = attempt.outcome.split(":", 1)[0]
            retry = self.idempotent and (
                kind in ("transport", "error") or attempt.outcome in RETRYABLE_TYPED
            )
            if attempt.ok or not retry or time.monotonic() - first > RETRY_DEADLINE:
                if not attempt.ok:
                    await asyncio.sleep(BACKOFF)
                return
            await asyncio.sleep(BACKOFF)

    async def _send(
        self, client: httpx.AsyncClient, marker: str, input: dict[str, Any], headers: dict[str, str]
    ) -> Attempt:
        started = self.in_flight = time.monotonic()
        outcome, data = "hung", None
        try:
            async with asyncio.timeout(CLIENT_TIMEOUT):
                response = await client.post(
                    "/graphql",
                    json={"query": self.document, "variables": {"input": input}},
                    headers=headers,
                )
            outcome, data = classify(response, self.mutation)
        except (TimeoutError, httpx.TimeoutException):
            outcome = "hung"
        except httpx.TransportError as e:
            outcome = f"transport:{type(e).__name__}"
        finally:
            self.in_flight = None
        ids = self.ids(data) if outcome == "success" and data else {}
        return Attempt(self.name, marker, started, time.monotonic(), outcome, ids)


# -- the processes -------------------------------------------------------------------------


def targets() -> list[str]:
    """What is killed, in order: each service, the gateway, NATS."""
    return [*registry.names(), "gateway", "nats"]


def current_pid(launcher: Launcher, target: str) -> int | None:
    if target == "nats":
        matches: Callable[[str], bool] = lambda args: "nats-server" in args  # noqa: E731
    else:
        module = "gateway" if target == "gateway" else registry.spec(target).module
        matches = lambda args: args.endswith(f"-m {module}")  # noqa: E731
    children = descendants(launcher.process.pid, process_table())
    found = [p.pid for p in children.values() if matches(p.args)]
    assert len(found) <= 1, (target, found)
    return found[0] if found else None


async def until(check: Callable[[], Any], deadline: float, what: str, interval: float = 0.1) -> Any:
    """The first truthy result of `check()` (sync or async) before `deadline`
    (a monotonic time), or an AssertionError naming `what`."""
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached in time")
        await asyncio.sleep(interval)


async def ready(client: httpx.AsyncClient) -> bool:
    try:
        return (await client.get("/health/ready", timeout=2)).status_code == 200
    except httpx.HTTPError:
        return False


async def login(client: httpx.AsyncClient, email: str) -> str:
    response = await client.post(
        "/graphql",
        json={
            "query": LOGIN,
            "variables": {"input": {"tenant": SLUG, "email": email, "password": PASSWORD}},
        },
    )
    payload = response.json()["data"]["login"]
    assert payload["__typename"] == "AuthPayload", payload
    token: str = payload["accessToken"]
    return token


async def write_under_way(writers: list[Writer], target: str) -> None:
    """Until a write going through `target` has been under way for a moment
    (IN_FLIGHT seconds), so that the kill cuts it: the case where a client
    cannot know whether its write was done. Bounded: at worst the kill lands
    between writes."""
    deadline = time.monotonic() + 10.0
    chosen = [w for w in writers if target in w.reaches]
    while time.monotonic() < deadline:
        if any(w.busy_since(time.monotonic() - IN_FLIGHT) for w in chosen):
            return
        await asyncio.sleep(0.002)


async def scenario(launcher: Launcher, run_id: str) -> tuple[list[Writer], list[Kill]]:
    """The write load, and the kills in turn, each once the previous one is
    over: its process restarted, the system ready, every writer served again."""
    base_url = launcher.base_url
    async with httpx.AsyncClient(base_url=base_url, timeout=CLIENT_TIMEOUT) as client:
        admin = await login(client, ADMIN_EMAIL)
        karim = await login(client, MEMBERS[1].email)
        sophie = await login(client, MEMBERS[2].email)
        created = (
            await client.post(
                "/graphql",
                json={
                    "query": HUB,
                    "variables": {
                        "input": {
                            "name": f"Co-optations {run_id}",
                            "kind": "TRADE_CLUB",
                            "area": AREA,
                        }
                    },
                },
                headers={"Authorization": f"Bearer {admin}"},
            )
        ).json()["data"]["createHub"]
        assert created["__typename"] == "HubPayload", created
        hub_id = created["hub"]["id"]

        writers = [
            Writer(
                name,
                "identity",
                base_url,
                token,
                "updateProfileCard",
                CARD,
                lambda marker, n: {"bio": marker},
                lambda data: {"memberId": data["member"]["memberId"]},
            )
            for name, token in (("card-karim", karim), ("card-sophie", sophie))
        ]
        writers.append(
            Writer(
                "hub",
                "hubs",
                base_url,
                admin,
                "createHub",
                HUB,
                lambda marker, n: {"name": marker, "kind": "TRADE_CLUB", "area": AREA},
                lambda data: {"hubId": data["hub"]["hubId"]},
                idempotent=True,
                reaches=("identity",),  # hubs asks identity for the founder's activity
            )
        )
        writers.append(
            Writer(
                "nomination",
                "hubs",
                base_url,
                admin,
                "nominateCandidate",
                NOMINATE,
                lambda marker, n: {
                    "hubId": hub_id,
                    "email": f"candidate-{run_id}-{n}@faults.example",
                    "note": marker,
                },
                lambda data: {"nominationId": data["nomination"]["nominationId"]},
                idempotent=True,
                reaches=("identity",),  # hubs asks identity to invite the candidate
            )
        )
        stop = asyncio.Event()
        tasks = [asyncio.create_task(w.run(stop, run_id)) for w in writers]
        kills: list[Kill] = []
        try:
            began = time.monotonic()
            await until(
                lambda: all(w.successes_after(began) for w in writers),
                began + RECOVERY_DEADLINE,
                "every writer served before the first kill",
            )
            await asyncio.sleep(PAUSE)
            for target in targets():
                await write_under_way(writers, target)
                pid = current_pid(launcher, target)
                assert pid is not None, f"no {target} process running"
                os.kill(pid, signal.SIGKILL)
                kill = Kill(target, pid, time.monotonic())
                kills.append(kill)
                deadline = kill.at + RECOVERY_DEADLINE

                def restarted(target: str = target, pid: int = pid) -> bool:
                    new = current_pid(launcher, target)
                    return new is not None and new != pid

                await until(restarted, deadline, f"{target} restarted")
                kill.restarted_at = time.monotonic()
                await until(lambda: ready(client), deadline, f"ready after {target}")
                kill.ready_at = time.monotonic()
                assert launcher.process.poll() is None, launcher.output()
                await until(
                    lambda at=kill.at: all(w.successes_after(at) for w in writers),
                    deadline,
                    f"every writer served again after {target}",
                )
                await asyncio.sleep(PAUSE)
        finally:
            stop.set()
            # every writer ends its write: a hang would show as a writer still out
            done, pending = await asyncio.wait(tasks, timeout=RETRY_DEADLINE + 2 * CLIENT_TIMEOUT)
            for task in pending:
                task.cancel()
            for task in done:
                task.result()
        assert not pending, f"{len(pending)} writers still waiting for an answer"
    return writers, kills


# -- the stores and the stream ---------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    service: str
    id: int  # notification id
    text: str  # the decoded event's attributes, where markers are looked for
    public: bool


# what a writer's input leaves in a stored event's text (`repr`, so followed by
# a quote): its marker (`Writer.run`), a nomination's candidate e-mail
WRITTEN = re.compile(r"(fault [0-9a-f]+ [a-z-]+ \d+|candidate-[0-9a-f]+-\d+@faults\.example)'")


class Stores(dict[str, list[Stored]]):
    """Every stored event by service, and the events holding each marker: the
    checks look up some 2000 markers, each among some 2000 events."""

    def holding(self, service: str, marker: str) -> list[Stored]:
        """The service's events whose text holds `marker` (then a quote)."""
        if not hasattr(self, "_index"):
            self._index: dict[tuple[str, str], list[Stored]] = {}
            for name, events in self.items():
                for event in events:
                    for found in dict.fromkeys(WRITTEN.findall(event.text)):
                        self._index.setdefault((name, found), []).append(event)
        return self._index.get((service, marker), [])


def read_stores(env: dict[str, str]) -> Stores:
    """Every event of each service's notification log, through the service's
    own application (read only), and whether its relay publishes it."""
    settings = Settings.from_env(env)
    found = Stores()
    for spec in registry.with_needs(settings.services):
        host = spec.builder()(settings)
        events = found.setdefault(spec.name, [])
        try:
            for relay in host.relays:
                app = relay.app
                position = 0
                while batch := app.notifications_after(position, 500):
                    for n in batch:
                        event = app.mapper.to_domain_event(n)
                        public = relay.translate(event) is not None
                        events.append(Stored(spec.name, n.id, repr(vars(event)), public))
                    position = batch[-1].id
        finally:
            for app in host.apps:
                app.close()
            for close in host.closers:
                close()
            host.offload.shutdown()
    return found


@dataclass(frozen=True)
class OnStream:
    msg_id: str  # the Nats-Msg-Id header
    event_id: str  # the CloudEvent's id
    service: str
    sequence: int  # the notification id it carries
    tenant: str


async def read_stream(nats_url: str, data_dir: Path) -> list[OnStream]:
    """The whole stream, in order (an ordered consumer, as `quartier stream`
    reads one network), with each message's Nats-Msg-Id; as the operator's
    NATS user (the embedded server authenticates every client)."""
    operator = nats_auth.credentials(data_dir, "operator")
    assert operator is not None, "the launcher keeps the operator's NATS password"
    nc = await nats.connect(
        nats_url,
        user=operator.user,
        password=operator.password,
        inbox_prefix=f"_INBOX.{operator.user}".encode(),
        connect_timeout=5,
        allow_reconnect=False,
    )
    try:
        js = nc.jetstream()
        last = (await js.stream_info(STREAM)).state.last_seq
        found: list[OnStream] = []
        if not last:
            return found
        sub = await js.subscribe(
            "quartier.evt.>", ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
        )
        try:
            while True:
                msg = await sub.next_msg(timeout=10)
                event = json.loads(msg.data)
                found.append(
                    OnStream(
                        msg_id=(msg.headers or {}).get("Nats-Msg-Id", ""),
                        event_id=event["id"],
                        service=event["source"].rsplit("/", 1)[-1],
                        sequence=event["sequence"],
                        tenant=event["tenant"],
                    )
                )
                if msg.metadata.sequence.stream >= last:
                    return found
        finally:
            await sub.unsubscribe()
    finally:
        await nc.close()


def missing_from_stream(stores: dict[str, list[Stored]], stream: list[OnStream]) -> list[str]:
    on_stream = {m.msg_id for m in stream}
    return [
        f"{service}:{e.id}"
        for service, events in stores.items()
        for e in events
        if e.public and f"{service}:{e.id}" not in on_stream
    ]


# -- the run ---------------------------------------------------------------------------------


def run_apart(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run on an event loop of its own, in a thread: pytest-asyncio's loop
    stays untouched."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


STORES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="module", params=STORES)
def faulty_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Outcome]:
    store = request.param
    data_dir = tmp_path_factory.mktemp(f"faults-{store}").resolve() / "data"
    run_id = uuid.uuid4().hex[:6]
    extra = {
        "QUARTIER_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT),
        "QUARTIER_RATE_LIMIT": "1000000",  # the load is the test's, not an abuse
        "QUARTIER_MEMBER_RATE_LIMIT": "1000000",
        "QUARTIER_COST_LIMIT": "1000000000",
        "QUARTIER_MEMBER_COST_LIMIT": "1000000000",
        "QUARTIER_TENANT_CONCURRENCY": "100000",
        "QUARTIER_RELAY_POLL_INTERVAL": "0.5",
        # the services' PostgreSQL pools follow their workers (8 by default:
        # some 100 connections in all, the server's max_connections); the
        # writers send at most 4 requests at once
        "QUARTIER_WORKERS": "2",
    }
    if store == "postgres":
        assert POSTGRES_URL
        extra["QUARTIER_DATABASE_URL"] = POSTGRES_URL
        extra["QUARTIER_DB_SCHEMA_PREFIX"] = f"tf{run_id}_"
    started = time.monotonic()
    launcher = Launcher.start(data_dir, f"faults-{store}", "--demo", **extra)
    env = {**environment(data_dir, launcher.port), **extra}
    try:
        launcher.wait_running()
        writers, kills = run_apart(scenario(launcher, run_id))
        writes = [w for writer in writers for w in writer.writes]
        dump(data_dir.parent / f"faults-{store}.json", writes, kills)
        outcome = Outcome(store, launcher, env, writes, kills, started, time.monotonic())
        yield outcome
    finally:
        launcher.close()
        if store == "postgres":
            drop_schemas(Settings.from_env(env))


def dump(path: Path, writes: list[Write], kills: list[Kill]) -> None:
    """Every request and kill, for a look after a failure (times from the first request)."""
    zero = min((a.started for w in writes for a in w.attempts), default=0.0)
    record = {
        "kills": [
            {"target": k.target, "pid": k.pid, "at": k.at - zero, "ready": k.ready_at - zero}
            for k in kills
        ],
        "writes": [
            {
                "writer": w.writer,
                "marker": w.marker,
                "attempts": [
                    [a.outcome, round(a.started - zero, 3), round(a.ended - zero, 3)]
                    for a in w.attempts
                ],
            }
            for w in writes
        ],
    }
    path.write_text(json.dumps(record, indent=1))


@pytest.fixture(scope="module")
def caught_up(faulty_run: Outcome) -> tuple[Stores, list[OnStream]]:
    """The stores and the stream once the relays have published every
    stored public event (the system ready again after the last kill)."""
    launcher = faulty_run.launcher
    launcher.wait_ready()
    nats_url = (launcher.data_dir / "nats.url").read_text().strip()
    deadline = time.monotonic() + CATCH_UP_DEADLINE
    while True:
        stores = read_stores(faulty_run.env)
        stream = run_apart(read_stream(nats_url, launcher.data_dir))
        missing = missing_from_stream(stores, stream)
        if not missing:
            return stores, stream
        if time.monotonic() > deadline:
            pytest.fail(f"not on the stream after {CATCH_UP_DEADLINE:.0f}s: {missing[:20]}")
        time.sleep(0.5)


# -- the checks --------------------------------------------------------------------------


def test_every_process_was_killed_and_restarted(faulty_run: Outcome) -> None:
    assert [k.target for k in faulty_run.kills] == targets()
    launcher = faulty_run.launcher
    assert launcher.process.poll() is None, launcher.output()
    for kill in faulty_run.kills:
        (crash,) = launcher.wait_event("launcher.process_crashed", process=kill.target)
        assert crash["pid"] == kill.pid and crash["signal"] == "SIGKILL"
        assert launcher.wait_event("launcher.process_restarted", process=kill.target)
        assert kill.at < kill.restarted_at <= kill.ready_at
    assert launcher.events("launcher.gave_up") == []


def test_every_client_got_an_answer_or_a_clear_error(faulty_run: Outcome) -> None:
    attempts = faulty_run.attempts
    assert attempts
    hung = [a for a in attempts if a.outcome == "hung"]
    assert hung == [], hung  # nobody waited past the client timeout
    unclear = [a for a in attempts if not a.clear]
    assert unclear == [], unclear
    longest = max(a.ended - a.started for a in attempts)
    assert longest < CLIENT_TIMEOUT
    # a bug would answer INTERNAL: a fault is UNAVAILABLE, or a transport error
    internal = [a for a in attempts if "INTERNAL" in a.outcome]
    assert internal == [], internal
    for writer in faulty_run.writer_names():
        assert any(a.ok for a in attempts if a.writer == writer), writer


def final(attempt: Attempt) -> bool:
    """A success, or a typed refusal that another try would not change."""
    return attempt.ok or (
        attempt.outcome.startswith("typed:") and attempt.outcome not in RETRYABLE_TYPED
    )


def test_every_idempotent_write_ended_with_a_final_answer(faulty_run: Outcome) -> None:
    """A create sent again with its Idempotency-Key after a clear error ends,
    within the retry deadline, with its first outcome (a success or a typed
    refusal) or, when the request that held the key was cut short by the
    kill, with a conflict on the key: nobody retries for ever."""
    unresolved = [
        (w.marker, [a.outcome for a in w.attempts])
        for w in faulty_run.writes
        if w.writer in ("hub", "nomination") and not final(w.attempts[-1])
    ]
    assert unresolved == [], unresolved


def test_every_acknowledged_write_is_in_its_store_once(
    faulty_run: Outcome, caught_up: tuple[Stores, list[OnStream]]
) -> None:
    stores, _ = caught_up
    lost, duplicated = [], []
    for write in faulty_run.writes:
        acknowledged = write.acknowledged
        if acknowledged is None:
            continue
        holding = stores.holding(write.service, write.marker)
        if not holding:
            lost.append(write.marker)
        elif len(holding) > 1:
            duplicated.append((write.marker, [e.id for e in holding]))
        else:
            for value in acknowledged.ids.values():
                assert value in holding[0].text, (write.marker, acknowledged.ids)
    assert lost == []
    assert duplicated == []
    # nor was any unacknowledged write applied twice (a retry with the same key)
    for write in faulty_run.writes:
        assert len(stores.holding(write.service, write.marker)) <= 1, write


def test_every_acknowledged_write_is_on_the_stream(
    faulty_run: Outcome, caught_up: tuple[Stores, list[OnStream]]
) -> None:
    stores, stream = caught_up
    on_stream = Counter(m.msg_id for m in stream)
    for write in faulty_run.writes:
        if write.acknowledged is None:
            continue
        (event,) = stores.holding(write.service, write.marker)
        assert event.public, write
        assert on_stream[f"{write.service}:{event.id}"] == 1, write


def test_the_stream_has_each_stored_event_once_in_order(
    caught_up: tuple[Stores, list[OnStream]],
) -> None:
    stores, stream = caught_up
    assert all(m.msg_id == m.event_id for m in stream)
    assert all(m.msg_id == f"{m.service}:{m.sequence}" for m in stream)
    duplicates = [i for i, n in Counter(m.msg_id for m in stream).items() if n > 1]
    assert duplicates == []
    for service, events in stores.items():
        published = [m.sequence for m in stream if m.service == service]
        assert published == sorted(published), f"{service}: out of order"
        # no gap, nothing extra: exactly the service's public events
        assert published == [e.id for e in events if e.public], service


def test_quartier_stream_shows_the_network_once(
    faulty_run: Outcome, caught_up: tuple[Stores, list[OnStream]]
) -> None:
    _, stream = caught_up
    history = faulty_run.launcher.history()
    ids = [e["id"] for e in history]
    assert len(ids) == len(set(ids))
    tenant = history[0]["tenant"]
    assert ids == [m.event_id for m in stream if m.tenant == tenant]


def test_the_figures(
    faulty_run: Outcome,
    caught_up: tuple[Stores, list[OnStream]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Printed for docs/reliability.md; not asserted on time."""
    stores, stream = caught_up
    report = figures(faulty_run, stores, stream)
    with capsys.disabled():
        print("\n" + report)


def test_ctrl_c_still_stops_the_system(faulty_run: Outcome) -> None:
    launcher = faulty_run.launcher
    assert launcher.stop() == 0, launcher.output()
    assert launcher.events("launcher.gave_up") == []


# -- the figures ----------------------------------------------------------------------------


def unavailability(outcome: Outcome, kill: Kill, writer: str) -> float | None:
    """The longest time the writer went without a success around the kill:
    from its last success before the kill to the first success of a request
    sent after the kill, the longest gap between two successive successful
    answers (a request under way at the kill may still succeed, late)."""
    successes = [a for a in outcome.attempts if a.writer == writer and a.ok]
    before = [a.ended for a in successes if a.ended <= kill.at]
    after = [a.ended for a in successes if a.started >= kill.at]
    if not before or not after:
        return None
    start, end = max(before), min(after)
    answers = sorted({start, end, *(a.ended for a in successes if start < a.ended < end)})
    return max(b - a for a, b in pairwise(answers))


def figures(outcome: Outcome, stores: Stores, stream: list[OnStream]) -> str:
    attempts = outcome.attempts
    writers = outcome.writer_names()
    acknowledged = [w for w in outcome.writes if w.acknowledged is not None]
    on_stream = {m.msg_id for m in stream}
    lost = 0
    for write in acknowledged:
        holding = stores.holding(write.service, write.marker)
        if len(holding) != 1 or f"{write.service}:{holding[0].id}" not in on_stream:
            lost += 1
    duplicates = sum(n - 1 for n in Counter(m.msg_id for m in stream).values())
    effects = Counter({w.marker: len(stores.holding(w.service, w.marker)) for w in outcome.writes})
    applied_twice = sum(1 for n in effects.values() if n > 1)
    unacknowledged_stored = sum(
        1 for w in outcome.writes if w.acknowledged is None and effects.get(w.marker)
    )
    cut_short = [w for w in outcome.writes if w.attempts[-1].outcome == CUT_SHORT]
    # a nomination is two commits: identity's invitation, then hubs' nomination
    invited = [
        w
        for w in outcome.writes
        if "email" in w.input and stores.holding("identity", w.input["email"])
    ]
    orphans = sum(1 for w in invited if not effects.get(w.marker))
    outcomes = Counter(
        a.outcome if a.ok else a.outcome.split(":", 1)[0] + ":" + a.outcome.split(":", 1)[1][:40]
        for a in attempts
    )
    lines = [
        f"fault injection on {outcome.store}: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f},"
        f" {outcome.ended - outcome.started:.0f}s from `quartier up` to the last answer",
        f"  writes meant {len(outcome.writes)}, requests {len(attempts)},"
        f" acknowledged {len(acknowledged)}, lost {lost}, duplicates on the stream {duplicates},"
        f" applied twice {applied_twice}",
        f"  unacknowledged but stored (in flight at a kill) {unacknowledged_stored};"
        f" idempotent writes cut short (key answered with a conflict) {len(cut_short)},"
        f" of which stored {sum(1 for w in cut_short if effects.get(w.marker))};"
        f" invitations mailed for a nomination never stored {orphans}",
        f"  answers: {dict(sorted(outcomes.items()))}",
        f"  longest answer {max(a.ended - a.started for a in attempts):.2f}s"
        f" (client timeout {CLIENT_TIMEOUT:.0f}s, request timeout {REQUEST_TIMEOUT:.0f}s)",
        f"  stream: {len(stream)} messages;"
        + "".join(
            f" {s} {sum(e.public for e in ev)} public of {len(ev)} stored;"
            for s, ev in stores.items()
        ),
        "  kill        back   ready  " + "  ".join(f"{w:>12} " for w in writers),
    ]
    longest = longest_uncut = 0.0
    for kill in outcome.kills:
        gaps = [unavailability(outcome, kill, w) for w in writers]
        longest = max([longest, *(g for g in gaps if g is not None)])
        cut = {
            w.writer for w in cut_short if w.attempts[0].started < kill.at < w.attempts[-1].ended
        }
        longest_uncut = max(
            [longest_uncut, *(g for w, g in zip(writers, gaps, strict=True) if g and w not in cut)]
        )
        lines.append(
            f"  {kill.target:<10} {kill.restarted_at - kill.at:5.2f}s {kill.ready_at - kill.at:6.2f}s  "
            + "  ".join(
                (f"{g:11.2f}s" if g is not None else f"{'-':>12}") + ("*" if w in cut else " ")
                for w, g in zip(writers, gaps, strict=True)
            )
        )
    lines.append(
        f"  longest unavailability {longest:.2f}s; without the writers waiting on a key"
        f" cut short (*) {longest_uncut:.2f}s"
    )
    return "\n".join(lines)
