"""The webhooks service over a real NATS server, a real store and a real HTTP
receiver on localhost (allowed by the development flag): deliveries signed
and verified with the `standardwebhooks` library, in order through failures,
a timeout and a recovery; the retry schedule on the movable clock and the
disabling; replays; SSRF refusals; bad inputs that change nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
import pytest_asyncio
from eventsourcing.persistence import Tracking
from standardwebhooks import Webhook

from services.identity import contract as idc
from services.runtime.bus import Bus
from services.runtime.clock import MovableClock
from services.runtime.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from services.runtime.host import ServiceHost
from services.runtime.messages import Actor
from services.runtime.stream import CloudEvent
from services.runtime.tenancy import RequestContext
from services.webhooks import contract as c
from services.webhooks.delivery import Options
from services.webhooks.domain import RETRY_DELAYS
from services.webhooks.service import build
from tests.support.identity import add_member, as_member, card, create_network
from tests.support.receiver import Receiver
from tests.support.services import Services
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio

CARD_TYPE = idc.ProfileCardUpdated.type_name()


async def start_webhooks(services: Services, options: Options) -> ServiceHost:
    await services.start("identity")
    host = build(services.settings, clock=services.clock, options=options)
    await host.start()
    services.hosts["webhooks"] = host
    return host


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest_asyncio.fixture
async def dev(services: Services) -> ServiceHost:
    """Webhooks as in development: localhost allowed, attempts of 1 s."""
    return await start_webhooks(services, Options(allow_private=True, timeout=1.0))


async def network(bus: Bus, slug: str) -> tuple[idc.Session, RequestContext]:
    _, admin = await create_network(bus, slug, f"admin@{slug}.example")
    return admin, as_member(admin)


async def touch_card(bus: Bus, ctx: RequestContext, n: int) -> None:
    await bus.request(idc.UpdateProfileCard(changes=card(f"Admin {n}")), ctx)


async def attempts_of(bus: Bus, ctx: RequestContext, delivery_id: str) -> list[c.Attempt]:
    return await bus.request(c.ListAttempts(delivery_id=delivery_id), ctx)


async def deliveries(bus: Bus, ctx: RequestContext, endpoint_id: str) -> list[c.Delivery]:
    page = await bus.request(c.ListDeliveries(endpoint_id=endpoint_id, limit=50), ctx)
    return list(reversed(page.items))  # oldest first


def verified(secret: str, received: Any) -> dict[str, Any]:
    """The body, verified as a receiver would with the standardwebhooks library."""
    found: dict[str, Any] = Webhook(secret).verify(received.body, received.headers)
    assert received.headers["webhook-id"] == found["id"]
    return found


async def test_each_event_delivered_signed_in_order_through_failure_timeout_and_recovery(
    dev: ServiceHost, client_bus: Bus, clock: MovableClock, receiver: Receiver
) -> None:
    _, ctx = await network(client_bus, "wh-order")
    # fails (500), hangs past the timeout, redirects to the metadata service, then recovers
    receiver.then([500, "hang", "redirect:http://169.254.169.254/latest/meta-data"])
    made = await client_bus.request(
        c.CreateEndpoint(url=receiver.url, event_types=[CARD_TYPE], description="crm"), ctx
    )
    assert made.secret.startswith("whsec_")
    endpoint_id = made.endpoint.endpoint_id
    for n in range(4):
        await touch_card(client_bus, ctx, n)
    queued = await eventually(
        lambda: _len_at_least(deliveries(client_bus, ctx, endpoint_id), 4), timeout=20
    )
    head = queued[0]
    for expected in (1, 2, 3):  # each failed attempt waits for the clock
        await eventually(
            lambda n=expected: _len_at_least(attempts_of(client_bus, ctx, head.delivery_id), n),
            timeout=20,
        )  # type: ignore[misc]
        clock.advance(RETRY_DELAYS[expected - 1])
    await eventually(lambda: len(receiver.delivered) == 4, timeout=20)

    tried = await attempts_of(client_bus, ctx, head.delivery_id)
    assert [a.status_code for a in tried] == [500, None, 302, 200]
    assert "timed out" in (tried[1].error or "") and "redirect" in (tried[2].error or "")
    assert [a.ok for a in tried] == [False, False, False, True]
    assert len(receiver.received) == 3 + 4  # the redirect was not followed anywhere
    bodies = [verified(made.secret, r) for r in receiver.delivered]
    assert [b["type"] for b in bodies] == [CARD_TYPE] * 4
    sequences = [b["sequence"] for b in bodies]
    assert sequences == sorted(sequences) and len(set(sequences)) == 4  # in order, no gap
    assert [d.event_id for d in queued] == [b["id"] for b in bodies]
    done = await deliveries(client_bus, ctx, endpoint_id)
    assert {d.status for d in done} == {"delivered"}
    endpoint = await client_bus.request(c.GetEndpoint(endpoint_id=endpoint_id), ctx)
    assert endpoint.pending == 0 and endpoint.enabled


async def _len_at_least(found: Any, n: int) -> Any:
    items = await found
    return items if len(items) >= n else None


async def test_a_rotated_secret_signs_beside_the_previous_one(
    dev: ServiceHost, client_bus: Bus, receiver: Receiver
) -> None:
    _, ctx = await network(client_bus, "wh-rotate")
    made = await client_bus.request(
        c.CreateEndpoint(url=receiver.url, event_types=[CARD_TYPE]), ctx
    )
    rotated = await client_bus.request(
        c.RotateEndpointSecret(endpoint_id=made.endpoint.endpoint_id), ctx
    )
    assert rotated.secret != made.secret and rotated.previous_valid_until is not None
    await touch_card(client_bus, ctx, 1)
    await eventually(lambda: receiver.delivered, timeout=20)
    for secret in (made.secret, rotated.secret):  # receivers switch over at their pace
        verified(secret, receiver.delivered[0])


async def test_a_failing_endpoint_is_retried_for_three_days_then_disabled_and_replayed(
    dev: ServiceHost, client_bus: Bus, clock: MovableClock, receiver: Receiver
) -> None:
    _, ctx = await network(client_bus, "wh-fail")
    receiver.default = 503
    made = await client_bus.request(
        c.CreateEndpoint(url=receiver.url, event_types=[CARD_TYPE]), ctx
    )
    endpoint_id = made.endpoint.endpoint_id
    await touch_card(client_bus, ctx, 1)
    (head,) = await eventually(
        lambda: _len_at_least(deliveries(client_bus, ctx, endpoint_id), 1), timeout=20
    )
    start = clock.now()
    for n, delay in enumerate(RETRY_DELAYS, start=1):
        await eventually(
            lambda n=n: _len_at_least(attempts_of(client_bus, ctx, head.delivery_id), n), timeout=20
        )  # type: ignore[misc]
        clock.advance(delay)
    tried = await eventually(
        lambda: _len_at_least(attempts_of(client_bus, ctx, head.delivery_id), 19), timeout=20
    )
    assert [a.at - start for a in tried] == [
        sum(RETRY_DELAYS[:i], timedelta(0)) for i in range(len(RETRY_DELAYS) + 1)
    ]
    assert tried[-1].at - tried[0].at == timedelta(days=3)

    async def disabled() -> c.Endpoint | None:
        found = await client_bus.request(c.GetEndpoint(endpoint_id=endpoint_id), ctx)
        return found if not found.enabled else None

    endpoint = await eventually(disabled, timeout=20)
    assert endpoint.disabled_reason == "failing"
    failed = await client_bus.request(c.GetDelivery(delivery_id=head.delivery_id), ctx)
    assert failed.status == "failed" and failed.attempts == 19
    mails = await eventually(lambda: list(dev.settings.mail_dir.glob("*.eml")), timeout=20)
    assert any(b"Webhook endpoint disabled" in m.read_bytes() for m in mails)

    # while disabled, events are kept as skipped; enabled again, replay both
    await touch_card(client_bus, ctx, 2)
    await eventually(lambda: _len_at_least(deliveries(client_bus, ctx, endpoint_id), 2), timeout=20)
    receiver.default = 200
    await client_bus.request(c.UpdateEndpoint(endpoint_id=endpoint_id, enabled=True), ctx)
    one = await client_bus.request(c.ReplayDelivery(delivery_id=head.delivery_id), ctx)
    assert one.queued == 1
    await eventually(lambda: len(receiver.delivered) == 1, timeout=20)
    assert verified(made.secret, receiver.delivered[0])["id"] == head.event_id  # same webhook-id
    ranged = await client_bus.request(
        c.ReplayDeliveries(endpoint_id=endpoint_id, since=start - timedelta(minutes=1)), ctx
    )
    assert ranged.queued == 2  # the failed one and the skipped one
    await eventually(lambda: len(receiver.delivered) == 3, timeout=20)
    ids = [json.loads(r.body)["id"] for r in receiver.delivered]
    assert ids[0] == ids[1] == head.event_id and ids[2] != head.event_id


PRIVATE_URLS = [
    "http://127.0.0.1:8080/hook",
    "http://[::1]/hook",
    "https://10.1.2.3/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[::ffff:127.0.0.1]/hook",
    "http://loopback.example/hook",  # a name resolving to loopback
    "http://mixed.example/hook",  # one public and one private address
    "http://unknown.example/hook",  # resolves to nothing
]


async def test_private_destinations_are_refused_outside_development(
    services: Services, client_bus: Bus, receiver: Receiver
) -> None:
    names = {
        "loopback.example": ["127.0.0.1"],
        "mixed.example": ["93.184.216.34", "192.168.1.1"],
        "public.example": ["93.184.216.34"],
    }

    async def resolve(host: str, port: int) -> list[str]:
        return names.get(host, [])

    await start_webhooks(services, Options(allow_private=False, resolve=resolve))
    _, ctx = await network(client_bus, "wh-ssrf")
    made = await client_bus.request(c.CreateEndpoint(url="https://public.example/hook"), ctx)
    endpoint_id = made.endpoint.endpoint_id
    for url in [*PRIVATE_URLS, receiver.url]:
        with pytest.raises(InvalidInput) as refused:
            await client_bus.request(c.CreateEndpoint(url=url), ctx)
        assert refused.value.field == "url", url
        with pytest.raises(InvalidInput):  # nor may an endpoint be moved there
            await client_bus.request(c.UpdateEndpoint(endpoint_id=endpoint_id, url=url), ctx)
    page = await client_bus.request(c.ListEndpoints(), ctx)
    assert [e.url for e in page.items] == ["https://public.example/hook"]


async def test_a_name_that_turns_private_after_registration_is_refused_at_delivery(
    services: Services, client_bus: Bus, receiver: Receiver
) -> None:
    names = {"rebind.example": ["93.184.216.34"]}

    async def resolve(host: str, port: int) -> list[str]:
        return names.get(host, [])

    await start_webhooks(services, Options(allow_private=False, resolve=resolve))
    _, ctx = await network(client_bus, "wh-rebind")
    made = await client_bus.request(
        c.CreateEndpoint(
            url=f"http://rebind.example:{receiver.port}/hook", event_types=[CARD_TYPE]
        ),
        ctx,
    )
    names["rebind.example"] = ["127.0.0.1"]  # DNS rebinding
    await touch_card(client_bus, ctx, 1)
    (head,) = await eventually(
        lambda: _len_at_least(deliveries(client_bus, ctx, made.endpoint.endpoint_id), 1),
        timeout=20,
    )
    (tried,) = await eventually(
        lambda: _len_at_least(attempts_of(client_bus, ctx, head.delivery_id), 1), timeout=20
    )
    assert tried.status_code is None and "refused" in (tried.error or "")
    assert receiver.received == []


INVALID = [
    ("ftp://example.org/hook", []),
    ("not a url", []),
    ("https://user:pw@example.org/hook", []),
    ("https://example.org/hook#frag", []),
    ("", []),
    ("https://example.org/" + "x" * 2100, []),
    ("http://127.0.0.1/hook", ["hubs.*"]),
    ("http://127.0.0.1/hook", ["quartier.hubs.>"]),
    ("http://127.0.0.1/hook", [f"quartier.t{i}." for i in range(21)]),
]


async def test_invalid_endpoints_are_refused(dev: ServiceHost, client_bus: Bus) -> None:
    _, ctx = await network(client_bus, "wh-invalid")
    for url, types in INVALID:
        with pytest.raises(InvalidInput):
            await client_bus.request(c.CreateEndpoint(url=url, event_types=types), ctx)
    with pytest.raises(InvalidInput):
        await client_bus.request(
            c.CreateEndpoint(url="http://127.0.0.1/hook", description="x" * 201), ctx
        )
    assert (await client_bus.request(c.ListEndpoints(), ctx)).total == 0
    assert dev.context["app"].max_notification_id() == 0


async def test_only_the_networks_admins_manage_its_endpoints(
    dev: ServiceHost, client_bus: Bus, receiver: Receiver
) -> None:
    admin, ctx = await network(client_bus, "wh-auth")
    _, other_ctx = await network(client_bus, "wh-other")
    member = await add_member(client_bus, admin.tenant_id, "m@wh-auth.example", card("Member"))
    made = await client_bus.request(c.CreateEndpoint(url=receiver.url), ctx)
    endpoint_id = made.endpoint.endpoint_id
    member_ctx = as_member(member)
    # a token claiming the role that identity does not give is refused too
    forged = RequestContext(
        tenant_id=member.tenant_id,
        actor=Actor(
            kind="member",
            member_id=member.member_id,
            tenant_id=member.tenant_id,
            roles=("tenant_admin",),
        ),
    )
    for who in (member_ctx, forged):
        for request in (
            c.CreateEndpoint(url=receiver.url),
            c.UpdateEndpoint(endpoint_id=endpoint_id, enabled=False),
            c.DeleteEndpoint(endpoint_id=endpoint_id),
            c.RetryDeliveries(endpoint_id=endpoint_id),
            c.ListEndpoints(),
        ):
            with pytest.raises(Forbidden):
                await client_bus.request(request, who)
    with pytest.raises(Unauthenticated):
        await client_bus.request(c.ListEndpoints(), RequestContext(tenant_id=admin.tenant_id))
    for request in (  # another network's endpoint is answered as missing
        c.GetEndpoint(endpoint_id=endpoint_id),
        c.UpdateEndpoint(endpoint_id=endpoint_id, description="mine"),
        c.RotateEndpointSecret(endpoint_id=endpoint_id),
        c.DeleteEndpoint(endpoint_id=endpoint_id),
        c.RetryDeliveries(endpoint_id=endpoint_id),
        c.RetryDeliveries(endpoint_id="not-an-endpoint"),
        c.ListDeliveries(endpoint_id=endpoint_id),
    ):
        with pytest.raises(NotFound):
            await client_bus.request(request, other_ctx)
    # its deliveries (its own creation is an event it receives) likewise
    (delivery,) = await eventually(
        lambda: _len_at_least(deliveries(client_bus, ctx, endpoint_id), 1), timeout=20
    )
    for request in (
        c.GetDelivery(delivery_id=delivery.delivery_id),
        c.ListAttempts(delivery_id=delivery.delivery_id),
        c.ReplayDelivery(delivery_id=delivery.delivery_id),
        c.ReplayDeliveries(endpoint_id=endpoint_id, since=delivery.created_at),
    ):
        with pytest.raises(NotFound):
            await client_bus.request(request, other_ctx)
        with pytest.raises(Forbidden):
            await client_bus.request(request, member_ctx)
    for bad in (
        c.ReplayDeliveries(
            endpoint_id=endpoint_id,
            since=delivery.created_at,
            until=delivery.created_at - timedelta(seconds=1),
        ),
        c.ReplayDeliveries(endpoint_id=endpoint_id, since=delivery.created_at.replace(tzinfo=None)),
        c.ListDeliveries(endpoint_id=endpoint_id, limit=51),
        c.ListEndpoints(offset=-1),
    ):
        with pytest.raises(InvalidInput):
            await client_bus.request(bad, ctx)
    unchanged = await client_bus.request(c.GetEndpoint(endpoint_id=endpoint_id), ctx)
    assert unchanged.enabled and unchanged.description == ""
    assert len(await deliveries(client_bus, ctx, endpoint_id)) == 1  # nothing replayed
    # repeated: a second delete finds nothing
    await client_bus.request(c.DeleteEndpoint(endpoint_id=endpoint_id), ctx)
    with pytest.raises(NotFound):
        await client_bus.request(c.DeleteEndpoint(endpoint_id=endpoint_id), ctx)
    with pytest.raises(NotFound):
        await client_bus.request(c.UpdateEndpoint(endpoint_id=endpoint_id, enabled=True), ctx)
    assert (await client_bus.request(c.ListEndpoints(), ctx)).total == 0
    events = [type(e).__name__ for e in dev.context["app"].notifications_after(0, 100)]
    assert len(events) == 2  # created and deleted: the refusals recorded nothing


async def test_a_hanging_receiver_holds_only_its_own_queue(
    services: Services, client_bus: Bus, receiver: Receiver
) -> None:
    await start_webhooks(services, Options(allow_private=True, timeout=30.0))
    stuck = await Receiver(default="hang").start()
    try:
        _, ctx_a = await network(client_bus, "wh-stuck")
        _, ctx_b = await network(client_bus, "wh-fine")
        slow = await client_bus.request(
            c.CreateEndpoint(url=stuck.url, event_types=[CARD_TYPE]), ctx_a
        )
        await client_bus.request(c.CreateEndpoint(url=receiver.url, event_types=[CARD_TYPE]), ctx_b)
        await touch_card(client_bus, ctx_a, 1)
        await eventually(lambda: stuck.received, timeout=20)  # a's attempt hangs…
        for n in range(3):
            await touch_card(client_bus, ctx_b, n)
        await eventually(lambda: len(receiver.delivered) == 3, timeout=20)  # …b's go through
        (head,) = await deliveries(client_bus, ctx_a, slow.endpoint.endpoint_id)
        assert head.status == "pending" and head.attempts == 0  # still in its first attempt
    finally:
        await services.stop()  # the hanging attempt is cut short
        await stuck.stop()


async def test_a_redelivered_event_is_queued_once(
    dev: ServiceHost, client_bus: Bus, receiver: Receiver
) -> None:
    """Exactly-once bookkeeping: the reaction records its position with the
    deliveries it queues, so the same upstream event handled again (a lost
    acknowledgement, a restart, a re-publication) queues nothing more."""
    _, ctx = await network(client_bus, "wh-once")
    made = await client_bus.request(
        c.CreateEndpoint(url=receiver.url, event_types=["quartier.identity.Made"]), ctx
    )
    (identity,) = [r for r in dev.reactions if r.reaction.name == "identity"]
    event = CloudEvent(
        id="identity:100000",
        source="quartier/identity",
        type="quartier.identity.Made.v1",
        subject=made.endpoint.endpoint_id,
        time=datetime.now(UTC),
        tenant=made.endpoint.tenant_id,
        sequence=100_000,
        data=msgspec.Raw(b"{}"),
    )
    for _ in range(2):
        await identity.reaction.handle(event, Tracking("identity", event.sequence))
    await eventually(lambda: receiver.delivered, timeout=20)
    found = await deliveries(client_bus, ctx, made.endpoint.endpoint_id)
    assert [d.event_id for d in found] == ["identity:100000"]
    assert len(receiver.received) == 1
