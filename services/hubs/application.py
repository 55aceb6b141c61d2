"""The hubs application: one method per command, synchronous (the handlers
call it from the worker pool after gathering what it needs from identity and
the views). A command that loses a race on the hub's version is retried on
the fresh state, so concurrent commands on one hub do not fail spuriously."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError, Tracking

from services.hubs.domain import Area, Candidate, CandidatePlaces, Hub, Rules
from services.runtime.errors import Conflict
from services.runtime.eventstore import ServiceApplication
from services.runtime.tenancy import guard_tenant

T = TypeVar("T")
RETRIES = 5


class Hubs(ServiceApplication):
    name = "hubs"
    snapshotting_intervals: ClassVar = {Hub: 50}

    def hub(self, tenant_id: str, hub_id: str) -> Hub:
        try:
            found = self.repository.get(UUID(hub_id))
        except (ValueError, AggregateNotFoundError):
            found = None
        if not isinstance(found, Hub):
            found = None
        return guard_tenant(found, tenant_id, "hub")

    def _update(self, tenant_id: str, hub_id: str, change: Callable[[Hub], T]) -> tuple[Hub, T]:
        for attempt in range(RETRIES):
            hub = self.hub(tenant_id, hub_id)
            result = change(hub)
            try:
                self.save(hub)
            except Conflict:
                if attempt == RETRIES - 1:
                    raise
                continue
            return hub, result
        raise AssertionError("unreachable")

    # -- commands --------------------------------------------------------------

    def create_hub(
        self,
        tenant_id: str,
        name: str,
        kind: str,
        area: Area,
        rules: Rules,
        founder_id: str,
        founder_activity: str | None,
        at: datetime,
    ) -> Hub:
        hub = Hub.new(tenant_id, name, kind, area, rules, founder_id, founder_activity, at)
        self.save(hub)
        return hub

    def change_rules(
        self,
        tenant_id: str,
        hub_id: str,
        changes: Mapping[str, Any],
        by: str,
        reason: str | None,
        activities: Mapping[str, str | None],
        at: datetime,
    ) -> Hub:
        return self._update(
            tenant_id, hub_id, lambda h: h.change_rules(changes, by, reason, at, activities)
        )[0]

    def nominate(
        self,
        tenant_id: str,
        hub_id: str,
        nomination_id: str,
        sponsor_id: str,
        candidate: Candidate,
        note: str,
        activities: Mapping[str, str | None],
        exception_reason: str | None,
        at: datetime,
    ) -> Hub:
        return self._update(
            tenant_id,
            hub_id,
            lambda h: h.nominate(
                nomination_id, sponsor_id, candidate, note, activities, exception_reason, at
            ),
        )[0]

    def join(
        self,
        tenant_id: str,
        hub_id: str,
        member_id: str,
        activity: str | None,
        places: CandidatePlaces,
        activities: Mapping[str, str | None],
        at: datetime,
    ) -> Hub:
        return self._update(
            tenant_id, hub_id, lambda h: h.join(member_id, activity, places, activities, at)
        )[0]

    def raise_objection(
        self,
        tenant_id: str,
        hub_id: str,
        nomination_id: str,
        objector_id: str,
        reason: str,
        at: datetime,
    ) -> Hub:
        return self._update(
            tenant_id, hub_id, lambda h: h.raise_objection(nomination_id, objector_id, reason, at)
        )[0]

    def admit(
        self,
        tenant_id: str,
        hub_id: str,
        nomination_id: str,
        by: str,
        activities: Mapping[str, str | None],
        exception_reason: str | None,
        at: datetime,
    ) -> Hub:
        return self._update(
            tenant_id,
            hub_id,
            lambda h: h.admit(nomination_id, by, activities, exception_reason, at),
        )[0]

    def reject(
        self, tenant_id: str, hub_id: str, nomination_id: str, by: str, reason: str, at: datetime
    ) -> Hub:
        return self._update(tenant_id, hub_id, lambda h: h.reject(nomination_id, by, reason, at))[0]

    def close_window(
        self,
        tenant_id: str,
        hub_id: str,
        nomination_id: str,
        activities: Mapping[str, str | None],
        at: datetime,
    ) -> bool:
        return self._update(
            tenant_id, hub_id, lambda h: h.close_window(nomination_id, activities, at)
        )[1]

    def leave(self, tenant_id: str, hub_id: str, member_id: str, at: datetime) -> Hub:
        return self._update(tenant_id, hub_id, lambda h: h.leave(member_id, at))[0]

    def remove(
        self, tenant_id: str, hub_id: str, member_id: str, by: str, reason: str, at: datetime
    ) -> Hub:
        return self._update(tenant_id, hub_id, lambda h: h.remove(member_id, by, reason, at))[0]

    def add_co_admin(self, tenant_id: str, hub_id: str, member_id: str, by: str) -> Hub:
        return self._update(tenant_id, hub_id, lambda h: h.add_co_admin(member_id, by))[0]

    def remove_co_admin(self, tenant_id: str, hub_id: str, member_id: str, by: str) -> Hub:
        return self._update(tenant_id, hub_id, lambda h: h.remove_co_admin(member_id, by))[0]

    def volunteer(self, tenant_id: str, hub_id: str, member_id: str) -> Hub:
        return self._update(tenant_id, hub_id, lambda h: h.volunteer(member_id))[0]

    def withdraw(self, tenant_id: str, hub_id: str, member_id: str) -> Hub:
        return self._update(tenant_id, hub_id, lambda h: h.withdraw(member_id))[0]

    def hand_over(self, tenant_id: str, hub_id: str, at: datetime) -> Hub:
        return self._update(tenant_id, hub_id, lambda h: h.hand_over(at))[0]

    def swap_turns(self, tenant_id: str, hub_id: str, first: str, second: str) -> Hub:
        return self._update(tenant_id, hub_id, lambda h: h.swap_turns(first, second))[0]

    # -- reactions -------------------------------------------------------------

    def candidate_joined(
        self,
        tenant_id: str,
        hub_id: str,
        nomination_id: str,
        member_id: str,
        activity: str | None,
        places: CandidatePlaces,
        activities: Mapping[str, str | None],
        at: datetime,
        tracking: Tracking,
    ) -> bool:
        """Continue an e-mail nomination, recording the upstream position with
        the hub's new events in one transaction. False if that upstream event
        was handled before (a redelivery)."""
        for _ in range(RETRIES):
            if self.has_processed(tracking):
                return False
            hub = self.hub(tenant_id, hub_id)
            hub.candidate_joined(nomination_id, member_id, activity, places, activities, at)
            try:
                self.save_tracked(hub, tracking=tracking)
            except IntegrityError:
                continue  # processed meanwhile, or the hub changed: look again
            return True
        raise Conflict("the hub kept changing; the reaction will be retried")
