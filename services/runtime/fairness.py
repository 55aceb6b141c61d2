"""Turns to run work, shared fairly between tenants.

A `FairQueue` hands out at most `capacity` turns at once, at most `per_key`
of them to one key (a tenant), and keeps the ones that must wait in a queue
per key, at most `max_waiting` deep. When a turn ends, the next one goes to
the next key in rotation that has someone waiting and is under its share
(round-robin between keys, first come first served within a key). So a
tenant with a backlog of a hundred requests never sits ahead of another
tenant's one request: that request waits for at most one turn to end, and
the busy tenant queues behind itself. A key whose queue is full is refused
at once (`QueueFull`), before any work, which is the cheap refusal a flood
deserves.

A waiter that is cancelled (its client gone, a timeout) leaves the queue;
one cancelled just after its turn was granted gives the turn on. Nothing
here blocks: the queue is for one event loop (the gateway's operations, a
service's offloaded work, `services.runtime.bus.Offloader`).

Why round-robin and not a deficit by cost: the work a turn holds is not
known when it is granted (a service's command, a gateway operation whose
cost is an upper bound), and every key is capped at `per_key` turns, so a
costly turn delays the others by at most one turn of each other key.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["FairQueue", "QueueFull"]


class QueueFull(Exception):
    """Too many of this key's turns are waiting already: refuse, don't queue."""


class FairQueue:
    """See the module. `per_key` defaults to `capacity`, `max_waiting` to
    unbounded."""

    def __init__(
        self, capacity: int, per_key: int | None = None, max_waiting: int | None = None
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.per_key = max(1, min(per_key or capacity, capacity))
        self.max_waiting = max_waiting
        self.total = 0
        self.running: dict[str, int] = {}
        # keys in rotation order, each with its waiters in arrival order
        self.waiting: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()

    def waiters(self, key: str) -> int:
        return len(self.waiting.get(key, ()))

    def _may_run(self, key: str) -> bool:
        return self.total < self.capacity and self.running.get(key, 0) < self.per_key

    def _start(self, key: str) -> None:
        self.total += 1
        self.running[key] = self.running.get(key, 0) + 1

    def _release(self, key: str) -> None:
        self.total -= 1
        left = self.running[key] - 1
        if left:
            self.running[key] = left
        else:
            del self.running[key]
        self._grant()

    def _grant(self) -> None:
        """Give free turns to waiters, one key after the other."""
        while self.total < self.capacity and self.waiting:
            key = next((k for k in self.waiting if self.running.get(k, 0) < self.per_key), None)
            if key is None:
                return  # every waiting key is at its share
            queue = self.waiting[key]
            future = queue.popleft()
            if queue:
                self.waiting.move_to_end(key)  # its next waiter goes after the other keys'
            else:
                del self.waiting[key]
            self._start(key)
            future.set_result(None)

    async def acquire(self, key: str) -> None:
        """Wait for a turn of `key` (QueueFull at once if too many wait)."""
        if key not in self.waiting and self._may_run(key):
            self._start(key)
            return
        queue = self.waiting.get(key)
        if self.max_waiting is not None and len(queue or ()) >= self.max_waiting:
            raise QueueFull(key)
        if queue is None:
            queue = self.waiting[key] = deque()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release(key)  # granted as it was cancelled: give the turn on
            else:
                self._forget(key, future)
            raise

    def _forget(self, key: str, future: asyncio.Future[None]) -> None:
        queue = self.waiting.get(key)
        if queue is None:
            return
        try:
            queue.remove(future)
        except ValueError:
            return
        if not queue:
            del self.waiting[key]

    def release(self, key: str) -> None:
        self._release(key)

    @asynccontextmanager
    async def turn(self, key: str) -> AsyncIterator[None]:
        await self.acquire(key)
        try:
            yield
        finally:
            self._release(key)


def fair_turns(workers: int) -> FairQueue:
    """The turns of a service's pool of `workers` threads: one tenant may
    hold half of them, so another tenant's work finds a free worker at once
    (and shares the interpreter with at most half a pool of the busy
    tenant's), and waits for no backlog when all are busy."""
    return FairQueue(workers, per_key=max(1, workers // 2))
