"""The services of Quartier, one line each.

Everything that needs the list of services reads it here: the settings
(`QUARTIER_SERVICES` defaults to all of them), the launcher (one process per
service, `python -m services.<name>`), the event catalogue (each service's
`contract.py`), the gateway (its GraphQL module `gateway/<name>.py`, merged
into the schema), the import rules and the test fixtures. Adding a service is
its folder (`docs/new-service.md`) plus one line in `SERVICES`.

`needs` names the services whose events it reacts to or whom it asks: they
are started first (as far as they can be: services may need each other), and
a service may import only their contracts. A need may name a service whose
contract is published but which is not registered yet: nothing starts it, and
its events simply never come.
`reactions` names its reactions (each a durable consumer `<service>-<name>` on
the stream): the bus's permissions let a service use those consumers only
(infra/nats_auth.py; tests/unit/test_nats_auth.py checks the list against what
the service builds).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    needs: tuple[str, ...] = ()
    reactions: tuple[str, ...] = ()

    @property
    def durables(self) -> tuple[str, ...]:
        """Its reactions' durable consumers on the stream."""
        return tuple(f"{self.name}-{reaction}" for reaction in self.reactions)

    @property
    def module(self) -> str:
        """The service's package; `python -m <module>` runs it."""
        return f"services.{self.name}"

    def contract(self) -> ModuleType:
        """Its published language: the only module others may import."""
        return importlib.import_module(f"{self.module}.contract")

    def builder(self) -> Callable[..., Any]:
        """`build(settings, clock=...) -> ServiceHost` from its `service.py`."""
        builder: Callable[..., Any] = importlib.import_module(f"{self.module}.service").build
        return builder


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("identity"),
    ServiceSpec(
        "hubs",
        needs=("identity", "events"),
        reactions=("directory", "admissions", "facilitator-terms", "erasure"),
    ),
    # the meetups service; its mails react to its own events
    ServiceSpec(
        "events", needs=("hubs", "identity"), reactions=("hub-directory", "mail", "erasure")
    ),
    # its needs' mails react to its own events
    ServiceSpec(
        "referrals",
        needs=("identity", "hubs", "events"),
        reactions=("members", "hubs", "meetups", "mail", "erasure"),
    ),
    ServiceSpec(
        "webhooks",
        needs=("identity", "hubs", "events", "referrals"),
        reactions=("identity", "hubs", "meetups", "referrals", "webhooks", "keys"),
    ),
    # asks the others as an export's requester; forgets archives on erasure
    ServiceSpec(
        "exports",
        needs=("identity", "hubs", "events", "referrals", "webhooks"),
        reactions=("identity",),
    ),
)

BY_NAME = {spec.name: spec for spec in SERVICES}


def names() -> tuple[str, ...]:
    return tuple(spec.name for spec in SERVICES)


def spec(name: str) -> ServiceSpec:
    found = BY_NAME.get(name)
    if found is None:
        raise KeyError(f"unknown service {name!r}: one of {', '.join(names())}")
    return found


def with_needs(wanted: Iterable[str]) -> tuple[ServiceSpec, ...]:
    """The wanted services and the registered services they need, each after
    what it needs as far as possible: services that need each other (a cycle)
    are each listed once, after what they need from outside the cycle; within
    the cycle, the one reached first comes last. A need that is not registered
    is left out (nothing could start it). An unknown wanted name raises
    KeyError."""
    ordered: list[ServiceSpec] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        found = spec(name)
        if found in ordered or name in path:
            return  # listed already, or on its way: a cycle, broken here
        for need in found.needs:
            if need in BY_NAME:
                visit(need, (*path, name))
        ordered.append(found)

    for name in wanted:
        visit(name, ())
    return tuple(ordered)
