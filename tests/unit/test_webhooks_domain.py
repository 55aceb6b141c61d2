"""Webhooks' pure rules: the retry schedule, URLs and type filters, which
addresses are public, the Standard Webhooks signature (checked with the
`standardwebhooks` library, as a receiver would) and the sealed secrets."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from standardwebhooks import Webhook, WebhookVerificationError

from services.runtime.errors import Forbidden, InvalidInput
from services.runtime.settings import ConfigurationError, Settings
from services.webhooks.domain import (
    RETRY_DELAYS,
    RETRY_FOR,
    Endpoint,
    check_event_types,
    check_url,
    is_public_address,
    next_attempt_after,
    wants,
)
from services.webhooks.outbound import signature_headers
from services.webhooks.secrets import SecretBox, key_material, metadata, new_secret
from services.webhooks.service import options_from_env


def test_the_schedule_doubles_from_ten_seconds_to_twelve_hours_over_three_days() -> None:
    assert RETRY_DELAYS[:4] == tuple(timedelta(seconds=s) for s in (10, 20, 40, 80))
    assert max(RETRY_DELAYS) == timedelta(hours=12)
    growing = RETRY_DELAYS[:-1]  # the last one fills the three days up
    for i in range(1, len(growing)):
        assert growing[i] == min(growing[i - 1] * 2, timedelta(hours=12))
    assert sum(RETRY_DELAYS, timedelta(0)) == RETRY_FOR == timedelta(days=3)
    assert len(RETRY_DELAYS) == 18  # 19 attempts in all


def test_next_attempt_follows_the_schedule_then_gives_up() -> None:
    assert next_attempt_after(1) == timedelta(seconds=10)
    assert next_attempt_after(18) == RETRY_DELAYS[-1]
    assert next_attempt_after(19) is None
    with pytest.raises(ValueError):
        next_attempt_after(0)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),  # noqa: S104  # an address judged, not bound
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("224.0.0.1", False),
        ("not an address", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public_address(address) is public


def test_urls() -> None:
    assert check_url("https://Example.org:8443/hook?x=1") == (
        "https://Example.org:8443/hook?x=1",
        "example.org",
    )
    for bad in ("ftp://x.org", "https://", "https://u:p@x.org", "https://x.org/#f", "x", ""):
        with pytest.raises(InvalidInput):
            check_url(bad)


def test_type_filters() -> None:
    assert check_event_types(["quartier.hubs.", "quartier.hubs."]) == ["quartier.hubs."]
    for bad in (["hubs."], ["quartier.hubs.*"], ["quartier.hubs.>"], ["quartier.a b"]):
        with pytest.raises(InvalidInput):
            check_event_types(bad)
    assert wants([], "quartier.hubs.HubCreated.v1")
    assert wants(["quartier.hubs."], "quartier.hubs.HubCreated.v1")
    assert not wants(["quartier.identity."], "quartier.hubs.HubCreated.v1")


def test_signatures_verify_with_the_standardwebhooks_library() -> None:
    old, new = new_secret(), new_secret()
    body = '{"id":"hubs:1","type":"quartier.hubs.HubCreated.v1"}'
    headers = signature_headers("hubs:1", body, [new, old])
    assert headers["webhook-id"] == "hubs:1"
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers)["id"] == "hubs:1"
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(body.replace("1", "2"), headers)
    stale = signature_headers("hubs:1", body, [new], at=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(body, stale)


def test_secrets_are_sealed_bound_to_their_endpoint_and_rotated() -> None:
    box = SecretBox("k" * 40)
    tenant, endpoint = str(uuid.uuid4()), str(uuid.uuid4())
    sealed = box.seal(tenant, endpoint, 1, "whsec_abc")
    assert b"whsec_abc" not in sealed
    assert box.open(tenant, endpoint, 1, sealed) == "whsec_abc"
    with pytest.raises(InvalidTag):
        box.open(tenant, str(uuid.uuid4()), 1, sealed)
    with pytest.raises(InvalidTag):
        SecretBox("j" * 40).open(tenant, endpoint, 1, sealed)
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        assert box.store(conn, tenant, endpoint, 1, "whsec_one", now) is None
        until = box.store(conn, tenant, endpoint, 2, "whsec_two", now)
        assert until == now + timedelta(hours=24)
        keys = box.signing_keys(conn, tenant, endpoint, now)
        assert [k.secret for k in keys] == ["whsec_two", "whsec_one"]
        later = box.signing_keys(conn, tenant, endpoint, now + timedelta(hours=25))
        assert [k.secret for k in later] == ["whsec_two"]


def test_private_addresses_are_allowed_only_outside_production(tmp_path: Path) -> None:
    dev, prod = Settings(env="dev", data_dir=tmp_path), Settings(env="prod", data_dir=tmp_path)
    assert options_from_env(dev, {}).allow_private
    assert not options_from_env(prod, {}).allow_private
    assert not options_from_env(dev, {"QUARTIER_WEBHOOKS_ALLOW_PRIVATE": "false"}).allow_private
    for env in (
        {"QUARTIER_WEBHOOKS_ALLOW_PRIVATE": "yes"},
        {"QUARTIER_WEBHOOKS_TIMEOUT": "0"},
        {"QUARTIER_WEBHOOKS_TIMEOUT": "31"},
        {"QUARTIER_WEBHOOKS_TIMEOUT": "soon"},
    ):
        with pytest.raises(ConfigurationError):
            options_from_env(dev, env)
    with pytest.raises(ConfigurationError):
        options_from_env(prod, {"QUARTIER_WEBHOOKS_ALLOW_PRIVATE": "true"})


def test_the_sealing_key_is_required_in_production(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        key_material(Settings(env="prod", data_dir=tmp_path), {})
    with pytest.raises(ConfigurationError):
        key_material(Settings(env="prod", data_dir=tmp_path), {"QUARTIER_WEBHOOKS_KEY": "short"})
    dev = Settings(env="dev", data_dir=tmp_path)
    generated = key_material(dev, {})
    assert key_material(dev, {}) == generated  # kept in the data dir
    assert (tmp_path / "webhooks-key").stat().st_mode & 0o077 == 0


AT = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("reason", ["api_key_revoked", "api_key_expired"])
def test_a_keys_endpoint_stopped_with_its_key_is_taken_over_by_the_admin_who_enables_it(
    reason: str,
) -> None:
    endpoint = Endpoint.new("t1", "https://example.org/hook", [], "", "key:k1", AT)
    assert endpoint.owner == "key:k1"
    assert endpoint.disable(reason, None, AT)
    assert not endpoint.disable(reason, None, AT)  # once
    with pytest.raises(Forbidden):  # another key may not
        endpoint.update("key:k2", AT, enabled=True)
    assert not endpoint.enabled and endpoint.owner == "key:k1"
    assert endpoint.update("m1", AT, enabled=True)
    assert endpoint.enabled and endpoint.disabled_reason is None and endpoint.owner == "m1"


def test_enabling_again_after_an_admin_or_a_failure_keeps_the_owner() -> None:
    endpoint = Endpoint.new("t1", "https://example.org/hook", [], "", "key:k1", AT)
    for reason in ("admin", "failing"):
        endpoint.disable(reason, None, AT)
        assert endpoint.update("key:k2", AT, enabled=True)
        assert endpoint.enabled and endpoint.owner == "key:k1"
