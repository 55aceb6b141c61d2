"""Typed errors as GraphQL types, for mutation result unions
(`… | NotFound | ValidationError`), and the mapping from the services' typed
errors. Operational failures (a service down, rate limits, bugs) are not part
of a union: they become top-level GraphQL errors with an `extensions.code`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import strawberry
from graphql import GraphQLError

from services.runtime import errors as e


@strawberry.interface(description="Something the client can fix or explain to the user.")
class Error:
    message: str
    code: str


@strawberry.type(description="A value is malformed or out of range; `field` names it.")
class ValidationError(Error):
    field: str | None = None


@strawberry.type(description="No such thing in this network (or not yours to see).")
class NotFound(Error):
    pass


@strawberry.type(description="No valid access token: missing, expired, forged or revoked.")
class Unauthenticated(Error):
    pass


@strawberry.type(description="Signed in, but not allowed to do this.")
class Forbidden(Error):
    pass


@strawberry.type(description="It already exists, or it changed meanwhile.")
class Conflict(Error):
    field: str | None = None


@strawberry.type(description="A rule of the network refuses this; `rule` names it.")
class RuleViolation(Error):
    rule: str | None = None


@strawberry.type(description="Wrong e-mail address or password.")
class InvalidCredentials(Error):
    pass


@strawberry.type(
    description="An invitation or refresh token that is unknown, used, expired or revoked."
)
class InvalidToken(Error):
    pass


ERROR_TYPES: dict[type[e.QuartierError], Callable[[e.QuartierError], Any]] = {
    e.InvalidInput: lambda x: ValidationError(
        message=x.message, code=x.code, field=_camel(x.field)
    ),
    e.NotFound: lambda x: NotFound(message=x.message, code=x.code),
    e.Unauthenticated: lambda x: Unauthenticated(message=x.message, code=x.code),
    e.Forbidden: lambda x: Forbidden(message=x.message, code=x.code),
    e.Conflict: lambda x: Conflict(message=x.message, code=x.code, field=_camel(x.field)),
    e.RuleViolation: lambda x: RuleViolation(message=x.message, code=x.code, rule=x.rule),
    e.InvalidCredentials: lambda x: InvalidCredentials(message=x.message, code=x.code),
    e.InvalidToken: lambda x: InvalidToken(message=x.message, code=x.code),
}


class PublicError(GraphQLError):
    """A top-level error whose message is safe to show even in production."""

    def __init__(self, message: str, code: str):
        super().__init__(message, extensions={"code": code.upper()})


def _camel(name: str | None) -> str | None:
    if not name:
        return name
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def as_error_type(error: e.QuartierError) -> Any:
    make = ERROR_TYPES.get(type(error))
    if make is None:
        raise PublicError(error.message, error.code) from error
    return make(error)


T = TypeVar("T")


async def result_or_error(call: Awaitable[T], fields: Mapping[str, str] | None = None) -> T | Any:
    """Await a service call; a typed error becomes the matching GraphQL error
    type, an operational one a top-level error. `fields` renames the service's
    field names to the mutation's input fields where they differ."""
    try:
        return await call
    except e.QuartierError as error:
        if fields and error.field in fields:
            error.field = fields[error.field]
        return as_error_type(error)


COMMON_ERRORS = (ValidationError, NotFound, Unauthenticated, Forbidden, Conflict, RuleViolation)


def result_union(name: str, *types: type) -> Any:
    """`Success | ValidationError | NotFound | Unauthenticated | Forbidden |
    Conflict | RuleViolation` (plus any extra error types given)."""
    from typing import Annotated, Union

    members = tuple(dict.fromkeys((*types, *COMMON_ERRORS)))
    return Annotated[Union[members], strawberry.union(name)]  # noqa: UP007
