"""The background jobs' loop (services/runtime/wakeup.py `run_rounds`): a
failed round, or a failure while looking for the next deadline, never ends
the job; it tries again soon, and a deadline it could not meet is not
retried in a busy loop."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from services.runtime import wakeup
from services.runtime.wakeup import Wakeup, run_rounds
from tests.support.waiting import eventually


def now() -> datetime:
    return datetime.now(UTC)


@pytest.mark.parametrize("failing", ["round", "next deadline"])
async def test_a_failure_does_not_end_the_job(
    failing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wakeup, "RETRY_INTERVAL", 0.05)
    rounds: list[int] = []
    failures = 3

    async def round_() -> None:
        rounds.append(len(rounds))
        if failing == "round" and len(rounds) <= failures:
            raise ConnectionError("too many clients already")

    async def next_at() -> datetime | None:
        if failing == "next deadline" and len(rounds) <= failures:
            raise ConnectionError("too many clients already")
        return None

    stopping = asyncio.Event()
    # the poll interval is far away: only the retries bring the rounds
    job = asyncio.create_task(run_rounds("t", stopping, Wakeup(), round_, next_at, now, 3600))
    await eventually(lambda: len(rounds) > failures)
    stopping.set()
    await asyncio.wait_for(job, 5)
    assert len(rounds) == failures + 1  # three failed, one succeeded, then it slept


class RecordingWakeup(Wakeup):
    """A wake-up that records how long the loop asks to sleep, then wakes it."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[float] = []

    async def wait(self, stopping: asyncio.Event, timeout: float) -> None:
        self.timeouts.append(timeout)
        await asyncio.sleep(0)


@pytest.mark.parametrize(
    ("due_in", "expected"),
    [
        (timedelta(minutes=-1), wakeup.RETRY_INTERVAL),  # due, not done: retried, no spinning
        (timedelta(seconds=30), 30.0),  # the next deadline
        (timedelta(hours=2), 3600.0),  # the poll interval at most
    ],
)
async def test_the_job_sleeps_until_its_next_deadline(due_in: timedelta, expected: float) -> None:
    fixed = now()

    async def round_() -> None:
        return None

    async def next_at() -> datetime | None:
        return fixed + due_in

    stopping, wake = asyncio.Event(), RecordingWakeup()
    job = asyncio.create_task(run_rounds("t", stopping, wake, round_, next_at, lambda: fixed, 3600))
    await eventually(lambda: len(wake.timeouts) >= 2)
    stopping.set()
    await asyncio.wait_for(job, 5)
    assert wake.timeouts[0] == pytest.approx(expected)


async def test_a_wakeup_runs_a_round_at_once() -> None:
    rounds: list[int] = []

    async def round_() -> None:
        rounds.append(1)

    async def next_at() -> datetime | None:
        return None

    stopping, wake = asyncio.Event(), Wakeup()
    job = asyncio.create_task(run_rounds("t", stopping, wake, round_, next_at, now, 3600))
    await eventually(lambda: len(rounds) == 1)
    wake.set_threadsafe()
    await eventually(lambda: len(rounds) == 2)
    stopping.set()
    await asyncio.wait_for(job, 5)
