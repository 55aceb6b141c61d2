"""Which of webhooks' domain events go on the public stream: ids, the URL's
host, type filters and states. Never the URL's path or query (a receiver's
own token may be in it), the description or a secret; a rotation is not
published."""

from __future__ import annotations

from typing import Any

from services.webhooks import contract as c
from services.webhooks.domain import Endpoint, url_host


def to_public(e: Any) -> c.WebhooksEvent | None:
    tenant_id, endpoint_id = e.tenant_id, str(e.originator_id)
    match e:
        case Endpoint.Created():
            return c.EndpointCreated(
                tenant_id=tenant_id,
                endpoint_id=endpoint_id,
                url_host=url_host(e.url),
                event_types=list(e.event_types),
                created_by=e.created_by,
            )
        case Endpoint.Updated():
            return c.EndpointUpdated(
                tenant_id=tenant_id,
                endpoint_id=endpoint_id,
                url_host=url_host(e.url),
                event_types=list(e.event_types),
                enabled=e.enabled,
                updated_by=e.by,
            )
        case Endpoint.Disabled():
            return c.EndpointDisabled(
                tenant_id=tenant_id, endpoint_id=endpoint_id, reason=e.reason, disabled_by=e.by
            )
        case Endpoint.Deleted():
            return c.EndpointDeleted(tenant_id=tenant_id, endpoint_id=endpoint_id, deleted_by=e.by)
    return None
