"""The services of a test, in-process, started from the registry."""

from __future__ import annotations

from services import registry
from services.runtime.clock import MovableClock
from services.runtime.host import ServiceHost
from services.runtime.settings import Settings


class Services:
    """The services of one test, started on demand in-process (each after what
    it needs, per services/registry.py) on the test's store, stopped at the end
    in reverse order."""

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
        for host in reversed(list(self.hosts.values())):
            await host.stop()
        self.hosts.clear()
