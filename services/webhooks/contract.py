"""Webhooks' published language: the only module of this service that the
gateway and other services may import.

A network's (tenant's) admins register **endpoints** — an HTTPS URL, the
event types it wants (prefixes of CloudEvents types), a description — and
each public event of the network whose type matches is POSTed to each
enabled endpoint, signed as the Standard Webhooks specification says
(https://www.standardwebhooks.com/; docs/webhooks.md). Every **delivery** (one
event to one endpoint) and every **attempt** of it is kept and can be read;
a delivery, or a range of them, can be replayed.

The signing secret (`whsec_…`) is answered once, by `CreateEndpoint` and
`RotateEndpointSecret`; nothing else ever shows it, and it is never on the
stream. Public events carry ids, the URL's host (not its path or query,
which may hold a receiver's own token), types and states.

Requests go to `quartier.cmd.webhooks.<Name>` / `quartier.qry.webhooks.<Name>`;
public events to `quartier.evt.<tenant>.webhooks.<Name>`.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from services.runtime.messages import Command, Done, Message, PublicEvent, Query, R

SERVICE = "webhooks"

DeliveryStatus = Literal["pending", "delivered", "failed", "skipped"]
DisabledReason = Literal["admin", "failing", "api_key_revoked", "api_key_expired"]


class WebhooksCommand(Command[R]):
    service: ClassVar[str] = SERVICE


class WebhooksQuery(Query[R]):
    service: ClassVar[str] = SERVICE


class WebhooksEvent(PublicEvent):
    service: ClassVar[str] = SERVICE


# -- replies -------------------------------------------------------------------


class Endpoint(Message):
    """An endpoint as its network's admins see it (never its secret).
    `event_types`: prefixes of CloudEvents types (empty: every type);
    `disabled_reason` while disabled: "admin", "failing", or
    "api_key_revoked"/"api_key_expired" (the key that created it stopped
    working). `owner`: whose credential it depends on: the member id, or
    `key:<id>` when an API key created it (until a tenant admin enables it
    again after that key was revoked or expired: it is then theirs)."""

    endpoint_id: str
    tenant_id: str
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    disabled_reason: DisabledReason | None
    created_at: datetime
    updated_at: datetime
    secret_rotated_at: datetime | None
    pending: int  # deliveries waiting to be sent
    failing_since: datetime | None  # first failed attempt of the delivery at the head
    owner: str = ""


class EndpointSecret(Message):
    """The endpoint and its signing secret, `whsec_` + base64 of 24 random
    bytes: shown this once. After a rotation the previous secret keeps
    signing too (a second signature) until `previous_valid_until`."""

    endpoint: Endpoint
    secret: str
    previous_valid_until: datetime | None = None


class EndpointPage(Message):
    items: list[Endpoint]
    total: int


class Delivery(Message):
    """One event to one endpoint. `event_id` is the CloudEvent's id and the
    `webhook-id` header (receivers de-duplicate with it); `attempts` counts
    attempts made; `next_attempt_at` is set while pending."""

    delivery_id: str
    endpoint_id: str
    tenant_id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None
    replay_of: str | None


class DeliveryPage(Message):
    items: list[Delivery]
    total: int


class Attempt(Message):
    """One HTTP attempt: when (the host's clock), the response status (None
    when no response came), how long it took (milliseconds), the error (a
    short, non-secret description) or None on success (2xx)."""

    attempt_id: str
    delivery_id: str
    endpoint_id: str
    number: int
    at: datetime
    status_code: int | None
    duration_ms: int
    error: str | None
    ok: bool


class Replayed(Message):
    """How many deliveries a replay queued (new deliveries, at the end of the
    endpoint's queue, with the same `webhook-id` as the originals)."""

    queued: int
    deliveries: list[str]


# -- commands (tenant admins) -------------------------------------------------------


class CreateEndpoint(WebhooksCommand[EndpointSecret]):
    """`url`: http(s), at most 2,000 characters, no user info, not resolving
    to a private, loopback or link-local address outside development and
    tests. `event_types`: at most 20 type prefixes (`quartier.hubs.`, …).
    `description`: one line, at most 200 characters."""

    url: str
    event_types: list[str] = []
    description: str = ""


class UpdateEndpoint(WebhooksCommand[Endpoint]):
    """Fields left None are kept. `enabled=False` disables the endpoint
    (reason "admin"); `enabled=True` enables it again: its queue resumes
    where it stood, and its next pending delivery is due at once, with its
    retry schedule started again (`RetryDeliveries`). An endpoint disabled
    because its API key was revoked or expired is enabled again by a tenant
    admin only (a key: Forbidden), and becomes theirs (`Endpoint.owner`)."""

    endpoint_id: str
    url: str | None = None
    event_types: list[str] | None = None
    description: str | None = None
    enabled: bool | None = None


class RetryDeliveries(WebhooksCommand[Endpoint]):
    """Retry now: the endpoint's next pending delivery (the head of its
    queue) is due at once and its retry schedule starts again (10 s, 20 s,
    … three days), e.g. once a receiver is back after an outage. Nothing
    pending: nothing changes. A disabled endpoint's queue waits until it is
    enabled (which does the same)."""

    endpoint_id: str


class RotateEndpointSecret(WebhooksCommand[EndpointSecret]):
    endpoint_id: str


class DeleteEndpoint(WebhooksCommand[Done]):
    """Its pending deliveries are dropped; its history stays readable by
    id until the endpoint's rows are purged (not yet: docs/webhooks.md)."""

    endpoint_id: str


class ReplayDelivery(WebhooksCommand[Replayed]):
    """Queue the delivery's event again for its endpoint."""

    delivery_id: str


class ReplayDeliveries(WebhooksCommand[Replayed]):
    """Queue again the endpoint's deliveries created in [since, until]
    (until: now if None) — failed and skipped ones only unless `all`. At most
    MAX_REPLAY deliveries per request (the oldest first)."""

    endpoint_id: str
    since: datetime
    until: datetime | None = None
    all: bool = False


MAX_REPLAY = 1000


# -- queries (tenant admins) ---------------------------------------------------------


class GetEndpoint(WebhooksQuery[Endpoint]):
    endpoint_id: str


class ListEndpoints(WebhooksQuery[EndpointPage]):
    offset: int = 0
    limit: int = 20


class ListDeliveries(WebhooksQuery[DeliveryPage]):
    """Newest first."""

    endpoint_id: str
    status: DeliveryStatus | None = None
    offset: int = 0
    limit: int = 20


class GetDelivery(WebhooksQuery[Delivery]):
    delivery_id: str


class ListAttempts(WebhooksQuery[list[Attempt]]):
    """A delivery's attempts, oldest first (at most the schedule's length)."""

    delivery_id: str


# -- public events -------------------------------------------------------------


class EndpointCreated(WebhooksEvent):
    """`created_by`/`updated_by`: the admin's member id, or `key:<id>` when a
    tenant API key did it (docs/api-keys.md)."""

    endpoint_id: str
    url_host: str
    event_types: list[str]
    created_by: str


class EndpointUpdated(WebhooksEvent):
    endpoint_id: str
    url_host: str
    event_types: list[str]
    enabled: bool
    updated_by: str


class EndpointDisabled(WebhooksEvent):
    """By an admin (`reason` "admin", `disabled_by` the member) or by the
    service (`disabled_by` None): after a delivery failed for its whole
    schedule ("failing"), or because the API key that created the endpoint
    was revoked ("api_key_revoked") or has expired ("api_key_expired")."""

    endpoint_id: str
    reason: DisabledReason
    disabled_by: str | None


class EndpointDeleted(WebhooksEvent):
    endpoint_id: str
    deleted_by: str


__all__ = ["Done"]
