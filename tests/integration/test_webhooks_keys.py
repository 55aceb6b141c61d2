"""Webhook endpoints made with a tenant API key stop with the key, and a
queue goes on at once after an outage — over a real NATS server, a real
store and a real HTTP receiver on localhost (docs/webhooks.md).

* A revoked key's endpoints are disabled (reason `api_key_revoked`, the
  admins mailed); a member's endpoint is not; an event naming another
  network than it was published for is ignored; a tenant admin (never a key)
  enables such an endpoint again, and it becomes theirs.
* An expired key's endpoint is disabled at its next delivery, unsent.
* Enabling an endpoint again, or "retry now", makes its next delivery due
  at once, the retry schedule started again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
import pytest_asyncio
import sqlalchemy as sa
from eventsourcing.persistence import Tracking

from services.identity import contract as idc
from services.runtime.bus import Bus
from services.runtime.clock import MovableClock
from services.runtime.errors import Forbidden
from services.runtime.host import ServiceHost
from services.runtime.messages import Actor
from services.runtime.stream import CloudEvent
from services.runtime.tenancy import RequestContext
from services.webhooks import contract as c
from services.webhooks.delivery import Options
from services.webhooks.domain import RETRY_DELAYS
from services.webhooks.views import api_keys
from tests.integration.test_webhooks_service import (
    CARD_TYPE,
    attempts_of,
    deliveries,
    network,
    start_webhooks,
    touch_card,
)
from tests.support.receiver import Receiver
from tests.support.services import Services
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest_asyncio.fixture
async def dev(services: Services) -> ServiceHost:
    return await start_webhooks(services, Options(allow_private=True, timeout=1.0))


async def issue_key(
    bus: Bus, admin_ctx: RequestContext, expires_at: datetime | None = None
) -> tuple[str, RequestContext]:
    """A real `events:read` key from identity, and the context the gateway
    gives a request made with it."""
    issued = await bus.request(
        idc.CreateApiKey(name="crm", scopes=["events:read"], expires_at=expires_at), admin_ctx
    )
    key_id = issued.key.key_id
    tenant_id = admin_ctx.tenant_id
    ctx = RequestContext(
        tenant_id=tenant_id, actor=Actor(kind="service", key_id=key_id, tenant_id=tenant_id)
    )
    return key_id, ctx


def key_known(host: ServiceHost, key_id: str) -> Any:
    """The key as the webhooks service learnt it from identity's events."""
    with host.context["engine"].connect() as conn:
        return conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()


async def endpoint(bus: Bus, ctx: RequestContext, endpoint_id: str) -> c.Endpoint:
    return await bus.request(c.GetEndpoint(endpoint_id=endpoint_id), ctx)


async def disabled(bus: Bus, ctx: RequestContext, endpoint_id: str) -> c.Endpoint | None:
    found = await endpoint(bus, ctx, endpoint_id)
    return found if not found.enabled else None


def mails(host: ServiceHost, text: bytes) -> list[bytes]:
    found = [m.read_bytes() for m in host.settings.mail_dir.glob("*.eml")]
    return [m for m in found if text in m]


async def test_revoking_a_key_disables_its_endpoints_until_an_admin_takes_them_over(
    dev: ServiceHost, client_bus: Bus, receiver: Receiver
) -> None:
    admin, admin_ctx = await network(client_bus, "whk-revoke")
    key_id, key_ctx = await issue_key(client_bus, admin_ctx)
    _, other_key_ctx = await issue_key(client_bus, admin_ctx)
    by_key = await client_bus.request(
        c.CreateEndpoint(url=receiver.url, event_types=[CARD_TYPE], description="leaked"), key_ctx
    )
    by_admin = await client_bus.request(
        c.CreateEndpoint(url=receiver.url, event_types=[CARD_TYPE], description="ours"), admin_ctx
    )
    key_endpoint, admin_endpoint = by_key.endpoint.endpoint_id, by_admin.endpoint.endpoint_id
    assert by_key.endpoint.owner == f"key:{key_id}"
    assert by_admin.endpoint.owner == admin.member_id
    await touch_card(client_bus, admin_ctx, 1)
    await eventually(lambda: len(receiver.delivered) == 2, timeout=20)

    await client_bus.request(idc.RevokeApiKey(key_id=key_id), admin_ctx)
    stopped = await eventually(lambda: disabled(client_bus, admin_ctx, key_endpoint), timeout=20)
    assert stopped.disabled_reason == "api_key_revoked"
    assert (await endpoint(client_bus, admin_ctx, admin_endpoint)).enabled  # a member's: untouched
    assert await eventually(lambda: mails(dev, b"was revoked"), timeout=20)

    # nothing more goes to the key's URL: its events are kept, skipped
    await touch_card(client_bus, admin_ctx, 2)
    await eventually(lambda: len(receiver.delivered) == 3, timeout=20)
    kept = await eventually(
        lambda: _at_least(deliveries(client_bus, admin_ctx, key_endpoint), 2), timeout=20
    )
    assert [d.status for d in kept] == ["delivered", "skipped"]

    # another key may not enable it again; a tenant admin may, and it is theirs
    with pytest.raises(Forbidden):
        await client_bus.request(
            c.UpdateEndpoint(endpoint_id=key_endpoint, enabled=True), other_key_ctx
        )
    assert (await endpoint(client_bus, admin_ctx, key_endpoint)).owner == f"key:{key_id}"
    taken = await client_bus.request(
        c.UpdateEndpoint(endpoint_id=key_endpoint, enabled=True), admin_ctx
    )
    assert taken.enabled and taken.owner == admin.member_id and taken.disabled_reason is None
    await touch_card(client_bus, admin_ctx, 3)
    await eventually(lambda: len(receiver.delivered) == 5, timeout=20)

    # the revocation handled again (a redelivery) leaves the adopted endpoint alone
    (keys,) = [r for r in dev.reactions if r.reaction.name == "keys"]
    revoked = CloudEvent(
        id="identity:900000",
        source="quartier/identity",
        type=idc.ApiKeyRevoked.type_name(),
        subject=key_id,
        time=datetime.now(UTC),
        tenant=admin.tenant_id,
        sequence=900_000,
        data=msgspec.Raw(
            msgspec.json.encode(
                idc.ApiKeyRevoked(tenant_id=admin.tenant_id, key_id=key_id, revoked_by="x")
            )
        ),
    )
    await keys.reaction.handle(revoked, Tracking("identity", revoked.sequence))
    assert (await endpoint(client_bus, admin_ctx, key_endpoint)).enabled


async def test_a_revocation_naming_another_network_is_ignored(
    dev: ServiceHost, client_bus: Bus, receiver: Receiver
) -> None:
    admin, admin_ctx = await network(client_bus, "whk-victim")
    other, _ = await network(client_bus, "whk-forger")
    key_id, key_ctx = await issue_key(client_bus, admin_ctx)
    made = await client_bus.request(c.CreateEndpoint(url=receiver.url), key_ctx)
    (keys,) = [r for r in dev.reactions if r.reaction.name == "keys"]
    forged = CloudEvent(  # published for the forger's network, naming the victim's
        id="identity:900001",
        source="quartier/identity",
        type=idc.ApiKeyRevoked.type_name(),
        subject=key_id,
        time=datetime.now(UTC),
        tenant=other.tenant_id,
        sequence=900_001,
        data=msgspec.Raw(
            msgspec.json.encode(
                idc.ApiKeyRevoked(tenant_id=admin.tenant_id, key_id=key_id, revoked_by="x")
            )
        ),
    )
    await keys.reaction.handle(forged, Tracking("identity", forged.sequence))
    found = await endpoint(client_bus, admin_ctx, made.endpoint.endpoint_id)
    assert found.enabled and found.disabled_reason is None
    known = await eventually(lambda: key_known(dev, key_id), timeout=20)
    assert known.revoked_at is None


async def test_an_expired_keys_endpoint_is_disabled_at_its_next_delivery(
    dev: ServiceHost, client_bus: Bus, clock: MovableClock, receiver: Receiver
) -> None:
    _, admin_ctx = await network(client_bus, "whk-expiry")
    key_id, key_ctx = await issue_key(
        client_bus, admin_ctx, expires_at=clock.now() + timedelta(minutes=5)
    )
    made = await client_bus.request(
        c.CreateEndpoint(url=receiver.url, event_types=[CARD_TYPE]), key_ctx
    )
    endpoint_id = made.endpoint.endpoint_id
    await eventually(lambda: key_known(dev, key_id), timeout=20)
    await touch_card(client_bus, admin_ctx, 1)
    await eventually(lambda: len(receiver.delivered) == 1, timeout=20)  # still valid

    clock.advance(timedelta(minutes=6))
    await touch_card(client_bus, admin_ctx, 2)
    stopped = await eventually(lambda: disabled(client_bus, admin_ctx, endpoint_id), timeout=20)
    assert stopped.disabled_reason == "api_key_expired"
    assert len(receiver.received) == 1  # the event after the expiry was not sent
    kept = await deliveries(client_bus, admin_ctx, endpoint_id)
    assert [d.status for d in kept] == ["delivered", "pending"]
    assert await eventually(lambda: mails(dev, b"has expired"), timeout=20)


async def test_enabling_again_or_retry_now_sends_at_once_with_the_schedule_restarted(
    dev: ServiceHost, client_bus: Bus, clock: MovableClock, receiver: Receiver
) -> None:
    _, ctx = await network(client_bus, "whk-outage")
    receiver.default = 503  # the receiver is down
    made = await client_bus.request(
        c.CreateEndpoint(url=receiver.url, event_types=[CARD_TYPE]), ctx
    )
    endpoint_id = made.endpoint.endpoint_id
    for n in range(3):
        await touch_card(client_bus, ctx, n)
    head, *_ = await eventually(
        lambda: _at_least(deliveries(client_bus, ctx, endpoint_id), 3), timeout=20
    )
    for n in range(1, 5):  # four failed attempts: the next is 80 s away
        await eventually(
            lambda n=n: _at_least(attempts_of(client_bus, ctx, head.delivery_id), n), timeout=20
        )  # type: ignore[misc]
        if n < 4:
            clock.advance(RETRY_DELAYS[n - 1])
    waiting = await client_bus.request(c.GetDelivery(delivery_id=head.delivery_id), ctx)
    tried = await attempts_of(client_bus, ctx, head.delivery_id)
    assert waiting.next_attempt_at == tried[-1].at + RETRY_DELAYS[3]

    # still down: "retry now" attempts at once, and the next wait is the first again
    await client_bus.request(c.RetryDeliveries(endpoint_id=endpoint_id), ctx)
    tried = await eventually(
        lambda: _at_least(attempts_of(client_bus, ctx, head.delivery_id), 5), timeout=20
    )
    retried = await client_bus.request(c.GetDelivery(delivery_id=head.delivery_id), ctx)
    assert retried.next_attempt_at == tried[-1].at + RETRY_DELAYS[0]

    # back up: disabling and enabling again sends the queue at once, in order
    receiver.default = 200
    await client_bus.request(c.UpdateEndpoint(endpoint_id=endpoint_id, enabled=False), ctx)
    again = await client_bus.request(c.UpdateEndpoint(endpoint_id=endpoint_id, enabled=True), ctx)
    assert again.enabled and again.pending == 3
    await eventually(lambda: len(receiver.delivered) == 3, timeout=20)
    done = await deliveries(client_bus, ctx, endpoint_id)
    assert [d.status for d in done] == ["delivered"] * 3
    assert [d.attempts for d in done] == [6, 1, 1]


async def _at_least(found: Any, n: int) -> Any:
    items = await found
    return items if len(items) >= n else None
