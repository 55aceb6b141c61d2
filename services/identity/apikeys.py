"""Tenant API keys (docs/api-keys.md): a tenant admin issues a key with
scopes, a name and an optional expiry; the key is a Bearer credential for
analytics consumers (the event stream, webhooks management, exports,
reports), never for a member's operations.

A key reads `qk_<key id, 32 hex>_<secret, 43 characters>`: the id selects,
the 256-bit secret verifies. Only the secret's SHA-256 is kept (a
high-entropy secret needs no slow hash), compared in constant time; the key
is shown once, in the reply to its creation. Listings show its *prefix*
(`qk_` and the first 12 hex of its id), never the secret nor its hash.

Here: the aggregate (`ApiKey`: created, revoked), the parsing and checks of
a key, and the read model (`api_keys`, projected; `api_key_use`, a plain
table of last uses written at most once a minute per key).
"""

from __future__ import annotations

import hmac
import re
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID

import sqlalchemy as sa
from eventsourcing.domain import event

from services.identity import contract as c
from services.identity.domain import hash_secret, new_secret
from services.runtime.errors import Conflict, InvalidInput, Unauthenticated
from services.runtime.eventstore import TenantAggregate
from services.runtime.i18n import t
from services.runtime.tenancy import scoped
from services.runtime.text import single_line

KEY_PREFIX = c.API_KEY_PREFIX
PREFIX_HEX = 12  # hex digits of the id shown in listings
MAX_NAME = 80
MAX_LIFETIME = timedelta(days=3 * 365)  # an expiry is at most this far ahead
MIN_LIFETIME = timedelta(minutes=1)  # and at least this far
MAX_LIVE_KEYS = 50  # unrevoked keys of a network
LAST_USE_EVERY = timedelta(minutes=1)  # `last used` is written at most this often per key
SCOPES = frozenset(c.API_KEY_SCOPES)
_SELECTOR = re.compile(r"[0-9a-fA-F]{32}")
_SECRET = re.compile(r"[A-Za-z0-9_-]+")  # URL-safe base64, as `new_secret` makes


# -- the key as a string ------------------------------------------------------------


def format_key(key_id: UUID, secret: str) -> str:
    return f"{KEY_PREFIX}{key_id.hex}_{secret}"


def prefix_of(key_id: UUID) -> str:
    return f"{KEY_PREFIX}{key_id.hex[:PREFIX_HEX]}"


def looks_like_key(token: str) -> bool:
    """A Bearer credential that claims to be an API key (not a JWT, not the
    operator's token): the gateway sends it to identity to be verified."""
    return token.startswith(KEY_PREFIX)


def split_key(key: str) -> tuple[UUID, str]:
    """`qk_<id hex>_<secret>` → (id, secret); anything else Unauthenticated.
    Whitespace around the key (a line break after a pasted or stored key) is
    ignored; inside it (a folded or broken line, a space) the key is invalid:
    a key is one run of `qk_`, hex digits and URL-safe characters."""
    key = key.strip()
    body = key.removeprefix(KEY_PREFIX) if key.startswith(KEY_PREFIX) else ""
    selector, sep, secret = body[:32], body[32:33], body[33:]
    try:
        if (
            sep != "_"
            or not 20 <= len(secret) <= 100
            or not _SELECTOR.fullmatch(selector)
            or not _SECRET.fullmatch(secret)
        ):
            raise ValueError
        return UUID(hex=selector), secret
    except ValueError:
        raise Unauthenticated(t("this API key is not valid")) from None


# -- inputs ---------------------------------------------------------------------------


def validate_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - SCOPES)
    if unknown:
        raise InvalidInput(
            t(
                "unknown scope {scope!r}: the scopes are {scopes}",
                scope=unknown[0][:40],
                scopes=", ".join(c.API_KEY_SCOPES),
            ),
            field="scopes",
        )
    if not scopes:
        raise InvalidInput(t("a key needs at least one scope"), field="scopes")
    return sorted(set(scopes))


def validate_expiry(expires_at: datetime | None, now: datetime) -> datetime | None:
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        raise InvalidInput(t("give the expiry with its time zone"), field="expires_at")
    expires_at = expires_at.astimezone(UTC)
    if expires_at < now + MIN_LIFETIME:
        raise InvalidInput(t("the expiry must be in the future"), field="expires_at")
    if expires_at > now + MAX_LIFETIME:
        raise InvalidInput(t("a key expires within three years at most"), field="expires_at")
    return expires_at


# -- the aggregate --------------------------------------------------------------------


class ApiKey(TenantAggregate):
    """One API key of a network. Its secret's hash, scopes and expiry are set
    once; it can only be revoked."""

    noun = "API key"
    not_found = t("API key not found")
    Created: ClassVar[type[Any]]
    Revoked: ClassVar[type[Any]]

    @event("Created")
    def __init__(
        self,
        tenant_id: str,
        name: str,
        scopes: list[str],
        secret_hash: str,
        expires_at: datetime | None,
        created_by: str,
    ):
        self.tenant_id = tenant_id
        self.name = name
        self.scopes = list(scopes)
        self.secret_hash = secret_hash
        self.expires_at = expires_at
        self.created_by = created_by
        self.revoked_at: datetime | None = None
        self.revoked_by: str | None = None

    def revoke(self, by: str, at: datetime) -> None:
        if self.revoked_at is not None:
            raise Conflict(t("this API key is already revoked"))
        self._revoked(by=by, at=at)

    @event("Revoked")
    def _revoked(self, by: str, at: datetime) -> None:
        self.revoked_at = at
        self.revoked_by = by


def new_key(
    tenant_id: str,
    name: str,
    scopes: list[str],
    expires_at: datetime | None,
    created_by: str,
    now: datetime,
) -> tuple[ApiKey, str]:
    """A new key (checked inputs) and the string to show once."""
    name = single_line(name, "name", MAX_NAME, required=True)
    scopes = validate_scopes(scopes)
    expiry = validate_expiry(expires_at, now)
    secret = new_secret()
    key = ApiKey(
        tenant_id=tenant_id,
        name=name,
        scopes=scopes,
        secret_hash=hash_secret(secret),
        expires_at=expiry,
        created_by=created_by,
    )
    return key, format_key(key.id, secret)


# -- the read model -------------------------------------------------------------------

metadata = sa.MetaData()

# Projected from the ApiKey events: what listings show and what a key's
# verification reads (one primary-key read). Holds the secret's hash, never
# the secret; the hash never leaves identity.
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(36), nullable=False),
    sa.Column("name", sa.String(MAX_NAME), nullable=False),
    sa.Column("prefix", sa.String(20), nullable=False),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("created_by", sa.String(36)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True)),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.Index("ix_api_keys_tenant", "tenant_id", "created_at"),
)

# When each key was last used: a plain table (not projected: a use is not a
# domain event), written at most once per LAST_USE_EVERY per key, so that a
# busy consumer costs one cheap update a minute. Lost without harm when the
# views are rebuilt.
api_key_use = sa.Table(
    "api_key_use",
    metadata,
    sa.Column("key_id", sa.String(36), primary_key=True),
    sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
)


class ApiKeyViews:
    name = "identity-api-keys"
    metadata = metadata

    def apply(self, conn: sa.Connection, event: Any) -> None:
        match event:
            case ApiKey.Created():
                key_id = event.originator_id
                conn.execute(
                    api_keys.insert().values(
                        key_id=str(key_id),
                        tenant_id=event.tenant_id,
                        name=event.name,
                        prefix=prefix_of(key_id),
                        scopes=list(event.scopes),
                        secret_hash=event.secret_hash,
                        created_by=event.created_by,
                        created_at=event.timestamp,
                        expires_at=event.expires_at,
                    )
                )
            case ApiKey.Revoked():
                conn.execute(
                    api_keys.update()
                    .where(api_keys.c.key_id == str(event.originator_id))
                    .values(revoked_at=event.at)
                )


def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _query() -> sa.Select[Any]:
    return sa.select(api_keys, api_key_use.c.last_used_at).outerjoin(
        api_key_use, api_key_use.c.key_id == api_keys.c.key_id
    )


def to_info(row: Any) -> c.ApiKeyInfo:
    return c.ApiKeyInfo(
        key_id=row.key_id,
        name=row.name,
        prefix=row.prefix,
        scopes=list(row.scopes or ()),
        created_at=as_utc(row.created_at),  # type: ignore[arg-type]
        created_by=row.created_by,
        last_used_at=as_utc(row.last_used_at),
        expires_at=as_utc(row.expires_at),
        revoked_at=as_utc(row.revoked_at),
    )


def list_keys(conn: sa.Connection, tenant_id: str, offset: int, limit: int) -> c.ApiKeyPage:
    """Newest first, revoked ones too (they say when)."""
    total = conn.execute(
        sa.select(sa.func.count()).select_from(api_keys).where(api_keys.c.tenant_id == tenant_id)
    ).scalar_one()
    rows = conn.execute(
        _query()
        .where(api_keys.c.tenant_id == tenant_id)
        .order_by(api_keys.c.created_at.desc(), api_keys.c.key_id)
        .offset(offset)
        .limit(limit)
    )
    return c.ApiKeyPage(items=[to_info(r) for r in rows], total=total)


def key_info(conn: sa.Connection, tenant_id: str, key_id: str) -> c.ApiKeyInfo | None:
    row = conn.execute(
        _query().where(api_keys.c.tenant_id == tenant_id, api_keys.c.key_id == key_id)
    ).first()
    return to_info(row) if row is not None else None


def live_count(conn: sa.Connection, tenant_id: str) -> int:
    live = scoped(api_keys, tenant_id).where(api_keys.c.revoked_at.is_(None))
    return int(conn.execute(sa.select(sa.func.count()).select_from(live.subquery())).scalar_one())


def key_row(conn: sa.Connection, key_id: str) -> Any:
    return conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()


def authentic(row: Any, secret: str) -> bool:
    """The presented secret is the key's (constant time)."""
    return row is not None and hmac.compare_digest(row.secret_hash, hash_secret(secret))


def check(row: Any, secret: str, now: datetime) -> None:
    """The presented secret against the row (constant time), then whether
    the key still works: a wrong secret is "not valid"; only the holder of
    the right one learns that the key was revoked or has expired."""
    if not authentic(row, secret):
        raise Unauthenticated(t("this API key is not valid"))
    if row.revoked_at is not None:
        raise Unauthenticated(t("this API key has been revoked"))
    expires_at = as_utc(row.expires_at)
    if expires_at is not None and expires_at <= now:
        raise Unauthenticated(t("this API key has expired"))


def record_use(conn: sa.Connection, key_id: str, now: datetime) -> None:
    """`last used` = now, unless it was written less than LAST_USE_EVERY ago
    (one read; at most one write a minute per key)."""
    last = conn.execute(
        sa.select(api_key_use.c.last_used_at).where(api_key_use.c.key_id == key_id)
    ).scalar_one_or_none()
    if last is None:  # (a concurrent first use: IntegrityError, which the caller ignores)
        conn.execute(api_key_use.insert().values(key_id=key_id, last_used_at=now))
    elif as_utc(last) <= now - LAST_USE_EVERY:  # type: ignore[operator]
        conn.execute(
            api_key_use.update()
            .where(api_key_use.c.key_id == key_id, api_key_use.c.last_used_at == last)
            .values(last_used_at=now)
        )
