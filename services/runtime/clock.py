"""Time as a dependency: services read `clock.now()`; tests move a `MovableClock`
instead of sleeping (objection windows, token expiry, facilitator terms)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from services.runtime.errors import InvalidInput
from services.runtime.i18n import t

MAX_OFFSET = timedelta(days=3660)
"""How far a development clock may move from the system's time (about ten
years): far enough for any rule, and far from the ends of `datetime`."""


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class MovableClock:
    """A clock that stands still until moved. Listeners hear every move."""

    def __init__(self, start: datetime | None = None):
        self._now = start or datetime.now(UTC)
        self._lock = threading.Lock()
        self._listeners: list[Callable[[datetime], None]] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        with self._lock:
            self._now += delta or timedelta(**kwargs)
            now = self._now
        for listener in list(self._listeners):
            listener(now)
        return now

    def on_move(self, listener: Callable[[datetime], None]) -> None:
        self._listeners.append(listener)


_event_offset = timedelta(0)
"""The offset of this process's development clock (`ShiftedClock`), which
`event_timestamp` adds: zero in production, where there is none."""


def event_timestamp() -> datetime:
    """When a domain event happens (its `timestamp`, the CloudEvent `time`
    on the stream, the `created_at` of read models): the system's time,
    moved by the offset of the process's development clock when there is
    one (`quartier clock`, the demo's history), so that the events a system
    records agree with the time its services see. The system's time in
    production. (A `MovableClock`, the tests' clock that stands still, does
    not move it: events keep the system's time there.)"""
    return datetime.now(UTC) + _event_offset


def set_event_offset(offset: timedelta) -> None:
    """Set the offset `event_timestamp` adds (a `ShiftedClock` does it as it
    is made and moved; tests put it back between tests)."""
    global _event_offset
    _event_offset = offset


class ShiftedClock:
    """The system's time moved forward (or back) by an offset: development
    and demo environments run on it, so that `quartier clock +8d` lets one
    try time-based rules (objection windows, reminders, expiries) on a running
    system. Listeners hear every move, as with MovableClock. Never in
    production. Its offset also moves the time domain events record
    (`event_timestamp`): one development clock a process."""

    def __init__(self, offset: timedelta = timedelta(0)):
        self.offset = offset
        set_event_offset(offset)
        self._lock = threading.Lock()
        self._listeners: list[Callable[[datetime], None]] = []
        self._moves: set[str] = set()

    def now(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self.offset

    def move(self, move_id: str, delta: timedelta) -> bool:
        """Apply a move once (several services of one process share a clock,
        and each hears the move). False if it was applied already."""
        with self._lock:
            if move_id in self._moves:
                return False
            if abs(self.offset + delta) > MAX_OFFSET:
                raise InvalidInput(
                    t(
                        "the clock moves at most {limit} days from the system's time"
                        " (it is {days} days from it now)",
                        limit=MAX_OFFSET.days,
                        days=f"{self.offset.total_seconds() / 86400:+.2f}",
                    ),
                    field="seconds",
                )
            self._moves.add(move_id)
        self.advance(delta)
        return True

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        with self._lock:
            self.offset += delta or timedelta(**kwargs)
            set_event_offset(self.offset)
        now = self.now()
        for listener in list(self._listeners):
            listener(now)
        return now

    def on_move(self, listener: Callable[[datetime], None]) -> None:
        self._listeners.append(listener)


SYSTEM_CLOCK = SystemClock()
