"""Typed errors shared by every service and the gateway.

A service raises one of these; the bus turns it into an error reply
`{code, message, field, rule}`; the caller's bus raises the same class again;
the gateway maps it to a GraphQL error type. Anything else is an internal
error whose details stay in the service's log.
"""

from __future__ import annotations

from typing import ClassVar


class QuartierError(Exception):
    code: ClassVar[str] = "internal"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        rule: str | None = None,
        retry_after: int | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.field = field
        self.rule = rule
        self.retry_after = retry_after  # seconds, for RateLimited

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, field={self.field!r}, rule={self.rule!r})"


class InvalidInput(QuartierError):
    """A value is malformed or out of range (names the field)."""

    code = "invalid_input"


class NotFound(QuartierError):
    """No such thing, or it belongs to another tenant (the two look the same)."""

    code = "not_found"


class Unauthenticated(QuartierError):
    """No credential, or an expired, forged or revoked one."""

    code = "unauthenticated"


class Forbidden(QuartierError):
    """The actor is known but may not do this."""

    code = "forbidden"


class Conflict(QuartierError):
    """The thing already exists or changed meanwhile."""

    code = "conflict"


class RuleViolation(QuartierError):
    """A domain rule refuses the command (names the rule)."""

    code = "rule_violation"


class InvalidCredentials(QuartierError):
    code = "invalid_credentials"


class InvalidToken(QuartierError):
    """A single-use token (invitation, refresh) is unknown, spent, expired or revoked."""

    code = "invalid_token"


class Unavailable(QuartierError):
    """A service did not answer in time (it may be restarting)."""

    code = "unavailable"


class RateLimited(QuartierError):
    """Too many requests or attempts: try again in `retry_after` seconds."""

    code = "rate_limited"


class InternalError(QuartierError):
    code = "internal"


ERRORS_BY_CODE: dict[str, type[QuartierError]] = {
    cls.code: cls
    for cls in (
        InvalidInput,
        NotFound,
        Unauthenticated,
        Forbidden,
        Conflict,
        RuleViolation,
        InvalidCredentials,
        InvalidToken,
        Unavailable,
        RateLimited,
        InternalError,
    )
}


def error_from_code(
    code: str,
    message: str,
    field: str | None = None,
    rule: str | None = None,
    retry_after: int | None = None,
) -> QuartierError:
    return ERRORS_BY_CODE.get(code, InternalError)(
        message, field=field, rule=rule, retry_after=retry_after
    )
