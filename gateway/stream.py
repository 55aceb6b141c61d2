"""The tenant's event stream for analytics consumers and admin consoles.

Who may read it is decided here, in one place (`events_reader`), for every
transport: the GraphQL subscription below (graphql-transport-ws) and the HTTP
API (`gateway/v1.py`, NDJSON and Server-Sent Events). A caller needs the
`events:read` scope on its tenant: a tenant admin's access token holds every
scope of its network; a tenant API key (to come, verified by identity) will
hold the scopes it was issued with. The events carry ids and non-personal
facts only.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from gateway.context import Context, Principal
from gateway.kit import PublicError, public_errors
from services.runtime.errors import Forbidden, InvalidInput, Unauthenticated
from services.runtime.stream import EventReader, Position, parse_type_prefixes

EVENTS_READ = "events:read"
TENANT_ADMIN_SCOPES = frozenset({EVENTS_READ})  # a tenant admin holds every scope of its network


@dataclass(frozen=True)
class EventsReader:
    """A caller allowed to read one tenant's events, until `expires_at`."""

    tenant_id: str
    expires_at: datetime | None
    who: str  # for logs: "member:<id>" (later "key:<id>"), never a name

    def deadline(self) -> float | None:
        """`expires_at` on the `time.monotonic()` clock (readers stop there)."""
        if self.expires_at is None:
            return None
        return time.monotonic() + (self.expires_at - datetime.now(UTC)).total_seconds()


def scopes_of(principal: Principal) -> frozenset[str]:
    """The scopes a verified credential holds on its tenant. A tenant admin's
    access token: all of them. A tenant API key (identity will verify it and
    `resolve_principal` give its scopes as `Principal.scopes`): those it was
    issued with. Anyone else: none."""
    actor = principal.actor
    if actor.kind == "member" and actor.is_tenant_admin:
        return TENANT_ADMIN_SCOPES
    issued: Iterable[str] = getattr(principal, "scopes", None) or ()
    return frozenset(issued)


def events_reader(principal: Principal) -> EventsReader:
    """The caller as a reader of its tenant's events, or the error to answer:
    `unauthenticated` without a valid credential, `forbidden` without the
    `events:read` scope on a tenant."""
    if principal.refused is not None:
        raise principal.refused
    if principal.actor.kind == "anonymous":
        raise Unauthenticated(
            "sign in first: the event stream needs a tenant admin's access token "
            "(`Authorization: Bearer <token>`)"
        )
    if EVENTS_READ not in scopes_of(principal) or not principal.tenant_id:
        raise Forbidden(
            f"only a network's tenant admins may read its event stream (the `{EVENTS_READ}` scope)"
        )
    who = f"member:{principal.actor.member_id}" if principal.actor.member_id else "key"
    return EventsReader(principal.tenant_id, principal.expires_at, who)


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
        '`["quartier.hubs."]`); until `limit` events or the access token expires.'
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
                raise InvalidInput("limit must be at least 1 (or null: no limit)", field="limit")
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
        try:
            async for item in events:
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
        finally:
            await events.close()
        if events.expired:
            raise PublicError(
                "the access token has expired: subscribe again with a fresh one "
                "(and `after`: the position of the last event you had)",
                "unauthenticated",
            )
