"""`quartier up`'s banner names every gateway it started (infra/launcher.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra import launcher as launcher_module
from infra.launcher import Launcher
from services.runtime.settings import Settings


@pytest.mark.parametrize("replicas", [1, 3])
def test_the_banner_names_every_gateway(
    replicas: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings.from_env(
        {
            "QUARTIER_ENV": "test",
            "QUARTIER_DATA_DIR": str(tmp_path),
            "QUARTIER_HTTP_PORT": "8100",
            "QUARTIER_NATS_URL": "nats://127.0.0.1:4222",
        }
    )
    launcher_module._banner(Launcher(settings, demo=False, replicas=replicas))
    out = capsys.readouterr().out
    ports = range(8100, 8100 + replicas)
    graphql = [line.split()[-1] for line in out.splitlines() if line.endswith("/graphql")]
    ready = [line.split()[-1] for line in out.splitlines() if line.endswith("/health/ready")]
    assert graphql == [f"http://{settings.http_host}:{p}/graphql" for p in ports]
    assert ready == [f"http://{settings.http_host}:{p}/health/ready" for p in ports]
