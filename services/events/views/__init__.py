"""Meetups' read models, one module each, projected by one projection
(`MeetupViews`): `meetups` (meetups, answers and the waitlist, attendance,
card draws) and `planning` (series, date polls, workshop proposals, visits).
`directory` (hubs, their members and roles) is kept by a reaction to hubs'
events instead."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from services.events.views import meetups, planning


class MeetupViews:
    name = "events-views"
    metadata: tuple[sa.MetaData, ...] = (meetups.metadata, planning.metadata)

    def apply(self, conn: sa.Connection, event: Any) -> None:
        meetups.apply(conn, event)
        planning.apply(conn, event)
