"""Access tokens: short-lived JWTs issued by identity, verified by the gateway.

HS256 with a shared secret (`QUARTIER_JWT_SECRET`), the algorithm list pinned,
issuer and audience checked, `exp` required. The token names the member, the
tenant and the tenant-wide roles; hub roles are the hubs service's business.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from services.runtime.errors import Unauthenticated
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

    def actor(self) -> Actor:
        return Actor(
            kind="member", member_id=self.member_id, tenant_id=self.tenant_id, roles=self.roles
        )


def issue_access_token(
    secret: str,
    *,
    member_id: str,
    tenant_id: str,
    tenant_slug: str,
    roles: tuple[str, ...],
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
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("the access token has expired: refresh it") from None
    except jwt.PyJWTError:
        raise Unauthenticated("the access token is invalid") from None
    try:
        return AccessClaims(
            member_id=str(claims["sub"]),
            tenant_id=str(claims["tid"]),
            tenant_slug=str(claims["ten"]),
            roles=tuple(str(r) for r in claims.get("roles", ())),
            expires_at=datetime.fromtimestamp(claims["exp"]).astimezone(),
        )
    except (KeyError, TypeError):
        raise Unauthenticated("the access token is invalid") from None


def is_operator_token(configured: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(configured.encode(), (presented or "").encode())
