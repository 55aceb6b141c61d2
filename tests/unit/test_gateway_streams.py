"""Following event streams open at once (`gateway.budgets.OpenStreams`): at
most so many of one network and of one caller, each given back once when
its response ends; a refusal says when to come back."""

from __future__ import annotations

import pytest

from gateway.budgets import FOLLOW_RETRY_SECONDS, OpenStreams, Refused
from services.runtime.settings import ConfigurationError, Settings
from tests.unit.test_auth_and_settings import SECRETS


def test_a_caller_is_bounded_below_its_network() -> None:
    streams = OpenStreams(per_tenant=4)  # a quarter each: 1
    first = streams.open("t", "key:a")
    with pytest.raises(Refused) as refused:
        streams.open("t", "key:a")
    assert refused.value.retry_after == FOLLOW_RETRY_SECONDS
    assert "per key or member" in refused.value.message
    first()
    streams.open("t", "key:a")  # given back: open again


def test_a_network_is_bounded_whoever_its_callers() -> None:
    streams = OpenStreams(per_tenant=3, per_caller=2)
    opened = [streams.open("t", who) for who in ("key:a", "key:a", "member:m")]
    with pytest.raises(Refused) as refused:
        streams.open("t", "key:b")
    assert "QUARTIER_STREAM_FOLLOWS" in refused.value.message
    streams.open("other", "key:c")  # another network is not counted with it
    opened[0]()
    streams.open("t", "key:b")


def test_a_release_counts_once_and_counts_are_forgotten_at_zero() -> None:
    streams = OpenStreams(per_tenant=2, per_caller=1)
    release = streams.open("t", "key:a")
    release()
    release()  # twice: still one given back
    assert streams.counts == {}
    streams.open("t", "key:a")
    with pytest.raises(Refused):
        streams.open("t", "key:a")


@pytest.mark.parametrize(("per_tenant", "per_caller"), [(1, 1), (4, 1), (5, 2), (20, 5)])
def test_the_default_share_of_a_caller(per_tenant: int, per_caller: int) -> None:
    assert OpenStreams(per_tenant).per_caller == per_caller


def test_the_setting_and_the_gateway_s_counter() -> None:
    assert Settings.from_env(dict(SECRETS)).stream_follows == 20
    settings = Settings.from_env({**SECRETS, "QUARTIER_STREAM_FOLLOWS": "8"})
    assert settings.stream_follows == 8
    # (the gateway's counter from it: tests/e2e/test_event_stream_limits.py)


@pytest.mark.parametrize("value", ["0", "-1", "many", "1.5"])
def test_a_bad_setting_is_refused_at_start_up(value: str) -> None:
    with pytest.raises(ConfigurationError, match="QUARTIER_STREAM_FOLLOWS"):
        Settings.from_env({**SECRETS, "QUARTIER_STREAM_FOLLOWS": value})
