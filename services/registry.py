"""The services of Quartier, one line each.

Everything that needs the list of services reads it here: the settings
(`QUARTIER_SERVICES` defaults to all of them), the launcher (one process per
service, `python -m services.<name>`), the event catalogue (each service's
`contract.py`), the gateway (its GraphQL module `gateway/<name>.py`, merged
into the schema), the import rules and the test fixtures. Adding a service is
its folder (`docs/new-service.md`) plus one line in `SERVICES`.

`needs` names the services whose events it reacts to or whom it asks: they
are started first in tests, and a service may import only their contracts.
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
    ServiceSpec("hubs", needs=("identity",)),
    ServiceSpec("events", needs=("hubs", "identity")),
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
    """The wanted services and everything they need, each after what it needs."""
    ordered: list[ServiceSpec] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise ValueError(f"services need each other in a cycle: {' -> '.join((*path, name))}")
        found = spec(name)
        if found in ordered:
            return
        for need in found.needs:
            visit(need, (*path, name))
        ordered.append(found)

    for name in wanted:
        visit(name, ())
    return tuple(ordered)
