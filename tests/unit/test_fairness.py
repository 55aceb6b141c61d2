"""The fair queue (services.runtime.fairness): turns go round the tenants,
each tenant is bounded, a cancelled waiter frees its place; the gateway's
budgets and the services' offloaded work use it. Functional only: no timing."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from gateway.budgets import Budgets, Limits, Refused
from services.runtime.bus import Offloader
from services.runtime.fairness import FairQueue, QueueFull
from services.runtime.messages import Actor
from services.runtime.tenancy import RequestContext, request_scope


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


async def test_offloaded_work_takes_its_tenants_turn() -> None:
    offload = Offloader(1, "test-fair")
    seen: list[str | None] = []
    try:
        for tenant in ("t1", "t2"):
            ctx = RequestContext(tenant_id=tenant, actor=Actor(kind="member", member_id="m"))
            with request_scope(ctx):
                await offload(lambda: seen.append(contextvars.copy_context().run(tenant_of)))
        assert seen == ["t1", "t2"]
        assert offload.turns.total == 0
    finally:
        offload.shutdown()


def tenant_of() -> str | None:
    from services.runtime.tenancy import current

    return current().tenant_id
