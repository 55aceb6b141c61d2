"""The registry of services (services/registry.py): what it lists exists, a
service imports only the contracts of the services it says it needs, and the
start order puts each service after what it needs, as far as services that
need each other allow."""

from __future__ import annotations

import importlib
import importlib.util

import grimp
import pytest

from services import registry
from services.registry import ServiceSpec
from services.runtime.settings import ConfigurationError, Settings


@pytest.mark.parametrize("spec", registry.SERVICES, ids=lambda s: s.name)
def test_every_registered_service_has_its_parts(spec: ServiceSpec) -> None:
    contract = spec.contract()
    assert spec.name == contract.SERVICE
    assert callable(spec.builder())
    assert importlib.util.find_spec(f"{spec.module}.__main__") is not None
    assert importlib.import_module(f"gateway.{spec.name}")
    for need in spec.needs:
        # a registered service, or one whose contract is out before its registry line
        assert need in registry.BY_NAME or published_contract(need), (
            f"{spec.name} needs an unknown service {need!r}"
        )


def published_contract(name: str) -> bool:
    if importlib.util.find_spec(f"services.{name}") is None:
        return False
    if importlib.util.find_spec(f"services.{name}.contract") is None:
        return False
    return bool(name == ServiceSpec(name).contract().SERVICE)


def test_a_service_imports_only_the_contracts_of_what_it_needs() -> None:
    graph = grimp.build_graph("services")
    # registered services, and those needed before they are registered
    names = {*registry.names(), *(need for spec in registry.SERVICES for need in spec.needs)}
    for spec in registry.SERVICES:
        own = {spec.module, *graph.find_descendants(spec.module)}
        for module in own:
            for imported in graph.find_modules_directly_imported_by(module):
                parts = imported.split(".")
                if len(parts) < 2 or parts[1] not in names or parts[1] == spec.name:
                    continue
                assert parts[1] in spec.needs and imported.endswith(".contract"), (
                    f"{module} imports {imported}: {spec.name} may import only the contracts "
                    f"of {spec.needs or 'no other service'}"
                )


def test_with_needs_orders_each_service_after_what_it_needs() -> None:
    order = [s.name for s in registry.with_needs(["hubs"])]
    assert order[0] == "identity" and order[-1] == "hubs"
    assert [s.name for s in registry.with_needs(["identity"])] == ["identity"]
    with pytest.raises(KeyError, match="unknown service"):
        registry.with_needs(["nope"])


def test_a_need_that_is_not_registered_yet_is_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """hubs reacts to the meetups service's events before that service has its
    registry line: hubs still starts, and those events simply never come."""
    monkeypatch.delitem(registry.BY_NAME, "events", raising=False)
    assert [s.name for s in registry.with_needs(["hubs"])] == ["identity", "hubs"]
    assert [s.name for s in registry.with_needs(["hubs", "identity"])] == ["identity", "hubs"]


def test_services_that_need_each_other_start_after_what_they_need_from_outside(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """hubs reacts to the meetups' MeetupClosed, and the meetups service to
    hubs' events: a cycle is no error; each is listed once, after identity."""
    monkeypatch.setitem(
        registry.BY_NAME, "events", ServiceSpec("events", needs=("hubs", "identity"))
    )
    monkeypatch.setitem(registry.BY_NAME, "hubs", ServiceSpec("hubs", needs=("identity", "events")))
    assert [s.name for s in registry.with_needs(["hubs"])] == ["identity", "events", "hubs"]
    assert [s.name for s in registry.with_needs(["events"])] == ["identity", "hubs", "events"]
    both = [s.name for s in registry.with_needs(["identity", "hubs", "events"])]
    assert both == ["identity", "events", "hubs"]


def test_a_cycle_never_loops_and_keeps_outside_needs_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for spec in (
        ServiceSpec("a", needs=("b", "c")),
        ServiceSpec("b", needs=("a", "d")),  # a <-> b
        ServiceSpec("c", needs=("c",)),  # itself
        ServiceSpec("d", needs=("e",)),
        ServiceSpec("e", needs=("f",)),
        ServiceSpec("f", needs=("d",)),  # d -> e -> f -> d
    ):
        monkeypatch.setitem(registry.BY_NAME, spec.name, spec)
    order = [s.name for s in registry.with_needs(["a", "f"])]
    assert sorted(order) == ["a", "b", "c", "d", "e", "f"]  # each once
    assert order.index("d") < order.index("b") and order.index("c") < order.index("a")
    assert order[-1] == "a"  # the wanted one, reached first in its cycle


def test_settings_default_to_every_registered_service_and_refuse_unknown_ones() -> None:
    env = {"QUARTIER_ENV": "test", "QUARTIER_JWT_SECRET": "s" * 40, "QUARTIER_OPERATOR_TOKEN": "t"}
    assert Settings.from_env(env).services == registry.names()
    assert Settings.from_env({**env, "QUARTIER_SERVICES": "identity"}).services == ("identity",)
    with pytest.raises(ConfigurationError, match="unknown service 'nope'"):
        Settings.from_env({**env, "QUARTIER_SERVICES": "identity,nope"})
