"""Calendar feeds at secret, revocable URLs: a hub's, or a member's own. The
URL's token is `<feed id hex>.<secret>`. Like the secret addresses of common
calendar services, the secret is kept (its owner may see the URL again: it
grants reading meetup dates and places, nothing else); renewing it makes a new
one and the old URL stops working."""

from __future__ import annotations

import hmac
import secrets
from typing import Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import event

from services.events.domain.meetup import NAMESPACE
from services.runtime.errors import InvalidToken
from services.runtime.eventstore import TenantAggregate
from services.runtime.i18n import t


def feed_id(tenant_id: str, scope: str, owner_id: str) -> UUID:
    return uuid5(NAMESPACE, f"feed:{tenant_id}:{scope}:{owner_id}")


def split_token(token: str) -> tuple[UUID, str]:
    try:
        selector, secret = (token or "").split(".", 1)
        return UUID(hex=selector), secret
    except ValueError:
        raise InvalidToken(t("this calendar address is not valid")) from None


class CalendarFeed(TenantAggregate):
    noun = "calendar feed"
    not_found = t("calendar feed not found")

    Created: ClassVar[type[Any]]
    Renewed: ClassVar[type[Any]]

    @staticmethod
    def create_id(tenant_id: str, scope: str, owner_id: str) -> UUID:
        return feed_id(tenant_id, scope, owner_id)

    @event("Created")
    def __init__(self, tenant_id: str, scope: str, owner_id: str, secret: str):
        self.tenant_id = tenant_id
        self.scope = scope  # "hub" (owner: the hub) or "member"
        self.owner_id = owner_id
        self.secret = secret

    @staticmethod
    def new(tenant_id: str, scope: str, owner_id: str) -> CalendarFeed:
        return CalendarFeed(
            tenant_id=tenant_id, scope=scope, owner_id=owner_id, secret=secrets.token_urlsafe(24)
        )

    @property
    def token(self) -> str:
        return f"{self.id.hex}.{self.secret}"

    def renew(self) -> None:
        self._renewed(secret=secrets.token_urlsafe(24))

    @event("Renewed")
    def _renewed(self, secret: str) -> None:
        self.secret = secret

    def check(self, secret: str) -> None:
        if not hmac.compare_digest(self.secret.encode(), secret.encode()):
            raise InvalidToken(t("this calendar address is not valid (it may have been renewed)"))
