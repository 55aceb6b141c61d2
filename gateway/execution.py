"""How a GraphQL operation runs, on top of strawberry: validation with the
limits, the operation chosen as the GraphQL spec says, an `extensions.code`
on every error, logs without values, and internal errors masked.

Error codes (`extensions.code`):

* request errors, before anything runs (no `data` in the response):
  `GRAPHQL_PARSE_FAILED` (syntax, token limit), `GRAPHQL_VALIDATION_FAILED`
  (the spec's rules; the limits of `gateway.costs`, with `extensions.limit`
  naming which: `depth`, `aliases`, `fields`, `cost`, `credentials`,
  `cycle`; introspection in production), `BAD_USER_INPUT` (a variable's
  value does not fit its type, or is too large: `extensions.field` names
  it), `RATE_LIMITED` (the caller's or network's cost budget is spent:
  `extensions.retryAfter` in seconds; 429 over HTTP),
  `OPERATION_NOT_FOUND` (no operation of that name, or several and no
  `operationName`), `BAD_REQUEST` (an operation this transport does not
  carry: a subscription over HTTP);
* field errors: the services' codes (`UNAUTHENTICATED`, `FORBIDDEN`,
  `INVALID_INPUT`, …, `UNAVAILABLE`), and `INTERNAL` for a bug, masked as
  "Internal error." (its traceback is logged).

Client mistakes are logged at info level with their code and path only:
messages may quote values (a variable's, an inline password)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import suppress
from functools import lru_cache
from typing import Any, ClassVar

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    parse,
    specified_rules,
    validate,
)
from graphql.validation import (
    ASTValidationRule,
    NoSchemaIntrospectionCustomRule,
)
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.schema.schema import Schema, StrawberryGraphQLCoreExecutionContext
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from gateway.budgets import Refused
from gateway.costs import MAX_ALIASES, MAX_DEPTH, analyse
from gateway.kit import PublicError
from gateway.limits import MAX_TOKENS, TooLarge, check_variables
from services.runtime.i18n import request_locale, set_request_locale, translate
from services.runtime.logging import get_logger

__all__ = [
    "MAX_ALIASES",
    "MAX_DEPTH",
    "MAX_TOKENS",
    "Language",
    "Masking",
    "Parsing",
    "QuartierSchema",
    "Validation",
]

log = get_logger("quartier.gateway")

PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
BAD_USER_INPUT = "BAD_USER_INPUT"
OPERATION_NOT_FOUND = "OPERATION_NOT_FOUND"
BAD_REQUEST = "BAD_REQUEST"
INTERNAL = "INTERNAL"
RATE_LIMITED = "RATE_LIMITED"
SERVER_CODES = frozenset({INTERNAL, "UNAVAILABLE"})
"""Codes that are not the client's doing; every other code is."""

MASKED_MESSAGE = "Internal error."

SPEC_RULES: tuple[type[ASTValidationRule], ...] = tuple(specified_rules)
PROD_SPEC_RULES = (*SPEC_RULES, NoSchemaIntrospectionCustomRule)


_parse = lru_cache(maxsize=256)(parse)


class Parsing(SchemaExtension):
    """Parsed documents cached. strawberry's ParserCache parses in its hook,
    outside the code that turns a syntax error into a request error: over
    graphql-transport-ws the client then got only `complete`, and the log a
    traceback. A document that does not parse is left to strawberry here,
    which parses it again and reports the error."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query:
            with suppress(GraphQLError):
                context.graphql_document = _parse(context.query, **context.parse_options)
        yield


@lru_cache(maxsize=256)
def _validate(
    schema: GraphQLSchema,
    document: DocumentNode,
    spec_rules: tuple[type[ASTValidationRule], ...],
    hide_suggestions: bool,
) -> tuple[GraphQLError, ...]:
    """The specification's rules, for a document `gateway.costs` let
    through: within the limits, fragments expanded, which bounds their work
    too (the rules that compare fields, the costliest, see at most
    MAX_FIELDS of them per selection)."""
    return tuple(validate(schema, document, spec_rules, hide_suggestions=hide_suggestions))


def validation_failed(error: GraphQLError) -> GraphQLError:
    """A spec rule's error, coded GRAPHQL_VALIDATION_FAILED."""
    error.extensions = {**(error.extensions or {}), "code": VALIDATION_FAILED}
    return error


def limit_error(message: str, limit: str) -> GraphQLError:
    """A limit of `gateway.costs` passed: a validation error (nothing ran)."""
    return GraphQLError(message, extensions={"code": VALIDATION_FAILED, "limit": limit})


def rate_limited(refused: Refused) -> GraphQLError:
    """Over a budget: 429 over HTTP, with `Retry-After`."""
    return GraphQLError(
        refused.said(),
        extensions={"code": RATE_LIMITED, "retryAfter": refused.retry_after},
    )


class Language(SchemaExtension):
    """The operation's messages in the language its request asked for
    (`Context.locale`, from `Accept-Language`): set where the resolvers
    run, which the context getter's task is not. Not reset afterwards:
    each request has a task of its own, and a refusal raised around the
    execution (429) is said in the same language."""

    def on_operation(self) -> Iterator[None]:
        locale = getattr(self.execution_context.context, "locale", None)
        if locale is not None:
            set_request_locale(locale)
        yield


class Validation(SchemaExtension):
    """Before anything else is spent on an operation, in this order:

    1. the variables' sizes (`gateway.limits.check_variables`: a string past
       the text policy's limit is refused naming it, `BAD_USER_INPUT`);
    2. the limits of `gateway.costs` (depth, aliases, fields, cost, one
       credential operation), in one pass linear in the document's size;
    3. the specification's rules (cached by document: built once, the rules
       keep the cache useful; rule classes made per request would defeat it);
    4. the operation's cost taken from the caller's and the network's budgets
       (`gateway.budgets`; `RATE_LIMITED` with `retryAfter` when spent).

    In production: no introspection, and no "Did you mean …?" suggestions
    (they would tell the schema that introspection hides)."""

    def __init__(self, prod: bool = False) -> None:
        super().__init__()
        self.prod = prod

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        context.pre_execution_errors = self.errors()
        yield

    def errors(self) -> list[GraphQLError]:
        context = self.execution_context
        assert context.graphql_document is not None
        try:
            check_variables(context.variables)
        except TooLarge as too_large:
            extensions = {"code": BAD_USER_INPUT, "field": too_large.path}
            return [
                GraphQLError(translate(too_large.text, request_locale()), extensions=extensions)
            ]
        verdict = analyse(
            context.schema._schema,
            context.graphql_document,
            context.operation_name,
            context.variables,
        )
        if verdict.refused is not None:
            return [limit_error(verdict.refused.message, verdict.refused.limit)]
        errors = _validate(
            context.schema._schema,
            context.graphql_document,
            PROD_SPEC_RULES if self.prod else SPEC_RULES,
            self.prod,
        )
        if errors:
            # a validation error, whatever it carries: a literal a scalar could
            # not parse keeps the scalar's exception (a ValueError), which would
            # read as a bug and be masked as INTERNAL
            return [validation_failed(error) for error in errors]
        caller = context.context
        budgets = getattr(caller, "budgets", None)
        if budgets is not None:
            try:
                budgets.cost(caller.caller, caller.budget_tenant, verdict.figures.cost)
            except Refused as refused:
                return [rate_limited(refused)]
        return []


# -- which operation ----------------------------------------------------------------


class Operation(ExecutionContext):
    """strawberry runs the document's first operation when no `operationName`
    is given, even if there are several; the spec requires a request error.
    That error comes from graphql-core's GetOperation() when execution starts,
    after validation, in the spec's order (`Executor` gives it its code)."""

    @property
    def operation_name(self) -> str | None:
        return self._provided_operation_name

    @property
    def operation_type(self) -> OperationType:
        """The operation's type; QUERY while it cannot be determined: the
        transport checks it before validation, and no operation runs."""
        if self.graphql_document is None:
            raise RuntimeError("no document")
        operations = [
            d for d in self.graphql_document.definitions if isinstance(d, OperationDefinitionNode)
        ]
        name = self._provided_operation_name
        found = [
            o for o in operations if name is None or (o.name is not None and o.name.value == name)
        ]
        return OperationType(found[0].operation.value) if len(found) == 1 else OperationType.QUERY


class Executor(StrawberryGraphQLCoreExecutionContext):
    """Errors of graphql-core's set-up (the operation, the variables' values)
    are request errors the client made: they get their code here."""

    hide_suggestions: ClassVar[bool] = False

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        if cls.hide_suggestions:
            kwargs["hide_suggestions"] = True
        built = super().build(*args, **kwargs)
        if isinstance(built, list):
            return [_with_code(error, _setup_code(error)) for error in built]
        return built


class ProdExecutor(Executor):
    """Production: a variable's error suggests no enum value or field name."""

    hide_suggestions = True


def _setup_code(error: GraphQLError) -> str:
    if error.message.startswith(("Unknown operation named", "Must provide")):
        return OPERATION_NOT_FOUND
    return BAD_USER_INPUT


def _with_code(error: GraphQLError, code: str) -> GraphQLError:
    error.extensions = {**(error.extensions or {}), "code": code}
    return error


# -- codes, logs and masks ----------------------------------------------------------


def error_code(error: GraphQLError) -> str:
    """The error's `extensions.code`, or the code its kind gets."""
    code = (error.extensions or {}).get("code")
    if isinstance(code, str):
        return code
    original = error.original_error
    if isinstance(original, CannotGetOperationTypeError):
        return OPERATION_NOT_FOUND
    if isinstance(original, InvalidOperationTypeError):
        return BAD_REQUEST
    if isinstance(original, MissingQueryError | GraphQLSyntaxError) or isinstance(
        error, GraphQLSyntaxError
    ):
        return PARSE_FAILED
    if original is None and not error.path:
        return VALIDATION_FAILED  # parse and validation errors carry no original error
    return INTERNAL


def is_public(error: GraphQLError) -> bool:
    return isinstance(error, PublicError) or isinstance(error.original_error, PublicError)


def should_mask(error: GraphQLError) -> bool:
    """A bug (not a service's own report of one, which carries its
    correlation id and nothing else)."""
    return (
        error_code(error) == INTERNAL and not is_public(error) and error.message != MASKED_MESSAGE
    )


def masked(error: GraphQLError) -> GraphQLError:
    return GraphQLError(
        MASKED_MESSAGE,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": INTERNAL},
    )


class Masking(MaskErrors):
    """Internal errors become "Internal error." with the code INTERNAL."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=should_mask, error_message=MASKED_MESSAGE)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        return masked(error)


def log_errors(errors: Iterable[GraphQLError]) -> None:
    """Codes and paths; never messages (they may quote values) nor the
    operation's text. Tracebacks for bugs only."""
    for error in errors:
        code = error_code(error)
        path = ".".join(str(p) for p in error.path or ()) or None
        if code not in SERVER_CODES:
            log.info("graphql.refused", code=code, path=path)
        elif is_public(error):  # a service's failure, logged there
            log.warning("graphql.service_failed", code=code, path=path)
        else:
            original = error.original_error
            log.error(
                "graphql.internal_error",
                path=path,
                error=type(original or error).__name__,
                exc_info=original,
            )


class QuartierSchema(Schema):
    """strawberry's Schema with the behaviour above."""

    def __init__(self, *args: Any, prod: bool = False, **kwargs: Any) -> None:
        executor = ProdExecutor if prod else Executor
        super().__init__(*args, execution_context_class=executor, **kwargs)

    def _create_execution_context(
        self,
        query: str | None,
        allowed_operation_types: Iterable[OperationType],
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionContext:
        return Operation(
            query=query,
            schema=self,
            allowed_operations=allowed_operation_types,
            context=context_value,
            root_value=root_value,
            variables=variable_values,
            provided_operation_name=operation_name,
            operation_extensions=operation_extensions,
        )

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """strawberry's default logs every error with the operation's source
        text, which may hold passwords and e-mail addresses."""
        for error in errors:
            if not (error.extensions or {}).get("code"):
                _with_code(error, error_code(error))
        log_errors(errors)

    async def stream(  # type: ignore[override]
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> Any:
        """Over WebSocket (graphql-transport-ws, which names no operation
        types) subscriptions only: its context is built once, when the
        connection opens, so a query or mutation there would run with the
        opener's roles and session for as long as the socket stays open —
        after a sign-out, a demotion or the token's expiry. Queries and
        mutations go over HTTP, authorised afresh each time."""
        if allowed_operation_types is None:
            allowed_operation_types = (OperationType.SUBSCRIPTION,)
        return await super().stream(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            operation_extensions,
            allowed_operation_types,
        )

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """strawberry raises for a document without an operation to run, or an
        operation the transport does not allow: answer request errors instead."""
        try:
            result = await super().execute(
                query,
                variable_values,
                context_value,
                root_value,
                operation_name,
                allowed_operation_types,
                operation_extensions,
            )
        except MissingQueryError:
            error = _with_code(GraphQLError("Syntax Error: the document is empty."), PARSE_FAILED)
        except CannotGetOperationTypeError as e:
            error = _with_code(GraphQLError(e.as_http_error_reason()), OPERATION_NOT_FOUND)
        except InvalidOperationTypeError as e:
            kind = e.operation_type.value
            message = (
                "subscriptions are served over WebSocket (graphql-transport-ws), not HTTP"
                if e.operation_type is OperationType.SUBSCRIPTION
                else f"{kind} operations are not allowed here"
            )
            error = _with_code(GraphQLError(message), BAD_REQUEST)
        else:
            # an exception outside strawberry's operation hooks skips the masking extension
            if result.errors:
                result.errors = [masked(e) if should_mask(e) else e for e in result.errors]
            return result
        log_errors([error])
        return ExecutionResult(data=None, errors=[error])
