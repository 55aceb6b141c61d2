"""The event catalogue: every public event type of every service, generated
from the services' contracts. `python -m infra.catalogue > docs/events.md`
(a test fails when the file drifts)."""

from __future__ import annotations

import typing
from types import ModuleType

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
| `id` | `<service>:<notification id>`, also the `Nats-Msg-Id` header (stable across re-publications) |
| `source` | `quartier/<service>` |
| `type` | `quartier.<service>.<EventName>.v<version>` |
| `subject` | the id of the aggregate that changed |
| `time` | when the event was recorded (UTC) |
| `tenant` | the tenant (network) id |
| `sequence` | the notification id in the service's log (increasing per service) |
| `data` | the fields below |

Events carry ids and non-personal facts only: no e-mail address, name,
coordinates, free text or secret. A consumer that needs a name asks the API.
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


if __name__ == "__main__":
    print(render(), end="")
