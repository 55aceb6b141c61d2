"""QUARTIER_NATS_URL: one server or a cluster's list, checked before any
connection (services/runtime/settings.py `nats_servers`)."""

from __future__ import annotations

import pytest

from services.runtime.bus import Bus
from services.runtime.settings import ConfigurationError, Settings, nats_servers, redact_url

BASE = {
    "QUARTIER_ENV": "test",
    "QUARTIER_JWT_SECRET": "s" * 16 + "t" * 16,
    "QUARTIER_OPERATOR_TOKEN": "operator",
}


@pytest.mark.parametrize(
    ("url", "servers"),
    [
        ("nats://a:4222", ["nats://a:4222"]),
        (
            "nats://a:4222,nats://b:4222,nats://c:4222",
            ["nats://a:4222", "nats://b:4222", "nats://c:4222"],
        ),
        (" nats://a:4222 , tls://b ,", ["nats://a:4222", "tls://b"]),  # blanks, a trailing comma
        ("nats://u:p@a:4222,nats://u:p@b:4222", ["nats://u:p@a:4222", "nats://u:p@b:4222"]),
        ("wss://a:443,ws://b:8080", ["wss://a:443", "ws://b:8080"]),
        ("nats://[::1]:4222", ["nats://[::1]:4222"]),
    ],
)
def test_a_server_or_a_list_of_servers_is_accepted(url: str, servers: list[str]) -> None:
    assert nats_servers(url) == servers
    assert Settings.from_env({**BASE, "QUARTIER_NATS_URL": url}).nats_url == url
    assert Bus(url, "test").servers == servers


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (",", "names no server"),
        (" , ", "names no server"),
        ("http://a:4222", "'http://a:4222' is not a NATS server URL"),
        ("a:4222", "'a:4222' is not a NATS server URL"),  # no scheme
        ("nats://a:4222,nats:/b", "'nats:/b' is not a NATS server URL"),  # no host
        ("nats://a:4222/path", "is not a NATS server URL"),
        ("nats://a:4222?x=1", "is not a NATS server URL"),
        ("nats://a:notaport", "'nats://a:notaport' has a bad port"),
        ("nats://a:99999", "has a bad port"),
        ("nats://a:0", "has a bad port"),
        ("nats://a:4222,ws://b:8080", "mixes websocket"),
        # one line, and the password is not shown
        ("nats://u:hunter2@a:4222,nats://u:hunter2@b:x", "'nats://u:***@b:x' has a bad port"),
    ],
)
def test_a_malformed_list_is_refused_in_one_line(url: str, says: str) -> None:
    for refuse in (
        lambda: nats_servers(url),
        lambda: Settings.from_env({**BASE, "QUARTIER_NATS_URL": url}),
        lambda: Bus(url, "test"),
    ):
        with pytest.raises(ConfigurationError) as caught:
            refuse()
        message = str(caught.value)
        assert says in message
        assert "\n" not in message
        assert "hunter2" not in message


def test_passwords_are_hidden_from_what_is_shown() -> None:
    assert redact_url("nats://gateway:pw@a:4222") == "nats://gateway:***@a:4222"
    assert redact_url("nats://a:4222") == "nats://a:4222"
    bus = Bus("nats://gateway:pw@a:4222,nats://gateway:pw@b:4222", "test")
    assert bus.shown == "nats://gateway:***@a:4222, nats://gateway:***@b:4222"
