"""Tenant API keys through the gateway, as a tenant admin and an analytics
consumer use them: created and listed in GraphQL (the secret shown once),
used as a Bearer credential for the event stream (HTTP and the GraphQL
subscription) within their scopes only and never for a member's
operations; a revoked or expired key stops a running stream; the secret is
never logged."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from gateway.app import create_app, gateway_server, server_options
from services.runtime.clock import MovableClock
from tests.e2e.conftest import Network, System, assert_error, join, mutate, open_network
from tests.e2e.test_identity_sessions import sign_in
from tests.support.waiting import eventually

pytestmark = [pytest.mark.asyncio, pytest.mark.shared_system]

KEY_FIELDS = "id name prefix scopes createdAt lastUsedAt expiresAt revokedAt"
ERR = "... on Error { __typename code message } ... on ValidationError { field } ... on Conflict { field }"
CREATE = f"""mutation($input: CreateApiKeyInput!) {{ createApiKey(input: $input) {{
  __typename ... on ApiKeyCreated {{ secret apiKey {{ {KEY_FIELDS} }} }} {ERR} }} }}"""
REVOKE = f"""mutation($input: RevokeApiKeyInput!) {{ revokeApiKey(input: $input) {{
  __typename ... on ApiKeyRevoked {{ apiKey {{ {KEY_FIELDS} }} }} {ERR} }} }}"""
LIST = f"""query($first: Int!, $after: String) {{ apiKeys(first: $first, after: $after) {{
  totalCount edges {{ cursor node {{ {KEY_FIELDS} }} }} pageInfo {{ hasNextPage }} }} }}"""


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def create_key(
    system: System, net: Network, scopes: list[str], **extra: Any
) -> tuple[str, dict[str, Any]]:
    answer = await system.gql(
        CREATE, {"input": {"name": "dashboard", "scopes": scopes, **extra}}, net.admin.access
    )
    created = answer["data"]["createApiKey"]
    assert created["__typename"] == "ApiKeyCreated", created
    return created["secret"], created["apiKey"]


async def revoke(system: System, net: Network, key_id: str) -> dict[str, Any]:
    answer = await system.gql(REVOKE, {"input": {"id": key_id}}, net.admin.access)
    result: dict[str, Any] = answer["data"]["revokeApiKey"]
    return result


async def follow_until_closed(
    system: System, key: str, then: Any, sse: bool = False, **params: Any
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Follow the stream with `key`; once an event came, run `then()`; the
    events read until the server ended the response, and the error its last
    line gave (NDJSON: a JSON object `{"error": …}`; SSE: an `error` event)."""
    events: list[dict[str, Any]] = []
    ends: list[dict[str, Any]] = []
    headers = {**auth(key), **({"Accept": "text/event-stream"} if sse else {})}
    async with system.client.stream(
        "GET", "/v1/events", params={"follow": "true", **params}, headers=headers
    ) as response:
        assert response.status_code == 200, await response.aread()

        async def read() -> None:
            kind = "message"
            async for line in response.aiter_lines():
                if sse and line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                    continue
                if sse and not line.startswith("data: "):
                    kind = "message" if not line else kind
                    continue
                payload = json.loads(line.removeprefix("data: ")) if line.strip() else None
                if payload is None:
                    continue
                if "error" in payload:
                    assert not sse or kind == "error", (kind, payload)
                    ends.append(payload["error"])
                    continue
                assert not ends, "nothing follows the last line"
                events.append(payload)
                if len(events) == 1:
                    await then()

        await asyncio.wait_for(read(), 60)
    assert len(ends) == 1, ends
    return events, ends[0]


async def test_admins_create_list_and_revoke_keys(system: System, clock: MovableClock) -> None:
    net = await open_network(system, "keys-admin")
    expires = clock.now().replace(microsecond=0) + timedelta(days=365)
    secret, key = await create_key(
        system, net, ["EVENTS_READ", "EXPORT"], expiresAt=expires.isoformat()
    )
    assert secret.startswith(key["prefix"]) and key["prefix"].startswith("qk_")
    assert key["scopes"] == ["EVENTS_READ", "EXPORT"] and key["revokedAt"] is None
    assert key["expiresAt"].startswith(expires.date().isoformat())

    # shown once: the listing has the prefix, not the secret
    answer = await system.gql(LIST, {"first": 10}, net.admin.access)
    listing = answer["data"]["apiKeys"]
    assert listing["totalCount"] == 1 and listing["edges"][0]["node"]["id"] == key["id"]
    assert secret.split("_", 2)[2] not in json.dumps(answer)

    # bad inputs: a typed error naming the field, nothing created
    for bad, field in (
        ({"name": " ", "scopes": ["EXPORT"]}, "name"),
        ({"name": "d", "scopes": []}, "scopes"),
        ({"name": "d", "scopes": ["EXPORT"], "expiresAt": "2001-01-01T00:00:00Z"}, "expiresAt"),
    ):
        answer = await system.gql(CREATE, {"input": bad}, net.admin.access)
        assert_error(
            answer["data"]["createApiKey"], "ValidationError", "invalid_input", field=field
        )
    unknown = await system.gql(
        CREATE, {"input": {"name": "d", "scopes": ["EVENTS_WRITE"]}}, net.admin.access
    )
    assert unknown.get("data") is None and unknown["errors"]  # not a scope of the schema
    bad_id = await revoke(system, net, "not-an-id")
    assert_error(bad_id, "ValidationError", "invalid_input", field="id")

    # a member, another network's admin: no
    member = await join(system, net, "lea@keys-admin.example", "Léa")
    refused = await system.gql(
        CREATE, {"input": {"name": "d", "scopes": ["EXPORT"]}}, member.access
    )
    assert_error(refused["data"]["createApiKey"], "Forbidden", "forbidden")
    listed = await system.gql(LIST, {"first": 10}, member.access)
    assert listed["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    other = await open_network(system, "keys-other")
    assert_error(await revoke(system, other, key["id"]), "NotFound", "not_found")

    revoked = await revoke(system, net, key["id"])
    assert revoked["__typename"] == "ApiKeyRevoked" and revoked["apiKey"]["revokedAt"]
    assert_error(await revoke(system, net, key["id"]), "Conflict", "conflict", field=None)
    answer = await system.gql(LIST, {"first": 10}, net.admin.access)
    assert answer["data"]["apiKeys"]["totalCount"] == 1


async def test_a_key_reads_its_stream_within_its_scopes_only(system: System) -> None:
    net = await open_network(system, "keys-scope")
    other = await open_network(system, "keys-scope-other")
    reader, key = await create_key(system, net, ["EVENTS_READ"])
    exporter, _ = await create_key(system, net, ["EXPORT", "REPORTS_READ"])

    response = await system.client.get("/v1/events", headers=auth(reader))
    assert response.status_code == 200
    events = [json.loads(line) for line in response.text.splitlines() if line.strip()]
    assert events and {e["tenant"] for e in events} == {net.tenant_id}
    created = [e for e in events if e["type"] == "quartier.identity.ApiKeyCreated.v1"]
    assert len(created) == 2
    assert "secret" not in json.dumps(created) and reader.split("_", 2)[2] not in response.text

    # another scope, a malformed or unknown key, another network's position
    assert (await system.client.get("/v1/events", headers=auth(exporter))).status_code == 403
    for bad in ("qk_nonsense", reader[:-2] + "xx"):
        refused = await system.client.get("/v1/events", headers=auth(bad))
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == "unauthenticated"
    admin_events = await system.client.get("/v1/events", headers=auth(other.admin.access))
    foreign = json.loads(admin_events.text.splitlines()[0])["position"]
    wrong = await system.client.get("/v1/events", params={"after": foreign}, headers=auth(reader))
    assert wrong.status_code == 400

    # never a member: member operations answer Forbidden
    for query in ("{ me { id } }", "{ members(first: 5) { totalCount } }", LIST):
        answer = await system.gql(query, {"first": 5} if query == LIST else None, reader)
        assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN", answer
    answer = await system.gql(CREATE, {"input": {"name": "d", "scopes": ["EXPORT"]}}, reader)
    assert_error(answer["data"]["createApiKey"], "Forbidden", "forbidden")
    answer = await system.gql(REVOKE, {"input": {"id": key["id"]}}, reader)
    assert_error(answer["data"]["revokeApiKey"], "Forbidden", "forbidden")

    # its use is listed
    answer = await system.gql(LIST, {"first": 10}, net.admin.access)
    used = {e["node"]["id"]: e["node"]["lastUsedAt"] for e in answer["data"]["apiKeys"]["edges"]}
    assert used[key["id"]] is not None


@pytest.mark.parametrize("sse", [False, True], ids=["ndjson", "sse"])
async def test_revoking_a_key_stops_its_running_stream(
    system: System, capfd: pytest.CaptureFixture[str], sse: bool
) -> None:
    net = await open_network(system, "keys-revoke")
    secret, key = await create_key(system, net, ["EVENTS_READ"])

    async def revoke_it() -> None:
        assert (await revoke(system, net, key["id"]))["__typename"] == "ApiKeyRevoked"

    events, end = await follow_until_closed(system, secret, revoke_it, sse=sse)
    assert events  # it read, then the server ended the response, saying why
    assert end["code"] == "unauthenticated" and "revoked" in end["message"], end
    assert (await system.client.get("/v1/events", headers=auth(secret))).status_code == 401
    # the revocation is an event too (no secret, no hash)
    history = await system.client.get("/v1/events", headers=auth(net.admin.access))
    types = [json.loads(line)["type"] for line in history.text.splitlines() if line.strip()]
    assert "quartier.identity.ApiKeyRevoked.v1" in types
    captured = capfd.readouterr()
    assert secret.split("_", 2)[2] not in captured.out + captured.err


async def test_an_expiring_key_stops_its_running_stream(
    system: System, clock: MovableClock
) -> None:
    net = await open_network(system, "keys-expire")
    expires = (clock.now() + timedelta(minutes=2)).isoformat()
    secret, _ = await create_key(system, net, ["EVENTS_READ"], expiresAt=expires)

    async def later() -> None:
        clock.advance(minutes=3)

    events, end = await follow_until_closed(system, secret, later)
    assert events
    assert end["code"] == "unauthenticated" and "expired" in end["message"], end
    assert (await system.client.get("/v1/events", headers=auth(secret))).status_code == 401


async def test_a_demoted_admin_s_stream_ends_with_a_last_line(system: System) -> None:
    net = await open_network(system, "keys-demote")
    bea = await join(system, net, "bea@demote.example", "Bea")
    promoted = await mutate(
        system, "setTenantAdmin", {"memberId": bea.id, "admin": True}, net.admin.access
    )
    assert promoted["__typename"] == "TenantAdminSet", promoted
    bea = await sign_in(system, net.slug, bea.email)  # her sessions ended: she signs in again

    async def demote() -> None:
        demoted = await mutate(
            system, "setTenantAdmin", {"memberId": bea.id, "admin": False}, net.admin.access
        )
        assert demoted["member"]["roles"] == [], demoted

    events, end = await follow_until_closed(system, bea.access, demote, sse=True)
    assert events
    assert end["code"] in ("unauthenticated", "forbidden") and "ended" in end["message"], end


async def test_a_stopping_server_ends_its_streams_with_a_last_line(system: System) -> None:
    """A second gateway (as `python -m gateway` serves it) told to exit: its
    running streams end at once, each with a last line saying so."""
    net = await open_network(system, "keys-stop")
    secret, _ = await create_key(system, net, ["EVENTS_READ"])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    stopping = asyncio.Event()
    config = uvicorn.Config(
        create_app(system.settings, stopping=stopping),
        lifespan="on",
        timeout_graceful_shutdown=60,
        **server_options(),
    )
    server = gateway_server(config, stopping)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await eventually(lambda: server.started, timeout=15)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        async with httpx.AsyncClient(base_url=base, timeout=15.0) as client:
            ends: dict[bool, list[str]] = {}
            started: list[bool] = []

            async def follow(sse: bool) -> None:
                headers = {**auth(secret), **({"Accept": "text/event-stream"} if sse else {})}
                async with client.stream(
                    "GET", "/v1/events", params={"follow": "true"}, headers=headers
                ) as response:
                    assert response.status_code == 200
                    started.append(sse)
                    ends[sse] = [line async for line in response.aiter_lines() if line.strip()]

            readers = [asyncio.create_task(follow(sse)) for sse in (False, True)]
            await eventually(lambda: len(started) == 2, timeout=15)
            server.should_exit = True
            await asyncio.wait_for(asyncio.gather(*readers), 30)  # not the graceful 60 s
    finally:
        server.should_exit = True
        await task
        sock.close()
    last = json.loads(ends[False][-1])["error"]
    assert last["code"] == "unavailable" and "stopping" in last["message"], ends[False]
    assert ends[True][-2] == "event: error", ends[True]
    last = json.loads(ends[True][-1].removeprefix("data: "))["error"]
    assert last["code"] == "unavailable" and "stopping" in last["message"], ends[True]


async def test_the_subscription_takes_a_key_and_stops_at_its_revocation(system: System) -> None:
    net = await open_network(system, "keys-ws")
    secret, key = await create_key(system, net, ["EVENTS_READ"])
    query = (
        'subscription { tenantEvents(fromStart: true, types: ["quartier.identity."]) { id type } }'
    )
    async with connect(
        system.gateway.ws_url, subprotocols=[Subprotocol("graphql-transport-ws")]
    ) as ws:

        async def receive() -> dict[str, Any]:
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if message["type"] == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
                elif message["type"] != "pong":
                    return message

        await ws.send(json.dumps({"type": "connection_init", "payload": auth(secret)}))
        assert await receive() == {"type": "connection_ack"}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
        first = await receive()
        assert first["type"] == "next" and "errors" not in first["payload"], first
        assert (await revoke(system, net, key["id"]))["__typename"] == "ApiKeyRevoked"
        while True:  # the events it had, then the end
            message = await receive()
            if message["type"] != "next" or "errors" in message["payload"]:
                break
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED", message


async def test_a_flood_of_bad_keys_from_one_address_does_not_lock_out_a_good_key(
    system: System, clock: MovableClock
) -> None:
    """Over HTTP, from one address (every test client is 127.0.0.1, as
    consumers behind one NAT): after many bad keys, bad keys wait (429 with
    Retry-After) while a good key from the same address reads (200)."""
    net = await open_network(system, "keys-flood")
    secret, _ = await create_key(system, net, ["EVENTS_READ"])
    bad = "qk_" + "0" * 32 + "_" + "x" * 43
    statuses: list[int] = []
    while 429 not in statuses and len(statuses) < 25:  # (the module's other tests count too)
        statuses.append((await system.client.get("/v1/events", headers=auth(bad))).status_code)
    assert statuses[-1] == 429 and set(statuses[:-1]) == {401}, statuses
    refused = await system.client.get("/v1/events", headers=auth(bad))
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["error"]["code"] == "rate_limited"
    for _ in range(3):
        assert (await system.client.get("/v1/events", headers=auth(secret))).status_code == 200
    answer = await system.gql("{ __typename }", token=secret)
    assert answer["data"] == {"__typename": "Query"}, answer
    clock.advance(hours=2)  # the address's failures forgotten (the module's other tests)
    assert (await system.client.get("/v1/events", headers=auth(bad))).status_code == 401
