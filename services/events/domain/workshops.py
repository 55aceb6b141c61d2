"""Workshops: a member proposes to lead a session (a topic, a description);
the facilitator or a hub admin schedules it as a meetup of kind workshop with
its proposer as host. Source: DOMAIN.md, "Workshops"."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from eventsourcing.domain import event

from services.runtime.errors import Conflict
from services.runtime.eventstore import TenantAggregate
from services.runtime.i18n import t
from services.runtime.personal import personal, personal_state
from services.runtime.text import free_text, single_line


class WorkshopProposal(TenantAggregate):
    noun = "workshop proposal"
    not_found = t("workshop proposal not found")
    event_context = ("tenant_id", "hub_id")

    class Event(TenantAggregate.Event):
        hub_id: str

    Proposed: ClassVar[type[Any]]
    Scheduled: ClassVar[type[Any]]

    @event("Proposed")
    def __init__(
        self, tenant_id: str, hub_id: str, host_id: str, topic: str, description: str, at: datetime
    ):
        self.tenant_id = tenant_id
        self.hub_id = hub_id
        self.host_id = host_id
        self.topic = topic
        self.description = description
        self.proposed_at = at
        self.meetup_id: str | None = None

    @staticmethod
    def new(
        tenant_id: str, hub_id: str, host_id: str, topic: str, description: str, at: datetime
    ) -> WorkshopProposal:
        return WorkshopProposal(
            tenant_id=tenant_id,
            hub_id=hub_id,
            host_id=host_id,
            topic=single_line(topic, "topic", 200, required=True),
            description=free_text(description, "description", 2000),
            at=at,
        )

    def schedule(self, meetup_id: str) -> None:
        if self.meetup_id is not None:
            raise Conflict(t("this workshop is already scheduled"))
        self._scheduled(meetup_id=meetup_id)

    @event("Scheduled")
    def _scheduled(self, meetup_id: str) -> None:
        self.meetup_id = meetup_id


# -- personal data (services/runtime/personal.py, docs/erasure.md) -------------
# The host's description, under the host's key (the topic becomes the
# meetup's title: it is the network's, not personal).
personal(WorkshopProposal.Proposed, description="host_id")
personal_state(WorkshopProposal, description="host_id")
