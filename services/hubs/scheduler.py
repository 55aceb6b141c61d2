"""Closes objection windows when their time comes: silence means consent.

A singleton job (leader only). It sleeps until the next deadline or a poll
interval, and wakes at once when a movable clock (tests) is moved.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from services.hubs.application import Hubs
from services.hubs.domain import Hub
from services.hubs.views import directory, nominations
from services.runtime.host import ServiceHost
from services.runtime.logging import get_logger
from services.runtime.projection import Projector
from services.runtime.wakeup import Wakeup

log = get_logger("quartier.hubs.scheduler")


class WindowCloser:
    def __init__(
        self, host: ServiceHost, app: Hubs, projector: Projector, poll_interval: float = 30.0
    ):
        self.app = app
        self.engine = host.engine
        self.projector = projector
        self.clock = host.clock
        self.offload = host.offload
        self.poll_interval = poll_interval
        self.closed = 0
        self._wake = Wakeup()
        on_move = getattr(self.clock, "on_move", None)
        if on_move is not None:
            on_move(self._wake.set_threadsafe)

    async def run(self, stopping: asyncio.Event) -> None:
        self._wake.bind()
        while not stopping.is_set():
            self._wake.clear()
            try:
                await self.offload(self.close_due)
            except Exception:
                log.exception("scheduler.failed")
            next_at = await self.offload(self._next_deadline)
            timeout = self.poll_interval
            if next_at is not None:
                timeout = max(0.05, min(timeout, (next_at - self.clock.now()).total_seconds()))
            await self._wake.wait(stopping, timeout)

    def _next_deadline(self) -> datetime | None:
        with self.engine.connect() as conn:
            return nominations.next_deadline(conn)

    def _close(self, row: Any, now: datetime) -> bool:
        def change(hub: Hub) -> bool:
            activities: dict[str, str | None] = {}
            if hub.non_competition_in_force():
                with self.engine.connect() as conn:
                    activities = directory.activities(conn, row.tenant_id, hub.members)
            return hub.close_window(row.nomination_id, activities, now)

        return self.app.update(row.tenant_id, row.hub_id, Hub, change)[1]

    def close_due(self) -> int:
        """Close every window that is due; returns how many were closed."""
        self.projector.catch_up()
        now = self.clock.now()
        with self.engine.connect() as conn:
            due = nominations.due_nominations(conn, now)
        closed = 0
        for row in due:
            try:
                if self._close(row, now):
                    closed += 1
            except Exception:  # one bad nomination must not hold back the others
                log.exception("scheduler.close_failed", nomination_id=row.nomination_id)
        if closed:
            self.projector.catch_up()
            log.info("scheduler.windows_closed", count=closed)
        self.closed += closed
        return closed
