"""Referrals' read models: `ledger` (slips, thanks, one-to-ones, needs),
projected from this service's events; `directory` (members, hubs, attendance,
missions), kept by reactions to the other services' events."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from services.referrals.views import ledger


class LedgerViews:
    name = "referrals-views"
    metadata: tuple[sa.MetaData, ...] = (ledger.metadata,)

    def apply(self, conn: sa.Connection, event: Any) -> None:
        ledger.apply(conn, event)
