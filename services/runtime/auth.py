"""Access tokens: short-lived JWTs issued by identity, verified by the gateway.

HS256 with a shared secret (`QUARTIER_JWT_SECRET`), the algorithm list pinned,
issuer and audience checked, `exp` required. The token names the member, the
tenant, the session (`sid`: the refresh-token family it was issued for) and
the tenant-wide roles *at issue time*. Those roles are informative only: the
gateway asks identity for the session's current state on every request
(`identity.CurrentSession`), which refuses an ended session and answers the
member's current roles; authorisation uses those (docs/security.md,
"Accounts and sessions"). A token without `sid` is refused.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from services.runtime.errors import Unauthenticated
from services.runtime.i18n import t
from services.runtime.messages import Actor

ALGORITHMS = ["HS256"]
ISSUER = "quartier"
AUDIENCE = "quartier"


@dataclass(frozen=True)
class AccessClaims:
    member_id: str
    tenant_id: str
    tenant_slug: str
    roles: tuple[str, ...]
    expires_at: datetime
    session_id: str = ""

    def actor(self) -> Actor:
        """The actor as the token says: its roles must be replaced with the
        current ones before anything is authorised (gateway/context.py)."""
        return Actor(
            kind="member",
            member_id=self.member_id,
            tenant_id=self.tenant_id,
            roles=self.roles,
            session_id=self.session_id or None,
        )


def issue_access_token(
    secret: str,
    *,
    member_id: str,
    tenant_id: str,
    tenant_slug: str,
    roles: tuple[str, ...],
    session_id: str,
    now: datetime,
    ttl: int,
) -> tuple[str, datetime]:
    expires_at = now + timedelta(seconds=ttl)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": member_id,
        "tid": tenant_id,
        "ten": tenant_slug,
        "sid": session_id,
        "roles": list(roles),
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHMS[0]), expires_at


def verify_access_token(secret: str, token: str) -> AccessClaims:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=ALGORITHMS,
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "aud", "iss", "sid"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated(t("the access token has expired: refresh it")) from None
    except jwt.PyJWTError:
        raise Unauthenticated(t("the access token is invalid")) from None
    try:
        return AccessClaims(
            member_id=str(claims["sub"]),
            tenant_id=str(claims["tid"]),
            tenant_slug=str(claims["ten"]),
            roles=tuple(str(r) for r in claims.get("roles", ())),
            expires_at=datetime.fromtimestamp(claims["exp"]).astimezone(),
            session_id=str(claims["sid"]),
        )
    except (KeyError, TypeError):
        raise Unauthenticated(t("the access token is invalid")) from None


def is_operator_token(configured: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(configured.encode(), (presented or "").encode())
