"""The tenant's event stream for analytics consumers and admin consoles:
a GraphQL subscription (graphql-transport-ws) over the tenant's subjects of
QUARTIER_EVENTS. Tenant admins only; the events carry ids and non-personal
facts only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any

import msgspec
import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from gateway.context import Context
from gateway.kit import PublicError, public_errors
from services.runtime.errors import Forbidden, InvalidInput
from services.runtime.stream import cloud_event_decoder, read_tenant_events


@strawberry.type(description="A domain event as a CloudEvent (1.0).")
class StreamEvent:
    id: str
    type: str
    source: str
    subject: str
    time: datetime
    tenant: str
    sequence: int
    data: JSON


@strawberry.type
class StreamSubscription:
    @strawberry.subscription(
        description="Tenant admins: the network's events, from the start or new ones only."
    )
    async def tenant_events(
        self, info: Info[Context, Any], from_start: bool = False, limit: int | None = None
    ) -> AsyncGenerator[StreamEvent, None]:
        ctx = info.context
        ctx.refresh_principal_from_params()
        with public_errors():
            rctx = ctx.require_member()
            if "tenant_admin" not in rctx.actor.roles:
                raise Forbidden("only tenant admins may read the event stream")
            if limit is not None and limit < 1:
                raise InvalidInput("limit must be at least 1 (or null: no limit)", field="limit")
        # The stream ends when the token expires: a client subscribes again with
        # a fresh token, so a demoted admin does not keep reading for ever.
        expires_at = ctx.principal.expires_at or datetime.now(UTC)
        remaining = (expires_at - datetime.now(UTC)).total_seconds()
        try:
            async with asyncio.timeout(max(0.0, remaining)):
                async for raw in read_tenant_events(
                    ctx.bus.jetstream(),
                    rctx.tenant_id or "",
                    from_start=from_start,
                    follow=True,
                    limit=limit,
                ):
                    event = cloud_event_decoder.decode(raw)
                    yield StreamEvent(
                        id=event.id,
                        type=event.type,
                        source=event.source,
                        subject=event.subject,
                        time=event.time,
                        tenant=event.tenant,
                        sequence=event.sequence,
                        data=msgspec.json.decode(event.data),
                    )
        except TimeoutError:
            raise PublicError(
                "the access token has expired: subscribe again with a fresh one",
                "unauthenticated",
            ) from None
