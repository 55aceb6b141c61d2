"""What a service's GraphQL module (`gateway/<service>.py`, or a package
`gateway/<service>/` with one module per concern) is built from:

* `ask` for queries and `command` for mutations: the request goes to the
  service over NATS; a typed error becomes a top-level GraphQL error with its
  code (queries) or the matching member of the mutation's result union
  (`result_union`, commands);
* `require_member` / `require_operator`: the caller's credential, checked (`public_errors`
  turns any typed error raised in its block into a top-level error);
* `Connection[T]` / `Edge[T]` and `connection`: Relay connections (strawberry
  names a specialisation `MemberConnection`, `MemberEdge`, …);
* the usual reads, as a member: `ask_page` (a connection's page),
  `ask_by_id` (`thing(id:)`, or null), `ask_node` and `ask_listed` (what a
  node loader does); `raw_id` / `optional_raw_id` decode an input's global id,
  `given` an input's field of a partial update;
* `NodeLoader`: how `node(id:)` finds an object of a Node type.

A service module exposes, by convention, `Query`, `Mutation`, optionally
`Subscription`, `types` (its Node types, registered with the schema) and
`nodes` (Node type name → loader); `gateway.schema` merges them in the order
of `services/registry.py`. A package's `__init__.py` merges its modules'
`Query` and `Mutation` parts (`strawberry.tools.merge_types`), in the order
of their fields in `schema.graphql`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, Generic, Literal, TypeVar, Union

import msgspec
import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from gateway.context import Context
from gateway.errors import (
    Conflict,
    Forbidden,
    InvalidCredentials,
    InvalidToken,
    NotFound,
    RuleViolation,
    Unauthenticated,
    ValidationError,
)
from gateway.keys import key_context
from gateway.nodes import (
    PageInfo,
    decode_global_id,
    from_global_id,
    offset_cursor,
    page_info,
    parse_page,
    split_raw_id,
)
from services.runtime import errors as e
from services.runtime.i18n import request_locale
from services.runtime.messages import Request
from services.runtime.tenancy import RequestContext

T = TypeVar("T")
Caller = Literal["member", "operator", "anonymous", "events:read", "reports:read"]
"""Who may ask: a signed-in member, the operator, anyone; a scope (`events:read`…)
means a signed-in member or a tenant API key holding that scope (docs/api-keys.md)."""
NodeLoader = Callable[[Info[Context, Any], str], Awaitable[object | None]]
"""`(info, raw id) -> object | None`: the raw id is what follows `Type:` in the
decoded global id (a UUID, plus whatever the type put after it)."""


# -- top-level errors ------------------------------------------------------------


class PublicError(GraphQLError):
    """A top-level error whose message is safe to show even in production."""

    def __init__(self, message: str, code: str):
        super().__init__(message, extensions={"code": code.upper()})


def public(error: e.QuartierError) -> PublicError:
    return PublicError(said(error), error.code)


def said(error: e.QuartierError) -> str:
    """The error's message in the request's language (`Accept-Language`)."""
    return error.message_in(request_locale())


@contextmanager
def public_errors() -> Iterator[None]:
    """A service's typed error raised inside becomes a top-level error with its code."""
    try:
        yield
    except e.QuartierError as error:
        raise public(error) from error


def require_member(info: Info[Context, Any]) -> RequestContext:
    """The signed-in member's request context, or an UNAUTHENTICATED error."""
    with public_errors():
        return info.context.require_member()


def require_operator(info: Info[Context, Any]) -> RequestContext:
    """The platform operator's request context, or an UNAUTHENTICATED/FORBIDDEN error."""
    with public_errors():
        return info.context.require_operator()


def require_caller(info: Info[Context, Any], caller: Caller) -> RequestContext:
    """The request context of `caller` (see `Caller`), or a top-level error."""
    with public_errors():
        return _caller_context(info, caller)


def _caller_context(info: Info[Context, Any], caller: Caller) -> RequestContext:
    if caller == "member":
        return info.context.require_member()
    if caller == "operator":
        return info.context.require_operator()
    if caller == "anonymous":
        return info.context.anonymous()
    if info.context.principal.key_id is None:
        return info.context.require_member()
    return key_context(info.context.principal, caller, info.context.correlation_id)


async def ask(
    info: Info[Context, Any],
    message: Request,
    rctx: RequestContext | None = None,
    *,
    missing_as_none: bool = False,
) -> Any:
    """For queries: ask the service (as the caller, unless `rctx` says
    otherwise). A typed error becomes a top-level error with its code;
    with `missing_as_none`, NOT_FOUND answers None (a field "…, or null")."""
    try:
        return await info.context.ask(message, rctx)
    except e.QuartierError as error:
        if missing_as_none and isinstance(error, e.NotFound):
            return None
        raise public(error) from error


# -- mutations -------------------------------------------------------------------


ERROR_TYPES: dict[type[e.QuartierError], Callable[[e.QuartierError], Any]] = {
    e.InvalidInput: lambda x: ValidationError(message=said(x), code=x.code, field=_camel(x.field)),
    e.NotFound: lambda x: NotFound(message=said(x), code=x.code),
    e.Unauthenticated: lambda x: Unauthenticated(message=said(x), code=x.code),
    e.Forbidden: lambda x: Forbidden(message=said(x), code=x.code),
    e.Conflict: lambda x: Conflict(message=said(x), code=x.code, field=_camel(x.field)),
    e.RuleViolation: lambda x: RuleViolation(message=said(x), code=x.code, rule=x.rule),
    e.InvalidCredentials: lambda x: InvalidCredentials(message=said(x), code=x.code),
    e.InvalidToken: lambda x: InvalidToken(message=said(x), code=x.code),
}

COMMON_ERRORS = (ValidationError, NotFound, Unauthenticated, Forbidden, Conflict, RuleViolation)


def _camel(name: str | None) -> str | None:
    """A service's field name as the API spells it: `next_venue.name` →
    `nextVenue.name` (each dotted part on its own)."""
    if not name:
        return name

    def part(text: str) -> str:
        head, *rest = text.split("_")
        return head + "".join(p[:1].upper() + p[1:] for p in rest)

    return ".".join(part(p) for p in name.split("."))


def as_error_type(error: e.QuartierError) -> Any:
    """The member of a result union for a typed error; operational errors
    (UNAVAILABLE, internal, rate limits) are top-level errors instead."""
    make = ERROR_TYPES.get(type(error))
    if make is None:
        raise public(error) from error
    return make(error)


def result_union(name: str, *types: type) -> Any:
    """`Success | ValidationError | NotFound | Unauthenticated | Forbidden |
    Conflict | RuleViolation` (plus any extra error types given)."""
    members = tuple(dict.fromkeys((*types, *COMMON_ERRORS)))
    return Annotated[Union[members], strawberry.union(name)]  # noqa: UP007


async def command(
    info: Info[Context, Any],
    build: Callable[[], Request],
    wrap: Callable[[Any], T],
    *,
    caller: Caller = "member",
    fields: Mapping[str, str] | None = None,
) -> T | Any:
    """Run a mutation: check the caller's credential, build the command (ids
    decoded: a malformed one is a ValidationError), send it, wrap the reply.
    A typed error becomes the matching member of the result union; `fields`
    renames the service's field names to the mutation's input fields: a name
    ending with `.` renames a prefix (`{"changes.": ""}` for a command that
    wraps the input's fields in `changes`: `changes.bio` is the input's `bio`)."""
    try:
        rctx = _caller_context(info, caller)
        return wrap(await info.context.ask(build(), rctx))
    except e.QuartierError as error:
        if fields and error.field:
            error.field = input_field(error.field, fields)
        return as_error_type(error)


def input_field(field: str, fields: Mapping[str, str]) -> str:
    """A service's field name as the mutation's input names it (`command`'s
    `fields`: whole names first, then prefixes ending with `.`)."""
    if field in fields:
        return fields[field]
    for old, new in fields.items():
        if old.endswith(".") and field.startswith(old):
            return new + field[len(old) :]
    return field


# -- Relay connections and nodes ---------------------------------------------------


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    total_count: int


def connection(
    items: Sequence[Any], offset: int, total: int, node: Callable[[Any], T]
) -> Connection[T]:
    """A page of `items` (starting at `offset` of `total`) as a connection,
    each item made a node by `node`."""
    return Connection(
        edges=[
            Edge(cursor=offset_cursor(offset + i), node=node(item)) for i, item in enumerate(items)
        ],
        page_info=page_info(offset, len(items), total),
        total_count=total,
    )


async def resolve_node(
    info: Info[Context, Any], global_id: str, loaders: Mapping[str, NodeLoader]
) -> object | None:
    """`node(id:)`: the loader of the id's type, or null for an id that is
    malformed or of no known type."""
    found = decode_global_id(global_id)
    if found is None:
        return None
    type_name, raw_id = found
    loader = loaders.get(type_name)
    return None if loader is None else await loader(info, raw_id)


# -- the usual reads -------------------------------------------------------------------


def raw_id(global_id: str, type_name: str, field: str) -> str:
    """The UUID in an input's global id of `type_name`; anything else is an
    InvalidInput error naming `field`."""
    return from_global_id(global_id, type_name, field=field)


def optional_raw_id(global_id: str | None, type_name: str, field: str) -> str | None:
    """`raw_id` of an optional input: left out (None), None."""
    return None if global_id is None else raw_id(global_id, type_name, field)


def given(value: Any) -> Any:
    """A partial update's field: the service's UNSET when left out (or null
    where null means nothing)."""
    return msgspec.UNSET if value is None or value is strawberry.UNSET else value


async def ask_page(
    info: Info[Context, Any],
    first: int,
    after: str | None,
    build: Callable[[int, int], Request],
    node: Callable[[Any], T],
    *,
    caller: Caller = "member",
) -> Connection[T]:
    """A connection's page, as the signed-in member: `first`/`after` are
    checked, then the request is built for `(offset, limit)` (a bad page or a
    malformed id it decodes is a top-level error), sent, and each item made
    a node by `node`."""
    rctx = require_caller(info, caller)
    with public_errors():
        offset, limit = parse_page(first, after)
        request = build(offset, limit)
    found = await ask(info, request, rctx)
    return connection(found.items, offset, found.total, node)


async def ask_by_id(
    info: Info[Context, Any],
    global_id: str,
    type_name: str,
    build: Callable[[str], Request],
    node: Callable[[Any], T],
    *,
    caller: Caller = "member",
) -> T | None:
    """`thing(id:)`: one object of the signed-in member's network by its
    global id (a malformed one is a top-level error), or null when the
    service finds none (missing, or another network's)."""
    rctx = require_caller(info, caller)
    with public_errors():
        raw = raw_id(global_id, type_name, "id")
    found = await ask(info, build(raw), rctx, missing_as_none=True)
    return node(found) if found else None


async def ask_node(
    info: Info[Context, Any],
    raw: str,
    build: Callable[[str], Request],
    node: Callable[[Any], T],
    *,
    caller: Caller = "member",
) -> T | None:
    """A node loader for an id that is the object's UUID: the object as the
    signed-in member's own query finds it, or None."""
    parts = split_raw_id(raw)
    if parts is None:
        return None
    found = await ask(info, build(parts[0]), require_member(info), missing_as_none=True)
    return node(found) if found else None


def id_with_context(raw: str) -> tuple[str, str] | None:
    """(UUID, context UUID) of an id that carries what finds it again
    (`Type:uuid:context uuid`, e.g. a series and its hub), or None."""
    parts = split_raw_id(raw)
    context = split_raw_id(parts[1]) if parts and len(parts) == 2 else None
    return (parts[0], context[0]) if parts and context else None


async def ask_listed(
    info: Info[Context, Any],
    request: Request,
    matches: Callable[[Any], bool],
    node: Callable[[Any], T],
    *,
    missing_as_none: bool = True,
) -> T | None:
    """A node loader for an object the service lists but has no query for:
    the first listed item that `matches`, as a node, or None (a missing
    list, with `missing_as_none`, is None too)."""
    listed = await ask(info, request, require_member(info), missing_as_none=missing_as_none)
    match = next((item for item in listed or () if matches(item)), None)
    return node(match) if match is not None else None
