"""`quartier up --nats-cluster N --replicas N`: what the launcher will run,
and the options it refuses (infra/launcher.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.cli import main
from infra.launcher import Launcher
from infra.nats_server import cluster_node_args
from services.runtime.logging import configure_logging
from services.runtime.settings import ConfigurationError, Settings, nats_servers


def settings(tmp_path: Path, **extra: str) -> Settings:
    return Settings.from_env(
        {
            "QUARTIER_ENV": "test",
            "QUARTIER_DATA_DIR": str(tmp_path),
            "QUARTIER_HTTP_PORT": "8100",
            **extra,
        }
    )


def test_replicas_and_a_cluster(tmp_path: Path) -> None:
    launcher = Launcher(settings(tmp_path), demo=False, nats_cluster=3, replicas=2)
    assert launcher.names("hubs") == ["hubs-1", "hubs-2"]
    assert launcher.names("gateway") == ["gateway-1", "gateway-2"]
    assert launcher.gateway_ports() == [8100, 8101]
    assert [n.name for n in launcher.nats_nodes] == ["quartier-1", "quartier-2", "quartier-3"]
    assert nats_servers(launcher.nats_url) == [n.url for n in launcher.nats_nodes]
    env = launcher._env("hubs")
    assert env["QUARTIER_STREAM_REPLICAS"] == "3"
    assert env["QUARTIER_NATS_URL"] == launcher.nats_url
    # each node routes to the two others, under its own name
    first, *others = launcher.nats_nodes
    args = cluster_node_args(first, launcher.nats_nodes, tmp_path / "n1")
    assert args[args.index("--name") + 1] == "quartier-1"
    routes = args[args.index("--routes") + 1].split(",")
    assert routes == [f"nats://127.0.0.1:{n.route_port}" for n in others]


def test_one_of_each_keeps_the_names_of_before(tmp_path: Path) -> None:
    launcher = Launcher(settings(tmp_path), demo=False)
    assert launcher.names("hubs") == ["hubs"]
    assert launcher.names("gateway") == ["gateway"]
    assert launcher.nats_nodes == []


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"replicas": 0}, "at least 1"),
        ({"nats_cluster": 0}, "at least 1"),
        ({"nats_cluster": -3}, "at least 1"),
    ],
)
def test_nonsense_is_refused(tmp_path: Path, options: dict[str, int], says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        Launcher(settings(tmp_path), demo=False, **options)


def test_a_cluster_of_its_own_needs_no_external_nats(tmp_path: Path) -> None:
    external = settings(tmp_path, QUARTIER_NATS_URL="nats://a:4222,nats://b:4222")
    with pytest.raises(ConfigurationError, match="unset QUARTIER_NATS_URL"):
        Launcher(external, demo=False, nats_cluster=3)
    assert Launcher(external, demo=False, replicas=2).nats_url == "nats://a:4222,nats://b:4222"


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """`quartier up` configures logging onto the stderr of the moment (the
    test's captured one): the next tests must log to the real one again."""
    yield
    configure_logging("console", os.environ.get("QUARTIER_TEST_LOG_LEVEL", "warning"))


def test_the_command_line_says_so_in_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    logging_restored: None,
) -> None:
    monkeypatch.setenv("QUARTIER_ENV", "test")
    monkeypatch.setenv("QUARTIER_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("QUARTIER_NATS_URL", raising=False)
    assert main(["up", "--replicas", "0"]) == 2
    err = capsys.readouterr().err
    assert err == "configuration error: --nats-cluster and --replicas must be at least 1\n"
    with pytest.raises(SystemExit) as exited:  # argparse: not a number
        main(["up", "--nats-cluster", "three"])
    assert exited.value.code == 2
    monkeypatch.setenv("QUARTIER_NATS_URL", "nats://a:4222,tcp://b:4222")
    assert main(["up"]) == 2
    assert "QUARTIER_NATS_URL: 'tcp://b:4222' is not a NATS server URL" in capsys.readouterr().err
