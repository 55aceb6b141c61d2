"""Size limits at the gateway's edges, each well below the next layer's so
that every refusal is a clear client error and none reaches the bus's
payload limit (1 MB, `infra/nats-server.conf`), where it would fail as an
internal error.

| what | limit | refused with |
|---|---|---|
| request line and headers, together | `MAX_HEADER_BYTES` (16 KiB) | 400 by the HTTP server (uvicorn's h11), before any header reaches the app |
| one header (e.g. `Authorization`) | `MAX_HEADER_VALUE` (8 KiB) | 431 `BAD_REQUEST` (`measured`, in `gateway.app`) |
| request body | `MAX_BODY` (4 MiB) | 413 `BAD_REQUEST` |
| a WebSocket message | `MAX_WS_MESSAGE` (1 MiB) | the connection closed (1009) |
| the GraphQL document | `MAX_DOCUMENT` characters, `MAX_TOKENS` tokens | `GRAPHQL_PARSE_FAILED` |
| one string in the variables | `MAX_TEXT` characters (the text policy's) | `BAD_USER_INPUT` naming the variable's path, e.g. `input.bio` |
| all the strings of the variables | `MAX_VARIABLES_TEXT` characters | `BAD_USER_INPUT` |
| values in the variables | `MAX_VARIABLE_VALUES` | `BAD_USER_INPUT` |
| a request to a service | the bus's payload limit | `INVALID_INPUT` "the request is too large" (a backstop: a variable used many times) |

A string written in the document itself is bounded by `MAX_DOCUMENT` and
then by the services' text policy (`services.runtime.text`), which names the
field."""

from __future__ import annotations

from typing import Any

from services.runtime.i18n import t
from services.runtime.text import MAX_TEXT

MAX_HEADER_BYTES = 16 * 1024
MAX_HEADER_VALUE = 8 * 1024
MAX_BODY = 4 * 1024 * 1024
MAX_WS_MESSAGE = 1024 * 1024
MAX_DOCUMENT = 100_000
MAX_TOKENS = 3000
MAX_VARIABLES_TEXT = 200_000
MAX_VARIABLE_VALUES = 10_000

__all__ = [
    "MAX_BODY",
    "MAX_DOCUMENT",
    "MAX_HEADER_BYTES",
    "MAX_HEADER_VALUE",
    "MAX_TEXT",
    "MAX_TOKENS",
    "MAX_VARIABLES_TEXT",
    "MAX_VARIABLE_VALUES",
    "MAX_WS_MESSAGE",
    "TooLarge",
    "check_variables",
]


class TooLarge(Exception):
    """A value past its limit; `path` names it (`input.bio`, `ids.3`), or is
    None for the variables as a whole."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.message = str(message)
        self.text = message  # a `t()` message, said in the request's language
        self.path = path


def check_variables(variables: dict[str, Any] | None) -> None:
    """Raise TooLarge for the first string longer than MAX_TEXT (its path
    named), or if the variables hold more than MAX_VARIABLES_TEXT characters
    of strings or MAX_VARIABLE_VALUES values. Iterative: a deeply nested
    value costs no stack (json.loads already bounded its depth)."""
    if not variables or not isinstance(variables, dict):
        return  # not an object: graphql-core refuses it
    stack: list[tuple[str, Any]] = [(str(k), v) for k, v in variables.items()]
    total = values = 0
    while stack:
        path, value = stack.pop()
        values += 1
        if values > MAX_VARIABLE_VALUES:
            raise TooLarge(
                t("the variables hold more than {limit} values", limit=MAX_VARIABLE_VALUES)
            )
        if isinstance(value, str):
            if len(value) > MAX_TEXT:
                raise TooLarge(
                    t(
                        "the variable `{path}` is too long: at most {limit} characters",
                        path=path,
                        limit=MAX_TEXT,
                    ),
                    path,
                )
            total += len(value)
            if total > MAX_VARIABLES_TEXT:
                raise TooLarge(
                    t(
                        "the variables hold more than {limit} characters of text",
                        limit=MAX_VARIABLES_TEXT,
                    )
                )
        elif isinstance(value, dict):
            stack.extend((f"{path}.{k}", v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{path}.{i}", v) for i, v in enumerate(value))
        elif isinstance(value, bytes):  # pragma: no cover - JSON has no bytes
            raise TooLarge(t("the variables must be JSON"))
