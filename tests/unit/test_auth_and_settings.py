"""Access tokens (services/runtime/auth.py), settings from the environment
(services/runtime/settings.py) and the tenancy guards (services/runtime/tenancy.py)."""

from __future__ import annotations

import base64
import json
import secrets
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import sqlalchemy as sa

from services.runtime.auth import (
    AUDIENCE,
    ISSUER,
    is_operator_token,
    issue_access_token,
    verify_access_token,
)
from services.runtime.errors import Forbidden, NotFound, Unauthenticated
from services.runtime.messages import ANONYMOUS, Actor
from services.runtime.settings import ConfigurationError, Settings
from services.runtime.tenancy import (
    RequestContext,
    current,
    guard_tenant,
    request_scope,
    scoped,
)

SECRET = "s" * 64  # long enough for HS512 too: no key-length warning
OTHER_SECRET = "o" * 64
TENANT = "7d0b8c1e-0000-4000-8000-000000000001"
OTHER_TENANT = "7d0b8c1e-0000-4000-8000-000000000002"
MEMBER = "7d0b8c1e-0000-4000-8000-0000000000aa"
SESSION = "5e551011-0000-4000-8000-0000000000aa"


# -- access tokens ---------------------------------------------------------------


def issue(now: datetime | None = None, ttl: int = 900, secret: str = SECRET) -> str:
    token, _ = issue_access_token(
        secret,
        member_id=MEMBER,
        tenant_id=TENANT,
        tenant_slug="pole-11e",
        roles=("tenant_admin",),
        session_id=SESSION,
        now=now or datetime.now(UTC),
        ttl=ttl,
    )
    return token


def valid_claims(**overrides: Any) -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": MEMBER,
        "tid": TENANT,
        "ten": "pole-11e",
        "roles": ["tenant_admin"],
        "sid": SESSION,
        "iat": now,
        "exp": now + 900,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def assert_refused(token: str, secret: str = SECRET) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as info:
        verify_access_token(secret, token)
    return info.value


def test_issue_then_verify_round_trip() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    token, expires_at = issue_access_token(
        SECRET,
        member_id=MEMBER,
        tenant_id=TENANT,
        tenant_slug="pole-11e",
        roles=("tenant_admin",),
        session_id=SESSION,
        now=now,
        ttl=900,
    )
    assert expires_at == now + timedelta(seconds=900)
    claims = verify_access_token(SECRET, token)
    assert (claims.member_id, claims.tenant_id, claims.tenant_slug, claims.roles) == (
        MEMBER,
        TENANT,
        "pole-11e",
        ("tenant_admin",),
    )
    assert claims.expires_at == expires_at
    assert claims.expires_at.tzinfo is not None
    actor = claims.actor()
    assert actor == Actor(
        kind="member",
        member_id=MEMBER,
        tenant_id=TENANT,
        roles=("tenant_admin",),
        session_id=SESSION,
    )
    assert actor.is_tenant_admin
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256"


def test_each_token_is_unique() -> None:
    now = datetime.now(UTC)
    assert issue(now) != issue(now)


def test_an_expired_token_is_refused_with_a_hint_to_refresh() -> None:
    token = issue(now=datetime.now(UTC) - timedelta(hours=1), ttl=900)
    assert "expired" in assert_refused(token).message


def test_a_token_signed_with_another_secret_is_refused() -> None:
    assert "invalid" in assert_refused(issue(secret=OTHER_SECRET)).message


def test_a_tampered_payload_is_refused() -> None:
    header, _, signature = issue().split(".")
    forged = b64(valid_claims(tid=OTHER_TENANT))
    assert_refused(f"{header}.{forged}.{signature}")


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_an_unsigned_token_is_refused(alg: str) -> None:
    token = f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64(valid_claims())}."
    assert_refused(token)


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_another_hmac_algorithm_with_the_right_secret_is_refused(alg: str) -> None:
    token = jwt.encode(valid_claims(), SECRET, algorithm=alg)
    # the token itself is sound: only the pinned algorithm list refuses it
    assert jwt.decode(token, SECRET, algorithms=[alg], audience=AUDIENCE)["sub"] == MEMBER
    assert_refused(token)


def test_the_right_claims_signed_by_hand_are_accepted() -> None:
    token = jwt.encode(valid_claims(), SECRET, algorithm="HS256")
    assert verify_access_token(SECRET, token).member_id == MEMBER


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "another-app"},
        {"aud": None},
        {"iss": "someone-else"},
        {"iss": None},
    ],
    ids=["wrong-aud", "no-aud", "wrong-iss", "no-iss"],
)
def test_audience_and_issuer_are_checked(overrides: dict[str, Any]) -> None:
    assert_refused(jwt.encode(valid_claims(**overrides), SECRET, algorithm="HS256"))


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "tid", "ten", "sid"])
def test_a_token_missing_a_claim_is_refused(missing: str) -> None:
    claims = valid_claims()
    del claims[missing]
    assert_refused(jwt.encode(claims, SECRET, algorithm="HS256"))


def test_roles_are_optional_in_the_token() -> None:
    claims = valid_claims()
    del claims["roles"]
    assert verify_access_token(SECRET, jwt.encode(claims, SECRET, algorithm="HS256")).roles == ()


@pytest.mark.parametrize("garbage", ["", "x", "a.b.c", "Bearer abc", "é.é.é"])
def test_garbage_is_refused(garbage: str) -> None:
    assert_refused(garbage)


def test_is_operator_token() -> None:
    assert is_operator_token("op-token-123", "op-token-123")
    assert not is_operator_token("op-token-123", "op-token-124")
    assert not is_operator_token("op-token-123", "op-token-12")
    assert not is_operator_token("op-token-123", "")
    assert not is_operator_token("op-token-123", None)
    assert not is_operator_token("", "")
    assert not is_operator_token("", None)
    assert not is_operator_token("op-token-123", "op-tökén")


# -- settings --------------------------------------------------------------------

SECRETS = {  # random, as production requires
    "QUARTIER_JWT_SECRET": "Qm7vK2pX9tRz4LwN8sYc1HdF6gJb3VqE5uTa0oMiWkS",
    "QUARTIER_OPERATOR_TOKEN": "op-7Hs2KxQ9mZ4vT1nR8pLw3yBc6Fd0GjUa",
}


def test_defaults() -> None:
    s = Settings.from_env(dict(SECRETS))
    assert s.env == "dev"
    assert not s.is_prod
    assert s.data_dir == Path(".quartier")
    assert s.database_url is None
    assert s.nats_url is None
    assert (s.http_host, s.http_port) == ("127.0.0.1", 8000)
    assert s.public_url == "http://127.0.0.1:8000"
    assert s.jwt_secret == SECRETS["QUARTIER_JWT_SECRET"]
    assert s.operator_token == SECRETS["QUARTIER_OPERATOR_TOKEN"]
    assert s.access_token_ttl == 900
    assert s.refresh_token_ttl == 30 * 24 * 3600
    assert s.invitation_ttl == 7 * 24 * 3600
    assert (s.log_format, s.log_level) == ("console", "info")
    assert s.workers == 8
    assert s.request_timeout == 10.0
    assert s.relay_poll_interval == 1.0
    assert s.reaction_fetch_wait == 1.0
    assert s.mail_dir == Path(".quartier/mail")
    assert s.smtp_url is None
    assert s.services == ("identity", "hubs", "events", "referrals", "webhooks", "exports")


def test_values_from_the_environment() -> None:
    s = Settings.from_env(
        {
            **SECRETS,
            "QUARTIER_ENV": "test",
            "QUARTIER_DATA_DIR": "/srv/q",
            "QUARTIER_HTTP_HOST": "10.0.0.5",
            "QUARTIER_HTTP_PORT": "9000",
            "QUARTIER_ACCESS_TOKEN_TTL": "60",
            "QUARTIER_WORKERS": "2",
            "QUARTIER_REQUEST_TIMEOUT": "2.5",
            "QUARTIER_SERVICES": " identity , hubs ,",
            "QUARTIER_DATABASE_URL": "postgresql://u@h/db",
            "QUARTIER_LOG_LEVEL": "debug",
        }
    )
    assert s.env == "test"
    assert s.data_dir == Path("/srv/q")
    assert s.mail_dir == Path("/srv/q/mail")
    assert s.http_port == 9000
    assert s.public_url == "http://10.0.0.5:9000"
    assert s.access_token_ttl == 60
    assert s.workers == 2
    assert s.request_timeout == 2.5
    assert s.services == ("identity", "hubs")
    assert s.database_url == "postgresql://u@h/db"
    assert s.log_level == "debug"


def test_an_empty_variable_counts_as_unset() -> None:
    s = Settings.from_env({**SECRETS, "QUARTIER_ENV": "", "QUARTIER_HTTP_PORT": ""})
    assert (s.env, s.http_port) == ("dev", 8000)


def prod(tmp_path: Path, **env: str) -> dict[str, str]:
    return {"QUARTIER_ENV": "prod", "QUARTIER_DATA_DIR": str(tmp_path), **env}


def test_prod_requires_the_jwt_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="QUARTIER_JWT_SECRET"):
        Settings.from_env(prod(tmp_path, QUARTIER_OPERATOR_TOKEN="op"))
    assert list(tmp_path.iterdir()) == []  # nothing generated in production


def test_prod_requires_the_operator_token(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="QUARTIER_OPERATOR_TOKEN"):
        Settings.from_env(prod(tmp_path, QUARTIER_JWT_SECRET="j" * 32))
    assert list(tmp_path.iterdir()) == []


def test_prod_with_both_secrets_logs_json(tmp_path: Path) -> None:
    s = Settings.from_env(prod(tmp_path, **SECRETS))
    assert s.is_prod
    assert s.log_format == "json"
    overridden = Settings.from_env(prod(tmp_path, **SECRETS, QUARTIER_LOG_FORMAT="console"))
    assert overridden.log_format == "console"


@pytest.mark.parametrize("env", ["dev", "test", "prod"])
def test_a_short_jwt_secret_is_refused(tmp_path: Path, env: str) -> None:
    with pytest.raises(ConfigurationError, match="at least 32"):
        Settings.from_env(
            {
                "QUARTIER_ENV": env,
                "QUARTIER_DATA_DIR": str(tmp_path),
                "QUARTIER_JWT_SECRET": "x" * 31,
                "QUARTIER_OPERATOR_TOKEN": "op",
            }
        )


@pytest.mark.parametrize(
    "name",
    [
        "HTTP_PORT",
        "ACCESS_TOKEN_TTL",
        "REFRESH_TOKEN_TTL",
        "INVITATION_TTL",
        "WORKERS",
        "RATE_LIMIT",
    ],
)
@pytest.mark.parametrize("value", ["abc", "1.5", "8k"])
def test_bad_integers(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=f"QUARTIER_{name}"):
        Settings.from_env({**SECRETS, f"QUARTIER_{name}": value})


@pytest.mark.parametrize("name", ["REQUEST_TIMEOUT", "RELAY_POLL_INTERVAL", "REACTION_FETCH_WAIT"])
def test_bad_numbers(name: str) -> None:
    with pytest.raises(ConfigurationError, match=f"QUARTIER_{name}"):
        Settings.from_env({**SECRETS, f"QUARTIER_{name}": "ten seconds"})


@pytest.mark.parametrize("env", ["production", "PROD", "staging", "Dev"])
def test_unknown_environment(env: str) -> None:
    with pytest.raises(ConfigurationError, match="QUARTIER_ENV"):
        Settings.from_env({**SECRETS, "QUARTIER_ENV": env})


@pytest.mark.parametrize("env", ["dev", "test"])
def test_outside_prod_missing_secrets_are_generated_once_and_kept(tmp_path: Path, env: str) -> None:
    data_dir = tmp_path / "data"  # does not exist yet
    environ = {"QUARTIER_ENV": env, "QUARTIER_DATA_DIR": str(data_dir)}
    first = Settings.from_env(environ)
    second = Settings.from_env(environ)
    assert first.jwt_secret == second.jwt_secret
    assert first.operator_token == second.operator_token
    assert len(first.jwt_secret) >= 32
    assert first.jwt_secret != first.operator_token
    assert (data_dir / "jwt-secret").read_text().strip() == first.jwt_secret
    assert (data_dir / "operator-token").read_text().strip() == first.operator_token
    for name in ("jwt-secret", "operator-token"):
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600
    assert sorted(p.name for p in data_dir.iterdir()) == ["jwt-secret", "operator-token"]


def test_a_set_secret_wins_over_the_kept_one(tmp_path: Path) -> None:
    environ = {"QUARTIER_DATA_DIR": str(tmp_path)}
    kept = Settings.from_env(environ)
    explicit = Settings.from_env({**environ, **SECRETS})
    assert explicit.jwt_secret == SECRETS["QUARTIER_JWT_SECRET"] != kept.jwt_secret
    assert Settings.from_env(environ).jwt_secret == kept.jwt_secret


def test_with_returns_a_changed_copy() -> None:
    s = Settings.from_env(dict(SECRETS))
    t = s.with_(http_port=1234)
    assert (s.http_port, t.http_port) == (8000, 1234)


# -- tenancy ---------------------------------------------------------------------


def member(tenant_id: str | None = TENANT, roles: tuple[str, ...] = ()) -> Actor:
    return Actor(kind="member", member_id=MEMBER, tenant_id=tenant_id, roles=roles)


def test_require_tenant() -> None:
    assert RequestContext(tenant_id=TENANT).require_tenant() == TENANT
    with pytest.raises(Unauthenticated):
        RequestContext().require_tenant()
    with pytest.raises(Unauthenticated):
        RequestContext(tenant_id="").require_tenant()


def test_require_member() -> None:
    assert RequestContext(tenant_id=TENANT, actor=member()).require_member() == MEMBER
    for actor in (
        ANONYMOUS,
        Actor(kind="operator"),
        Actor(kind="service", tenant_id=TENANT),
        Actor(kind="member", tenant_id=TENANT),  # no member id
    ):
        with pytest.raises(Unauthenticated):
            RequestContext(tenant_id=TENANT, actor=actor).require_member()
    with pytest.raises(Forbidden):
        RequestContext(tenant_id=TENANT, actor=member(OTHER_TENANT)).require_member()


def test_require_tenant_admin() -> None:
    admin = member(roles=("tenant_admin",))
    assert RequestContext(tenant_id=TENANT, actor=admin).require_tenant_admin() == MEMBER
    with pytest.raises(Forbidden):
        RequestContext(tenant_id=TENANT, actor=member()).require_tenant_admin()
    with pytest.raises(Forbidden):
        RequestContext(
            tenant_id=OTHER_TENANT, actor=member(roles=("tenant_admin",))
        ).require_tenant_admin()
    with pytest.raises(Unauthenticated):
        RequestContext(tenant_id=TENANT, actor=Actor(kind="operator")).require_tenant_admin()


class Thing:
    def __init__(self, tenant_id: str):
        self.tenant_id = tenant_id


def test_guard_tenant_reports_another_tenants_object_as_missing() -> None:
    thing = Thing(TENANT)
    assert guard_tenant(thing, TENANT, "thing") is thing
    messages = set()
    for obj, tenant_id in ((None, TENANT), (thing, OTHER_TENANT), (thing, None)):
        with pytest.raises(NotFound) as info:
            guard_tenant(obj, tenant_id, "thing")
        messages.add(info.value.message)
    assert messages == {"thing not found"}


def test_request_scope_sets_and_restores_the_current_context() -> None:
    outer = current()
    ctx = RequestContext(tenant_id=TENANT, actor=member())
    with request_scope(ctx) as inside:
        assert inside is ctx
        assert current() is ctx
        with request_scope(RequestContext(tenant_id=OTHER_TENANT)):
            assert current().tenant_id == OTHER_TENANT
        assert current() is ctx
    assert current() is outer
    assert RequestContext().correlation_id != RequestContext().correlation_id


def test_scoped_queries_filter_on_the_tenant() -> None:
    table = sa.Table(
        "things", sa.MetaData(), sa.Column("tenant_id", sa.String), sa.Column("x", sa.Integer)
    )
    engine = sa.create_engine("sqlite://")
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            table.insert(), [{"tenant_id": TENANT, "x": 1}, {"tenant_id": OTHER_TENANT, "x": 2}]
        )
        rows = conn.execute(scoped(table, TENANT)).all()
    engine.dispose()
    assert [(r.tenant_id, r.x) for r in rows] == [(TENANT, 1)]


@pytest.mark.parametrize(
    "weak",
    [
        "a" * 32,
        "ab" * 20,
        "abcd" * 10,
        "test-secret-" + "x" * 40,
        "0123456789" * 4,
        "password" * 5,
    ],
)
def test_production_refuses_weak_secrets(weak: str) -> None:
    strong = secrets.token_urlsafe(32)
    for jwt_secret, operator_token in ((weak, strong), (strong, weak)):
        with pytest.raises(ConfigurationError, match="too weak"):
            Settings.from_env(
                {
                    "QUARTIER_ENV": "prod",
                    "QUARTIER_JWT_SECRET": jwt_secret,
                    "QUARTIER_OPERATOR_TOKEN": operator_token,
                }
            )


def test_production_takes_random_secrets_and_short_operator_tokens_are_refused() -> None:
    env = {
        "QUARTIER_ENV": "prod",
        "QUARTIER_JWT_SECRET": secrets.token_urlsafe(32),
        "QUARTIER_OPERATOR_TOKEN": secrets.token_hex(16),
    }
    assert Settings.from_env(env).is_prod
    with pytest.raises(ConfigurationError):
        Settings.from_env({**env, "QUARTIER_OPERATOR_TOKEN": "x"})
