"""The movable clock of development and demo systems, from outside the
services: `quartier clock` (infra/cli.py) and the demo's history
(infra/demo_meetups.py) share this code.

Every replica of every service listens on `quartier.clock`
(services/runtime/operations.py `CLOCK_SUBJECT`, no queue group) when it runs
on a `ShiftedClock` (services/runtime/clock.py: the system's time plus an
offset, kept in `<data dir>/clock.offset`); a `MoveClock` with the platform
operator's token moves that offset by `seconds` (0: only tell the time) and
each process answers with its `ClockState`. A move carries an id, so a
process that hears it twice (several services in one process share a clock)
moves once. Production services have no movable clock and do not listen:
these functions refuse production before asking anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import msgspec

from services.runtime import operations as ops
from services.runtime.bus import Bus
from services.runtime.settings import Settings

ANSWER_TIMEOUT = 2.0  # seconds to wait for every expected service's answer


class ClockError(Exception):
    """The clock could not be moved: production, no service answered, a
    service refused (a wrong operator token), or the services disagree."""


async def ask_clocks(
    bus: Bus,
    settings: Settings,
    seconds: float = 0.0,
    *,
    expected: Iterable[str] | None = None,
    timeout: float = ANSWER_TIMEOUT,
) -> list[ops.ClockState]:
    """Publish one move of `seconds` (0: only ask the time) and collect the
    answers: until each service of `expected` (default: the settings'
    services) has answered, or `timeout` seconds. Returns every answer heard
    (one per process; errors included), in arrival order. Raises ClockError
    in production (nothing is sent)."""
    if settings.is_prod:
        raise ClockError("the clock cannot be moved in production")
    wanted = set(settings.services if expected is None else expected)
    nc = bus.client
    inbox = nc.new_inbox()
    answers: list[ops.ClockState] = []
    heard = asyncio.Event()

    async def collect(msg: Any) -> None:
        try:
            answers.append(msgspec.json.decode(msg.data, type=ops.ClockState))
        except msgspec.DecodeError:
            return
        if wanted <= {a.service for a in answers}:
            heard.set()

    sub = await nc.subscribe(inbox, cb=collect)
    try:
        await nc.publish(
            ops.CLOCK_SUBJECT,
            msgspec.json.encode(
                ops.MoveClock(
                    credential=settings.operator_token, seconds=seconds, move_id=uuid.uuid4().hex
                )
            ),
            reply=inbox,
        )
        await nc.flush()
        # past the timeout, report who answered: the caller decides
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(heard.wait(), timeout)
    finally:
        await sub.unsubscribe()
    return answers


def _checked(answers: list[ops.ClockState], wanted: set[str]) -> ops.ClockState:
    """One answer that stands for all: ClockError when an expected service
    did not answer or refused, or when their offsets disagree (a relative move
    cannot bring them together)."""
    refused = [a for a in answers if a.error]
    if refused:
        raise ClockError(f"{refused[0].service} refused to move its clock: {refused[0].error}")
    missing = wanted - {a.service for a in answers}
    if missing or not answers:
        raise ClockError(
            f"no clock answer from {', '.join(sorted(missing)) or 'any service'} "
            "(not running, or running on a fixed clock)"
        )
    offsets = {round(a.offset_seconds, 3) for a in answers}
    if len(offsets) > 1:
        raise ClockError(f"the services' clocks disagree (offsets {sorted(offsets)} s)")
    return max(answers, key=lambda a: a.now)


async def move_clock(
    bus: Bus,
    settings: Settings,
    seconds: float,
    *,
    expected: Iterable[str] | None = None,
    timeout: float = ANSWER_TIMEOUT,
) -> ops.ClockState:
    """Move every expected service's clock by `seconds` (0: only ask) and
    return the state they now share: `now` (UTC) and `offset_seconds`.
    Raises ClockError in production, when an expected service did not answer
    or refused, or when their offsets disagree."""
    wanted = set(settings.services if expected is None else expected)
    answers = await ask_clocks(bus, settings, seconds, expected=wanted, timeout=timeout)
    return _checked(answers, wanted)


async def move_to(
    bus: Bus, settings: Settings, target: datetime, *, expected: Iterable[str] | None = None
) -> ops.ClockState:
    """Move the services' clock so that it reads `target` (UTC, aware) now;
    returns their state (`now` a few milliseconds past `target`)."""
    state = await move_clock(bus, settings, 0.0, expected=expected)
    return await move_clock(bus, settings, (target - state.now).total_seconds(), expected=expected)


async def set_offset(
    bus: Bus, settings: Settings, offset: timedelta, *, expected: Iterable[str] | None = None
) -> ops.ClockState:
    """Move the services' clock to `offset` from the system's time: how the
    demo puts the clock back where it found it."""
    state = await move_clock(bus, settings, 0.0, expected=expected)
    delta = offset.total_seconds() - state.offset_seconds
    if abs(delta) < 1e-6:
        return state
    return await move_clock(bus, settings, delta, expected=expected)
