"""Waiting in background loops: until woken (possibly from a worker thread,
e.g. right after a save), until stopped, or until a timeout."""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import Any


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
