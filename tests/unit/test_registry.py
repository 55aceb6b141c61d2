"""The registry of services (services/registry.py): what it lists exists, and
a service imports only the contracts of the services it says it needs."""

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
        assert need in registry.BY_NAME, f"{spec.name} needs an unknown service {need!r}"


def test_a_service_imports_only_the_contracts_of_what_it_needs() -> None:
    graph = grimp.build_graph("services")
    names = registry.names()
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
    assert [s.name for s in registry.with_needs(["hubs"])] == ["identity", "hubs"]
    assert [s.name for s in registry.with_needs(["hubs", "identity"])] == ["identity", "hubs"]
    with pytest.raises(KeyError, match="unknown service"):
        registry.with_needs(["nope"])


def test_with_needs_refuses_a_cycle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.BY_NAME, "a", ServiceSpec("a", needs=("b",)))
    monkeypatch.setitem(registry.BY_NAME, "b", ServiceSpec("b", needs=("a",)))
    with pytest.raises(ValueError, match="cycle"):
        registry.with_needs(["a"])


def test_settings_default_to_every_registered_service_and_refuse_unknown_ones() -> None:
    env = {"QUARTIER_ENV": "test", "QUARTIER_JWT_SECRET": "s" * 40, "QUARTIER_OPERATOR_TOKEN": "t"}
    assert Settings.from_env(env).services == registry.names()
    assert Settings.from_env({**env, "QUARTIER_SERVICES": "identity"}).services == ("identity",)
    with pytest.raises(ConfigurationError, match="unknown service 'nope'"):
        Settings.from_env({**env, "QUARTIER_SERVICES": "identity,nope"})
