"""Tenancy context and guards.

Every request runs with a `RequestContext` (tenant, actor, correlation id) held
in a context variable and bound to the log. Aggregates carry `tenant_id`; a
handler that loads one checks it first, and an aggregate of another tenant is
reported exactly like a missing one.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
import structlog

from services.runtime.errors import Forbidden, NotFound, Unauthenticated
from services.runtime.i18n import t
from services.runtime.messages import ANONYMOUS, Actor, new_correlation_id


@dataclass(frozen=True)
class RequestContext:
    tenant_id: str | None = None
    actor: Actor = ANONYMOUS
    correlation_id: str = field(default_factory=new_correlation_id)
    credential: str | None = None
    idempotency_key: str | None = None

    def require_tenant(self) -> str:
        if not self.tenant_id:
            raise Unauthenticated(t("this operation needs a tenant: sign in first"))
        return self.tenant_id

    def require_member(self) -> str:
        """The acting member's id; the actor must be a member of the context's tenant."""
        actor = self.actor
        if actor.kind != "member" or not actor.member_id or not actor.tenant_id:
            raise Unauthenticated(t("sign in as a member of this network"))
        if actor.tenant_id != self.tenant_id:
            raise Forbidden(t("this token belongs to another network"))
        return actor.member_id

    def require_tenant_admin(self) -> str:
        """The acting member's id if they are a tenant admin. The actor's
        roles are the member's current ones: the gateway replaces the access
        token's with identity's answer for the token's session on every
        request (gateway/context.py, `current_principal`), so a demoted
        admin's earlier token carries no admin right. Forbidden otherwise."""
        member_id = self.require_member()
        if "tenant_admin" not in self.actor.roles:
            raise Forbidden(t("only a tenant admin may do this"))
        return member_id


def as_service(ctx: RequestContext) -> RequestContext:
    """A service asking another on behalf of a request: same tenant and
    correlation id, the `service` actor (which no token can carry)."""
    return RequestContext(
        tenant_id=ctx.tenant_id, actor=Actor(kind="service"), correlation_id=ctx.correlation_id
    )


_current: contextvars.ContextVar[RequestContext] = contextvars.ContextVar(
    "quartier_request", default=RequestContext()
)


def current() -> RequestContext:
    return _current.get()


@contextmanager
def request_scope(ctx: RequestContext) -> Iterator[RequestContext]:
    token = _current.set(ctx)
    with structlog.contextvars.bound_contextvars(
        tenant=ctx.tenant_id, correlation_id=ctx.correlation_id
    ):
        try:
            yield ctx
        finally:
            _current.reset(token)


class TenantScoped(Protocol):
    tenant_id: str


T = TypeVar("T", bound=TenantScoped)


def guard_tenant(obj: T | None, tenant_id: str | None, what: str) -> T:
    """Return `obj` if it exists and belongs to `tenant_id`, else NotFound."""
    if obj is None or tenant_id is None or getattr(obj, "tenant_id", None) != tenant_id:
        raise NotFound(t("{what} not found", what=what))
    return obj


def scoped(table: sa.Table, tenant_id: str) -> sa.Select[Any]:
    """Every read-model query starts here: rows of one tenant only."""
    return sa.select(table).where(table.c.tenant_id == tenant_id)
