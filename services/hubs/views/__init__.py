"""Hubs' read models, one module each, projected from the Hub aggregate's
events by one projection (`HubViews`, one tracking position): `hubs` (hubs
and their members), `nominations` (with objections), `rules` (the versioned
history). `directory` is kept by a reaction to identity's events instead."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from services.hubs.views import hubs, nominations, rules


class HubViews:
    name = "hubs-views"
    metadata: tuple[sa.MetaData, ...] = (hubs.metadata, nominations.metadata, rules.metadata)

    def apply(self, conn: sa.Connection, event: Any) -> None:
        hubs.apply(conn, event)
        nominations.apply(conn, event)
        rules.apply(conn, event)
