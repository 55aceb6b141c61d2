"""The hubs end-to-end package shares one system per store across all its
modules (each `shared_system`): `shared_stacks` is overridden here at package
scope, so that splitting the tests by use case does not start a system per
module. Each test opens its own network (`net`), so tests stay apart on the
shared system; the shared clock only moves forward."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.e2e.conftest import Network, System, open_network
from tests.support.services import SharedStack


@pytest_asyncio.fixture(scope="package")
async def shared_stacks() -> AsyncIterator[dict[str, SharedStack]]:
    """The package's shared systems by store, stopped after its last test
    (tests/conftest.py's module-scoped fixture, at package scope)."""
    stacks: dict[str, SharedStack] = {}
    yield stacks
    for stack in stacks.values():
        await stack.close()


@pytest_asyncio.fixture
async def net(system: System) -> Network:
    """The test's own Paris 11e network: the operator opens it and its admin
    (`net.admin`, working on Place Voltaire) has accepted the invitation."""
    return await open_network(system, "pole-11e")
