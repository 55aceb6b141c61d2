"""Signing secrets, kept encrypted at rest.

A webhook secret must be usable to sign (HMAC-SHA256), so unlike a password
it cannot be hashed. It is therefore never put in an event (events are kept
for ever and copied to backups and replicas) but in the table
`endpoint_secrets` of the service's views database, encrypted with AES-256-GCM
under a key derived (HKDF-SHA256) from `QUARTIER_WEBHOOKS_KEY`; the
associated data binds each ciphertext to its network, endpoint and version,
so a row copied onto another endpoint does not decrypt. A copy of the
database without the key reveals no secret. Outside production a missing key
is generated once in the data dir (`webhooks-key`, mode 0600), as the JWT
secret is; production refuses to start without one.

After a rotation, the previous secret still signs (a second signature in
`webhook-signature`) for ROTATION_GRACE, so receivers can switch over; then
its row is deleted.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.runtime.settings import ConfigurationError, Settings, _dev_secret
from services.runtime.views import UTCDateTime

PREFIX = "whsec_"
SECRET_BYTES = 32
ROTATION_GRACE = timedelta(hours=24)
KEY_ENV = "QUARTIER_WEBHOOKS_KEY"

metadata = sa.MetaData()

endpoint_secrets = sa.Table(
    "endpoint_secrets",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("endpoint_id", sa.String(36), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("sealed", sa.LargeBinary, nullable=False),  # 12-byte nonce + AES-GCM ciphertext
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("valid_until", UTCDateTime),  # None: the current secret
)


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes (the Standard Webhooks format)."""
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def key_material(settings: Settings, environ: dict[str, str] | None = None) -> str:
    """QUARTIER_WEBHOOKS_KEY (at least 32 characters), else outside
    production one generated in the data dir. Raises ConfigurationError."""
    import os

    value = (environ if environ is not None else dict(os.environ)).get(KEY_ENV, "")
    if value:
        if len(value) < 32:
            raise ConfigurationError(f"{KEY_ENV} must have at least 32 characters")
        return value
    return _dev_secret(settings.env, Path(settings.data_dir), "webhooks-key", "WEBHOOKS_KEY")


@dataclass(frozen=True)
class SigningKey:
    version: int
    secret: str


class SecretBox:
    """Seals and opens endpoints' secrets in `endpoint_secrets`."""

    def __init__(self, material: str):
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"quartier webhooks secrets v1"
        ).derive(material.encode())
        self._aead = AESGCM(key)

    @staticmethod
    def _aad(tenant_id: str, endpoint_id: str, version: int) -> bytes:
        return f"{tenant_id}/{endpoint_id}/{version}".encode()

    def seal(self, tenant_id: str, endpoint_id: str, version: int, secret: str) -> bytes:
        nonce = secrets.token_bytes(12)
        aad = self._aad(tenant_id, endpoint_id, version)
        return nonce + self._aead.encrypt(nonce, secret.encode(), aad)

    def open(self, tenant_id: str, endpoint_id: str, version: int, sealed: bytes) -> str:
        aad = self._aad(tenant_id, endpoint_id, version)
        return self._aead.decrypt(sealed[:12], sealed[12:], aad).decode()

    def store(
        self,
        conn: sa.Connection,
        tenant_id: str,
        endpoint_id: str,
        version: int,
        secret: str,
        now: datetime,
    ) -> datetime | None:
        """Keep `secret` as the endpoint's current one; the previous current
        one stays valid until now + ROTATION_GRACE (returned; None if none)."""
        t = endpoint_secrets
        mine = (t.c.tenant_id == tenant_id) & (t.c.endpoint_id == endpoint_id)
        conn.execute(t.delete().where(mine & (t.c.valid_until.is_not(None))))
        until = now + ROTATION_GRACE
        previous = conn.execute(
            t.update().where(mine & t.c.valid_until.is_(None)).values(valid_until=until)
        ).rowcount
        conn.execute(
            t.insert().values(
                tenant_id=tenant_id,
                endpoint_id=endpoint_id,
                version=version,
                sealed=self.seal(tenant_id, endpoint_id, version, secret),
                created_at=now,
                valid_until=None,
            )
        )
        return until if previous else None

    def signing_keys(
        self, conn: sa.Connection, tenant_id: str, endpoint_id: str, now: datetime
    ) -> list[SigningKey]:
        """The secrets that sign now: the current one first, then the
        previous one during its grace period."""
        t = endpoint_secrets
        rows = conn.execute(
            sa.select(t.c.version, t.c.sealed, t.c.valid_until)
            .where((t.c.tenant_id == tenant_id) & (t.c.endpoint_id == endpoint_id))
            .order_by(t.c.version.desc())
        ).all()
        return [
            SigningKey(row.version, self.open(tenant_id, endpoint_id, row.version, row.sealed))
            for row in rows
            if row.valid_until is None or row.valid_until > now
        ]

    @staticmethod
    def forget(conn: sa.Connection, tenant_id: str, endpoint_id: str) -> None:
        t = endpoint_secrets
        conn.execute(
            t.delete().where((t.c.tenant_id == tenant_id) & (t.c.endpoint_id == endpoint_id))
        )
