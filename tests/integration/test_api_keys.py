"""Tenant API keys in the identity service, over a real NATS server and a
real store: who may create, list and revoke them; their bad inputs (a clear
error, nothing saved); verification against the current state (revoked,
expired, another network's, malformed); the secret never stored nor listed;
`last used` written at most once a minute; bad keys throttled per address."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from services.identity import contract as idc
from services.identity.domain import hash_secret
from services.runtime.bus import Bus
from services.runtime.clock import MovableClock
from services.runtime.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthenticated,
)
from services.runtime.host import ServiceHost
from services.runtime.tenancy import RequestContext
from tests.support.identity import add_member, as_member, card, create_network

pytestmark = pytest.mark.asyncio

ANYONE = RequestContext()


async def event_count(identity: ServiceHost) -> int:
    return identity.context["app"].max_notification_id()


async def verify(bus: Bus, key: str, address: str | None = None) -> idc.ApiKeyGrant:
    return await bus.request(idc.VerifyApiKey(key=key, client_address=address), ANYONE)


async def test_a_tenant_admin_creates_lists_and_revokes_keys(
    identity: ServiceHost, client_bus: Bus, clock: MovableClock
) -> None:
    tenant, admin = await create_network(client_bus, "keys-net", "admin@keys.example")
    admin_ctx = as_member(admin)
    issued = await client_bus.request(
        idc.CreateApiKey(
            name="  Warehouse  ",
            scopes=["export", "events:read", "export"],
            expires_at=clock.now() + timedelta(days=30),
        ),
        admin_ctx,
    )
    key = issued.key
    assert key.name == "Warehouse" and key.scopes == ["events:read", "export"]
    assert issued.secret.startswith(key.prefix) and key.prefix.startswith("qk_")
    assert key.last_used_at is None and key.revoked_at is None

    grant = await verify(client_bus, issued.secret)
    assert (grant.key_id, grant.tenant_id, grant.tenant_slug) == (
        key.key_id,
        tenant.tenant_id,
        "keys-net",
    )
    assert grant.scopes == ["events:read", "export"]

    # listed with its prefix and last use; the secret is nowhere, nor its hash
    page = await client_bus.request(idc.ListApiKeys(), admin_ctx)
    assert [k.key_id for k in page.items] == [key.key_id] and page.total == 1
    assert page.items[0].last_used_at == clock.now()
    secret_part = issued.secret.rsplit("_", 1)[1]
    listed = repr(page)
    assert secret_part not in listed and hash_secret(secret_part) not in listed

    # the store keeps only the hash
    engine: sa.Engine = identity.context["engine"]
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM api_keys")).all()
    assert secret_part not in repr(rows)

    revoked = await client_bus.request(idc.RevokeApiKey(key_id=key.key_id), admin_ctx)
    assert revoked.revoked_at == clock.now()
    with pytest.raises(Unauthenticated):
        await verify(client_bus, issued.secret)
    before = await event_count(identity)
    with pytest.raises(Conflict):  # revoked already
        await client_bus.request(idc.RevokeApiKey(key_id=key.key_id), admin_ctx)
    assert await event_count(identity) == before


async def test_who_may_manage_keys(identity: ServiceHost, client_bus: Bus) -> None:
    tenant, admin = await create_network(client_bus, "keys-who", "admin@who.example")
    _, other_admin = await create_network(client_bus, "keys-other", "admin@other.example")
    member = await add_member(client_bus, tenant.tenant_id, "m@who.example", card("Léa"))
    issued = await client_bus.request(
        idc.CreateApiKey(name="dash", scopes=["events:read"]), as_member(admin)
    )
    before = await event_count(identity)
    for ctx in (as_member(member), ANYONE):
        with pytest.raises((Forbidden, Unauthenticated)):
            await client_bus.request(idc.CreateApiKey(name="x", scopes=["export"]), ctx)
        with pytest.raises((Forbidden, Unauthenticated)):
            await client_bus.request(idc.RevokeApiKey(key_id=issued.key.key_id), ctx)
        with pytest.raises((Forbidden, Unauthenticated)):
            await client_bus.request(idc.ListApiKeys(), ctx)
    # another network's admin: the key is not found there, nor listed
    with pytest.raises(NotFound):
        await client_bus.request(idc.RevokeApiKey(key_id=issued.key.key_id), as_member(other_admin))
    with pytest.raises(NotFound):
        await client_bus.request(idc.RevokeApiKey(key_id="not-an-id"), as_member(admin))
    assert (await client_bus.request(idc.ListApiKeys(), as_member(other_admin))).total == 0
    assert await event_count(identity) == before
    assert (await verify(client_bus, issued.secret)).tenant_id == tenant.tenant_id


BAD_INPUTS = [
    # name, scopes, expires in, the field refused
    ("", ["events:read"], None, "name"),
    ("   ", ["events:read"], None, "name"),
    ("x" * 81, ["events:read"], None, "name"),
    ("bell\x07", ["events:read"], None, "name"),
    ("dash", [], None, "scopes"),
    ("dash", ["events:write"], None, "scopes"),
    ("dash", ["events:read"], timedelta(hours=-1), "expires_at"),
    ("dash", ["events:read"], timedelta(seconds=5), "expires_at"),
    ("dash", ["events:read"], timedelta(days=4 * 365), "expires_at"),
]


async def test_bad_inputs_create_nothing(
    identity: ServiceHost, client_bus: Bus, clock: MovableClock
) -> None:
    _, admin = await create_network(client_bus, "keys-bad", "admin@bad.example")
    before = await event_count(identity)
    for name, scopes, expires_in, field in BAD_INPUTS:
        expires_at = clock.now() + expires_in if expires_in is not None else None
        with pytest.raises(InvalidInput) as refused:
            await client_bus.request(
                idc.CreateApiKey(name=name, scopes=scopes, expires_at=expires_at),
                as_member(admin),
            )
        assert refused.value.field == field, (name, scopes, expires_in)
    with pytest.raises(InvalidInput) as refused:  # an expiry without its time zone
        await client_bus.request(
            idc.CreateApiKey(name="d", scopes=["export"], expires_at=datetime(2999, 1, 1)),
            as_member(admin),
        )
    assert refused.value.field == "expires_at"
    assert await event_count(identity) == before
    assert (await client_bus.request(idc.ListApiKeys(), as_member(admin))).total == 0


async def test_expiry_and_last_use_follow_the_clock(
    identity: ServiceHost, client_bus: Bus, clock: MovableClock
) -> None:
    _, admin = await create_network(client_bus, "keys-time", "admin@time.example")
    issued = await client_bus.request(
        idc.CreateApiKey(
            name="d", scopes=["reports:read"], expires_at=clock.now() + timedelta(minutes=10)
        ),
        as_member(admin),
    )
    first = clock.now()
    await verify(client_bus, issued.secret)
    clock.advance(seconds=30)
    await verify(client_bus, issued.secret)  # within the minute: not written again
    page = await client_bus.request(idc.ListApiKeys(), as_member(admin))
    assert page.items[0].last_used_at == first
    clock.advance(seconds=40)
    await verify(client_bus, issued.secret)
    page = await client_bus.request(idc.ListApiKeys(), as_member(admin))
    assert page.items[0].last_used_at == clock.now()
    clock.advance(minutes=10)
    with pytest.raises(Unauthenticated):
        await verify(client_bus, issued.secret)


async def test_bad_keys_are_throttled_per_address(
    identity: ServiceHost, client_bus: Bus, clock: MovableClock
) -> None:
    _, admin = await create_network(client_bus, "keys-guess", "admin@guess.example")
    issued = await client_bus.request(
        idc.CreateApiKey(name="d", scopes=["events:read"]), as_member(admin)
    )
    key_id = issued.key.key_id.replace("-", "")
    guesses = [
        "qk_nonsense",
        f"qk_{key_id}_{'A' * 43}",  # the right id, a wrong secret
        issued.secret[:-1] + ("A" if issued.secret[-1] != "A" else "B"),
        "qk_" + "0" * 32 + "_" + "x" * 43,
    ]
    for i in range(20):
        with pytest.raises(Unauthenticated):
            await verify(client_bus, guesses[i % len(guesses)], "203.0.113.7")
    with pytest.raises(RateLimited) as waiting:
        await verify(client_bus, guesses[0], "203.0.113.7")
    assert waiting.value.retry_after and waiting.value.retry_after >= 1
    # the guessing address waits, even with a good key; others do not
    with pytest.raises(RateLimited):
        await verify(client_bus, issued.secret, "203.0.113.7")
    assert (await verify(client_bus, issued.secret, "198.51.100.1")).key_id
    clock.advance(seconds=2)
    assert (await verify(client_bus, issued.secret, "203.0.113.7")).key_id
