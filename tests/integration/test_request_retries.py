"""A reply lost with its replica (issue #12, item 3): a query, or a command
that honours an idempotency key, is sent again within its timeout when no
answer came (`Bus.request`, `ATTEMPTS`), so a replica that dies holding it
costs a quarter of the timeout; every send of a command carries the same key,
so the service does it once. A command without one is sent once.

The replica that dies is a real one: `python -m services.hubs` stopped
(SIGSTOP) while it holds the request, then killed (SIGKILL); or, for the
shapes of requests, a second NATS connection serving a test's requests that
holds one and closes, as a dying process's connection does."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
import pytest_asyncio
from nats.aio.msg import Msg

from services.hubs import contract as hc
from services.runtime.bus import ATTEMPTS, RESEND_KEY_PREFIX, Bus, Endpoint
from services.runtime.clock import MovableClock
from services.runtime.errors import Unavailable
from services.runtime.messages import Command, Done, Envelope, Query, envelope_decoder
from services.runtime.settings import Settings
from services.runtime.tenancy import RequestContext
from tests.support.env import JWT_SECRET, OPERATOR_TOKEN
from tests.support.identity import as_member, create_network
from tests.support.logs import captured_logs
from tests.support.services import Services
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).resolve().parents[2]
VOLTAIRE = hc.Area(centre=hc.Point(lat=48.8575, lon=2.3795), radius_km=1.5)


async def copies(bus: Bus, subject: str) -> list[Envelope]:
    """Every send of `subject` from now on, as NATS delivers it (a plain
    subscriber gets a copy of each message besides the queue group's one)."""
    seen: list[Envelope] = []

    async def on_message(msg: Msg) -> None:
        seen.append(envelope_decoder.decode(msg.data))

    await bus.subscribe(subject, on_message)
    await bus.client.flush()
    return seen


def replica(module: str, settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """A replica of a service in a process of its own, on the test's store."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("QUARTIER_")},
        "QUARTIER_ENV": "test",
        "QUARTIER_DATA_DIR": str(settings.data_dir),
        "QUARTIER_NATS_URL": settings.nats_url or "",
        "QUARTIER_JWT_SECRET": JWT_SECRET,
        "QUARTIER_OPERATOR_TOKEN": OPERATOR_TOKEN,
        "QUARTIER_RELAY_POLL_INTERVAL": "0.2",
        "QUARTIER_WORKERS": "4",
    }
    return subprocess.Popen(
        [sys.executable, "-m", module], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )  # fmt: skip


async def test_a_command_held_by_a_replica_that_dies_is_answered_by_another_once(
    sqlite_settings: Settings, client_bus: Bus, tmp_path: Path
) -> None:
    running = Services(sqlite_settings, MovableClock(datetime.now(UTC).replace(microsecond=0)))
    await running.start("identity")
    process = replica("services.hubs", sqlite_settings, tmp_path / "hubs-1.log")
    try:
        _, admin = await create_network(client_bus, "pole-resend")
        await eventually(lambda: client_bus.ping("hubs"), timeout=60)
        sends = await copies(client_bus, hc.CreateHub.subject())
        # the only replica, frozen: it takes the request and never answers
        process.send_signal(signal.SIGSTOP)
        with captured_logs() as logs:
            create = asyncio.create_task(
                client_bus.request(
                    hc.CreateHub(name="Voltaire", kind="neighbourhood", area=VOLTAIRE),
                    as_member(admin),  # no idempotency key of the caller's
                    # sent again every 5 s: time enough for the other
                    # replica to start on a loaded machine
                    timeout=20,
                )
            )
            await eventually(lambda: sends, timeout=10)
            process.kill()  # it dies holding it
            process.wait(timeout=10)
            await running.start("hubs")  # the other replica
            hub = await create
        # answered by the other replica, within the one request timeout
        assert hub.name == "Voltaire"
        resent = [e for e in logs if e["event"] == "request.resent"]
        assert 2 <= len(sends) <= ATTEMPTS
        assert [e["attempt"] for e in resent] == list(range(2, len(sends) + 1))
        assert {e["request"] for e in resent} == {"CreateHub"}
        # every send was one request: one key (made by the bus), stored once
        keys = {s.idempotency_key for s in sends}
        assert len(keys) == 1 and next(iter(keys), "").startswith(RESEND_KEY_PREFIX)
        hubs = await client_bus.request(hc.ListHubs(), as_member(admin))
        assert [h.hub_id for h in hubs if h.name == "Voltaire"] == [hub.hub_id]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        await running.stop()


# -- the shapes of requests, on a test's own service ----------------------------------------


class Ask(Query[str]):
    service: ClassVar[str] = "probe"
    text: str


class Touch(Command[Done]):
    service: ClassVar[str] = "probe"


class Make(Command[str]):
    service: ClassVar[str] = "probe"
    idempotent: ClassVar[bool] = True


class Probe:
    """Replicas of the `probe` service: the first holds every request it
    gets (until the test ends), the others answer at once."""

    def __init__(self, url: str):
        self.url = url
        self.holding = asyncio.Event()
        self.release = asyncio.Event()
        self.buses: list[Bus] = []

    async def start(self, holds: bool) -> Bus:
        bus = Bus(self.url, f"probe-{len(self.buses)}", request_timeout=2)
        await bus.connect(wait=10)
        self.buses.append(bus)

        async def answer(request: Any, ctx: RequestContext) -> Any:
            if holds:
                self.holding.set()
                await self.release.wait()
            if isinstance(request, Ask):
                return f"{request.text} from {bus.name}"
            if isinstance(request, Make):
                return f"made by {bus.name}"
            return Done()

        await bus.serve(
            "probe", [Endpoint(Ask, answer), Endpoint(Touch, answer), Endpoint(Make, answer)]
        )
        return bus

    async def die(self, bus: Bus) -> None:
        """Its connection closes with the request held, as a killed process's."""
        assert bus.nc is not None
        await bus.nc.close()


@pytest_asyncio.fixture
async def probe(nats_server: Any) -> AsyncIterator[Probe]:
    found = Probe(nats_server.url)
    yield found
    found.release.set()
    for bus in found.buses:
        await bus.close()


@pytest_asyncio.fixture
async def caller(nats_server: Any) -> AsyncIterator[Bus]:
    """A client whose requests time out after 2 s: sent again every 0.5 s."""
    bus = Bus(nats_server.url, "test-caller", request_timeout=2)
    await bus.connect(wait=10)
    yield bus
    await bus.close()


async def held_then_died(probe: Probe, caller: Bus, message: Any) -> tuple[Any, list[Envelope]]:
    """`message` sent while the only replica holds what it gets; that one
    dies and another serves: the outcome (or error) and every send."""
    first = await probe.start(holds=True)
    sends = await copies(caller, type(message).subject())
    sending = asyncio.create_task(caller.request(message, RequestContext()))
    await asyncio.wait_for(probe.holding.wait(), 10)
    await probe.die(first)
    await probe.start(holds=False)
    try:
        return await sending, sends
    except Unavailable as e:
        return e, sends


async def test_a_query_held_by_a_replica_that_dies_is_sent_again(probe: Probe, caller: Bus) -> None:
    with captured_logs() as logs:
        answer, sends = await held_then_died(probe, caller, Ask(text="hello"))
    assert answer == "hello from probe-1"
    assert 2 <= len(sends) <= ATTEMPTS
    assert len([e for e in logs if e["event"] == "request.resent"]) == len(sends) - 1


async def test_an_idempotent_command_gets_a_key_each_send_repeats(
    probe: Probe, caller: Bus
) -> None:
    answer, sends = await held_then_died(probe, caller, Make())
    assert answer == "made by probe-1"
    assert len(sends) >= 2 and len({s.idempotency_key for s in sends}) == 1


async def test_a_command_without_a_key_is_sent_once_and_may_have_been_done(
    probe: Probe, caller: Bus
) -> None:
    """Sent again, it could be done twice: the caller waits the whole
    timeout and hears that the outcome is unknown."""
    with captured_logs() as logs:
        answer, sends = await held_then_died(probe, caller, Touch())
    assert isinstance(answer, Unavailable)
    assert "may or may not have taken effect" in answer.message
    assert len(sends) == 1
    assert [e for e in logs if e["event"] == "request.resent"] == []


async def test_a_request_nobody_serves_is_unavailable_without_resends(caller: Bus) -> None:
    with captured_logs() as logs, pytest.raises(Unavailable) as info:
        await caller.request(Ask(text="anyone?"), RequestContext())
    assert "not running" in info.value.message
    assert [e for e in logs if e["event"] == "request.resent"] == []
