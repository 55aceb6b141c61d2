"""Scoped Bearer credentials (docs/api-keys.md): which network and which
scopes a request's credential holds *now*, for what a tenant API key may do
— the event stream (`events:read`), reports (`reports:read`), exports
(`export`) — and a tenant admin's access token, which holds every scope of
its network.

* `require_scope(principal, scope)`: the `Bearer` (network, scopes, who), or
  Unauthenticated / Forbidden / RateLimited / Unavailable (raised, a
  `QuartierError`). `principal` is what `gateway.context.current_principal`
  answered, checked against identity's current state on this request.
* `bearer(state, headers, scope, address)`: the same for an HTTP endpoint
  (e.g. the export download): resolves the `Authorization` header, asks
  identity, checks the scope. One call per request.
* `while_allowed(items, recheck)`: a long response (a stream, a
  subscription) re-checks its credential every `RECHECK_SECONDS` and stops
  when it no longer holds the scope (a revoked or expired key, an ended
  session, a demoted admin), or when the server is stopping (`Stopping`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from litestar.datastructures import Headers, State

from gateway.context import Principal, current_principal, resolve_principal
from services.identity.contract import API_KEY_SCOPES
from services.runtime.errors import Forbidden, Unauthenticated, Unavailable
from services.runtime.i18n import t
from services.runtime.messages import Actor, new_correlation_id
from services.runtime.tenancy import RequestContext

T = TypeVar("T")

EVENTS_READ = "events:read"
REPORTS_READ = "reports:read"
EXPORT = "export"
TENANT_ADMIN_SCOPES = frozenset(API_KEY_SCOPES)  # a tenant admin holds every scope of its network
RECHECK_SECONDS = 2.0
"""How often a running stream or subscription checks that its credential
still holds its scope: a revoked key stops within about this long."""


@dataclass(frozen=True)
class Bearer:
    """A credential holding `scopes` on network `tenant_id`, until `expires_at`."""

    tenant_id: str
    tenant_slug: str | None
    scopes: frozenset[str]
    expires_at: datetime | None
    key_id: str | None  # an API key's id; None: a tenant admin's access token
    member_id: str | None

    @property
    def who(self) -> str:
        """For logs: `key:<id>` or `member:<id>`, never a name nor a secret."""
        return f"key:{self.key_id}" if self.key_id else f"member:{self.member_id}"


def scopes_of(principal: Principal) -> frozenset[str]:
    """The scopes a verified credential holds on its network: a tenant
    admin's access token all of them, an API key those it was issued with,
    anyone else none."""
    if principal.refused is not None:
        return frozenset()
    actor = principal.actor
    if actor.kind == "member" and actor.is_tenant_admin:
        return TENANT_ADMIN_SCOPES
    if principal.key_id is not None:
        return principal.scopes
    return frozenset()


def require_scope(principal: Principal, scope: str) -> Bearer:
    """The caller as a holder of `scope` on its network, or the error:
    the credential's refusal (Unauthenticated, RateLimited, Unavailable),
    Unauthenticated without a credential, Forbidden without the scope."""
    if principal.refused is not None:
        raise principal.refused
    if principal.actor.kind == "anonymous" and principal.key_id is None:
        raise Unauthenticated(
            t(
                "this needs a tenant admin's access token or an API key "
                "with the `{scope}` scope (`Authorization: Bearer <token>`)",
                scope=scope,
            )
        )
    if scope not in scopes_of(principal) or not principal.tenant_id:
        who = "this API key" if principal.key_id else "only a network's tenant admins"
        raise Forbidden(
            f"{who} may not do this: it needs the `{scope}` scope"
            if principal.key_id
            else f"{who} may do this (the `{scope}` scope)"
        )
    return Bearer(
        tenant_id=principal.tenant_id,
        tenant_slug=principal.tenant_slug,
        scopes=scopes_of(principal),
        expires_at=principal.expires_at,
        key_id=principal.key_id,
        member_id=principal.actor.member_id,
    )


def key_context(principal: Principal, scope: str, correlation_id: str) -> RequestContext:
    """The request context to ask a service with for an API key holding
    `scope`: its network's `service` actor carrying the key's id (a key is
    no member; the service records `key:<id>` as who acted). Raises what
    `require_scope` raises."""
    grant = require_scope(principal, scope)
    return RequestContext(
        tenant_id=grant.tenant_id,
        actor=Actor(kind="service", tenant_id=grant.tenant_id, key_id=grant.key_id),
        correlation_id=correlation_id,
    )


async def bearer(state: State, headers: Headers, scope: str, address: str | None) -> Bearer:
    """For an HTTP endpoint: the request's credential as a holder of `scope`
    (checked with identity now), or a `QuartierError` to answer (see
    `gateway.v1.error_response`). `address`: `gateway.context.peer_address`."""
    principal = await current_principal(
        state.bus,
        resolve_principal(state.settings, headers.get("authorization")),
        new_correlation_id(),
        address,
    )
    return require_scope(principal, scope)


class Stopping(Unavailable):
    """The server is stopping: a long response ends (resume elsewhere or later)."""

    def __init__(self) -> None:
        super().__init__("the server is stopping: reconnect and resume from your last position")


async def while_allowed(
    items: AsyncIterator[T],
    recheck: Callable[[], Awaitable[None]],
    every: float = RECHECK_SECONDS,
    stopping: asyncio.Event | None = None,
) -> AsyncIterator[T]:
    """`items`, as long as `recheck()` (called every `every` seconds, while
    items flow or not) raises nothing; its error ends the iteration and is
    raised to the consumer. `stopping` set (the server is stopping) ends it
    too, with `Stopping`. The item being awaited is cancelled then."""
    iterator = aiter(items)
    pending: asyncio.Task[T] | None = None
    stop = asyncio.ensure_future(stopping.wait()) if stopping is not None else None
    checked = time.monotonic()
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(iterator))
            wait = max(0.0, checked + every - time.monotonic())
            watched: set[asyncio.Future[Any]] = {pending} if stop is None else {pending, stop}
            done, _ = await asyncio.wait(watched, timeout=wait, return_when=FIRST_COMPLETED)
            if stop is not None and stop.done():
                raise Stopping()
            if time.monotonic() - checked >= every:
                await recheck()
                checked = time.monotonic()
            if pending not in done:
                continue
            task, pending = pending, None
            try:
                item = task.result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        for waiting in (pending, stop):
            if waiting is not None:
                waiting.cancel()
                with contextlib.suppress(BaseException):
                    await waiting
        close = getattr(iterator, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()
