"""Hubs' deadlines, met when their time comes:

* `WindowCloser` closes objection windows: silence means consent;
* `TermEnder` ends facilitator terms whose days are over: the next volunteer
  takes over (terms that end by their meetups end in the reaction to
  MeetupClosed, not here).

Each is a singleton job (leader only). It sleeps until its next deadline or a
poll interval, and wakes at once when a movable clock (tests) is moved.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from services.hubs.application import Hubs
from services.hubs.domain import Hub
from services.hubs.views import directory, hubs, nominations
from services.runtime.host import ServiceHost
from services.runtime.logging import get_logger
from services.runtime.projection import Projector
from services.runtime.wakeup import Wakeup, run_rounds

log = get_logger("quartier.hubs.scheduler")


class DeadlineJob:
    """The loop: do what is due, then sleep until the next deadline."""

    what = "deadlines"

    def __init__(
        self, host: ServiceHost, app: Hubs, projector: Projector, poll_interval: float = 30.0
    ):
        self.app = app
        self.engine = host.engine
        self.projector = projector
        self.clock = host.clock
        self.offload = host.offload
        self.poll_interval = poll_interval
        self.done = 0
        self._wake = Wakeup()
        on_move = getattr(self.clock, "on_move", None)
        if on_move is not None:
            on_move(self._wake.set_threadsafe)

    async def run(self, stopping: asyncio.Event) -> None:
        await run_rounds(
            self.what,
            stopping,
            self._wake,
            lambda: self.offload(self.run_due),
            lambda: self.offload(self.next_deadline),
            self.clock.now,
            self.poll_interval,
        )

    def run_due(self) -> int:
        """Do everything that is due; returns how many were done."""
        self.projector.catch_up()
        now = self.clock.now()
        with self.engine.connect() as conn:
            due = self.due(conn, now)
        done = 0
        for row in due:
            try:
                if self.do(row, now):
                    done += 1
            except Exception:  # one bad item must not hold back the others
                log.exception("scheduler.item_failed", job=self.what, hub_id=row.hub_id)
        if done:
            self.projector.catch_up()
            log.info("scheduler.done", job=self.what, count=done)
        self.done += done
        return done

    def next_deadline(self) -> datetime | None:
        raise NotImplementedError

    def due(self, conn: Any, now: datetime) -> list[Any]:
        raise NotImplementedError

    def do(self, row: Any, now: datetime) -> bool:
        raise NotImplementedError


class WindowCloser(DeadlineJob):
    what = "objection-windows"

    def next_deadline(self) -> datetime | None:
        with self.engine.connect() as conn:
            return nominations.next_deadline(conn)

    def due(self, conn: Any, now: datetime) -> list[Any]:
        return nominations.due_nominations(conn, now)

    def do(self, row: Any, now: datetime) -> bool:
        def change(hub: Hub) -> bool:
            activities: dict[str, str | None] = {}
            if hub.non_competition_in_force():
                with self.engine.connect() as conn:
                    activities = directory.activities(conn, row.tenant_id, hub.members)
            return hub.close_window(row.nomination_id, activities, now)

        return self.app.update(row.tenant_id, row.hub_id, Hub, change)[1]

    def close_due(self) -> int:
        """Close every window that is due; returns how many were closed."""
        return self.run_due()


class TermEnder(DeadlineJob):
    what = "facilitator-terms"

    def next_deadline(self) -> datetime | None:
        with self.engine.connect() as conn:
            return hubs.next_term_end(conn)

    def due(self, conn: Any, now: datetime) -> list[Any]:
        return hubs.terms_over(conn, now)

    def do(self, row: Any, now: datetime) -> bool:
        return self.app.update(
            row.tenant_id, row.hub_id, Hub, lambda hub: hub.end_term_if_due(now)
        )[1]
