"""The GraphQL schema: one module per service merged here, with the security
extensions. `python -m gateway.schema` prints the SDL that `schema.graphql`
keeps (a test fails when they drift)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import strawberry
from graphql import GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, Info

from gateway.context import Context
from gateway.errors import PublicError
from gateway.hubs import Hub, HubsMutation, HubsQuery, Nomination, load_hub
from gateway.identity import (
    IdentityMutation,
    IdentityQuery,
    Invitation,
    Member,
    Tenant,
    load_member,
)
from gateway.nodes import Node, global_type
from gateway.stream import StreamSubscription
from services.runtime.errors import QuartierError
from services.runtime.logging import get_logger

log = get_logger("quartier.gateway")

SCHEMA_FILE = Path(__file__).with_name("schema.graphql")

MAX_DEPTH = 12
MAX_ALIASES = 20
MAX_TOKENS = 3000

# Built once: a rule class made per request would defeat the validation cache.
_LIMIT_RULES = [
    *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
    *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
]
_PROD_RULES = [*_LIMIT_RULES, NoSchemaIntrospectionCustomRule]


class Limits(AddValidationRules):
    def __init__(self) -> None:
        super().__init__(_LIMIT_RULES)


class ProdLimits(AddValidationRules):
    """Also refuses introspection."""

    def __init__(self) -> None:
        super().__init__(_PROD_RULES)


class NoSuggestions(SchemaExtension):
    """Production: validation errors do not suggest field names ("Did you mean …?")."""

    def on_validate(self) -> Iterator[None]:
        yield
        for error in self.execution_context.pre_execution_errors or ():
            if "Did you mean" in error.message:
                error.message = error.message.split(" Did you mean", 1)[0]


def _should_mask(error: GraphQLError) -> bool:
    original = getattr(error, "original_error", None)
    if isinstance(error, PublicError) or isinstance(original, PublicError):
        return False
    return original is not None  # validation errors stay; exceptions are masked


@strawberry.type
class NodeQuery:
    @strawberry.field(description="Any object by its global id (Relay).")
    async def node(self, info: Info[Context, Any], id: strawberry.ID) -> Node | None:
        found = global_type(id)
        if found is None:
            return None
        type_name, raw = found
        if type_name == "Member":
            try:
                info.context.require_member()
            except QuartierError as e:
                raise PublicError(e.message, e.code) from e
            return await load_member(info, raw)
        if type_name == "Hub":
            return await load_hub(info, id)
        return None


Query = merge_types("Query", (NodeQuery, IdentityQuery, HubsQuery))
Mutation = merge_types("Mutation", (IdentityMutation, HubsMutation))
Subscription = merge_types("Subscription", (StreamSubscription,))


class QuartierSchema(strawberry.Schema):
    """strawberry's default logs every error with the operation's source text,
    which may hold passwords and e-mail addresses: log codes and paths only,
    and the traceback of internal errors."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            original = error.original_error
            path = ".".join(str(p) for p in error.path or ())
            if (
                original is None
                or isinstance(error, PublicError)
                or isinstance(original, PublicError)
            ):
                code = (error.extensions or {}).get("code", "GRAPHQL_VALIDATION_FAILED")
                log.info("graphql.refused", code=code, path=path or None)
            else:
                log.error(
                    "graphql.internal_error",
                    path=path or None,
                    error=type(original).__name__,
                    exc_info=original,
                )


def build_schema(prod: bool = False) -> strawberry.Schema:
    extensions: list[Any] = [
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        ProdLimits if prod else Limits,
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
        lambda: MaskErrors(should_mask_error=_should_mask, error_message="Internal error."),
    ]
    if prod:
        extensions.append(NoSuggestions)
    return QuartierSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Member, Tenant, Invitation, Hub, Nomination],
        extensions=extensions,
    )


def sdl() -> str:
    return build_schema().as_str() + "\n"


if __name__ == "__main__":
    print(sdl(), end="")
