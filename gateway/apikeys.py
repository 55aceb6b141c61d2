"""GraphQL for tenant API keys (docs/api-keys.md): tenant admins list,
create and revoke their network's keys. The secret is in the answer to
`createApiKey` only; listings show the key's prefix. Merged into the
identity module's `Query` and `Mutation` (identity owns credentials)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.kit import Connection, ask, command, connection, public_errors, require_member
from gateway.kit import result_union as _result_union
from gateway.nodes import from_global_id, parse_page, to_global_id
from services.identity import contract as c


@strawberry.enum(description="What an API key may be used for.")
class ApiKeyScope(Enum):
    EVENTS_READ = strawberry.enum_value(
        "events:read",
        description="Read the event stream (GET /v1/events, the tenantEvents subscription) "
        "and manage webhooks.",
    )
    REPORTS_READ = strawberry.enum_value("reports:read", description="Read the reports.")
    EXPORT = strawberry.enum_value("export", description="Export the network's data.")


@strawberry.type(
    description="A tenant API key: a Bearer credential for analytics consumers, with "
    "scopes; never for a member's operations. Its secret is shown once, at creation."
)
class ApiKey:
    id: strawberry.ID = strawberry.field(description="Give it to `revokeApiKey`.")
    name: str
    prefix: str = strawberry.field(
        description="How the key starts (`qk_` and 12 hex digits): to recognise it."
    )
    scopes: list[ApiKeyScope]
    created_at: datetime
    last_used_at: datetime | None = strawberry.field(
        description="The last request made with it (to within a minute)."
    )
    expires_at: datetime | None = strawberry.field(description="null: it does not expire.")
    revoked_at: datetime | None

    @classmethod
    def from_contract(cls, k: c.ApiKeyInfo) -> ApiKey:
        return cls(
            id=to_global_id("ApiKey", k.key_id),
            name=k.name,
            prefix=k.prefix,
            scopes=[ApiKeyScope(s) for s in k.scopes if s in c.API_KEY_SCOPES],
            created_at=k.created_at,
            last_used_at=k.last_used_at,
            expires_at=k.expires_at,
            revoked_at=k.revoked_at,
        )


@strawberry.type(description="The new key, and its secret: shown this once, store it now.")
class ApiKeyCreated:
    api_key: ApiKey
    secret: str = strawberry.field(
        description="The whole key (`qk_…`), to send as `Authorization: Bearer <secret>`. "
        "Only its hash is kept: it cannot be shown again."
    )


@strawberry.type(description="The key no longer works (a running stream stops within seconds).")
class ApiKeyRevoked:
    api_key: ApiKey


@strawberry.input
class CreateApiKeyInput:
    name: str = strawberry.field(description="1 to 80 characters, e.g. the consumer's name.")
    scopes: list[ApiKeyScope] = strawberry.field(description="At least one.")
    expires_at: datetime | None = strawberry.field(
        default=None, description="From a minute to three years ahead; null: never."
    )


@strawberry.input
class RevokeApiKeyInput:
    id: strawberry.ID


CreateApiKeyResult = _result_union("CreateApiKeyResult", ApiKeyCreated)
RevokeApiKeyResult = _result_union("RevokeApiKeyResult", ApiKeyRevoked)


@strawberry.type
class ApiKeyQuery:
    @strawberry.field(description="Tenant admins: the network's API keys, newest first.")
    async def api_keys(
        self, info: Info[Context, Any], first: int = 20, after: str | None = None
    ) -> Connection[ApiKey]:
        rctx = require_member(info)
        with public_errors():
            offset, limit = parse_page(first, after)
        page = await ask(info, c.ListApiKeys(offset=offset, limit=limit), rctx)
        return connection(page.items, offset, page.total, ApiKey.from_contract)


@strawberry.type
class ApiKeyMutation:
    @strawberry.mutation(
        description="Tenant admin: a new API key with scopes, a name and an optional expiry. "
        "The answer holds its secret, shown this once. (Not idempotent: a retry makes "
        "another key; revoke the one you did not get.)"
    )
    async def create_api_key(
        self, info: Info[Context, Any], input: CreateApiKeyInput
    ) -> CreateApiKeyResult:
        return await command(
            info,
            lambda: c.CreateApiKey(
                name=input.name,
                scopes=[s.value for s in input.scopes],
                expires_at=input.expires_at,
            ),
            lambda issued: ApiKeyCreated(
                api_key=ApiKey.from_contract(issued.key), secret=issued.secret
            ),
        )

    @strawberry.mutation(description="Tenant admin: revoke an API key; it stops working at once.")
    async def revoke_api_key(
        self, info: Info[Context, Any], input: RevokeApiKeyInput
    ) -> RevokeApiKeyResult:
        return await command(
            info,
            lambda: c.RevokeApiKey(key_id=from_global_id(input.id, "ApiKey", field="id")),
            lambda revoked: ApiKeyRevoked(api_key=ApiKey.from_contract(revoked)),
        )


types: list[type] = [ApiKey]
