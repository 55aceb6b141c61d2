"""Records the reminders of meetups when they fall due: for each lead time of
a meetup (the series' `reminder_hours`), once its time has come, the meetup
records `ReminderSent(lead_hours)` (once: the aggregate keeps which leads
were recorded, and a concurrent recording conflicts on its version); the
public event it publishes is what the mail planner (`notify.py`) mails the
members from.

A singleton job (leader only), on the host's clock: it sleeps until the next
reminder is due or a poll interval, and wakes at once when a movable clock
(tests) is moved.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from services.events.application import Meetups
from services.events.domain import Meetup
from services.events.views import meetups
from services.runtime.host import ServiceHost
from services.runtime.logging import get_logger
from services.runtime.projection import Projector
from services.runtime.wakeup import Wakeup, run_rounds

log = get_logger("quartier.events.scheduler")


class ReminderScheduler:
    def __init__(
        self, host: ServiceHost, app: Meetups, projector: Projector, poll_interval: float = 60.0
    ):
        self.app = app
        self.engine = host.engine
        self.projector = projector
        self.clock = host.clock
        self.offload = host.offload
        self.poll_interval = poll_interval
        self.recorded = 0
        self.checked_until: datetime | None = None  # the time of the last round's look
        self._wake = Wakeup()
        on_move = getattr(self.clock, "on_move", None)
        if on_move is not None:
            on_move(self._wake.set_threadsafe)
        # a meetup scheduled (or moved) may have a reminder due sooner than the
        # one the loop sleeps until: every save wakes it
        app.on_saved(self._wake.set_threadsafe)

    async def run(self, stopping: asyncio.Event) -> None:
        await run_rounds(
            "reminders",
            stopping,
            self._wake,
            lambda: self.offload(self.record_due),
            lambda: self.offload(self._next_due),
            self.clock.now,
            self.poll_interval,
        )

    def _next_due(self) -> datetime | None:
        with self.engine.connect() as conn:
            return meetups.next_reminder_at(conn, self.clock.now())

    def _record(self, row: Any, lead_hours: int) -> bool:
        def change(meetup: Meetup) -> bool:
            if lead_hours in meetup.reminders_sent or meetup.state != "scheduled":
                return False
            meetup.reminder_sent(lead_hours)
            return True

        return self.app.update(row.tenant_id, row.meetup_id, Meetup, change)[1]

    def record_due(self) -> int:
        """Record every reminder that is due; returns how many."""
        self.projector.catch_up()
        now = self.clock.now()
        with self.engine.connect() as conn:
            due = meetups.due_reminders(conn, now)
        recorded = 0
        for row, lead_hours in due:
            try:
                if self._record(row, lead_hours):
                    recorded += 1
            except Exception:  # one bad meetup must not hold back the others
                log.exception("reminders.record_failed", meetup_id=row.meetup_id)
        if recorded:
            self.projector.catch_up()
            log.info("reminders.due", count=recorded)
        self.recorded += recorded
        self.checked_until = now
        return recorded
