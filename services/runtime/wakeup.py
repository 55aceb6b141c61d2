"""Waiting in background loops: until woken (possibly from a worker thread,
e.g. right after a save), until stopped, or until a timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import datetime
from typing import Any

from services.runtime.logging import get_logger

log = get_logger(__name__)


class Wakeup:
    """An event that any thread may set; the loop that waits on it binds it."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self) -> None:
        self._loop = asyncio.get_running_loop()

    def set_threadsafe(self, *_: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._event.set)

    def clear(self) -> None:
        self._event.clear()

    async def wait(self, stopping: asyncio.Event, timeout: float) -> None:
        """Return when woken, when `stopping` is set, or after `timeout` seconds."""
        waits = [asyncio.ensure_future(self._event.wait()), asyncio.ensure_future(stopping.wait())]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()


async def sleep_unless(stopping: asyncio.Event, delay: float) -> None:
    """Sleep `delay` seconds, or less if `stopping` is set meanwhile."""
    with suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), timeout=delay)


RETRY_INTERVAL = 1.0
"""Seconds before a background job tries again after a failed round."""


async def run_rounds(
    name: str,
    stopping: asyncio.Event,
    wakeup: Wakeup,
    round_: Callable[[], Awaitable[Any]],
    next_at: Callable[[], Awaitable[datetime | None]],
    now: Callable[[], datetime],
    poll_interval: float,
) -> None:
    """The loop of a background job (the leader's schedulers and mail
    senders): run a round, then sleep until the next deadline (`next_at`),
    a wake-up or `poll_interval`, until stopped.

    A failure anywhere in a round or in looking for the next deadline (the
    database refusing a connection for a moment…) is logged and tried again
    within `RETRY_INTERVAL` seconds: the job never ends silently (it used to,
    and no deadline was met again until the leadership changed). A deadline
    still due after a round (one that could not be done) is also tried again
    after `RETRY_INTERVAL`, not in a busy loop."""
    wakeup.bind()
    while not stopping.is_set():
        wakeup.clear()
        timeout = poll_interval
        try:
            await round_()
            at = await next_at()
        except Exception:
            log.exception("job.round_failed", job=name)
            timeout = min(timeout, RETRY_INTERVAL)
        else:
            if at is not None:
                until = (at - now()).total_seconds()
                timeout = min(timeout, until if until > 0 else RETRY_INTERVAL)
        await wakeup.wait(stopping, max(0.05, timeout))
