"""What the browser tests and the screenshot script share: a `quartier up
--demo` system in its own process group (as a user runs it, on a fresh data
dir and a free port), Debian's chromium found on the PATH, and signing in to
the console.

Playwright drives the system's chromium through `executable_path`; it never
downloads a browser of its own (`.ci/run` installs Debian's `chromium` when
it is missing)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from infra.demo import ADMIN_EMAIL, PASSWORD, SLUG
from infra.nats_server import free_port
from tests.support.waiting import wait_until

START_DEADLINE = 240.0  # the demo writes five weeks of history; a busy CI machine is slow
STOP_DEADLINE = 30.0
RATE_LIMIT_RETRIES = 5
CHROMIUM_NAMES = ("chromium", "chromium-browser")
# Chromium as root (CI) needs --no-sandbox; /dev/shm may be small in containers.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 860}


def chromium_path() -> str | None:
    """The system's chromium (`QUARTIER_CHROMIUM` names another), or None."""
    named = os.environ.get("QUARTIER_CHROMIUM")
    if named:
        return named if Path(named).exists() else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def quartier(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("quartier")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "infra.cli", *args]


def _environment(data_dir: Path) -> dict[str, str]:
    """The user's environment without the test run's QUARTIER_* (another
    terminal), on the data dir; cheap argon2 (QUARTIER_ENV=test)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUARTIER_")}
    env.update(QUARTIER_DATA_DIR=str(data_dir), QUARTIER_ENV="test", PYTHONUNBUFFERED="1")
    return env


@dataclass
class DemoSystem:
    data_dir: Path
    port: int
    stdout_path: Path
    stderr_path: Path
    process: subprocess.Popen[bytes] | None = None  # None: attached, not ours to stop

    @classmethod
    def start(cls, root: Path) -> DemoSystem:
        data_dir = root / "data"
        port = free_port()
        stdout_path, stderr_path = root / "up.stdout", root / "up.stderr"
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            process = subprocess.Popen(
                quartier("up", "--demo"),
                env={**_environment(data_dir), "QUARTIER_HTTP_PORT": str(port)},
                cwd=root,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own process group, as in a terminal
            )
        system = cls(data_dir, port, stdout_path, stderr_path, process)
        try:
            system.wait_running()
        except BaseException:
            system.stop()
            raise
        return system

    @classmethod
    def attach(cls, spec: str) -> DemoSystem:
        """A system already running: `<data dir>:<port>` (never stopped here)."""
        data_dir, port = spec.rsplit(":", 1)
        root = Path(data_dir).parent
        return cls(Path(data_dir), int(port), root / "out.log", root / "err.log")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def console_url(self) -> str:
        return f"{self.base_url}/console/"

    def output(self) -> str:
        out = self.stdout_path.read_text(errors="replace")
        err = self.stderr_path.read_text(errors="replace")
        return f"--- stdout\n{out}\n--- stderr (end)\n{err[-4000:]}"

    def wait_running(self) -> None:
        """Until the banner is out (the demo is loaded) and /health/ready says so."""

        assert self.process is not None

        def running() -> bool:
            assert self.process is not None
            code = self.process.poll()
            if code is not None:
                raise AssertionError(f"`quartier up --demo` exited with {code}\n{self.output()}")
            if "Quartier is running" not in self.stdout_path.read_text(errors="replace"):
                return False
            try:
                return httpx.get(f"{self.base_url}/health/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_until(running, START_DEADLINE, "the demo system running", interval=0.25)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.output()}") from None

    def stop(self) -> None:
        """Ctrl-C to the process group, as a terminal sends it; SIGKILL if it hangs."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    # -- talking to it directly (to check what the console did) -------------------

    def graphql(self, query: str, token: str | None = None, **variables: Any) -> dict[str, Any]:
        """The data of an operation sent directly (to check what the console
        did). The tests' own questions count against the same member's cost
        budget as the console's: over it, the answer says when to ask again
        (`retryAfter`), and it is asked again then, a few times at most."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        for _ in range(RATE_LIMIT_RETRIES):
            response = httpx.post(
                f"{self.base_url}/graphql",
                json={"query": query, "variables": variables},
                headers=headers,
                timeout=30,
            )
            body = response.json()
            errors = body.get("errors") or []
            limited = [e for e in errors if e.get("extensions", {}).get("code") == "RATE_LIMITED"]
            if not limited:
                break
            time.sleep(float(limited[0]["extensions"].get("retryAfter", 1)))
        assert not body.get("errors"), body
        data: dict[str, Any] = body["data"]
        return data

    def token(self, email: str = ADMIN_EMAIL) -> str:
        data = self.graphql(
            "mutation L($input: LoginInput!) { login(input: $input) {"
            " ... on AuthPayload { accessToken } ... on Error { code message } } }",
            input={"tenant": SLUG, "email": email, "password": PASSWORD},
        )
        token: str = data["login"]["accessToken"]
        return token

    def clock(self, *shift: str) -> datetime:
        """`quartier clock [shift]`: the services' time (after the shift)."""
        result = subprocess.run(
            quartier("clock", *shift),
            env=_environment(self.data_dir),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        found = re.search(r": (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", result.stdout)
        assert found is not None, result.stdout
        return datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)

    def move_clock_to(self, at: datetime) -> None:
        """Move the services' clocks forward to about `at` (a minute's precision)."""
        minutes = int((at - self.clock()).total_seconds() // 60)
        if minutes > 0:
            self.clock(f"+{minutes}m")


def sign_in(page: Any, base: str, email: str = ADMIN_EMAIL, password: str = PASSWORD) -> None:
    """Sign in to the console on `page` (a Playwright page) as a member of the demo."""
    page.goto(f"{base}/console/")
    page.locator("#tenant").fill(SLUG)
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    page.locator("form button[type=submit]").click()
    page.locator("nav.nav").wait_for()
