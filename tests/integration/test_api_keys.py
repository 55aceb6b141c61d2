"""Tenant API keys in the identity service, over a real NATS server and a
real store: who may create, list and revoke them; their bad inputs (a clear
error, nothing saved); verification against the current state (revoked,
expired, another network's, malformed); the secret never stored nor listed;
`last used` written at most once a minute; bad keys throttled per address
and per key id, a good key never; whitespace around a key ignored."""

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
    secret_part = issued.secret.split("_", 2)[2]
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


async def test_bad_keys_are_throttled_but_a_good_key_always_works(
    identity: ServiceHost, client_bus: Bus, clock: MovableClock
) -> None:
    """A shared address (a NAT, a proxy) flooded with bad keys: its failures
    wait, cheaply (refused without a write); a valid key from that very
    address keeps working, and so does the address's own backoff."""
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
    nat = "203.0.113.7"
    for i in range(20):
        with pytest.raises(Unauthenticated):
            await verify(client_bus, guesses[i % len(guesses)], nat)
    for guess in guesses:  # every kind of failure now waits
        with pytest.raises(RateLimited) as waiting:
            await verify(client_bus, guess, nat)
        assert waiting.value.retry_after and waiting.value.retry_after >= 1
    # the flood goes on: refused without counting (no write: the wait does not grow)
    before = throttle_rows(identity)
    for _ in range(30):
        with pytest.raises(RateLimited):
            await verify(client_bus, guesses[0], nat)
    assert throttle_rows(identity) == before
    # a valid key from the flooded address works, every time
    for _ in range(3):
        assert (await verify(client_bus, issued.secret, nat)).key_id == issued.key.key_id
    assert (await verify(client_bus, issued.secret, "198.51.100.1")).key_id
    # the backoff passes: failures are answered as such again (and wait again)
    clock.advance(seconds=2)
    with pytest.raises(Unauthenticated):
        await verify(client_bus, guesses[0], nat)
    with pytest.raises(RateLimited):
        await verify(client_bus, guesses[0], nat)


async def test_guesses_at_one_key_from_many_addresses_wait_but_its_owner_does_not(
    identity: ServiceHost, client_bus: Bus, clock: MovableClock
) -> None:
    """Wrong secrets for one key id (its id is public in its event), each
    from another address: counted on the key id, which then waits; the key's
    consumer, with the right secret, is never locked out."""
    _, admin = await create_network(client_bus, "keys-spread", "admin@spread.example")
    issued = await client_bus.request(
        idc.CreateApiKey(name="d", scopes=["events:read"]), as_member(admin)
    )
    key_id = issued.key.key_id.replace("-", "")
    wrong = f"qk_{key_id}_{'B' * 43}"
    for i in range(20):
        with pytest.raises(Unauthenticated):
            await verify(client_bus, wrong, f"198.51.100.{i + 10}")
    with pytest.raises(RateLimited):
        await verify(client_bus, wrong, "192.0.2.99")  # a fresh address: the key id waits
    with pytest.raises(RateLimited):
        await verify(client_bus, wrong)  # no address known
    assert (await verify(client_bus, issued.secret, "192.0.2.99")).key_id
    # another key id is not slowed by this one's guesses
    with pytest.raises(Unauthenticated):
        await verify(client_bus, "qk_" + "1" * 32 + "_" + "x" * 43, "192.0.2.99")
    clock.advance(seconds=2)
    with pytest.raises(Unauthenticated):
        await verify(client_bus, wrong, "192.0.2.100")


async def test_a_revoked_key_s_holder_is_told_why_and_never_throttled(
    identity: ServiceHost, client_bus: Bus, clock: MovableClock
) -> None:
    """A consumer that keeps retrying with its revoked (or expired) key is
    no guesser: it holds the right secret. It is told why each time, and its
    retries count nothing, also from an address that waits."""
    _, admin = await create_network(client_bus, "keys-retry", "admin@retry.example")
    revoked = await client_bus.request(
        idc.CreateApiKey(name="r", scopes=["events:read"]), as_member(admin)
    )
    await client_bus.request(idc.RevokeApiKey(key_id=revoked.key.key_id), as_member(admin))
    expiring = await client_bus.request(
        idc.CreateApiKey(
            name="e", scopes=["events:read"], expires_at=clock.now() + timedelta(minutes=5)
        ),
        as_member(admin),
    )
    clock.advance(minutes=6)
    before = throttle_rows(identity)
    for _ in range(25):
        with pytest.raises(Unauthenticated, match="revoked"):
            await verify(client_bus, revoked.secret, "192.0.2.50")
        with pytest.raises(Unauthenticated, match="expired"):
            await verify(client_bus, expiring.secret, "192.0.2.50")
    assert throttle_rows(identity) == before
    for _ in range(20):  # then the address waits (bad keys from it)
        with pytest.raises(Unauthenticated):
            await verify(client_bus, "qk_" + "2" * 32 + "_" + "x" * 43, "192.0.2.50")
    with pytest.raises(RateLimited):
        await verify(client_bus, "qk_" + "2" * 32 + "_" + "x" * 43, "192.0.2.50")
    with pytest.raises(Unauthenticated, match="revoked"):
        await verify(client_bus, revoked.secret, "192.0.2.50")


@pytest.mark.parametrize(
    ("shape", "works"),
    [
        ("{key}\n", True),  # stored or pasted with its line break
        ("  {key} \r\n", True),
        ("\t{key}", True),
        ("{head}\n{tail}", False),  # a folded or broken line
        ("{head}\r\n {tail}", False),
        ("{head} {tail}", False),
        ("{head}{tail}\u200b", False),  # an invisible character is no whitespace
        ("{upper}", True),  # the id's hex digits in capitals
    ],
)
async def test_whitespace_around_a_key_is_ignored_inside_it_refused(
    identity: ServiceHost, client_bus: Bus, shape: str, works: bool
) -> None:
    _, admin = await create_network(client_bus, "keys-space", "admin@space.example")
    issued = await client_bus.request(
        idc.CreateApiKey(name="d", scopes=["events:read"]), as_member(admin)
    )
    key = issued.secret
    presented = shape.format(
        key=key,
        head=key[:20],
        tail=key[20:],
        upper=key[:3] + key[3:35].upper() + key[35:],
    )
    if works:
        assert (await verify(client_bus, presented, "192.0.2.1")).key_id == issued.key.key_id
    else:
        with pytest.raises(Unauthenticated):
            await verify(client_bus, presented, "192.0.2.1")


def throttle_rows(identity: ServiceHost) -> list[tuple[object, ...]]:
    with identity.context["engine"].connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text("SELECT * FROM credential_attempts"))]
