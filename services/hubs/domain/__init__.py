"""Hubs' domain: the Hub aggregate (hub.py), its values (values.py) and its
admission policies (policies.py). Pure: no I/O.

`Hub` is also reachable here under its first topic, `services.hubs.domain:Hub`,
which the events stored before this package was split still name."""

from services.hubs.domain.hub import Hub
from services.hubs.domain.policies import competitor, grandfathered_reason
from services.hubs.domain.values import (
    KINDS,
    MODES,
    PENDING,
    Area,
    AreaCheck,
    Candidate,
    CandidatePlaces,
    Membership,
    Nomination,
    Objection,
    Rules,
    RulesVersion,
)

__all__ = [
    "KINDS",
    "MODES",
    "PENDING",
    "Area",
    "AreaCheck",
    "Candidate",
    "CandidatePlaces",
    "Hub",
    "Membership",
    "Nomination",
    "Objection",
    "Rules",
    "RulesVersion",
    "competitor",
    "grandfathered_reason",
]
