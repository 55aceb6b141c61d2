"""A cluster's list of servers in QUARTIER_NATS_URL: processes start when
any listed server answers, say in one line when none does or the list is
malformed, and stop on SIGTERM while they wait (services/runtime/bus.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from infra import nats_auth
from infra.nats_server import NatsServer, free_port, start_nats_server
from services import registry
from services.runtime.bus import Bus
from services.runtime.errors import Unavailable
from services.runtime.logging import configure_logging
from services.runtime.mail_drop import mail_drop
from services.runtime.settings import ConfigurationError, NatsCredentials, Settings
from services.runtime.stream import STREAM, ensure_stream
from tests.support.waiting import wait_until

ROOT = Path(__file__).parents[2]


@pytest.fixture(autouse=True)
def logging_to_stderr() -> None:
    """These tests log warnings while NATS is unreachable: onto the real
    stderr, whatever an earlier test configured (a CLI test leaves logging
    on its captured, closed, stderr)."""
    configure_logging("console", os.environ.get("QUARTIER_TEST_LOG_LEVEL", "warning"))


def down() -> str:
    return f"nats://127.0.0.1:{free_port()}"  # nothing listens there


async def test_credentials_work_with_a_list_whose_first_server_is_down(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_nats_server(tmp_path / "nats", config=nats_auth.write_server_config(data_dir))
    try:
        found = nats_auth.credentials(data_dir, "hubs")
        assert found is not None
        url = f"{down()},{server.url},{down()}"
        bus = Bus(url, "test-hubs", credentials=found)
        await bus.connect(wait=10)
        try:
            assert bus.is_connected
            await ensure_stream(bus.jetstream(), replicas=1)  # what hubs' user may do
            assert (await bus.jetstream().stream_info(STREAM)).config.name == STREAM
        finally:
            await bus.close()
        wrong = Bus(url, "test-hubs", credentials=NatsCredentials("hubs", "not-the-password"))
        with pytest.raises(Unavailable, match="refused the connection \\(user 'hubs'\\)"):
            await wrong.connect(wait=10)
    finally:
        server.stop()


async def test_no_server_answering_is_one_clear_error() -> None:
    first, second = down(), down()
    bus = Bus(f"nats://u:hunter2@{first[7:]},nats://u:hunter2@{second[7:]}", "test")
    started = time.monotonic()
    with pytest.raises(Unavailable) as caught:
        await bus.connect(wait=1.5)
    assert time.monotonic() - started < 10  # it gave up; no hang
    message = caught.value.message
    assert message.startswith("cannot reach NATS at nats://u:***@127.0.0.1:")
    assert "no server answered within 1.5 s" in message
    assert "hunter2" not in message and "\n" not in message
    assert not bus.is_connected


async def test_a_signal_handled_outside_asyncio_stops_the_wait(nats_server: NatsServer) -> None:
    """As under uvicorn, whose handler only asks the server to exit: the
    wait for NATS ends, the handler still runs, and is put back after."""
    heard: list[int] = []

    def uvicorn_like(signum: int, frame: Any) -> None:
        heard.append(signum)

    previous = signal.signal(signal.SIGTERM, uvicorn_like)
    try:
        bus = Bus(f"{down()},{down()}", "test")
        loop = asyncio.get_running_loop()
        timer = loop.call_later(0.5, os.kill, os.getpid(), signal.SIGTERM)
        try:
            with pytest.raises(Unavailable, match="stopped by a signal while waiting for NATS"):
                await asyncio.wait_for(bus.connect(wait=None), 30)
        finally:
            timer.cancel()  # never a SIGTERM after the handler is put back
        assert heard == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is uvicorn_like
        # connected, nothing is left hooked: the next connection is normal
        live = Bus(nats_server.url, "test")
        await live.connect(wait=5)
        await live.close()
        assert signal.getsignal(signal.SIGTERM) is uvicorn_like
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(module: str, url: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("QUARTIER_")},
        "QUARTIER_ENV": "test",
        "QUARTIER_DATA_DIR": str(tmp_path),
        "QUARTIER_NATS_URL": url,
        "QUARTIER_HTTP_PORT": str(free_port()),
    }
    return subprocess.Popen(
        [sys.executable, "-m", module],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / f"{module}.log").open("wb"),
    )


@pytest.mark.parametrize(
    ("module", "url"),
    [
        ("services.hubs", "nats://a:4222,http://b:4222"),
        ("services.hubs", "nats://a:4222,nats://b:x"),
        ("gateway", "nats://a:4222,nats://b:x"),
    ],
)
def test_a_process_refuses_a_malformed_list_in_one_line(
    module: str, url: str, tmp_path: Path
) -> None:
    process = run(module, url, tmp_path)
    assert process.wait(timeout=60) == 2  # the gateway's imports are slow on a loaded machine
    err = (tmp_path / f"{module}.log").read_text()
    name = "hubs" if module == "services.hubs" else "gateway"
    assert err.startswith(f"quartier-{name}: configuration error: QUARTIER_NATS_URL: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.parametrize("module", ["services.hubs", "gateway"])
def test_sigterm_while_waiting_for_a_list_of_servers_stops_the_process(
    module: str, tmp_path: Path
) -> None:
    process = run(module, f"{down()},{down()}", tmp_path)
    log = tmp_path / f"{module}.log"
    try:
        wait_until(lambda: "nats.unreachable" in log.read_text(), 30, "waiting for NATS")
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    # both stop cleanly: exit status 0, no traceback (the gateway used to
    # wait through every SIGTERM, then print its failed start-up's traceback)
    assert code == 0
    assert "Traceback" not in log.read_text()


# -- replicas share one mail drop -----------------------------------------------------------


async def test_replicas_must_share_their_mail_drop(
    sqlite_settings: Settings, client_bus: Bus, tmp_path: Path
) -> None:
    """`quartier up --replicas N` asks every replica which mail drop it
    writes to (its ping answer) and refuses replicas that disagree."""
    from infra.launcher import Launcher

    shared = sqlite_settings.with_(mail_dir=tmp_path / "shared-mail")
    first = registry.spec("identity").builder()(shared)
    second = registry.spec("identity").builder()(shared)
    apart = registry.spec("identity").builder()(
        sqlite_settings.with_(mail_dir=tmp_path / "own-mail")
    )
    launcher = Launcher(sqlite_settings.with_(services=("identity",)), demo=False, replicas=2)
    launcher.bus = client_bus
    try:
        await first.start()
        await second.start()
        answers = await client_bus.ping_all("identity", 2)
        assert len(answers) == 2
        assert answers[0]["mail_drop"] == answers[1]["mail_drop"] == mail_drop(shared)
        await launcher._check_mail_drop()  # agreeing: nothing to say

        await second.stop()
        await apart.start()
        with pytest.raises(ConfigurationError, match="the replicas of identity do not share"):
            await launcher._check_mail_drop()
    finally:
        for host in (first, second, apart):
            await host.stop()


def test_a_mail_drop_is_named_by_what_replicas_share(tmp_path: Path) -> None:
    base = Settings(mail_dir=tmp_path / "mail")
    assert mail_drop(base) == mail_drop(base)  # kept in the directory
    assert mail_drop(base).startswith("dir:")
    assert mail_drop(base) != mail_drop(base.with_(mail_dir=tmp_path / "other"))
    smtp = base.with_(smtp_url="smtp://user:secret@mail.example.org:587")
    assert mail_drop(smtp) == "smtp://mail.example.org"  # no credentials
