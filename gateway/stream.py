"""The tenant's event stream for analytics consumers and admin consoles.

Who may read it is decided here, in one place (`events_reader`), for every
transport: the GraphQL subscription below (graphql-transport-ws) and the HTTP
API (`gateway/v1.py`, NDJSON and Server-Sent Events). A caller needs the
`events:read` scope on its tenant (`gateway.keys`): a tenant admin's access
token holds every scope of its network; a tenant API key (verified by
identity) holds the scopes it was issued with. A running stream re-checks its
credential every few seconds (`gateway.keys.while_allowed`): a revoked or
expired key, an ended session or a demoted admin stops it. The events carry
ids and non-personal facts only.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import strawberry
from graphql import GraphQLError
from strawberry.scalars import JSON
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.types import Info

from gateway.context import Context, Principal, current_principal
from gateway.keys import EVENTS_READ, require_scope, scopes_of, while_allowed
from gateway.kit import PublicError, public_errors
from services.runtime.bus import Bus
from services.runtime.errors import InvalidInput, QuartierError
from services.runtime.i18n import t
from services.runtime.stream import EventReader, Position, parse_type_prefixes

__all__ = [
    "EVENTS_READ",
    "EventsReader",
    "SubscriptionsPerConnection",
    "events_reader",
    "scopes_of",
    "still_reading",
]


@dataclass(frozen=True)
class EventsReader:
    """A caller allowed to read one tenant's events, until `expires_at`."""

    tenant_id: str
    expires_at: datetime | None
    who: str  # for logs: "member:<id>" or "key:<id>", never a name

    def deadline(self) -> float | None:
        """`expires_at` on the `time.monotonic()` clock (readers stop there)."""
        if self.expires_at is None:
            return None
        return time.monotonic() + (self.expires_at - datetime.now(UTC)).total_seconds()


def events_reader(principal: Principal) -> EventsReader:
    """The caller as a reader of its tenant's events, or the error to answer:
    `unauthenticated` without a valid credential, `forbidden` without the
    `events:read` scope on a tenant."""
    bearer = require_scope(principal, EVENTS_READ)
    return EventsReader(bearer.tenant_id, bearer.expires_at, bearer.who)


def still_reading(bus: Bus, principal: Principal, correlation_id: str, address: str | None) -> Any:
    """The re-check of a running stream (`while_allowed`): the credential,
    asked again of identity, still holds `events:read` (else its error)."""

    async def recheck() -> None:
        events_reader(await current_principal(bus, principal, correlation_id, address))

    return recheck


class SubscriptionsPerConnection(BaseGraphQLTransportWSHandler[Any, Any]):
    """graphql-transport-ws, with the refusal of one subscription too many on
    a connection (strawberry's `max_subscriptions_per_connection`, 100) as a
    GraphQL error like the API's others: `extensions.code` `RATE_LIMITED`
    and `extensions.limit` (docs/stream.md, "Limits")."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        most = self.max_subscriptions_per_connection
        if (
            self.connection_acknowledged
            and most is not None
            and message["id"] not in self.operations
            and len(self.operations) >= most
        ):
            error = GraphQLError(
                f"this connection has {most} subscriptions running already (the most): "
                "complete one, or open another connection",
                extensions={"code": "RATE_LIMITED", "limit": "subscriptionsPerConnection"},
            )
            await self.send_message(
                {"id": message["id"], "type": "error", "payload": [error.formatted]}
            )
            return
        await super().handle_subscribe(message)


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
    position: str = strawberry.field(
        description="Where to resume just after this event: give it as `after` "
        "(opaque; stays valid across rebuilds of the stream)."
    )


@strawberry.type
class StreamSubscription:
    @strawberry.subscription(
        description="Tenant admins: the network's events, in order: after a position "
        "(`after`, the `position` of an event), else from the start (`fromStart`), else "
        "new ones only; only the types starting with one of `types` (e.g. "
        '`["quartier.hubs."]`); until `limit` events or the access token expires. '
        "Tenant admins' access tokens, or an API key with the `events:read` scope; a "
        "revoked or expired key ends it within seconds."
    )
    async def tenant_events(
        self,
        info: Info[Context, Any],
        from_start: bool = False,
        limit: int | None = None,
        after: str | None = None,
        types: list[str] | None = None,
    ) -> AsyncGenerator[StreamEvent, None]:
        ctx = info.context
        await ctx.refresh_principal_from_params()
        with public_errors():
            reader = events_reader(ctx.principal)
            if limit is not None and limit < 1:
                raise InvalidInput(t("limit must be at least 1 (or null: no limit)"), field="limit")
            position = Position.decode(after, reader.tenant_id) if after is not None else None
            prefixes = parse_type_prefixes(types or ())
        # The stream ends when the token expires: a client subscribes again with
        # a fresh token (and `after`), so a demoted admin does not keep reading.
        events = EventReader(
            ctx.bus.jetstream(),
            reader.tenant_id,
            after=position,
            from_start=from_start,
            types=prefixes,
            follow=True,
            limit=limit,
            deadline=reader.deadline(),
        )
        with public_errors():
            await events.open()
        recheck = still_reading(ctx.bus, ctx.principal, ctx.correlation_id, ctx.client_address)
        try:
            async for item in while_allowed(events, recheck):
                if item is None:
                    continue
                event = item.event
                yield StreamEvent(
                    id=event.id,
                    type=event.type,
                    source=event.source,
                    subject=event.subject,
                    time=event.time,
                    tenant=event.tenant,
                    sequence=event.sequence,
                    data=msgspec.json.decode(event.data),
                    position=item.position,
                )
        except QuartierError as refused:  # the credential no longer holds the scope
            raise PublicError(
                f"{refused.message}: the subscription has ended", refused.code
            ) from None
        finally:
            await events.close()
        if events.expired:
            raise PublicError(
                "this API key has expired: subscribe again with a valid key "
                "(and `after`: the position of the last event you had)"
                if reader.who.startswith("key:")
                else "the access token has expired: subscribe again with a fresh one "
                "(and `after`: the position of the last event you had)",
                "unauthenticated",
            )
