"""What `GET /v1/events` may spend (docs/stream.md, "Limits"): the request
budgets GraphQL spends (the caller's, then the network's; a key is its own
caller), refused with 429, `Retry-After` and the same wait in the JSON
error; and at most so many `follow=true` streams open at once, per network
and per key or member. Each test serves a gateway of its own with small
limits, on the module's services."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from tests.e2e.conftest import Gateway, System, open_network, serve_gateway
from tests.e2e.test_api_keys import create_key
from tests.support.waiting import eventually

pytestmark = [pytest.mark.asyncio, pytest.mark.shared_system]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def rate_limited(response: httpx.Response) -> dict[str, Any]:
    """A 429 with `Retry-After` and the JSON error saying the same wait."""
    assert response.status_code == 429, (response.status_code, response.text)
    retry_after = int(response.headers["retry-after"])
    assert retry_after >= 1
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "rate_limited" and error["message"], error
    assert error["retryAfter"] == retry_after, error
    return error


async def read(gateway: Gateway, token: str, **params: str) -> httpx.Response:
    return await gateway.client.get("/v1/events", params=params, headers=auth(token))


async def test_the_stream_spends_the_graphql_request_budgets(system: System) -> None:
    net = await open_network(system, "stream-budget")
    secret, _ = await create_key(system, net, ["EVENTS_READ"])
    admin = net.admin.access
    # a member (or key, or address) 5 a minute, the network 8
    limited = system.settings.with_(rate_limit_per_minute=8, member_rate_limit_per_minute=5)
    async with serve_gateway(limited) as gateway:
        for _ in range(4):
            assert (await read(gateway, admin, limit="1")).status_code == 200
        assert (await gateway.post("{ me { id } }", token=admin)).status_code == 200  # the 5th
        rate_limited(await read(gateway, admin, limit="1"))
        assert (await gateway.post("{ me { id } }", token=admin)).status_code == 429
        # an SSE client is told the same, in JSON (before any event)
        sse = await gateway.client.get(
            "/v1/events", headers={**auth(admin), "Accept": "text/event-stream"}
        )
        rate_limited(sse)
        # the key is its own caller: its bucket is full, its network's holds 3
        for _ in range(3):
            assert (await read(gateway, secret, limit="1")).status_code == 200
        error = rate_limited(await read(gateway, secret, limit="1"))
        assert "slow down" in error["message"]


async def test_following_streams_are_bounded_per_caller_and_given_back(system: System) -> None:
    net = await open_network(system, "stream-follows")
    secret, _ = await create_key(system, net, ["EVENTS_READ"])
    admin = net.admin.access
    limited = system.settings.with_(stream_follows=4)  # a quarter per caller: 1
    async with serve_gateway(limited) as gateway:
        follow = {"follow": "true", "heartbeat": "1"}
        async with gateway.client.stream(
            "GET", "/v1/events", params=follow, headers=auth(admin)
        ) as first:
            assert first.status_code == 200
            error = rate_limited(await read(gateway, admin, **follow))
            assert "per key or member" in error["message"]
            assert (await read(gateway, admin, limit="1")).status_code == 200  # no follow
            async with gateway.client.stream(
                "GET", "/v1/events", params=follow, headers=auth(secret)
            ) as keys:
                assert keys.status_code == 200  # another caller
                rate_limited(await read(gateway, secret, **follow))
        # hung up: the server gives the turn back at its next heartbeat

        async def served_again() -> bool:
            response = await read(gateway, admin, follow="true", limit="1")
            return response.status_code == 200 and bool(json.loads(response.text.splitlines()[0]))

        await eventually(served_again)


async def test_the_network_bound_counts_every_caller(system: System) -> None:
    net = await open_network(system, "stream-network")
    keys = [(await create_key(system, net, ["EVENTS_READ"]))[0] for _ in range(3)]
    limited = system.settings.with_(stream_follows=2)  # per caller 1, per network 2
    async with serve_gateway(limited) as gateway:
        follow = {"follow": "true", "heartbeat": "1"}
        async with (
            gateway.client.stream("GET", "/v1/events", params=follow, headers=auth(keys[0])) as a,
            gateway.client.stream("GET", "/v1/events", params=follow, headers=auth(keys[1])) as b,
        ):
            assert a.status_code == b.status_code == 200
            error = rate_limited(await read(gateway, keys[2], **follow))
            assert "QUARTIER_STREAM_FOLLOWS" in error["message"]


async def test_the_pages_spend_the_address_budget_and_say_when_to_come_back(
    system: System,
) -> None:
    """The pages e-mails link to (and calendar feeds) spend the client
    address's request budget, and a refusal says when to come back."""
    limited = system.settings.with_(member_rate_limit_per_minute=2)
    async with serve_gateway(limited) as gateway:
        for _ in range(2):
            assert (await gateway.client.get("/calendar/nothing.ics")).status_code == 404
        feed = await gateway.client.get("/calendar/nothing.ics")
        page = await gateway.client.get("/links/nowhere/not-a-token")
        for response in (feed, page):
            assert response.status_code == 429, response.text
            assert int(response.headers["retry-after"]) >= 1
        assert page.headers["content-type"].startswith("text/html")


async def test_one_subscription_too_many_on_a_connection_is_a_coded_error(
    system: System,
) -> None:
    net = await open_network(system, "stream-subs")
    query = "subscription { tenantEvents { id } }"  # new events only: each stays open
    async with connect(
        system.gateway.ws_url, subprotocols=[Subprotocol("graphql-transport-ws")]
    ) as ws:

        async def receive() -> dict[str, Any]:
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if message["type"] == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
                elif message["type"] != "pong":
                    return message

        init = {"type": "connection_init", "payload": auth(net.admin.access)}
        await ws.send(json.dumps(init))
        assert await receive() == {"type": "connection_ack"}
        for n in range(101):  # strawberry's limit: 100 at once on a connection
            subscribe = {"id": str(n), "type": "subscribe", "payload": {"query": query}}
            await ws.send(json.dumps(subscribe))
        message = await receive()
        assert message["id"] == "100" and message["type"] == "error", message
        [error] = message["payload"]
        assert error["extensions"]["code"] == "RATE_LIMITED", error
        assert "100 subscriptions" in error["message"]


async def test_a_key_s_graphql_and_stream_requests_share_its_bucket(system: System) -> None:
    """A key's own bucket, whatever the address it comes from (each request
    also spends its address's before the key is verified)."""
    net = await open_network(system, "stream-key-budget")
    key, _ = await create_key(system, net, ["EVENTS_READ", "REPORTS_READ"])
    other_key, _ = await create_key(system, net, ["EVENTS_READ"])
    network_report = "{ results(scope: TENANT) { scope } }"
    limited = system.settings.with_(
        member_rate_limit_per_minute=3,
        rate_limit_per_minute=1000,
        trusted_proxies=frozenset({"127.0.0.1"}),  # X-Forwarded-For picks the address
    )

    def sent(token: str, address: str) -> dict[str, str]:
        return {**auth(token), "X-Forwarded-For": address}

    async def report(token: str, address: str) -> httpx.Response:
        return await gateway.client.post(
            "/graphql", json={"query": network_report}, headers=sent(token, address)
        )

    async def stream(token: str, address: str) -> httpx.Response:
        return await gateway.client.get(
            "/v1/events", params={"limit": "1"}, headers=sent(token, address)
        )

    async with serve_gateway(limited) as gateway:
        assert (await report(key, "10.0.0.1")).status_code == 200
        for _ in range(2):
            assert (await stream(key, "10.0.0.1")).status_code == 200
        # from a fresh address: the key's bucket (3) is spent, by GraphQL and the stream
        rate_limited(await stream(key, "10.0.0.2"))
        assert (await report(key, "10.0.0.3")).status_code == 429
        # another key of the network has its own
        assert (await stream(other_key, "10.0.0.4")).status_code == 200
