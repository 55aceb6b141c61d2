"""GraphQL for the webhooks service: a network's endpoints, their
deliveries and attempts, and replays (tenant admins only; docs/webhooks.md).

By convention (see `gateway.kit`): `Query`, `Mutation`, `types`, `nodes`."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.kit import (
    Caller,
    Connection,
    NodeLoader,
    ask,
    ask_by_id,
    ask_node,
    ask_page,
    command,
    raw_id,
    require_caller,
    result_union,
)
from gateway.nodes import Node, to_global_id
from services.webhooks import contract as c

MANAGE: Caller = "events:read"
"""Webhooks are managed by a tenant admin, or with a tenant API key holding
`events:read` (docs/api-keys.md): a webhook is a way of reading the stream."""


@strawberry.enum(description="Where a delivery stands.")
class WebhookDeliveryStatus(Enum):
    PENDING = "pending"  # waiting for its (next) attempt
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # every attempt of the three-day schedule failed
    SKIPPED = "skipped"  # the endpoint was disabled or deleted: not sent (replayable)


@strawberry.type(description="One HTTP attempt of a delivery.")
class WebhookAttempt:
    number: int
    at: datetime
    status_code: int | None = strawberry.field(description="Null when no response came.")
    duration_ms: int
    error: str | None
    ok: bool


@strawberry.type(description="One event sent (or to send) to one endpoint.")
class WebhookDelivery(Node):
    delivery_id: strawberry.ID
    event_id: str = strawberry.field(description="The CloudEvent id: the `webhook-id` header.")
    event_type: str
    status: WebhookDeliveryStatus
    attempt_count: int
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None
    replay_of: strawberry.ID | None

    @strawberry.field(description="Its attempts, oldest first.")
    async def attempts(self, info: Info[Context, Any]) -> list[WebhookAttempt]:
        found = await ask(
            info, c.ListAttempts(delivery_id=self.delivery_id), require_caller(info, MANAGE)
        )
        return [
            WebhookAttempt(
                number=a.number,
                at=a.at,
                status_code=a.status_code,
                duration_ms=a.duration_ms,
                error=a.error,
                ok=a.ok,
            )
            for a in found
        ]

    @classmethod
    def from_contract(cls, d: c.Delivery) -> WebhookDelivery:
        return cls(
            id=to_global_id("WebhookDelivery", d.delivery_id),
            delivery_id=strawberry.ID(d.delivery_id),
            event_id=d.event_id,
            event_type=d.event_type,
            status=WebhookDeliveryStatus(d.status),
            attempt_count=d.attempts,
            created_at=d.created_at,
            next_attempt_at=d.next_attempt_at,
            delivered_at=d.delivered_at,
            last_error=d.last_error,
            replay_of=to_global_id("WebhookDelivery", d.replay_of) if d.replay_of else None,
        )


@strawberry.type(description="A receiver of the network's events (never shows its secret).")
class WebhookEndpoint(Node):
    endpoint_id: strawberry.ID
    url: str
    event_types: list[str] = strawberry.field(
        description="Prefixes of CloudEvents types; empty: every type."
    )
    description: str
    enabled: bool
    disabled_reason: str | None = strawberry.field(
        description='"admin", "failing", "api_key_revoked" or "api_key_expired" (the API key '
        "that created it stopped working)."
    )
    created_at: datetime
    updated_at: datetime
    secret_rotated_at: datetime | None
    pending: int
    failing_since: datetime | None
    owner: str = strawberry.field(
        description="Whose credential it depends on: a member id, or `key:<API key id>` when a "
        "key created it (revoking or the expiry of that key disables it)."
    )

    @strawberry.field(description="Its deliveries, newest first.")
    async def deliveries(
        self,
        info: Info[Context, Any],
        first: int = 20,
        after: str | None = None,
        status: WebhookDeliveryStatus | None = None,
    ) -> Connection[WebhookDelivery]:
        return await ask_page(
            info,
            first,
            after,
            lambda offset, limit: c.ListDeliveries(
                endpoint_id=self.endpoint_id,
                status=status.value if status else None,  # type: ignore[arg-type]  # an enum value
                offset=offset,
                limit=limit,
            ),
            WebhookDelivery.from_contract,
            caller=MANAGE,
        )

    @classmethod
    def from_contract(cls, e: c.Endpoint) -> WebhookEndpoint:
        return cls(
            id=to_global_id("WebhookEndpoint", e.endpoint_id),
            endpoint_id=strawberry.ID(e.endpoint_id),
            url=e.url,
            event_types=list(e.event_types),
            description=e.description,
            enabled=e.enabled,
            disabled_reason=e.disabled_reason,
            created_at=e.created_at,
            updated_at=e.updated_at,
            secret_rotated_at=e.secret_rotated_at,
            pending=e.pending,
            failing_since=e.failing_since,
            owner=e.owner,
        )


@strawberry.type(description="The endpoint and its signing secret: shown this once.")
class WebhookEndpointSecret:
    endpoint: WebhookEndpoint
    secret: str
    previous_valid_until: datetime | None


@strawberry.type
class WebhookEndpointPayload:
    endpoint: WebhookEndpoint


@strawberry.type
class WebhookEndpointDeleted:
    endpoint_id: strawberry.ID


@strawberry.type
class WebhookReplayed:
    queued: int
    delivery_ids: list[strawberry.ID]


WebhookSecretResult = result_union("WebhookSecretResult", WebhookEndpointSecret)
WebhookEndpointResult = result_union("WebhookEndpointResult", WebhookEndpointPayload)
WebhookDeleteResult = result_union("WebhookDeleteResult", WebhookEndpointDeleted)
WebhookReplayResult = result_union("WebhookReplayResult", WebhookReplayed)


@strawberry.input
class CreateWebhookEndpointInput:
    url: str
    event_types: list[str] = strawberry.field(default_factory=list)
    description: str = ""


@strawberry.input(description="Fields left out are unchanged.")
class UpdateWebhookEndpointInput:
    endpoint_id: strawberry.ID
    url: str | None = None
    event_types: list[str] | None = None
    description: str | None = None
    enabled: bool | None = None


@strawberry.input
class WebhookEndpointInput:
    endpoint_id: strawberry.ID


@strawberry.input
class ReplayWebhookDeliveryInput:
    delivery_id: strawberry.ID


@strawberry.input(
    description="The endpoint's deliveries created in [since, until]: failed and skipped "
    "ones, or all with `all`."
)
class ReplayWebhookDeliveriesInput:
    endpoint_id: strawberry.ID
    since: datetime
    until: datetime | None = None
    all: bool = False


def _endpoint_id(value: str) -> str:
    return raw_id(value, "WebhookEndpoint", "endpoint_id")


def _delivery_id(value: str) -> str:
    return raw_id(value, "WebhookDelivery", "delivery_id")


def _secret(reply: c.EndpointSecret) -> WebhookEndpointSecret:
    return WebhookEndpointSecret(
        endpoint=WebhookEndpoint.from_contract(reply.endpoint),
        secret=reply.secret,
        previous_valid_until=reply.previous_valid_until,
    )


def _replayed(reply: c.Replayed) -> WebhookReplayed:
    return WebhookReplayed(
        queued=reply.queued,
        delivery_ids=[to_global_id("WebhookDelivery", d) for d in reply.deliveries],
    )


@strawberry.type
class Query:
    @strawberry.field(
        description="Tenant admin or an `events:read` API key: the network's webhook endpoints."
    )
    async def webhook_endpoints(
        self, info: Info[Context, Any], first: int = 20, after: str | None = None
    ) -> Connection[WebhookEndpoint]:
        return await ask_page(
            info,
            first,
            after,
            lambda offset, limit: c.ListEndpoints(offset=offset, limit=limit),
            WebhookEndpoint.from_contract,
            caller=MANAGE,
        )

    @strawberry.field(
        description="Tenant admin or an `events:read` API key: an endpoint by global id, or null."
    )
    async def webhook_endpoint(
        self, info: Info[Context, Any], id: strawberry.ID
    ) -> WebhookEndpoint | None:
        return await ask_by_id(
            info,
            id,
            "WebhookEndpoint",
            lambda raw: c.GetEndpoint(endpoint_id=raw),
            WebhookEndpoint.from_contract,
            caller=MANAGE,
        )


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Tenant admin or an `events:read` API key: register an endpoint; its signing secret is shown this once."
    )
    async def create_webhook_endpoint(
        self, info: Info[Context, Any], input: CreateWebhookEndpointInput
    ) -> WebhookSecretResult:
        return await command(
            info,
            lambda: c.CreateEndpoint(
                url=input.url, event_types=list(input.event_types), description=input.description
            ),
            _secret,
            caller=MANAGE,
        )

    @strawberry.mutation(
        description="Tenant admin or an `events:read` API key: change, disable or enable an endpoint."
    )
    async def update_webhook_endpoint(
        self, info: Info[Context, Any], input: UpdateWebhookEndpointInput
    ) -> WebhookEndpointResult:
        return await command(
            info,
            lambda: c.UpdateEndpoint(
                endpoint_id=_endpoint_id(input.endpoint_id),
                url=input.url,
                event_types=list(input.event_types) if input.event_types is not None else None,
                description=input.description,
                enabled=input.enabled,
            ),
            lambda e: WebhookEndpointPayload(endpoint=WebhookEndpoint.from_contract(e)),
            caller=MANAGE,
        )

    @strawberry.mutation(
        description="Tenant admin or an `events:read` API key: a new signing secret (shown this once); the previous one "
        "keeps signing for 24 hours."
    )
    async def rotate_webhook_secret(
        self, info: Info[Context, Any], input: WebhookEndpointInput
    ) -> WebhookSecretResult:
        return await command(
            info,
            lambda: c.RotateEndpointSecret(endpoint_id=_endpoint_id(input.endpoint_id)),
            _secret,
            caller=MANAGE,
        )

    @strawberry.mutation(
        description="Tenant admin or an `events:read` API key: delete an endpoint (its queue is dropped)."
    )
    async def delete_webhook_endpoint(
        self, info: Info[Context, Any], input: WebhookEndpointInput
    ) -> WebhookDeleteResult:
        raw = input.endpoint_id
        return await command(
            info,
            lambda: c.DeleteEndpoint(endpoint_id=_endpoint_id(raw)),
            lambda _: WebhookEndpointDeleted(endpoint_id=raw),
            caller=MANAGE,
        )

    @strawberry.mutation(
        description="Tenant admin or an `events:read` API key: retry now — the endpoint's next "
        "pending delivery is due at once, its retry schedule started again (after an outage)."
    )
    async def retry_webhook_deliveries(
        self, info: Info[Context, Any], input: WebhookEndpointInput
    ) -> WebhookEndpointResult:
        return await command(
            info,
            lambda: c.RetryDeliveries(endpoint_id=_endpoint_id(input.endpoint_id)),
            lambda e: WebhookEndpointPayload(endpoint=WebhookEndpoint.from_contract(e)),
            caller=MANAGE,
        )

    @strawberry.mutation(
        description="Tenant admin or an `events:read` API key: send a delivery's event again."
    )
    async def replay_webhook_delivery(
        self, info: Info[Context, Any], input: ReplayWebhookDeliveryInput
    ) -> WebhookReplayResult:
        return await command(
            info,
            lambda: c.ReplayDelivery(delivery_id=_delivery_id(input.delivery_id)),
            _replayed,
            caller=MANAGE,
        )

    @strawberry.mutation(
        description="Tenant admin or an `events:read` API key: send a range of deliveries again."
    )
    async def replay_webhook_deliveries(
        self, info: Info[Context, Any], input: ReplayWebhookDeliveriesInput
    ) -> WebhookReplayResult:
        return await command(
            info,
            lambda: c.ReplayDeliveries(
                endpoint_id=_endpoint_id(input.endpoint_id),
                since=input.since,
                until=input.until,
                all=input.all,
            ),
            _replayed,
            caller=MANAGE,
        )


# -- Node types and their loaders (node(id:)) -------------------------------------


async def endpoint_node(info: Info[Context, Any], raw: str) -> WebhookEndpoint | None:
    return await ask_node(
        info, raw, lambda i: c.GetEndpoint(endpoint_id=i), WebhookEndpoint.from_contract
    )


async def delivery_node(info: Info[Context, Any], raw: str) -> WebhookDelivery | None:
    return await ask_node(
        info, raw, lambda i: c.GetDelivery(delivery_id=i), WebhookDelivery.from_contract
    )


types: list[type] = [WebhookEndpoint, WebhookDelivery]
nodes: dict[str, NodeLoader] = {
    "WebhookEndpoint": endpoint_node,
    "WebhookDelivery": delivery_node,
}
