"""Referrals' read models: `ledger` (slips, thanks, one-to-ones, needs and
whom each need matched), projected from this service's events; `directory`
(members, hubs, the hubs members left, attendance, missions), kept by
reactions to the other services' events. Both are rebuilt by replay: the
ledger from referrals' log, the directory from the stream (its reactions'
durable consumers from the start). The mail outbox (`mail.py`) is not a
read model to rebuild (docs/mail.md, "Operating it")."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from services.referrals.views import ledger


class LedgerViews:
    name = "referrals-views"
    metadata: tuple[sa.MetaData, ...] = (ledger.metadata,)

    def apply(self, conn: sa.Connection, event: Any) -> None:
        ledger.apply(conn, event)
