"""The published contracts (docs/schemas/*.json, docs/asyncapi.json) are
generated from the services' contracts and must not drift; they are valid
JSON Schemas and a coherent AsyncAPI 3.0 document."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest

from infra.catalogue import (
    ASYNCAPI_FILE,
    SCHEMAS_DIR,
    asyncapi,
    envelope_schema,
    event_schemas,
    event_types,
    published_files,
)
from services.hubs import contract as hc
from services.identity import contract as idc

DOCS = Path(__file__).parents[2] / "docs"


def test_the_committed_contracts_are_the_ones_the_code_generates() -> None:
    files = published_files()
    for relative, text in files.items():
        path = DOCS / relative
        assert path.exists(), f"docs/{relative} is missing: run `make schema`"
        assert path.read_text(encoding="utf-8") == text, (
            f"docs/{relative} is out of date with the contracts: run `make schema`"
        )
    committed = {f"{SCHEMAS_DIR}/{p.name}" for p in (DOCS / SCHEMAS_DIR).glob("*.json")}
    assert committed == {r for r in files if r.startswith(f"{SCHEMAS_DIR}/")}, (
        "docs/schemas holds a schema of no event type: run `make schema`"
    )


def test_one_valid_schema_per_public_event_type() -> None:
    schemas = event_schemas()
    assert set(schemas) == {cls.type_name() for cls in event_types()}
    assert len(schemas) >= 20
    for name, schema in {**schemas, "cloudevent": envelope_schema()}.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", name
    rules = schemas[hc.HubRulesChanged.type_name()]
    assert rules["properties"]["rules"] == {"$ref": "#/$defs/Rules"}
    assert "admission_mode" in rules["$defs"]["Rules"]["required"]  # always encoded
    # every field is always there (the services encode defaults too)
    joined = schemas[idc.MemberJoined.type_name()]
    assert set(joined["required"]) == set(joined["properties"]) >= {"tenant_id", "member_id"}


def data_of(event: msgspec.Struct) -> Any:
    return json.loads(msgspec.json.encode(event))


def test_the_schemas_accept_what_the_services_encode_and_refuse_what_they_never_would() -> None:
    schema = event_schemas()[idc.MemberJoined.type_name()]
    event = idc.MemberJoined(
        tenant_id="t",
        member_id="m",
        invitation_id=None,
        invited_by=None,
        activity_code="plumber",
        roles=["tenant_admin"],
    )
    jsonschema.validate(data_of(event), schema)
    for broken in (
        {**data_of(event), "member_id": 12},
        {k: v for k, v in data_of(event).items() if k != "roles"},
        {**data_of(event), "roles": "tenant_admin"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)
    envelope = {
        "specversion": "1.0",
        "id": "identity:12",
        "source": "quartier/identity",
        "type": idc.MemberJoined.type_name(),
        "subject": "m",
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "tenant": "t",
        "sequence": 12,
        "data": data_of(event),
    }
    jsonschema.validate(envelope, envelope_schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**envelope, "specversion": "0.3"}, envelope_schema())


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def test_the_asyncapi_document_has_a_channel_message_and_operation_per_event_type() -> None:
    document = asyncapi()
    assert document["asyncapi"] == "3.0.0"
    assert json.loads((DOCS / ASYNCAPI_FILE).read_text()) == document
    for ref in refs(document):  # every reference resolves inside the document
        resolve(document, ref)
    for cls in event_types():
        channel = document["channels"][f"{cls.service}.{cls.__name__}"]
        assert channel["address"] == f"quartier.evt.{{tenant}}.{cls.service}.{cls.__name__}"
        assert set(channel["parameters"]) == {"tenant"}
        operation = document["operations"][f"{cls.service}.{cls.__name__}.publish"]
        assert operation["action"] == "send"
        message = resolve(document, operation["messages"][0]["$ref"])
        message = resolve(document, message["$ref"])
        envelope, specific = message["payload"]["allOf"]
        assert envelope == {"$ref": "#/components/schemas/CloudEvent"}
        assert specific["properties"]["type"] == {"const": cls.type_name()}
        data = resolve(document, specific["properties"]["data"]["$ref"])
        assert set(data["properties"]) == set(event_schemas()[cls.type_name()]["properties"])
    # the payload schemas are valid JSON Schemas once the document's refs are in reach
    for schema in document["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)
