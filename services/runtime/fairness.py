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
here blocks: the queue is for one event loop (the gateway's operations,
`gateway.budgets`).

`FairExecutor` is the same rule for a service's thread pool (the
`Offloader` that runs eventsourcing and SQLAlchemy): a pool whose threads
take their next job round the tenants, themselves, with no trip through
the event loop between two jobs.

Why round-robin and not a deficit by cost: the work a turn holds is not
known when it is granted (a service's command, a gateway operation whose
cost is an upper bound), and every key is capped at `per_key` turns, so a
costly turn delays the others by at most one turn of each other key.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor, Future
from contextlib import asynccontextmanager
from typing import Any

__all__ = ["FairExecutor", "FairQueue", "QueueFull"]


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


class FairExecutor(Executor):
    """A pool of `workers` threads whose jobs are queued per key (a tenant)
    and taken round the keys, at most `per_key` of one key at once (default:
    all the workers: the pool stays work-conserving, one busy key alone
    keeps the whole pool, and the order is all that changes). Each thread
    takes its next job itself when it ends one, with no trip through the
    event loop. `submit_keyed(key, fn, …)`; plain `submit` uses the key "".

    Why no cap per key by default: with one (all the workers but one, or
    half), a key's queued job could not take the free worker kept for the
    others, and 32 concurrent commands of one network on PostgreSQL timed
    out where the plain pool did not (a job waiting on another of its own
    key's, behind the cap); measured, a flood answer costs identity about
    what a quiet one does, so the pool's share was not where the flood
    hurt (docs/performance.md, "Tenant isolation")."""

    def __init__(self, workers: int, name: str, per_key: int | None = None) -> None:
        self.workers = max(1, workers)
        self.per_key = max(1, min(per_key or self.workers, self.workers))
        self.name = name
        self._lock = threading.Condition()
        self._queues: OrderedDict[str, deque[tuple[Future[Any], Callable[[], Any]]]] = OrderedDict()
        self._running: dict[str, int] = {}
        self._threads: list[threading.Thread] = []
        self._shutdown = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return self.submit_keyed("", fn, *args, **kwargs)

    def submit_keyed(
        self, key: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new jobs after shutdown")
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = deque()
            queue.append((future, lambda: fn(*args, **kwargs)))
            if len(self._threads) < self.workers:
                thread = threading.Thread(
                    target=self._work, name=f"{self.name}_{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            self._lock.notify()
        return future

    def _next(self) -> tuple[str, Future[Any], Callable[[], Any]] | None:
        """The next job round the keys (under the lock), or None."""
        for key in self._queues:
            if self._running.get(key, 0) < self.per_key:
                queue = self._queues[key]
                future, job = queue.popleft()
                if queue:
                    self._queues.move_to_end(key)
                else:
                    del self._queues[key]
                self._running[key] = self._running.get(key, 0) + 1
                return key, future, job
        return None

    def _work(self) -> None:
        while True:
            with self._lock:
                found = self._next()
                while found is None:
                    if self._shutdown and not self._queues:
                        return
                    self._lock.wait()
                    found = self._next()
            key, future, job = found
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        result = job()
                    except BaseException as e:
                        future.set_exception(e)
                    else:
                        future.set_result(result)
            finally:
                with self._lock:
                    left = self._running[key] - 1
                    if left:
                        self._running[key] = left
                    else:
                        del self._running[key]
                    self._lock.notify()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                for queue in self._queues.values():
                    for future, _ in queue:
                        future.cancel()
                self._queues.clear()
            self._lock.notify_all()
        if wait:
            for thread in list(self._threads):
                thread.join()
