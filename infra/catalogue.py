"""The event catalogue: every public event type of every service, generated
from the services' contracts (a test fails when a generated file drifts):

* `python -m infra.catalogue > docs/events.md`: the catalogue in Markdown;
* `python -m infra.catalogue --write docs`: the published contracts, a JSON
  Schema of each event type's `data` and of the CloudEvents envelope
  (`docs/schemas/`, also served by the gateway at `/v1/schemas`), and the
  AsyncAPI 3.0 document of the stream (`docs/asyncapi.json`).
"""

from __future__ import annotations

import copy
import json
import sys
import typing
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec

from services import registry
from services.runtime.messages import PublicEvent

CONTRACTS: tuple[ModuleType, ...] = tuple(spec.contract() for spec in registry.SERVICES)

HEADER = """# Event catalogue

Generated from the services' `contract.py` by `python -m infra.catalogue`; do
not edit by hand.

Every event is published once on the JetStream stream `QUARTIER_EVENTS`, subject
`quartier.evt.<tenant_id>.<service>.<EventName>`, as a CloudEvents 1.0 JSON
message:

| attribute | value |
|---|---|
| `specversion` | `1.0` |
| `id` | `<service>:<notification id>`, also the `Nats-Msg-Id` header (stable across re-publications; an event published again by `quartier stream rebuild` has `<service>:r<rebuild>:<notification id>` in that header, the same `id`) |
| `source` | `quartier/<service>` |
| `type` | `quartier.<service>.<EventName>.v<version>` |
| `subject` | the id of the aggregate that changed |
| `time` | when the event was recorded (UTC) |
| `tenant` | the tenant (network) id |
| `sequence` | the notification id in the service's log (increasing per service) |
| `data` | the fields below |

Events carry ids and non-personal facts only: no e-mail address, name,
coordinates, free text or secret. A consumer that needs a name asks the API.

Consumers read a network's events over HTTP (`GET /v1/events`, NDJSON or
Server-Sent Events, resumable from any event's position) or the GraphQL
subscription `tenantEvents`: see [stream.md](stream.md). Each type's `data`
has a JSON Schema, `docs/schemas/<type>.json` (also served at
`/v1/schemas/<type>`), and the stream is described as an AsyncAPI 3.0
document, [asyncapi.json](asyncapi.json).
"""


RULES_NOTE = """
`Rules` (in `HubRulesChanged`): `admission_mode` (`cooptation`, `approval` or
`open`), `non_competition`, `non_competition_lift_at` (members, or null),
`non_competition_lifted`, `objection_window_days`, `max_visits`,
`facilitator_term_days`, `facilitator_term_meetups` (closed meetups, or null:
terms count in days only), `referrals_meeting_days` (days, or null: referrals
between any members).
"""


def events_of(module: ModuleType) -> list[type[PublicEvent]]:
    found = [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, PublicEvent) and v.__module__ == module.__name__
    ]
    return [
        cls for cls in found if msgspec.structs.fields(cls) and cls.service and _is_leaf(cls, found)
    ]


def _is_leaf(cls: type, found: list[type]) -> bool:
    return not any(other is not cls and issubclass(other, cls) for other in found)


def _type_name(annotation: object) -> str:
    """The annotation as written, escaped for a Markdown table cell."""
    name = getattr(annotation, "__name__", None)
    if not (name and not getattr(annotation, "__args__", None)):
        name = str(annotation)
        for module in ("typing.", "datetime.", *(m.__name__ + "." for m in CONTRACTS)):
            name = name.replace(module, "")
    return name.replace("|", "\\|")


def render() -> str:
    lines = [HEADER]
    for module in CONTRACTS:
        service = module.SERVICE
        lines.append(f"\n## {service}\n")
        for cls in events_of(module):
            doc = (cls.__doc__ or "").strip().splitlines()
            lines.append(f"### `{cls.type_name()}`\n")
            if doc and not doc[0].startswith("A fact published"):
                lines.append(" ".join(d.strip() for d in doc) + "\n")
            lines.append(f"Subject: `quartier.evt.<tenant_id>.{service}.{cls.__name__}`\n")
            lines.append("| field | type |\n|---|---|")
            hints = typing.get_type_hints(cls)
            for f in msgspec.structs.fields(cls):
                lines.append(f"| `{f.name}` | `{_type_name(hints[f.name])}` |")
            lines.append("")
    lines.append(RULES_NOTE)
    return "\n".join(lines).rstrip() + "\n"


# -- published contracts: JSON Schemas and AsyncAPI --------------------------------

DIALECT = "https://json-schema.org/draft/2020-12/schema"
ENVELOPE = "cloudevent"  # the envelope's schema name (event types all start with "quartier.")
SCHEMAS_DIR = "schemas"
ASYNCAPI_FILE = "asyncapi.json"


def event_types() -> list[type[PublicEvent]]:
    return [cls for module in CONTRACTS for cls in events_of(module)]


def _every_field_present(components: dict[str, Any]) -> None:
    """The services encode every field of their contracts (no omitted
    defaults): the schemas say so, a consumer may count on each field being
    there (possibly null)."""
    for schema in components.values():
        if schema.get("type") == "object" and "properties" in schema:
            schema["required"] = list(schema["properties"])


def _describe(cls: type[PublicEvent]) -> str:
    doc = " ".join(line.strip() for line in (cls.__doc__ or "").strip().splitlines())
    if doc.startswith("A fact published"):
        doc = ""
    where = (
        f"The `data` of the CloudEvents of type `{cls.type_name()}`, published on "
        f"`quartier.evt.<tenant_id>.{cls.service}.{cls.__name__}`."
    )
    return f"{doc} {where}".strip()


@cache
def event_schemas() -> dict[str, dict[str, Any]]:
    """A JSON Schema (2020-12) of each public event type's `data`, by type."""
    found: dict[str, dict[str, Any]] = {}
    for cls in event_types():
        (_,), components = msgspec.json.schema_components([cls], ref_template="#/$defs/{name}")
        _every_field_present(components)
        own = components.pop(cls.__name__)
        own.pop("title", None)
        own.pop("description", None)
        schema: dict[str, Any] = {
            "$schema": DIALECT,
            "$id": f"urn:quartier:event:{cls.type_name()}",
            "title": cls.type_name(),
            "description": _describe(cls),
            **own,
        }
        if components:
            schema["$defs"] = components
        found[cls.type_name()] = schema
    return found


def envelope_schema() -> dict[str, Any]:
    """The CloudEvents 1.0 envelope of every event on the stream."""
    return {
        "$schema": DIALECT,
        "$id": f"urn:quartier:event:{ENVELOPE}",
        "title": "Quartier CloudEvent",
        "description": "A domain event of a Quartier network, as a CloudEvents 1.0 JSON message. "
        "`data` follows the schema of its `type`. On the HTTP API and the GraphQL subscription "
        "each event also carries `position`, where a consumer resumes after it.",
        "type": "object",
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {
                "type": "string",
                "pattern": "^[a-z][a-z0-9_]*:[0-9]+$",
                "description": "`<service>:<notification id>`: unique, stable across "
                "re-publications and rebuilds of the stream",
            },
            "source": {"type": "string", "pattern": "^quartier/[a-z][a-z0-9_]*$"},
            "type": {
                "type": "string",
                "pattern": "^quartier\\.[a-z][a-z0-9_]*\\.[A-Za-z0-9]+\\.v[0-9]+$",
                "description": "`quartier.<service>.<EventName>.v<version>`",
            },
            "subject": {"type": "string", "description": "the id of the aggregate that changed"},
            "time": {
                "type": "string",
                "format": "date-time",
                "description": "when the event was recorded (UTC)",
            },
            "datacontenttype": {"const": "application/json"},
            "tenant": {"type": "string", "description": "the tenant (network) id"},
            "sequence": {
                "type": "integer",
                "minimum": 1,
                "description": "the notification id in the service's log (increasing per service)",
            },
            "data": {"type": "object"},
            "position": {
                "type": "string",
                "description": "HTTP API and GraphQL subscription only: the opaque position just "
                "after this event, for `after=` or `Last-Event-ID` (docs/stream.md)",
            },
        },
        "required": [
            "specversion",
            "id",
            "source",
            "type",
            "subject",
            "time",
            "datacontenttype",
            "tenant",
            "sequence",
            "data",
        ],
    }


def schema_index(link: Callable[[str], str]) -> dict[str, Any]:
    """What `/v1/schemas` answers and `docs/schemas/index.json` holds:
    `link(name)` is where the schema `name` is found."""
    return {
        "envelope": link(ENVELOPE),
        "events": [
            {
                "type": cls.type_name(),
                "service": cls.service,
                "name": cls.__name__,
                "version": cls.event_version,
                "subject": f"quartier.evt.{{tenant}}.{cls.service}.{cls.__name__}",
                "schema": link(cls.type_name()),
            }
            for cls in event_types()
        ],
    }


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the stream: one channel per event type
    (`quartier.evt.{tenant}.<service>.<EventName>`), its message the
    CloudEvents envelope with that type's `data`."""
    classes = event_types()
    _, components = msgspec.json.schema_components(
        classes, ref_template="#/components/schemas/{name}"
    )
    _every_field_present(components)
    schemas: dict[str, Any] = {}
    envelope = envelope_schema()
    del envelope["$schema"], envelope["$id"]
    schemas["CloudEvent"] = envelope
    for cls in classes:
        own = components.pop(cls.__name__)
        own["title"] = cls.type_name()
        own["description"] = _describe(cls)
        schemas[cls.type_name()] = own
    schemas.update(components)  # what the events hold (Rules, …)
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for cls in classes:
        key = f"{cls.service}.{cls.__name__}"
        doc = _describe(cls)
        messages[cls.type_name()] = {
            "name": cls.__name__,
            "title": cls.type_name(),
            "summary": doc.split(". ")[0].rstrip(".") + ".",
            "contentType": "application/cloudevents+json",
            "headers": {
                "type": "object",
                "properties": {
                    "Nats-Msg-Id": {
                        "type": "string",
                        "description": "`<service>:<notification id>` (the CloudEvent's id); "
                        "`<service>:r<rebuild>:<notification id>` on an event published again "
                        "by a rebuild of the stream",
                    }
                },
            },
            "payload": {
                "allOf": [
                    {"$ref": "#/components/schemas/CloudEvent"},
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": cls.type_name()},
                            "source": {"const": f"quartier/{cls.service}"},
                            "data": {"$ref": f"#/components/schemas/{cls.type_name()}"},
                        },
                    },
                ]
            },
        }
        channels[key] = {
            "address": f"quartier.evt.{{tenant}}.{cls.service}.{cls.__name__}",
            "title": cls.type_name(),
            "parameters": {"tenant": {"$ref": "#/components/parameters/tenant"}},
            "messages": {cls.__name__: {"$ref": f"#/components/messages/{cls.type_name()}"}},
        }
        operations[f"{key}.publish"] = {
            "action": "send",
            "title": f"{cls.service} publishes {cls.__name__}",
            "channel": {"$ref": f"#/channels/{key}"},
            "messages": [{"$ref": f"#/channels/{key}/messages/{cls.__name__}"}],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Quartier event stream",
            "version": "1",
            "description": "Every change of a Quartier network is a domain event, published once "
            "on the JetStream stream `QUARTIER_EVENTS` as a CloudEvents 1.0 JSON message, on "
            "`quartier.evt.<tenant>.<service>.<EventName>`. Generated from the services' "
            "contracts by `python -m infra.catalogue --write docs`; see docs/events.md and "
            "docs/stream.md (the HTTP API and resumable positions).",
        },
        "defaultContentType": "application/cloudevents+json",
        "servers": {
            "nats": {
                "host": "{host}",
                "protocol": "nats",
                "description": "The NATS server (or cluster) of the installation "
                "(`QUARTIER_NATS_URL`), JetStream stream `QUARTIER_EVENTS`.",
                "variables": {"host": {"default": "127.0.0.1:4222"}},
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
            "parameters": {
                "tenant": {
                    "description": "The tenant (network) id. A consumer of one network "
                    "subscribes to `quartier.evt.<tenant>.>`."
                }
            },
        },
    }


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def published_files() -> dict[str, str]:
    """The generated contract files, by path relative to docs/."""
    files = {
        f"{SCHEMAS_DIR}/index.json": _json(schema_index(lambda name: f"{name}.json")),
        f"{SCHEMAS_DIR}/{ENVELOPE}.json": _json(envelope_schema()),
        ASYNCAPI_FILE: _json(asyncapi()),
    }
    for name, schema in event_schemas().items():
        files[f"{SCHEMAS_DIR}/{name}.json"] = _json(schema)
    return files


def write_published(docs: Path) -> list[Path]:
    """Write the contract files under `docs` (stale schemas removed)."""
    files = published_files()
    (docs / SCHEMAS_DIR).mkdir(parents=True, exist_ok=True)
    for stale in (docs / SCHEMAS_DIR).glob("*.json"):
        if f"{SCHEMAS_DIR}/{stale.name}" not in files:
            stale.unlink()
    written = []
    for relative, text in files.items():
        path = docs / relative
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def event_schema_copy(name: str) -> dict[str, Any] | None:
    """The schema `name` (an event type, or `cloudevent`), for serving."""
    if name == ENVELOPE:
        return envelope_schema()
    found = event_schemas().get(name)
    return copy.deepcopy(found) if found is not None else None


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"] and len(sys.argv) == 3:
        write_published(Path(sys.argv[2]))
    elif len(sys.argv) == 1:
        print(render(), end="")
    else:
        sys.exit("usage: python -m infra.catalogue [--write DOCS_DIR]")
