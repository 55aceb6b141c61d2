"""The `quartier` CLI's links point at the running system."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra import cli
from infra.cli import public_url
from infra.launcher import public_url_file
from services.runtime.settings import Settings


def test_links_use_the_environment_then_the_running_system_then_the_default(
    tmp_path: Path,
) -> None:
    env = {"QUARTIER_ENV": "test", "QUARTIER_DATA_DIR": str(tmp_path)}
    settings = Settings.from_env(env)
    assert public_url(settings, env) == "http://127.0.0.1:8000"
    # what `quartier up` on another port wrote
    public_url_file(settings).write_text("http://127.0.0.1:8123\n")
    assert public_url(settings, env) == "http://127.0.0.1:8123"
    chosen = {**env, "QUARTIER_PUBLIC_URL": "https://quartier.example"}
    assert public_url(Settings.from_env(chosen), chosen) == "https://quartier.example"


def test_durations() -> None:
    assert cli.parse_duration("+8d") == 8 * 86400
    assert cli.parse_duration("-2h") == -7200
    assert cli.parse_duration("30m") == 1800
    assert cli.parse_duration("1.5w") == 1.5 * 7 * 86400
    for bad in ("", "8", "+d", "8 days", "8y"):
        with pytest.raises(ValueError):
            cli.parse_duration(bad)
