"""Settings, read once from environment variables (the README lists every one)."""

from __future__ import annotations

import ipaddress
import math
import os
import re
import secrets
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from services import registry

ENVIRONMENTS = ("dev", "test", "prod")


class ConfigurationError(RuntimeError):
    """A setting is missing or malformed; the process cannot start."""


@dataclass(frozen=True)
class NatsCredentials:
    """Who a process is on NATS: a user and its password (docs/security.md,
    "The bus"). Its replies come to its own inboxes, `_INBOX.<user>.…`, so that
    a server may let each user read only its own."""

    user: str
    password: str = field(repr=False)

    @property
    def inbox_prefix(self) -> str:
        return inbox_prefix(self.user)


def inbox_prefix(user: str) -> str:
    """Where replies to a NATS user come: `_INBOX.<user>.…`."""
    return f"_INBOX.{user}"


@dataclass(frozen=True)
class Settings:
    env: str = "dev"
    data_dir: Path = Path(".quartier")
    database_url: str | None = None
    db_schema_prefix: str = ""
    nats_url: str | None = None
    nats_credentials: NatsCredentials | None = None  # None: connect without
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    public_url: str = "http://127.0.0.1:8000"
    jwt_secret: str = field(default="", repr=False)
    operator_token: str = field(default="", repr=False)
    access_token_ttl: int = 900
    refresh_token_ttl: int = 30 * 24 * 3600
    invitation_ttl: int = 7 * 24 * 3600
    log_format: str = "console"
    log_level: str = "info"
    workers: int = 8
    request_timeout: float = 10.0
    relay_poll_interval: float = 1.0
    reaction_fetch_wait: float = 1.0  # an idle reaction's pull; a stop waits for it
    mail_dir: Path = Path(".quartier/mail")
    smtp_url: str | None = None
    mail_from: str = "Quartier <no-reply@quartier.localhost>"
    rate_limit_per_minute: int = 1200  # requests a minute, per network and gateway replica
    member_rate_limit_per_minute: int = 300  # per member (or anonymous address) and replica
    cost_limit_per_minute: int = 120_000  # query cost (fields times page sizes), per network
    member_cost_limit_per_minute: int = 60_000  # per member (or anonymous address)
    tenant_concurrency: int = 4  # operations of one network running at once on a replica
    stream_follows: int = 20  # `follow=true` event streams of one network open at once, per replica
    trusted_proxies: frozenset[str] = frozenset()  # addresses/networks whose X-Forwarded-For counts
    stream_replicas: int = 1
    metrics_port: int | None = None  # services serve metrics on this + 1 + their index
    services: tuple[str, ...] = registry.names()

    @property
    def is_prod(self) -> bool:
        return self.env == "prod"

    def metrics_port_of(self, service: str) -> int | None:
        """Where a service serves its metrics: QUARTIER_METRICS_PORT + 1 + its
        index in the registry (None: metrics are not served)."""
        if self.metrics_port is None:
            return None
        names = registry.names()
        return self.metrics_port + 1 + (names.index(service) if service in names else len(names))

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if environ is None else environ

        def get(name: str, default: str | None = None) -> str | None:
            value = e.get(f"QUARTIER_{name}")
            return value if value not in (None, "") else default

        env = get("ENV", "dev") or "dev"
        if env not in ENVIRONMENTS:
            raise ConfigurationError(f"QUARTIER_ENV must be one of {ENVIRONMENTS}, not {env!r}")
        data_dir = Path(get("DATA_DIR", ".quartier") or ".quartier")
        http_host = get("HTTP_HOST", "127.0.0.1") or "127.0.0.1"
        http_port = _int(get("HTTP_PORT", "8000"), "QUARTIER_HTTP_PORT")
        jwt_secret = get("JWT_SECRET") or _dev_secret(env, data_dir, "jwt-secret", "JWT_SECRET")
        operator_token = get("OPERATOR_TOKEN") or _dev_secret(
            env, data_dir, "operator-token", "OPERATOR_TOKEN"
        )
        if len(jwt_secret) < 32:
            raise ConfigurationError("QUARTIER_JWT_SECRET must be at least 32 characters")
        if env == "prod":
            _strong(jwt_secret, "QUARTIER_JWT_SECRET")
            _strong(operator_token, "QUARTIER_OPERATOR_TOKEN")
        nats_url = get("NATS_URL")
        if nats_url:
            nats_servers(nats_url)  # a malformed list stops the process here, in one line
        nats_credentials = _nats_credentials(
            get("NATS_USER"), get("NATS_PASSWORD"), get("NATS_PASSWORD_FILE")
        )
        if env == "prod" and nats_url and nats_credentials is None and not _has_userinfo(nats_url):
            raise ConfigurationError(
                "QUARTIER_NATS_USER and QUARTIER_NATS_PASSWORD (or QUARTIER_NATS_PASSWORD_FILE) "
                "must be set when QUARTIER_ENV=prod and QUARTIER_NATS_URL names a server"
            )
        services = tuple(
            s.strip()
            for s in (get("SERVICES") or ",".join(registry.names())).split(",")
            if s.strip()
        )
        unknown = [s for s in services if s not in registry.BY_NAME]
        if unknown:
            raise ConfigurationError(
                f"QUARTIER_SERVICES: unknown service {unknown[0]!r} "
                f"(known: {', '.join(registry.names())})"
            )
        return cls(
            env=env,
            data_dir=data_dir,
            database_url=get("DATABASE_URL"),
            db_schema_prefix=get("DB_SCHEMA_PREFIX", "") or "",
            nats_url=nats_url,
            nats_credentials=nats_credentials,
            http_host=http_host,
            http_port=http_port,
            public_url=get("PUBLIC_URL", f"http://{http_host}:{http_port}") or "",
            jwt_secret=jwt_secret,
            operator_token=operator_token,
            access_token_ttl=_int(get("ACCESS_TOKEN_TTL", "900"), "QUARTIER_ACCESS_TOKEN_TTL"),
            refresh_token_ttl=_int(
                get("REFRESH_TOKEN_TTL", str(30 * 24 * 3600)), "QUARTIER_REFRESH_TOKEN_TTL"
            ),
            invitation_ttl=_int(
                get("INVITATION_TTL", str(7 * 24 * 3600)), "QUARTIER_INVITATION_TTL"
            ),
            log_format=get("LOG_FORMAT", "json" if env == "prod" else "console") or "console",
            log_level=get("LOG_LEVEL", "info") or "info",
            workers=_int(get("WORKERS", "8"), "QUARTIER_WORKERS"),
            request_timeout=_float(get("REQUEST_TIMEOUT", "10"), "QUARTIER_REQUEST_TIMEOUT"),
            relay_poll_interval=_float(
                get("RELAY_POLL_INTERVAL", "1"), "QUARTIER_RELAY_POLL_INTERVAL"
            ),
            reaction_fetch_wait=_float(
                get("REACTION_FETCH_WAIT", "1"), "QUARTIER_REACTION_FETCH_WAIT"
            ),
            mail_dir=Path(get("MAIL_DIR") or str(data_dir / "mail")),
            smtp_url=get("SMTP_URL"),
            mail_from=get("MAIL_FROM", cls.mail_from) or cls.mail_from,
            rate_limit_per_minute=_positive(get("RATE_LIMIT", "1200"), "QUARTIER_RATE_LIMIT"),
            member_rate_limit_per_minute=_positive(
                get("MEMBER_RATE_LIMIT", "300"), "QUARTIER_MEMBER_RATE_LIMIT"
            ),
            cost_limit_per_minute=_positive(get("COST_LIMIT", "120000"), "QUARTIER_COST_LIMIT"),
            member_cost_limit_per_minute=_positive(
                get("MEMBER_COST_LIMIT", "60000"), "QUARTIER_MEMBER_COST_LIMIT"
            ),
            tenant_concurrency=_positive(
                get("TENANT_CONCURRENCY", "4"), "QUARTIER_TENANT_CONCURRENCY"
            ),
            stream_follows=_positive(get("STREAM_FOLLOWS", "20"), "QUARTIER_STREAM_FOLLOWS"),
            trusted_proxies=_networks(get("TRUSTED_PROXIES", "") or "", "QUARTIER_TRUSTED_PROXIES"),
            stream_replicas=_int(get("STREAM_REPLICAS", "1"), "QUARTIER_STREAM_REPLICAS"),
            metrics_port=_int(get("METRICS_PORT"), "QUARTIER_METRICS_PORT")
            if get("METRICS_PORT")
            else None,
            services=services,
        )


MIN_SECRET_BITS = 128


def secret_bits(value: str) -> float:
    """A generous estimate of a secret's entropy: its length times the bits
    of the smallest alphabet its characters fit in (hex, base64url, printable).
    Repetition is caught too: `aaaa…` counts as one character's worth."""
    distinct = set(value)
    if len(distinct) <= 2:
        return float(len(distinct))
    if distinct <= set("0123456789abcdef") or distinct <= set("0123456789ABCDEF"):
        per_char = 4.0
    elif distinct <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/="):
        per_char = 6.0
    else:
        per_char = 6.5
    # a secret of few distinct characters has less than its length suggests,
    # and one that compresses well (a repeated word) has no more than that
    alphabet = len(value) * min(per_char, math.log2(len(distinct)) * 1.5)
    compressed = 8 * max(0, len(zlib.compress(value.encode(), 9)) - 8)
    return min(alphabet, compressed)


def _strong(value: str, name: str) -> None:
    """Production refuses secrets a guess could find (at least 128 bits)."""
    most = max((value.count(ch) for ch in set(value)), default=0)
    if len(value) < 32 or secret_bits(value) < MIN_SECRET_BITS or most * 4 > len(value):
        raise ConfigurationError(
            f"{name} is too weak for production: use at least 32 random characters, "
            "e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )


# A NATS user name becomes a subject token (its inbox prefix): no wildcard,
# separator or space.
_NATS_USER = re.compile(r"^[A-Za-z0-9_-]+$")


def _nats_credentials(
    user: str | None, password: str | None, password_file: str | None
) -> NatsCredentials | None:
    if password and password_file:
        raise ConfigurationError(
            "set QUARTIER_NATS_PASSWORD or QUARTIER_NATS_PASSWORD_FILE, not both"
        )
    if password_file:
        try:
            password = Path(password_file).read_text().strip()
        except OSError as e:
            raise ConfigurationError(
                f"QUARTIER_NATS_PASSWORD_FILE: cannot read {password_file}: {e.strerror}"
            ) from None
        if not password:
            raise ConfigurationError(f"QUARTIER_NATS_PASSWORD_FILE: {password_file} is empty")
    if user is None:
        if password:
            raise ConfigurationError("QUARTIER_NATS_USER must be set with a NATS password")
        return None
    if not _NATS_USER.match(user):
        raise ConfigurationError(
            "QUARTIER_NATS_USER may hold only letters, digits, '-' and '_' "
            f"(it names the user's reply subjects), not {user!r}"
        )
    if not password:
        raise ConfigurationError(
            "QUARTIER_NATS_USER needs QUARTIER_NATS_PASSWORD or QUARTIER_NATS_PASSWORD_FILE"
        )
    return NatsCredentials(user, password)


NATS_SCHEMES = ("nats", "tls", "ws", "wss")


def nats_servers(url: str) -> list[str]:
    """The servers of `QUARTIER_NATS_URL`: one URL or a comma-separated list
    of a cluster's (`nats://a:4222,nats://b:4222,nats://c:4222`; blanks and
    empty entries are ignored). Each is `nats://`, `tls://`, `ws://` or
    `wss://` with a host and an optional port (1-65535, default 4222), and
    websocket and plain URLs are not mixed (nats-py refuses it).

    Raises ConfigurationError, naming the entry without its password."""
    servers = [u.strip() for u in url.split(",") if u.strip()]
    if not servers:
        raise ConfigurationError("QUARTIER_NATS_URL names no server")
    for server in servers:
        parts = urlsplit(server)
        shown = redact_url(server)
        try:
            port = parts.port  # raises ValueError on a bad port
        except ValueError:
            port = 0
        if port == 0:
            raise ConfigurationError(f"QUARTIER_NATS_URL: {shown!r} has a bad port (1-65535)")
        if (
            parts.scheme not in NATS_SCHEMES
            or not parts.hostname
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
        ):
            raise ConfigurationError(
                f"QUARTIER_NATS_URL: {shown!r} is not a NATS server URL "
                "(nats://host:4222, tls://…, ws://…, wss://…; a cluster: several, comma-separated)"
            )
    websockets = {urlsplit(s).scheme in ("ws", "wss") for s in servers}
    if len(websockets) > 1:
        raise ConfigurationError(
            "QUARTIER_NATS_URL mixes websocket (ws://, wss://) and plain (nats://, tls://) servers"
        )
    return servers


def redact_url(url: str) -> str:
    """A URL fit for a log line or an error: its password replaced by `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


def _has_userinfo(url: str) -> bool:
    """Whether every server of a NATS URL list carries `user:password@`."""
    servers = [u.strip() for u in url.split(",") if u.strip()]
    return bool(servers) and all(urlsplit(u).password for u in servers)


def _int(value: str | None, name: str) -> int:
    try:
        return int(value or "")
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, not {value!r}") from None


def _positive(value: str | None, name: str) -> int:
    number = _int(value, name)
    if number < 1:
        raise ConfigurationError(f"{name} must be at least 1")
    return number


def _networks(value: str, name: str) -> frozenset[str]:
    """Comma-separated IP addresses or networks (`10.0.0.0/8`, `::1`)."""
    found: set[str] = set()
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        try:
            found.add(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise ConfigurationError(
                f"{name}: {part!r} is not an IP address or network (e.g. 10.0.0.0/8)"
            ) from None
    return frozenset(found)


def _float(value: str | None, name: str) -> float:
    try:
        number = float(value or "")
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, not {value!r}") from None
    if not number > 0:
        raise ConfigurationError(f"{name} must be more than 0")
    return number


def _dev_secret(env: str, data_dir: Path, filename: str, name: str) -> str:
    """Outside production a missing secret is generated once and kept in the data dir,
    so that every process of one installation (and a restart) agrees on it."""
    if env == "prod":
        raise ConfigurationError(f"QUARTIER_{name} must be set when QUARTIER_ENV=prod")
    path = data_dir / filename
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{filename}.{os.getpid()}.tmp")
    tmp.write_text(value)
    tmp.chmod(0o600)
    try:
        os.link(tmp, path)  # atomic: the first process to get here wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text().strip()
