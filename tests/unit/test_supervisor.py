"""The launcher's supervisor: its back-off and give-up rule, on a fake clock
with real processes that exit at once (the whole launcher is tested in
tests/e2e/test_launcher.py)."""

from __future__ import annotations

import shutil

import pytest

from infra.supervisor import Child, RestartPolicy, Supervisor
from services.runtime.settings import ConfigurationError

TRUE = shutil.which("true") or "/bin/true"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_delay_doubles_and_the_fifth_crash_in_a_minute_gives_up() -> None:
    policy = RestartPolicy()
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert not policy.gives_up(4)
    assert policy.gives_up(5)
    assert policy.window == 60.0


def test_the_first_delay_may_be_set_in_the_environment() -> None:
    assert RestartPolicy.from_env({}) == RestartPolicy()
    assert RestartPolicy.from_env({"QUARTIER_RESTART_DELAY": "0.05"}).delay(3) == 0.2
    for bad in ("soon", "0", "-1", "61"):
        with pytest.raises(ConfigurationError, match="QUARTIER_RESTART_DELAY"):
            RestartPolicy.from_env({"QUARTIER_RESTART_DELAY": bad})


async def test_a_crashing_child_is_restarted_after_its_delay_until_it_crashes_too_often() -> None:
    clock = FakeClock()
    supervisor = Supervisor(RestartPolicy(first_delay=1.0, limit=3, window=10.0), clock=clock)
    child = supervisor.start(Child("quick", [TRUE]))

    def crash_at(t: float) -> Child | None:
        assert child.process is not None
        child.process.wait(timeout=10)
        clock.now = t
        return supervisor.poll()

    try:
        assert crash_at(0.0) is None
        assert child.restart_at == 1.0
        first = child.pid
        clock.now = 0.9
        assert supervisor.poll() is None and child.pid == first  # not before its delay
        clock.now = 1.0
        assert supervisor.poll() is None and child.pid != first and child.restarts == 1

        assert crash_at(1.5) is None
        assert child.restart_at == 3.5  # twice the first delay
        clock.now = 3.5
        supervisor.poll()
        # crashes older than the window are forgiven: the delay starts over
        assert crash_at(20.0) is None
        assert list(child.crashes) == [20.0]
        assert child.restart_at == 21.0
        clock.now = 21.0
        supervisor.poll()
        assert crash_at(21.0) is None
        clock.now = 23.0
        supervisor.poll()
        assert child.restarts == 4
        # the third crash within ten seconds: given up, no restart planned
        assert crash_at(23.0) is child
        assert child.restart_at is None
        assert len(child.crashes) == 3
    finally:
        await supervisor.stop([child.name])
