"""The services of a test, in-process, started from the registry."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from nats.js.errors import NotFoundError

from infra.nats_server import NatsServer, start_nats_server
from services import registry
from services.runtime.clock import MovableClock
from services.runtime.host import ServiceHost
from services.runtime.settings import Settings
from services.runtime.stream import STREAM
from tests.support.env import drop_schemas, make_settings


class Services:
    """The services of one test, started on demand in-process (each after what
    it needs, per services/registry.py) on the test's store, all stopped together
    at the end."""

    def __init__(self, settings: Settings, clock: MovableClock):
        self.settings = settings
        self.clock = clock
        self.hosts: dict[str, ServiceHost] = {}

    async def start(self, *names: str) -> ServiceHost:
        for spec in registry.with_needs(names):
            if spec.name not in self.hosts:
                host = spec.builder()(self.settings, clock=self.clock)
                await host.start()
                self.hosts[spec.name] = host
        return self.hosts[names[-1]]

    async def start_all(self) -> dict[str, ServiceHost]:
        await self.start(*registry.names())
        return dict(self.hosts)

    async def stop(self) -> None:
        """Stop every host at once: each one's stop waits for its background
        loops (a reaction's pull waits up to a second), so stopping them one
        after another cost the sum of those waits. Each host first stops
        serving, so none takes new work from the others meanwhile."""
        hosts = list(reversed(self.hosts.values()))
        self.hosts.clear()
        results = await asyncio.gather(*(host.stop() for host in hosts), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    async def settle(self, timeout: float = 30.0) -> None:
        """Wait until nothing moves: every host leads (runs its relays and
        reactions), every relay has published all its store holds, every
        reaction has handled all its upstream published — twice in a row,
        since a reaction's effects are published in turn. An AssertionError
        names what still moves after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        quiet_rounds = 0
        while quiet_rounds < 2:
            moving = await self._moving()
            quiet_rounds = 0 if moving else quiet_rounds + 1
            if moving and time.monotonic() > deadline:
                raise AssertionError(f"the services did not settle within {timeout}s: {moving}")
            await asyncio.sleep(0.02)

    async def _moving(self) -> str | None:
        """What is not done yet, or None."""
        for name, host in self.hosts.items():
            if (host.relays or host.reactions) and not host.is_leader:
                return f"{name} does not lead yet"
            for relay in host.relays:
                newest = await host.offload(relay.app.max_notification_id)
                if (relay.published_up_to or 0) < newest:
                    return f"{name}'s relay is at {relay.published_up_to} of {newest}"
            js = host.bus.jetstream()
            for consumer in host.reactions:
                try:
                    info = await js.consumer_info(STREAM, consumer.durable)
                except NotFoundError:
                    return f"{consumer.durable} has no consumer yet"
                if info.num_pending or info.num_ack_pending:
                    return (
                        f"{consumer.durable} has {info.num_pending} pending and"
                        f" {info.num_ack_pending} unacknowledged"
                    )
        return None


@dataclass
class SharedStack:
    """One store's system shared by the tests of a `shared_system` module:
    its own NATS server, data directory (or PostgreSQL schemas), clock and
    services; `extras` holds what is served on top (the e2e gateway)."""

    settings: Settings
    clock: MovableClock
    nats: NatsServer
    services: Services
    extras: AsyncExitStack = field(default_factory=AsyncExitStack)
    system: Any = None  # the e2e System, once served

    @classmethod
    def create(cls, directory: Path, database_url: str | None) -> SharedStack:
        for sub in ("nats", "data"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        nats = start_nats_server(directory / "nats")
        settings = make_settings(directory / "data", nats.url, database_url)
        clock = MovableClock(datetime.now(UTC).replace(microsecond=0))
        return cls(settings, clock, nats, Services(settings, clock))

    async def close(self) -> None:
        try:
            await self.extras.aclose()
            await self.services.stop()
        finally:
            drop_schemas(self.settings)
            self.nats.stop()


def is_shared(request: pytest.FixtureRequest) -> bool:
    """Whether the requesting test's module runs on one system per store."""
    return request.node.get_closest_marker("shared_system") is not None


def shared_stack(request: pytest.FixtureRequest) -> SharedStack:
    """The shared stack of the requesting test's store."""
    settings: Settings = request.getfixturevalue("settings")
    stacks: dict[str, SharedStack] = request.getfixturevalue("shared_stacks")
    return next(s for s in stacks.values() if s.settings is settings)
