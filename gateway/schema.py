"""The GraphQL schema, assembled from `services/registry.py`: for each
registered service, `gateway.<name>` gives `Query`, `Mutation`, optionally
`Subscription`, `types` (registered with the schema), `nodes` (Node type
name → loader, for `node(id:)`) and optionally `scalars` (its custom scalars,
Python type → `strawberry.scalar(name=…)`); the gateway adds `node(id:)` and the tenant
event stream, and the security extensions. `python -m gateway.schema` prints
the SDL that `schema.graphql` keeps (a test fails when they drift)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import strawberry
from graphql import GraphQLInterfaceType
from strawberry.extensions import MaxTokensLimiter
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import Info

from gateway.context import Context
from gateway.execution import (
    MAX_ALIASES,
    MAX_DEPTH,
    MAX_TOKENS,
    Language,
    Masking,
    Parsing,
    QuartierSchema,
    Validation,
)
from gateway.kit import NodeLoader, resolve_node
from gateway.nodes import Node
from gateway.stream import StreamSubscription
from services import registry
from services.registry import ServiceSpec

__all__ = ["MAX_ALIASES", "MAX_DEPTH", "MAX_TOKENS", "build_schema", "sdl"]

SCHEMA_FILE = Path(__file__).with_name("schema.graphql")

EXTRA_MODULES: tuple[str, ...] = ("gateway.erasure",)
"""GraphQL modules that are not one service's (merged after the services')."""


def _node_query(loaders: Mapping[str, NodeLoader]) -> type:
    @strawberry.type
    class NodeQuery:
        @strawberry.field(description="Any object by its global id (Relay).")
        async def node(self, info: Info[Context, Any], id: strawberry.ID) -> Node | None:
            return await resolve_node(info, id, loaders)

    return NodeQuery


def _merge(name: str, parts: list[type]) -> type | None:
    """One root type from the services' (a field defined twice is an error,
    not strawberry's warning)."""
    if not parts:
        return None
    seen: dict[str, type] = {}
    for part in parts:
        for field in part.__strawberry_definition__.fields:  # type: ignore[attr-defined]
            if field.python_name in seen:
                raise TypeError(
                    f"{name}.{field.python_name} is defined by both "
                    f"{seen[field.python_name].__module__} and {part.__module__}"
                )
            seen[field.python_name] = part
    return merge_types(name, tuple(parts))


@dataclass(frozen=True)
class SchemaParts:
    query: type
    mutation: type | None
    subscription: type | None
    types: tuple[type, ...]
    nodes: Mapping[str, NodeLoader]
    scalars: Mapping[object, Any]


def assemble(specs: Iterable[ServiceSpec] = registry.SERVICES) -> SchemaParts:
    """The root types, Node types and node loaders of the services' GraphQL
    modules (`gateway.<name>`), in the registry's order."""
    modules: list[ModuleType] = [importlib.import_module(f"gateway.{s.name}") for s in specs]
    modules += [importlib.import_module(name) for name in EXTRA_MODULES]
    loaders: dict[str, NodeLoader] = {}
    for module in modules:
        for type_name, loader in getattr(module, "nodes", {}).items():
            if type_name in loaders:
                raise TypeError(f"two modules load {type_name} nodes: one is {module.__name__}")
            loaders[type_name] = loader

    scalars: dict[object, Any] = {}
    for module in modules:
        for python_type, definition in getattr(module, "scalars", {}).items():
            if python_type in scalars:
                raise TypeError(f"two modules define the scalar {definition.name}")
            scalars[python_type] = definition

    def roots(name: str) -> list[type]:
        return [getattr(m, name) for m in modules if hasattr(m, name)]

    query = _merge("Query", [_node_query(loaders), *roots("Query")])
    assert query is not None
    return SchemaParts(
        query=query,
        mutation=_merge("Mutation", roots("Mutation")),
        subscription=_merge("Subscription", [StreamSubscription, *roots("Subscription")]),
        types=tuple(t for m in modules for t in getattr(m, "types", ())),
        nodes=loaders,
        scalars=scalars,
    )


PARTS = assemble()


def build_schema(prod: bool = False, parts: SchemaParts = PARTS) -> strawberry.Schema:
    extensions: list[Any] = [
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        Parsing,
        lambda: Validation(prod=prod),
        Language,
        Masking,
    ]
    schema = QuartierSchema(
        query=parts.query,
        mutation=parts.mutation,
        subscription=parts.subscription,
        types=list(parts.types),
        extensions=extensions,
        config=StrawberryConfig(scalar_map=dict(parts.scalars)),
        prod=prod,
    )
    node = schema._schema.get_type("Node")
    assert isinstance(node, GraphQLInterfaceType)
    unloaded = sorted(
        t.name for t in schema._schema.get_possible_types(node) if t.name not in parts.nodes
    )
    if unloaded:
        raise TypeError(f"node(id:) has no loader for {', '.join(unloaded)}: add it to `nodes`")
    return schema


def sdl() -> str:
    return build_schema().as_str() + "\n"


if __name__ == "__main__":
    print(sdl(), end="")
