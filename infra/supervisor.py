"""The launcher's children, kept running.

A child that exits without being asked to is restarted after a delay that
doubles with each of its crashes in the last minute (0.5 s, 1 s, 2 s, 4 s by
default); at its fifth crash within a minute the supervisor gives up on it, and
the launcher stops everything. Each child runs in a session of its own (a
Ctrl-C in the terminal reaches only the launcher) and receives SIGTERM when the
launcher dies, however it dies (Linux's PR_SET_PDEATHSIG).

Everything here runs on the event loop of the launcher's main thread: the
parent-death signal is tied to the *thread* that forked the child, so a child
must never be spawned from a worker thread (which would "die" when the pool
retires it).
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services.runtime.logging import get_logger
from services.runtime.settings import ConfigurationError

log = get_logger("quartier.launcher")

# The children's umask: every file they make (SQLite databases with e-mails
# and password hashes, export files, logs) is their owner's only.
PRIVATE_UMASK = 0o077

Probe = Callable[[], Awaitable[bool]]

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@dataclass(frozen=True)
class RestartPolicy:
    """How long to wait before restarting a crashed child, and when to stop trying."""

    first_delay: float = 0.5
    limit: int = 5  # crashes within `window` seconds that make the supervisor give up
    window: float = 60.0

    def delay(self, crashes: int) -> float:
        """The wait after the `crashes`-th crash within the window (1, 2, …)."""
        return self.first_delay * 2 ** (crashes - 1)

    def gives_up(self, crashes: int) -> bool:
        return crashes >= self.limit

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RestartPolicy:
        """`QUARTIER_RESTART_DELAY` sets the first delay (seconds)."""
        value = (os.environ if environ is None else environ).get("QUARTIER_RESTART_DELAY")
        if not value:
            return cls()
        try:
            delay = float(value)
        except ValueError:
            raise ConfigurationError(
                f"QUARTIER_RESTART_DELAY must be a number, not {value!r}"
            ) from None
        if not 0 < delay <= 60:
            raise ConfigurationError("QUARTIER_RESTART_DELAY must be more than 0 and at most 60")
        return cls(first_delay=delay)


@functools.cache
def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that makes the child receive SIGTERM when this process
    (strictly: the calling thread) dies; None where Linux's prctl is missing."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()
    term = int(signal.SIGTERM)

    def preexec() -> None:  # in the forked child, before exec: no logging, no locks
        if prctl(_PR_SET_PDEATHSIG, term, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before prctl: no signal will come
            os._exit(1)

    return preexec


@dataclass
class Child:
    """A command to keep running. `ready` tells when a started process is usable."""

    name: str
    argv: list[str]
    env: Mapping[str, str] | None = None
    output: Path | None = None  # appended to; None: the launcher's own stdout/stderr
    ready: Probe | None = None
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    crashes: deque[float] = field(default_factory=deque)  # recent crash times (monotonic)
    restart_at: float | None = None
    is_ready: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    def __init__(
        self,
        policy: RestartPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        probe_interval: float = 0.2,
    ):
        self.policy = policy or RestartPolicy()
        self.clock = clock
        self.probe_interval = probe_interval
        self.children: dict[str, Child] = {}
        self._probes: set[asyncio.Task[None]] = set()

    # -- starting -----------------------------------------------------------------

    def start(self, child: Child) -> Child:
        """Start a child and keep it running from now on (call on the loop)."""
        self.children[child.name] = child
        self._spawn(child)
        return child

    def _spawn(self, child: Child) -> None:
        child.is_ready.clear()
        out = child.output.open("ab") if child.output else None
        try:
            child.process = subprocess.Popen(
                child.argv,
                env=child.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,  # Ctrl-C in the terminal is for the launcher only
                umask=PRIVATE_UMASK,
                preexec_fn=die_with_parent(),
            )
        finally:
            if out is not None:
                out.close()  # the child holds its own copy
        child.started_at = self.clock()
        child.restart_at = None
        task = asyncio.get_running_loop().create_task(self._announce_ready(child, child.process))
        self._probes.add(task)
        task.add_done_callback(self._probes.discard)

    async def _announce_ready(self, child: Child, process: subprocess.Popen[bytes]) -> None:
        """Set `child.is_ready` once this process of it passes its probe."""
        while process.poll() is None and child.process is process:
            if child.ready is None or await _passes(child.ready):
                if process.poll() is None and child.process is process:
                    child.is_ready.set()
                    log.info(
                        "launcher.process_ready",
                        process=child.name,
                        pid=process.pid,
                        restarts=child.restarts,
                        seconds=round(self.clock() - child.started_at, 2),
                    )
                return
            await asyncio.sleep(self.probe_interval)

    async def wait_ready(self, name: str, timeout: float) -> None:
        """Until the child's current process is ready, across its restarts."""
        child = self.children[name]
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await child.is_ready.wait()
                    if child.running():
                        return
                    await asyncio.sleep(self.probe_interval)  # its crash is about to be noted
        except TimeoutError:
            raise TimeoutError(f"{name} was not ready within {timeout:.0f}s") from None

    # -- watching -----------------------------------------------------------------

    def poll(self) -> Child | None:
        """Note the children that exited, restart those whose delay is over;
        return the child given up on, if any."""
        now = self.clock()
        for child in self.children.values():
            if child.process is not None and child.restart_at is None:
                code = child.process.poll()
                if code is not None and self._crashed(child, code, now):
                    return child
            if child.restart_at is not None and now >= child.restart_at:
                child.restarts += 1
                try:
                    self._spawn(child)
                except OSError as e:
                    log.error("launcher.restart_failed", process=child.name, error=str(e))
                    if self._crashed(child, None, now):
                        return child
                    continue
                log.info(
                    "launcher.process_restarted",
                    process=child.name,
                    pid=child.pid,
                    restarts=child.restarts,
                )
        return None

    def _crashed(self, child: Child, code: int | None, now: float) -> bool:
        """Record a crash and schedule the restart; True if it is one too many."""
        while child.crashes and child.crashes[0] <= now - self.policy.window:
            child.crashes.popleft()
        child.crashes.append(now)
        child.is_ready.clear()
        crashes = len(child.crashes)
        how = _exit_description(code)
        if self.policy.gives_up(crashes):
            log.error(
                "launcher.gave_up",
                process=child.name,
                pid=child.pid,
                **how,
                crashes=crashes,
                window_seconds=self.policy.window,
            )
            child.restart_at = None
            return True
        delay = self.policy.delay(crashes)
        child.restart_at = now + delay
        log.error(
            "launcher.process_crashed",
            process=child.name,
            pid=child.pid,
            **how,
            uptime_seconds=round(now - child.started_at, 2),
            crashes=crashes,
            window_seconds=self.policy.window,
            restart_in_seconds=delay,
        )
        return False

    async def watch(self, interval: float = 0.1) -> Child:
        """Supervise until a child crashes too often; return that child."""
        while True:
            gone = self.poll()
            if gone is not None:
                return gone
            await asyncio.sleep(interval)

    # -- stopping -----------------------------------------------------------------

    async def stop(self, order: Iterable[str], timeout: float = 20.0) -> None:
        """SIGTERM each running child in `order` and wait for it (SIGKILL after
        `timeout`); no restart happens any more. Call once `watch` is over."""
        for task in list(self._probes):
            task.cancel()
        for child in self.children.values():
            child.restart_at = None
        for name in order:
            child = self.children.get(name)
            if child is None or child.process is None:
                continue
            process = child.process
            if process.poll() is not None:
                continue  # crashed, not restarted
            process.send_signal(signal.SIGTERM)
            if not await _exited(process, timeout):
                log.warning("launcher.process_killed", process=name, pid=process.pid)
                process.kill()
                await _exited(process, 5.0)
            log.info(
                "launcher.process_stopped",
                process=name,
                pid=process.pid,
                **_exit_description(process.returncode),
            )


async def _passes(probe: Probe) -> bool:
    try:
        return await probe()
    except Exception:  # a probe that fails says "not yet"
        return False


async def _exited(process: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def _exit_description(code: int | None) -> dict[str, object]:
    if code is None:
        return {}
    if code < 0:
        try:
            return {"signal": signal.Signals(-code).name}
        except ValueError:
            return {"signal": -code}
    return {"exit_code": code}
