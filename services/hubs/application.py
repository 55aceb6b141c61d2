"""The hubs application: the event store of Hub aggregates (loaded and
updated through the runtime's `get`/`update`, which answer other tenants'
hubs as missing and retry on a version conflict), snapshots of the typed hub
state, and the one command that comes from a reaction."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar

from eventsourcing.persistence import IntegrityError, Tracking

from services.hubs.domain import (
    Area,
    CandidatePlaces,
    Hub,
    Membership,
    Nomination,
    Objection,
    Rules,
    RulesVersion,
)
from services.runtime.errors import Conflict, NotFound
from services.runtime.eventstore import RETRIES, ServiceApplication
from services.runtime.i18n import t


class Hubs(ServiceApplication):
    name = "hubs"
    snapshotting_intervals: ClassVar = {Hub: 50}
    state_types = (Area, Rules, RulesVersion, Membership, Nomination, Objection)

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
        tracking: Tracking | None,
    ) -> bool:
        """Continue an e-mail nomination, recording the upstream position with
        the hub's new events in one transaction. False if that upstream event
        was handled before (a redelivery). Without `tracking` (one invitation
        for several hubs: all but the last), the hub is saved alone; the
        change is idempotent (a nomination no longer invited is left as is)."""
        for _ in range(RETRIES):
            if tracking is not None and self.has_processed(tracking):
                return False
            hub = self.get(tenant_id, hub_id, Hub)
            hub.candidate_joined(nomination_id, member_id, activity, places, activities, at)
            try:
                if tracking is None:
                    self.save(hub)
                else:
                    self.save_tracked(hub, tracking=tracking)
            except (IntegrityError, Conflict):
                continue  # processed meanwhile, or the hub changed: look again
            return True
        raise Conflict(t("the hub kept changing; the reaction will be retried"))

    def meetup_closed(
        self, tenant_id: str, hub_id: str, meetup_id: str, at: datetime, tracking: Tracking
    ) -> bool:
        """Count a closed meetup in the hub's current term (which may end, and
        the next volunteer take over), recording the upstream position with
        the hub's new events in one transaction. False if that upstream event
        was handled before (a redelivery), if the hub is not one of the
        tenant's, or if it has no facilitator (no term to count in)."""
        for _ in range(RETRIES):
            if self.has_processed(tracking):
                return False
            try:
                hub = self.get(tenant_id, hub_id, Hub)
            except NotFound:
                return False  # another tenant's hub, or none: nothing of ours to count
            if not hub.meetup_closed(meetup_id, at):
                return False
            try:
                self.save_tracked(hub, tracking=tracking)
            except IntegrityError:
                continue  # processed meanwhile, or the hub changed: look again
            return True
        raise Conflict(t("the hub kept changing; the reaction will be retried"))
