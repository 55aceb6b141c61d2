"""The `quartier` CLI's links point at the running system."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from infra import cli
from infra.cli import public_url
from infra.launcher import public_url_file
from services.runtime.clock import ShiftedClock
from services.runtime.errors import InvalidInput
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


@pytest.mark.parametrize("shift", ["-2h", "-16d", "-1.5w"])
def test_a_shift_back_in_time_is_not_taken_for_an_option(shift: str) -> None:
    args = cli.parser().parse_args(cli._negative_shift(["clock", shift]))
    assert (args.command, args.shift) == ("clock", shift)
    # as documented before, with `--`, still works; options are untouched
    assert cli._negative_shift(["clock", "--", shift]) == ["clock", "--", shift]
    assert cli._negative_shift(["stream", "--tenant", "x"]) == ["stream", "--tenant", "x"]


@pytest.mark.parametrize("days", [3661, -3661, 99999999])
def test_the_clock_refuses_to_move_past_its_bound(days: int) -> None:
    clock = ShiftedClock()
    before = clock.now()
    with pytest.raises(InvalidInput, match="at most 3660 days"):
        clock.move("m1", timedelta(days=days))
    assert clock.offset == timedelta(0) and clock.now() >= before  # nothing moved
    # within the bound, step by step, up to it and not past it
    assert clock.move("m2", timedelta(days=3000 if days > 0 else -3000))
    with pytest.raises(InvalidInput):
        clock.move("m3", timedelta(days=700 if days > 0 else -700))
    assert clock.move("m4", timedelta(days=-3000 if days > 0 else 3000))
    assert clock.offset == timedelta(0)
