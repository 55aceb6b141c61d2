"""Signed links, for answering without signing in (the Doodle practice):
an RSVP, a vote on a date poll, a visitor's answer, an unsubscription.

A link's token is a JWT (HS256, PyJWT) under a key of its own, derived from
the platform's secret, so that no link can pass for an access token or the
reverse. It names its tenant, its target (a meetup or a poll), its holder (a
member or a visitor), what it records, and a version: revoking a holder's
links (or all of a meetup's) bumps the version kept by the target, and older
links stop working. It expires when the meetup ends (polls: after
POLL_LINK_TTL; unsubscribe links: after UNSUBSCRIBE_TTL, as RFC 8058 expects
them to keep working for a long while).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from services.runtime.errors import InvalidToken
from services.runtime.i18n import t

ALGORITHMS = ["HS256"]
ISSUER = "quartier-links"
POLL_LINK_TTL = timedelta(days=60)
UNSUBSCRIBE_TTL = timedelta(days=365)
KINDS = ("rsvp", "vote", "visitor", "unsubscribe")


def link_key(secret: str) -> bytes:
    """The links' own key, derived from QUARTIER_JWT_SECRET."""
    return hmac.new(secret.encode(), b"quartier/links/v1", hashlib.sha256).digest()


@dataclass(frozen=True)
class Link:
    kind: str  # one of KINDS
    tenant_id: str
    target_id: str  # a meetup, a poll, or the member (unsubscribe)
    holder_id: str  # a member or a visitor
    answer: str | None  # what the link records (an answer, a vote)
    slot_id: str | None
    version: int
    expires_at: datetime


def sign(key: bytes, link: Link) -> str:
    claims = {
        "iss": ISSUER,
        "k": link.kind,
        "tid": link.tenant_id,
        "tg": link.target_id,
        "sub": link.holder_id,
        "a": link.answer,
        "sl": link.slot_id,
        "v": link.version,
        "exp": int(link.expires_at.timestamp()),
    }
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm="HS256")


def verify(key: bytes, token: str, now: datetime) -> Link:
    """The link a token carries, if it is ours, intact and not expired (by
    `now`, the service's clock); else InvalidToken."""
    if not token or len(token) > 2000:
        raise InvalidToken(t("this link is not valid"), rule="link_invalid")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=ALGORITHMS,
            issuer=ISSUER,
            options={"require": ["exp", "iss", "sub", "k"], "verify_exp": False},
        )
        link = Link(
            kind=str(claims["k"]),
            tenant_id=str(claims["tid"]),
            target_id=str(claims["tg"]),
            holder_id=str(claims["sub"]),
            answer=claims.get("a"),
            slot_id=claims.get("sl"),
            version=int(claims.get("v", 0)),
            expires_at=datetime.fromtimestamp(int(claims["exp"])).astimezone(),
        )
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        raise InvalidToken(t("this link is not valid"), rule="link_invalid") from None
    if link.kind not in KINDS:
        raise InvalidToken(t("this link is not valid"), rule="link_invalid")
    if now >= link.expires_at:
        raise InvalidToken(t("this link has expired"), rule="link_expired")
    return link
