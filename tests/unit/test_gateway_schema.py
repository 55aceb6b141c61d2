"""The schema is assembled from services/registry.py: each registered
service's `gateway/<name>.py` gives its root fields, Node types and node
loaders, so a new service needs only its module and its registry line."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
import strawberry
from strawberry.types import Info

from gateway.kit import Connection, connection
from gateway.nodes import Node, split_raw_id, to_global_id
from gateway.schema import PARTS, assemble, build_schema
from services import registry
from services.registry import ServiceSpec


def field_names(root: type | None) -> set[str]:
    assert root is not None
    return {f.python_name for f in root.__strawberry_definition__.fields}  # type: ignore[attr-defined]


@pytest.mark.parametrize("spec", registry.SERVICES, ids=lambda s: s.name)
def test_each_registered_service_brings_its_fields_types_and_nodes(spec: ServiceSpec) -> None:
    module = sys.modules.get(f"gateway.{spec.name}")
    assert module is not None
    assert field_names(module.Query) <= field_names(PARTS.query)
    assert field_names(module.Mutation) <= field_names(PARTS.mutation)
    assert set(module.types) <= set(PARTS.types)
    assert module.nodes.items() <= PARTS.nodes.items()
    assert {"node", "me", "hubs"} <= field_names(PARTS.query)
    assert "tenant_events" in field_names(PARTS.subscription)


# -- a service that is not there yet: its module and its registry line ----------


@strawberry.type(description="A thing of the fake service.")
class Widget(Node):
    name: str


WIDGETS = {str(uuid.UUID(int=i)): f"widget {i}" for i in range(1, 4)}


async def widget_node(info: Info[Any, Any], raw_id: str) -> Widget | None:
    parts = split_raw_id(raw_id)
    name = WIDGETS.get(parts[0]) if parts else None
    return Widget(id=to_global_id("Widget", parts[0]), name=name) if parts and name else None


@strawberry.type
class WidgetQuery:
    @strawberry.field
    def widgets(self, first: int = 2) -> Connection[Widget]:
        items = sorted(WIDGETS.items())[:first]
        return connection(
            items, 0, len(WIDGETS), lambda kv: Widget(id=to_global_id("Widget", kv[0]), name=kv[1])
        )


@strawberry.type
class WidgetMutation:
    @strawberry.mutation
    def polish_widget(self, id: strawberry.ID) -> bool:
        return True


@pytest.fixture
def fake_service() -> Iterator[ServiceSpec]:
    module = ModuleType("gateway.widgets")
    module.Query = WidgetQuery  # type: ignore[attr-defined]
    module.Mutation = WidgetMutation  # type: ignore[attr-defined]
    module.types = [Widget]  # type: ignore[attr-defined]
    module.nodes = {"Widget": widget_node}  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    yield ServiceSpec("widgets")
    del sys.modules[module.__name__]


async def test_a_new_service_needs_only_its_module_and_registry_line(
    fake_service: ServiceSpec,
) -> None:
    schema = build_schema(parts=assemble((*registry.SERVICES, fake_service)))
    sdl = schema.as_str()
    assert "type Widget implements Node" in sdl
    assert "widgets(first: Int! = 2): WidgetConnection!" in sdl
    assert "type WidgetEdge {" in sdl
    assert "polishWidget(id: ID!): Boolean!" in sdl
    assert "hubs(mine: Boolean! = false): [Hub!]!" in sdl  # the others are still there

    first = str(uuid.UUID(int=1))
    result = await schema.execute(
        "query($id: ID!) { node(id: $id) { id ... on Widget { name } }"
        " widgets { totalCount edges { cursor node { name } } pageInfo { hasNextPage } } }",
        variable_values={"id": to_global_id("Widget", first)},
    )
    assert result.errors is None, result.errors
    assert result.data == {
        "node": {"id": to_global_id("Widget", first), "name": "widget 1"},
        "widgets": {
            "totalCount": 3,
            "edges": [
                {"cursor": "bzow", "node": {"name": "widget 1"}},
                {"cursor": "bzox", "node": {"name": "widget 2"}},
            ],
            "pageInfo": {"hasNextPage": True},
        },
    }
    # an unknown widget, and an id of a type no service loads, are null
    for gid in (to_global_id("Widget", str(uuid.uuid4())), to_global_id("Gadget", first)):
        result = await schema.execute(
            "query($id: ID!) { node(id: $id) { id } }", variable_values={"id": gid}
        )
        assert (result.data, result.errors) == ({"node": None}, None)


def test_two_services_may_not_define_the_same_field(fake_service: ServiceSpec) -> None:
    @strawberry.type
    class Clash:
        @strawberry.field
        def hubs(self) -> int:
            return 0

    sys.modules["gateway.widgets"].Query = Clash  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match=r"Query\.hubs is defined by both"):
        assemble((*registry.SERVICES, fake_service))


def test_two_services_may_not_load_the_same_node_type(fake_service: ServiceSpec) -> None:
    sys.modules["gateway.widgets"].nodes = {"Hub": widget_node}  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="two modules load Hub nodes"):
        assemble((*registry.SERVICES, fake_service))


def test_every_node_type_has_a_loader(fake_service: ServiceSpec) -> None:
    sys.modules["gateway.widgets"].nodes = {}  # type: ignore[attr-defined]
    parts = assemble((*registry.SERVICES, fake_service))
    with pytest.raises(TypeError, match="node\\(id:\\) has no loader for Widget"):
        build_schema(parts=parts)
    # and the real schema has one for each of its Node types
    schema = build_schema()
    sdl = schema.as_str()
    implementing = {
        line.split()[1]
        for line in sdl.splitlines()
        if line.startswith("type ") and "implements Node" in line
    }
    assert implementing == {
        "Member",
        "Tenant",
        "Invitation",
        "Hub",
        "Nomination",
        "Meetup",
        "DatePoll",
        "MeetupSeries",
        "WorkshopProposal",
        "CardDraw",
        "Slip",
        "OneToOne",
        "Need",
        "WebhookEndpoint",
        "WebhookDelivery",
        "Erasure",
        "Export",
    }
    assert set(PARTS.nodes) == implementing


@pytest.mark.parametrize(
    "literal",
    ["2027-13-45T99:99", "garbage", "2027-02-30T12:00", "2027-06-03T12:30+02:00", ""],
)
async def test_a_literal_a_scalar_cannot_parse_is_a_validation_error(literal: str) -> None:
    """Written inline, a value the scalar refuses is the client's mistake
    (GRAPHQL_VALIDATION_FAILED), not a bug masked as INTERNAL: the scalar's
    exception travels with the validation error."""
    from gateway.schema import build_schema

    value = json.dumps(literal)
    document = (
        f'mutation {{ scheduleMeetup(input: {{hubId: "SHViOjE=", localStart: {value},'
        ' title: "T", venue: {name: "X"}}) { __typename } }'
    )
    result = await build_schema().execute(document, context_value=None)
    assert result.data is None
    [error] = result.errors or []
    assert error.extensions == {"code": "GRAPHQL_VALIDATION_FAILED"}
    assert error.message.startswith("Expected value of type 'LocalDateTime'")
