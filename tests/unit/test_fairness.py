"""The fair queue (services.runtime.fairness): turns go round the tenants,
each tenant is bounded, a cancelled waiter frees its place; the gateway's
budgets use the queue, the services' `Offloader` the pool. Functional only: no timing."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from gateway.budgets import Budgets, Limits, Refused
from services.runtime.bus import Offloader
from services.runtime.fairness import FairExecutor, FairQueue, QueueFull
from services.runtime.messages import Actor
from services.runtime.tenancy import RequestContext, current, request_scope


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_busy_tenants_backlog_never_sits_ahead_of_another_tenant() -> None:
    queue = FairQueue(1)
    order: list[str] = []
    gate = asyncio.Event()

    async def work(key: str, label: str) -> None:
        async with queue.turn(key):
            order.append(label)
            await gate.wait()

    first = asyncio.create_task(work("busy", "busy-0"))
    await settle()
    backlog = [asyncio.create_task(work("busy", f"busy-{i}")) for i in range(1, 6)]
    await settle()
    quiet = asyncio.create_task(work("quiet", "quiet-0"))
    await settle()
    assert order == ["busy-0"]  # one turn, held
    assert queue.waiters("busy") == 5 and queue.waiters("quiet") == 1
    gate.set()
    await asyncio.gather(first, *backlog, quiet)
    # the quiet tenant's one request waited for one busy turn, not for the backlog
    assert order == ["busy-0", "busy-1", "quiet-0", "busy-2", "busy-3", "busy-4", "busy-5"]


async def test_turns_alternate_between_tenants_in_arrival_order_within_each() -> None:
    queue = FairQueue(1)
    order: list[str] = []
    hold = asyncio.Event()

    async def work(key: str, label: str) -> None:
        async with queue.turn(key):
            order.append(label)
            await hold.wait()

    blocker = asyncio.create_task(work("x", "x-blocker"))
    await settle()
    tasks = []
    for i in range(3):
        tasks.append(asyncio.create_task(work("a", f"a{i}")))
        await settle()
    for i in range(3):
        tasks.append(asyncio.create_task(work("b", f"b{i}")))
        await settle()
    tasks.append(asyncio.create_task(work("c", "c0")))
    await settle()
    hold.set()
    await asyncio.gather(blocker, *tasks)
    assert order == ["x-blocker", "a0", "b0", "c0", "a1", "b1", "a2", "b2"]


async def test_a_tenant_holds_at_most_its_share_and_others_run_meanwhile() -> None:
    queue = FairQueue(4, per_key=2)
    release = asyncio.Event()
    running: list[str] = []

    async def work(key: str) -> None:
        async with queue.turn(key):
            running.append(key)
            await release.wait()

    busy = [asyncio.create_task(work("busy")) for _ in range(5)]
    await settle()
    assert running == ["busy", "busy"] and queue.waiters("busy") == 3
    quiet = asyncio.create_task(work("quiet"))
    await settle()
    assert running.count("quiet") == 1  # a free turn, not behind the busy tenant's queue
    release.set()
    await asyncio.gather(*busy, quiet)
    assert queue.total == 0 and not queue.running and not queue.waiting


async def test_a_tenant_waiting_past_its_bound_is_refused_at_once() -> None:
    queue = FairQueue(1, max_waiting=2)
    release = asyncio.Event()

    async def work(key: str) -> None:
        async with queue.turn(key):
            await release.wait()

    held = asyncio.create_task(work("busy"))
    await settle()
    waiting = [asyncio.create_task(work("busy")) for _ in range(2)]
    await settle()
    with pytest.raises(QueueFull):
        await queue.acquire("busy")
    assert queue.waiters("busy") == 2  # the refusal took no place
    other = asyncio.create_task(work("quiet"))  # another tenant still queues
    await settle()
    assert queue.waiters("quiet") == 1
    release.set()
    await asyncio.gather(held, *waiting, other)


async def test_a_cancelled_waiter_leaves_the_queue_and_frees_its_place() -> None:
    queue = FairQueue(1, max_waiting=1)
    release = asyncio.Event()
    got: list[str] = []

    async def work(key: str, label: str) -> None:
        async with queue.turn(key):
            got.append(label)
            await release.wait()

    held = asyncio.create_task(work("a", "held"))
    await settle()
    gone = asyncio.create_task(work("a", "gone"))
    await settle()
    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)
    assert queue.waiters("a") == 0
    after = asyncio.create_task(work("a", "after"))  # the bound has room again
    await settle()
    assert queue.waiters("a") == 1
    release.set()
    await asyncio.gather(held, after)
    assert got == ["held", "after"]
    assert queue.total == 0


async def test_a_turn_granted_to_a_cancelled_waiter_goes_to_the_next() -> None:
    queue = FairQueue(1)
    got: list[str] = []
    await queue.acquire("a")
    granted_then_cancelled = asyncio.create_task(queue.acquire("b"))
    nxt = asyncio.create_task(queue.acquire("c"))
    await settle()
    queue.release("a")  # grants b's future...
    granted_then_cancelled.cancel()  # ...which is cancelled before it resumes
    await asyncio.gather(granted_then_cancelled, return_exceptions=True)
    await nxt
    got.append("c")
    assert queue.running == {"c": 1} and queue.total == 1
    queue.release("c")
    assert queue.total == 0 and not queue.running


async def test_an_exception_in_a_turn_frees_it() -> None:
    queue = FairQueue(1)
    with pytest.raises(RuntimeError):
        async with queue.turn("a"):
            raise RuntimeError("boom")
    assert queue.total == 0
    async with queue.turn("b"):
        assert queue.running == {"b": 1}


async def test_the_gateway_refuses_a_network_whose_queue_is_full_with_429() -> None:
    budgets = Budgets(Limits(tenant_concurrency=1, concurrency=2, tenant_queue=1))
    release = asyncio.Event()

    async def operation(tenant: str) -> None:
        async with budgets.turn(tenant):
            await release.wait()

    running = asyncio.create_task(operation("t1"))
    await settle()
    queued = asyncio.create_task(operation("t1"))
    await settle()
    with pytest.raises(Refused) as refused:
        async with budgets.turn("t1"):
            pass
    assert refused.value.retry_after >= 1
    other = asyncio.create_task(operation("t2"))  # another network runs meanwhile
    await settle()
    assert budgets.turns.running == {"t1": 1, "t2": 1}
    release.set()
    await asyncio.gather(running, queued, other)
    assert budgets.turns.total == 0


# -- the services' thread pool -------------------------------------------------------


def test_pool_jobs_go_round_the_tenants_and_a_backlog_never_sits_ahead() -> None:
    pool = FairExecutor(1, "test-fair")
    gate = threading.Event()
    order: list[str] = []
    try:
        running = threading.Event()

        def hold() -> None:
            running.set()
            gate.wait()

        first = pool.submit_keyed("busy", hold)
        assert running.wait(30)
        backlog = [pool.submit_keyed("busy", order.append, f"busy-{i}") for i in range(1, 4)]
        quiet = pool.submit_keyed("quiet", order.append, "quiet-0")
        other = pool.submit_keyed("other", order.append, "other-0")
        gate.set()
        for f in (first, *backlog, quiet, other):
            f.result(timeout=30)
        # the quiet and other tenants waited for one busy job each, not the backlog
        assert order == ["busy-1", "quiet-0", "other-0", "busy-2", "busy-3"]
    finally:
        gate.set()
        pool.shutdown()


def test_pool_keeps_a_worker_for_other_tenants() -> None:
    pool = FairExecutor(3, "test-fair", per_key=2)  # one tenant: at most 2 of the 3
    release = threading.Event()
    started: list[str] = []
    lock = threading.Lock()

    def hold(label: str) -> None:
        with lock:
            started.append(label)
        release.wait()

    try:
        busy = [pool.submit_keyed("busy", hold, f"busy-{i}") for i in range(4)]
        quiet = pool.submit_keyed("quiet", hold, "quiet")
        assert _until(lambda: len(started) == 3)
        assert sorted(started) == ["busy-0", "busy-1", "quiet"]  # the quiet one got the third
        release.set()
        for f in (*busy, quiet):
            f.result(timeout=30)
        assert len(started) == 5
    finally:
        release.set()
        pool.shutdown()


def test_pool_a_cancelled_job_never_runs_and_frees_its_place() -> None:
    pool = FairExecutor(1, "test-fair")
    gate = threading.Event()
    ran: list[str] = []
    try:
        held = pool.submit_keyed("a", gate.wait)
        gone = pool.submit_keyed("a", ran.append, "gone")
        assert gone.cancel()
        after = pool.submit_keyed("a", ran.append, "after")
        gate.set()
        held.result(timeout=30)
        after.result(timeout=30)
        assert ran == ["after"]
        with pytest.raises(ValueError):
            pool.submit_keyed("a", int, "x").result(timeout=30)  # an error is the job's
        assert pool.submit_keyed("a", int, "7").result(timeout=30) == 7  # the worker lives on
    finally:
        gate.set()
        pool.shutdown()


async def test_offloaded_work_runs_in_its_tenants_turn_with_its_context() -> None:
    offload = Offloader(2, "test-fair")
    try:
        for tenant in ("t1", "t2"):
            ctx = RequestContext(tenant_id=tenant, actor=Actor(kind="member", member_id="m"))
            with request_scope(ctx):
                assert await offload(lambda: current().tenant_id) == tenant
        assert _until(lambda: not offload.executor._running)  # every turn given back
    finally:
        offload.shutdown()


def _until(condition: Callable[[], bool]) -> bool:
    """Wait for a condition other threads make true (a bounded wait, not a
    timing threshold: it fails only if it never happens)."""
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False
