"""The referrals application: the event store of referral slips, thanks,
one-to-ones, needs and a network's engagement settings, and the command whose
rule spans aggregates: a won referral and its thanks, saved together."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from eventsourcing.domain import Aggregate

from services.referrals.domain import DEFAULTS, EngagementSettings, Referral, Thanks, settings_id
from services.runtime.eventstore import ServiceApplication


class Referrals(ServiceApplication):
    name = "referrals"

    def settings(self, tenant_id: str) -> dict[str, int]:
        found = self.find(settings_id(tenant_id), EngagementSettings)
        return {**DEFAULTS, **(found.values if found is not None else {})}

    def settings_aggregate(self, tenant_id: str) -> EngagementSettings:
        found = self.find(settings_id(tenant_id), EngagementSettings)
        return found if found is not None else EngagementSettings(tenant_id=tenant_id)

    def win(
        self, tenant_id: str, referral_id: str, by: str, value: tuple[Decimal, str], at: datetime
    ) -> Referral:
        """The receiver won the business: the slip and the thanks to its
        giver, saved together."""

        def unit() -> tuple[Sequence[Aggregate], Referral]:
            referral = self.get(tenant_id, referral_id, Referral)
            referral.move("won", by, at, value=value)
            assert referral.value is not None
            thanks = Thanks.new(
                tenant_id,
                referral.giver_id,
                referral.receiver_id,
                referral.value,
                referral.about,
                at,
                referral_id=str(referral.id),
                hub_id=referral.hub_id,
            )
            return [referral, thanks], referral

        return self.transact(unit)
