"""Download links: `/v1/exports/<export id>/download?token=<token>`.

The token is `<payload>.<signature>`: the payload (base64url of JSON) names
the export, its network and when the link expires (Unix seconds, on the
service's clock); the signature is HMAC-SHA256 of the payload under a key
derived from QUARTIER_EXPORTS_KEY (generated once in the data dir outside
production). Nothing is stored per link: any replica checks any link, and a
link cannot be made to name another export, another network or a later
expiry without the key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from services.runtime.errors import InvalidToken
from services.runtime.i18n import t
from services.runtime.settings import ConfigurationError, Settings, _dev_secret

KEY_ENV = "QUARTIER_EXPORTS_KEY"
LINK_SECONDS = 300  # a link lives five minutes


def key_material(settings: Settings, environ: Mapping[str, str] | None = None) -> bytes:
    """QUARTIER_EXPORTS_KEY (at least 32 characters), else outside
    production one generated in the data dir. Raises ConfigurationError."""
    value = (os.environ if environ is None else environ).get(KEY_ENV, "")
    if value and len(value) < 32:
        raise ConfigurationError(f"{KEY_ENV} must have at least 32 characters")
    if not value:
        value = _dev_secret(settings.env, Path(settings.data_dir), "exports-key", "EXPORTS_KEY")
    return hashlib.sha256(b"quartier-exports-links\x00" + value.encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    def __init__(self, key: bytes):
        self._key = key

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def token(self, export_id: str, tenant_id: str, expires: datetime) -> str:
        body = {"e": export_id, "t": tenant_id, "x": int(expires.timestamp())}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}"

    def check(self, token: str, export_id: str, now: datetime) -> str:
        """The link's network if `token` is a valid, unexpired link to
        `export_id`; InvalidToken otherwise (the same answer whatever is
        wrong)."""
        refused = InvalidToken(
            t("this download link is not valid or has expired: ask for a new one")
        )
        payload, _, signature = token.partition(".")
        if len(token) > 600 or not payload or not signature:
            raise refused
        if not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            raise refused
        try:
            body = json.loads(_unb64(payload))
            expires = datetime.fromtimestamp(int(body["x"]), UTC)
            linked, tenant_id = str(body["e"]), str(body["t"])
        except (ValueError, KeyError, TypeError):
            raise refused from None
        if linked != export_id or expires <= now:
            raise refused
        return tenant_id
