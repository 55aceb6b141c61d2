"""The services of a test, in-process, started from the registry."""

from __future__ import annotations

import asyncio

from services import registry
from services.runtime.clock import MovableClock
from services.runtime.host import ServiceHost
from services.runtime.settings import Settings


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
