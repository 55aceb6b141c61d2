"""Time as a dependency: services read `clock.now()`; tests move a `MovableClock`
instead of sleeping (objection windows, token expiry, facilitator terms)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


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


SYSTEM_CLOCK = SystemClock()
