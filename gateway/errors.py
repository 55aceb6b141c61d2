"""Typed errors as GraphQL types, the members of mutation result unions
(`… | NotFound | ValidationError`); `gateway.kit` maps the services' typed
errors to them. Operational failures (a service down, rate limits, bugs) are
not part of a union: they become top-level GraphQL errors with an
`extensions.code`."""

from __future__ import annotations

import strawberry


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
