"""Per-request context: who is calling (from the Bearer token, never from
input, and with the roles identity says the member has *now*: see
`current_principal`), for which tenant, the request's correlation id, the
bus, and the request's DataLoaders."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import msgspec
from litestar.datastructures import Headers, State
from litestar.exceptions import TooManyRequestsException
from litestar.types import Scope
from nats.errors import MaxPayloadError
from strawberry.dataloader import DataLoader
from strawberry.litestar import BaseContext

from gateway.budgets import Budgets, Refused, client_address
from services.identity import contract as idc
from services.runtime.auth import AccessClaims, is_operator_token, verify_access_token
from services.runtime.bus import Bus
from services.runtime.errors import (
    Forbidden,
    InternalError,
    InvalidInput,
    QuartierError,
    RateLimited,
    Unauthenticated,
    Unavailable,
)
from services.runtime.i18n import Locale, accepted_locale, request_locale, set_request_locale, t
from services.runtime.messages import ANONYMOUS, Actor, Request, new_correlation_id
from services.runtime.settings import Settings
from services.runtime.tenancy import RequestContext

CORRELATION = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


@dataclass
class Principal:
    """The verified caller, or why the presented credential was refused.

    A tenant API key (docs/api-keys.md) is presented as `api_key` by
    `resolve_principal` and verified by identity in `current_principal`,
    which fills `key_id`, `tenant_id` and `scopes`; its actor stays
    anonymous: a key never acts as a member (`Context.require_member` answers
    Forbidden), only as a holder of scopes (`gateway.keys`)."""

    actor: Actor = ANONYMOUS
    tenant_id: str | None = None
    tenant_slug: str | None = None
    credential: str | None = None
    refused: QuartierError | None = None  # Unauthenticated; RateLimited, Unavailable for keys
    expires_at: datetime | None = None
    api_key: str | None = field(default=None, repr=False)  # as presented: never logged
    key_id: str | None = None  # once identity verified `api_key`
    scopes: frozenset[str] = frozenset()  # a verified key's


@lru_cache(maxsize=4096)
def _verified(secret: str, token: str) -> AccessClaims:
    """A token's signature and claims are checked once; its expiry at each use.
    (Refusals are not cached: an exception is never stored.)"""
    return verify_access_token(secret, token)


def resolve_principal(settings: Settings, authorization: str | None) -> Principal:
    if not authorization:
        return Principal()
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return Principal(
            refused=Unauthenticated(t("use an 'Authorization: Bearer <token>' header"))
        )
    if token.startswith(idc.API_KEY_PREFIX):  # a tenant API key: identity verifies it
        return Principal(api_key=token)
    if token.count(".") != 2:  # not a JWT: the operator's credential, or nothing
        if is_operator_token(settings.operator_token, token):
            return Principal(actor=Actor(kind="operator"), credential=token)
        return Principal(refused=Unauthenticated(t("the access token is invalid")))
    try:
        claims = _verified(settings.jwt_secret, token)
        if claims.expires_at <= datetime.now(UTC):
            raise Unauthenticated(t("the access token has expired: refresh it"))
    except Unauthenticated as refused:
        return Principal(refused=refused)
    return Principal(
        actor=claims.actor(),
        tenant_id=claims.tenant_id,
        tenant_slug=claims.tenant_slug,
        expires_at=claims.expires_at,
    )


async def current_principal(
    bus: Bus, principal: Principal, correlation_id: str, address: str | None = None
) -> Principal:
    """A member's token is only as good as its session now: identity answers
    whether the session (`sid`) is still on and the member's current roles,
    which replace the token's (a demoted admin's earlier token carries no
    admin right; a signed-out, password-changed or demoted member's token
    stops working). One indexed read in identity per request.

    While identity is unreachable (or failing) the member keeps no role (least privilege:
    admin operations are refused, a member's own go on) and a revocation is
    not seen until identity is back (at most the access token's lifetime).

    An API key is verified by identity each time (`VerifyApiKey`: revoked or
    expired keys stop at once; bad keys are throttled per client `address`);
    while identity cannot say, the key is refused (Unavailable)."""
    if principal.api_key is not None and principal.refused is None:
        return await _verified_key(bus, principal, correlation_id, address)
    actor = principal.actor
    if actor.kind != "member" or principal.refused is not None:
        return principal
    ctx = RequestContext(tenant_id=principal.tenant_id, actor=actor, correlation_id=correlation_id)
    try:
        state = await bus.request(idc.CurrentSession(), ctx)
    except Unauthenticated as refused:
        return Principal(refused=refused)
    except (Unavailable, InternalError):  # identity cannot say: no role
        roles: tuple[str, ...] = ()
    else:
        roles = tuple(state.roles)
    return replace(principal, actor=msgspec.structs.replace(actor, roles=roles))


async def _verified_key(
    bus: Bus, principal: Principal, correlation_id: str, address: str | None
) -> Principal:
    assert principal.api_key is not None
    ctx = RequestContext(actor=ANONYMOUS, correlation_id=correlation_id)
    try:
        grant = await bus.request(
            idc.VerifyApiKey(key=principal.api_key, client_address=address), ctx
        )
    except QuartierError as refused:  # Unauthenticated, RateLimited, Unavailable…
        return Principal(api_key=principal.api_key, refused=refused)
    return Principal(
        tenant_id=grant.tenant_id,
        tenant_slug=grant.tenant_slug,
        expires_at=grant.expires_at,
        api_key=principal.api_key,
        key_id=grant.key_id,
        scopes=frozenset(grant.scopes),
    )


_KEY_NOT_A_MEMBER = (
    "an API key cannot do this: it reads the event stream, reports and exports "
    "of its network (its scopes), and never acts as a member"
)


class Context(BaseContext, kw_only=True):
    bus: Bus
    settings: Settings
    principal: Principal
    correlation_id: str
    idempotency_key: str | None = None  # the `Idempotency-Key` header, for create-like commands
    connection_params: dict[str, Any] | None = None
    loaders: dict[str, DataLoader[Any, Any]] = {}
    budgets: Budgets | None = None  # None: no budget (tests building a context by hand)
    caller: str = "address:unknown"  # `caller_key`
    budget_tenant: str | None = None  # the network whose budget the request spends too
    client_address: str | None = None  # the client's (`peer_address`): sign-in throttling
    locale: Locale = "en"  # the language of its messages (`Accept-Language`; gateway.execution)

    async def refresh_principal_from_params(self) -> None:
        """graphql-transport-ws: browsers send the token in connection_init."""
        params = self.connection_params or {}
        auth = params.get("Authorization") or params.get("authorization")
        if isinstance(auth, str):
            self.principal = await current_principal(
                self.bus,
                resolve_principal(self.settings, auth),
                self.correlation_id,
                self.client_address,
            )

    def request_context(
        self, actor: Actor | None = None, tenant_id: str | None = None
    ) -> RequestContext:
        p = self.principal
        # an API key's network is not put on requests made in its name: they
        # are anonymous ones (gateway.keys gives the network to what a key may do)
        return RequestContext(
            tenant_id=tenant_id or (p.tenant_id if p.key_id is None else None),
            actor=actor or p.actor,
            correlation_id=self.correlation_id,
            credential=p.credential,
            idempotency_key=self.idempotency_key,
        )

    def require_member(self) -> RequestContext:
        if self.principal.refused is not None:
            raise self.principal.refused
        if self.principal.key_id is not None:
            raise Forbidden(_KEY_NOT_A_MEMBER)
        if self.principal.actor.kind != "member":
            raise Unauthenticated(t("sign in first"))
        return self.request_context()

    def require_operator(self) -> RequestContext:
        if self.principal.refused is not None:
            raise self.principal.refused
        if self.principal.actor.kind == "member" or self.principal.key_id is not None:
            raise Forbidden(t("only the platform operator may do this"))
        if self.principal.actor.kind != "operator":
            raise Unauthenticated(t("this needs the platform operator's credential"))
        return self.request_context()

    def anonymous(self) -> RequestContext:
        return RequestContext(correlation_id=self.correlation_id)

    async def ask(self, message: Request, ctx: RequestContext | None = None) -> Any:
        try:
            return await self.bus.request(message, ctx or self.request_context())
        except UnicodeEncodeError:
            # JSON lets a client send a lone surrogate (a "\ud800" escape),
            # which no encoder accepts: bad input, not an internal error.
            raise InvalidInput(t("text must be valid Unicode")) from None
        except MaxPayloadError:
            # the gateway's own limits keep requests far below the bus's
            # (gateway.limits); should one still pass them, it is the
            # client's input that is too large, not a bug
            raise InvalidInput(t("the request is too large")) from None

    def loader(self, name: str, make: Callable[[], DataLoader[Any, Any]]) -> DataLoader[Any, Any]:
        """One DataLoader per name and request."""
        found = self.loaders.get(name)
        if found is None:
            found = self.loaders[name] = make()
        return found


def caller_key(principal: Principal, address: str) -> str:
    """Whose budget a request spends (`gateway.budgets`): the member's, the
    operator's, or the client address's."""
    actor = principal.actor
    if principal.refused is None and actor.kind == "member" and principal.tenant_id:
        return f"member:{principal.tenant_id}:{actor.member_id}"
    if principal.refused is None and actor.kind == "operator":
        return "operator"
    return f"address:{address}"


def peer_address(state: State, headers: Headers, scope: Scope) -> str:
    """The client's address (`X-Forwarded-For` only from a trusted proxy)."""
    client = scope.get("client") or ("local", 0)
    return client_address(client[0], headers.get("x-forwarded-for"), state.settings.trusted_proxies)


async def context_getter(state: State, headers: Headers, scope: Scope) -> Context:
    """The request's context, once its caller's request budget allowed it
    (429 with `Retry-After` otherwise)."""
    settings: Settings = state.settings
    locale = accepted_locale(headers.get("accept-language"))  # its messages' language
    set_request_locale(locale)  # for the refusals below
    principal = resolve_principal(settings, headers.get("authorization"))
    correlation = headers.get("x-correlation-id") or ""
    correlation = correlation if CORRELATION.match(correlation) else new_correlation_id()
    # the budgets first: a refused request costs identity nothing
    address = peer_address(state, headers, scope)
    caller = caller_key(principal, address)
    tenant = principal.tenant_id if caller.startswith("member:") else None
    budgets: Budgets = state.budgets
    try:
        budgets.request(caller, tenant)
    except Refused as refused:
        raise TooManyRequestsException(
            refused.said(), headers={"Retry-After": str(refused.retry_after)}
        ) from None
    principal = await current_principal(state.bus, principal, correlation, address)
    if principal.key_id is not None and principal.refused is None:
        try:  # a verified API key: its own bucket, then its network's (docs/api-keys.md)
            budgets.request(f"key:{principal.key_id}", principal.tenant_id)
        except Refused as refused:
            raise TooManyRequestsException(
                refused.said(), headers={"Retry-After": str(refused.retry_after)}
            ) from None
    if principal.key_id is None and isinstance(principal.refused, RateLimited):
        raise TooManyRequestsException(
            principal.refused.message_in(request_locale()),
            headers={"Retry-After": str(principal.refused.retry_after or 1)},
        )
    return Context(
        bus=state.bus,
        settings=settings,
        principal=principal,
        correlation_id=correlation,
        idempotency_key=headers.get("idempotency-key") or None,
        loaders={},
        budgets=budgets,
        caller=caller,
        budget_tenant=tenant,
        client_address=address,
        locale=locale,
    )
