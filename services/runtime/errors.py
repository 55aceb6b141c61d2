"""Typed errors shared by every service and the gateway.

A service raises one of these; the bus turns it into an error reply
`{code, message, field, rule}`; the caller's bus raises the same class again;
the gateway maps it to a GraphQL error type. Anything else is an internal
error whose details stay in the service's log. A message written with
`i18n.t()` crosses the bus said in every supported language too
(`translations`), and the gateway answers it in the request's language.
"""

from __future__ import annotations

from typing import ClassVar

from services.runtime import i18n


class QuartierError(Exception):
    code: ClassVar[str] = "internal"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        rule: str | None = None,
        retry_after: int | None = None,
        translations: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.message = str(message)  # plain: msgspec encodes no str subclass
        self.text = message if isinstance(message, i18n.Text) else None  # `t()`'s, translatable
        self.field = field
        self.rule = rule
        self.retry_after = retry_after  # seconds, for RateLimited
        self.translations = translations  # {locale: message}, from a reply

    def message_in(self, locale: str) -> str:
        """The message in `locale` (English when it has no translation)."""
        if self.translations and locale in self.translations:
            return self.translations[locale]
        return i18n.translate(self.text or self.message, locale)

    def all_translations(self) -> dict[str, str] | None:
        """The message in each other language, for a reply over the bus."""
        return self.translations or (i18n.translations(self.text) if self.text else None)

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
    translations: dict[str, str] | None = None,
) -> QuartierError:
    return ERRORS_BY_CODE.get(code, InternalError)(
        message, field=field, rule=rule, retry_after=retry_after, translations=translations
    )
