"""The gateway's limits over real HTTP (docs/security.md, "The gateway"):
documents that would expand are refused before they cost anything and the
gateway keeps answering; one credential operation a request; cost and
request budgets per member then per network, with 429 and `Retry-After`;
`X-Forwarded-For` only from trusted proxies; size limits on headers, body,
document and variables, each a clear client error logged without values.

These limits do not depend on the store: SQLite only."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from gateway.app import create_app, server_options
from gateway.costs import MAX_FIELDS
from gateway.limits import MAX_BODY, MAX_DOCUMENT, MAX_HEADER_VALUE, MAX_TEXT
from services.runtime.settings import Settings
from tests.e2e.conftest import (
    ERROR_FIELDS,
    WS_TIMEOUT,
    Network,
    Session,
    System,
    join,
    open_network,
    serve_gateway,
)
from tests.e2e.test_graphql_over_http import assert_client_errors_logged, captured_logs
from tests.support.identity import PASSWORD

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.parametrize("settings", ["sqlite"], indirect=True),
]

LOGIN = (
    "login(input: {{tenant: $tenant, email: $email, password: $p{i}}})"
    " {{ __typename ... on AuthPayload {{ accessToken }} }}"
)


def limit_of(answer: dict[str, Any]) -> str:
    """The limit a request error names (it ran nothing: no `data`)."""
    assert "data" not in answer, answer
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", error
    return str(error["extensions"]["limit"])


def doubling(n: int, spread: str = "...F{next} ...F{next}") -> str:
    fragments = " ".join(
        f"fragment F{i} on Query {{ {spread.format(next=i + 1)} }}" for i in range(n)
    )
    return f"query {{ ...F0 }} {fragments} fragment F{n} on Query {{ __typename }}"


EXPANDING = {
    "the example: 22 doublings": (doubling(22), "fields"),
    "30 doublings": (doubling(30), "fields"),
    "tripled spreads": (doubling(25, "...F{next} ...F{next} ...F{next}"), "fields"),
    "aliases in each fragment": (doubling(25, "a: __typename ...F{next} ...F{next}"), "aliases"),
    "inline fragments": (
        doubling(30, "... {{ ...F{next} }} ... on Query {{ ...F{next} }}"),
        "fields",
    ),
    "unused fragments": (doubling(30).replace("query { ...F0 }", "{ __typename }"), "fields"),
    "wide repetition": ("{ " + "__typename " * (MAX_FIELDS + 1) + "}", "fields"),
    "a cycle": ("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }", "cycle"),
    "nested lists": (
        "{ hubs { meetups(first: 50) { edges { node { rsvps { member { id } } } } } } }",
        "cost",
    ),
}


async def test_expanding_documents_are_refused_and_the_gateway_keeps_answering(
    system: System,
) -> None:
    async def refuse(query: str) -> str:
        return limit_of(await system.gql(query))

    async def live() -> int:
        return (await system.client.get("/health/live")).status_code

    # each shape, several at once, with liveness probes among them
    answers = await asyncio.gather(
        *(refuse(query) for query, _ in EXPANDING.values() for _ in range(3)),
        *(live() for _ in range(10)),
    )
    expected = [limit for _, limit in EXPANDING.values() for _ in range(3)]
    assert answers == [*expected, *([200] * 10)]
    assert await system.gql("{ __typename }") == {"data": {"__typename": "Query"}}


# -- one credential operation a request ----------------------------------------------


async def test_aliased_logins_test_no_password(system: System) -> None:
    net = await open_network(system, "pole-11e")
    guesses = [f"guess-{i}" for i in range(19)] + [PASSWORD]
    variables: dict[str, Any] = {"tenant": net.slug, "email": net.admin.email}
    variables |= {f"p{i}": guess for i, guess in enumerate(guesses)}
    declared = ", ".join(f"$p{i}: String!" for i in range(len(guesses)))
    logins = " ".join(f"a{i}: " + LOGIN.format(i=i) for i in range(len(guesses)))
    document = f"mutation($tenant: String!, $email: String!, {declared}) {{ {logins} }}"
    with captured_logs() as logs:
        answer = await system.gql(document, variables)
    assert limit_of(answer) == "credentials"
    assert "accessToken" not in str(answer)
    assert_client_errors_logged(logs, PASSWORD, *guesses)

    # two by fragments, or two kinds, are refused alike
    two = (
        "mutation($tenant: String!, $email: String!, $p0: String!) { ...L ...L }"
        " fragment L on Mutation { " + LOGIN.format(i=0) + " }"
    )
    assert limit_of(await system.gql(two, {**variables, "p0": PASSWORD})) == "credentials"
    both = (
        "mutation($tenant: String!, $email: String!, $p0: String!, $r: String!) { "
        + LOGIN.format(i=0)
        + " refreshSession(input: {refreshToken: $r}) { __typename } }"
    )
    refreshed = await system.gql(both, {**variables, "p0": PASSWORD, "r": net.admin.refresh})
    assert limit_of(refreshed) == "credentials"

    # one is served
    one = "mutation($tenant: String!, $email: String!, $p0: String!) { " + LOGIN.format(i=0) + " }"
    answer = await system.gql(one, {**variables, "p0": PASSWORD})
    assert answer["data"]["login"]["__typename"] == "AuthPayload", answer


# -- budgets -----------------------------------------------------------------------------

MEMBERS = "{ members(first: 50) { edges { node { id } } } }"  # costs 151


def assert_rate_limited(response: httpx.Response) -> int:
    """A 429 with `Retry-After` and a GraphQL error saying the same; the wait."""
    assert response.status_code == 429, response.text
    retry_after = int(response.headers["retry-after"])
    assert retry_after >= 1
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED", error
    if "retryAfter" in error["extensions"]:
        assert error["extensions"]["retryAfter"] == retry_after
    return retry_after


async def member_and_admin(system: System) -> tuple[Network, Session]:
    net = await open_network(system, "pole-11e")
    member = await join(system, net, "flood@pole-11e.example", "Flo Od")
    return net, member


async def test_a_members_costly_queries_are_refused_with_retry_after_and_the_admin_served(
    system: System,
) -> None:
    net, member = await member_and_admin(system)
    # a member's bucket holds 20 seconds' worth: 666, four of these questions
    limited = system.settings.with_(member_cost_limit_per_minute=2000, cost_limit_per_minute=60_000)
    async with serve_gateway(limited) as gateway:
        for _ in range(4):
            answer = await gateway.gql(MEMBERS, token=member.access)
            assert "errors" not in answer, answer
        response = await gateway.post(MEMBERS, token=member.access)
        retry_after = assert_rate_limited(response)
        assert response.json()["errors"][0]["extensions"]["retryAfter"] == retry_after
        # until then, refused at the door, even for a cheap question
        for _ in range(5):
            assert_rate_limited(await gateway.post("{ me { id } }", token=member.access))
        # the admin has their own budget
        for _ in range(2):
            answer = await gateway.gql(MEMBERS, token=net.admin.access)
            assert "errors" not in answer, answer


async def test_a_members_flood_of_requests_does_not_lock_out_their_admin(system: System) -> None:
    net, member = await member_and_admin(system)
    limited = system.settings.with_(rate_limit_per_minute=20, member_rate_limit_per_minute=5)
    async with serve_gateway(limited) as gateway:
        statuses = [
            (await gateway.post("{ me { id } }", token=member.access)).status_code
            for _ in range(30)
        ]
        assert statuses == [200] * 5 + [429] * 25
        assert_rate_limited(await gateway.post("{ me { id } }", token=member.access))
        for _ in range(5):
            answer = await gateway.gql("{ me { id isTenantAdmin } }", token=net.admin.access)
            assert answer["data"]["me"]["isTenantAdmin"] is True, answer


async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(system: System) -> None:
    async def statuses(base_url: str, forwarded: list[str]) -> list[int]:
        async with httpx.AsyncClient(base_url=base_url) as client:
            return [
                (
                    await client.post(
                        "/graphql",
                        json={"query": "{ __typename }"},
                        headers={"x-forwarded-for": f},
                    )
                ).status_code
                for f in forwarded
            ]

    spoofed = ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
    untrusted = system.settings.with_(member_rate_limit_per_minute=2)
    async with serve_as_deployed(untrusted) as base_url:
        # not from a trusted proxy: the header is ignored, all three are the peer's
        assert await statuses(base_url, spoofed) == [200, 200, 429]

    trusted = untrusted.with_(trusted_proxies=frozenset({"127.0.0.1/32"}))
    async with serve_as_deployed(trusted) as base_url:
        assert await statuses(base_url, spoofed) == [200, 200, 200]
        # the client's own address, whatever it prepends
        chain = [f"6.6.6.{i}, 203.0.113.7" for i in range(3)]
        assert await statuses(base_url, chain) == [200, 200, 429]


# -- sizes ---------------------------------------------------------------------------------


@asynccontextmanager
async def serve_as_deployed(settings: Settings) -> AsyncIterator[str]:
    """The gateway served with `server_options()`, as `python -m gateway`
    serves it; its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings), lifespan="on", **server_options())
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = time.monotonic() + 15
    while not server.started:
        assert not task.done() and time.monotonic() < deadline, "the gateway did not start"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def send_huge_head(base_url: str, head: bytes) -> tuple[int, bytes]:
    """Send a request head as is, 64 KiB at a time (no client would send
    one this large), until the server stops taking it; how many bytes it
    took, and the first line of its answer (b"" if it reset the connection
    before one could be read)."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    sent = 0
    status_line = b""
    try:
        with contextlib.suppress(ConnectionError):
            while sent < len(head):
                writer.write(head[sent : sent + 65536])
                await writer.drain()
                sent += 65536
        with contextlib.suppress(ConnectionError):
            status_line = await reader.readline()
    finally:
        writer.close()
    return sent, status_line


async def test_huge_headers_are_refused_before_they_are_read(system: System) -> None:
    huge = b"Bearer " + b"x" * (8 * 1024 * 1024)
    head = b"POST /graphql HTTP/1.1\r\nHost: q\r\nAuthorization: " + huge + b"\r\n\r\n"
    async with serve_as_deployed(system.settings) as base_url:
        sent, status_line = await send_huge_head(base_url, head)
        # refused by the server before the whole header was taken: the
        # connection closed under the sender, or a 400 answered it
        assert sent < len(head) or status_line.split()[1:2] == [b"400"], (sent, status_line)
        assert not status_line.startswith(b"HTTP/1.1 2"), status_line
        async with httpx.AsyncClient(base_url=base_url) as client:
            # one header over its own limit, under the server's
            response = await client.post(
                "/graphql",
                json={"query": "{ __typename }"},
                headers={"authorization": "Bearer " + "x" * MAX_HEADER_VALUE},
            )
            assert response.status_code == 431
            assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
            answer = await client.post("/graphql", json={"query": "{ __typename }"})
            assert answer.json() == {"data": {"__typename": "Query"}}


async def test_bodies_and_documents_past_their_limits_are_refused(system: System) -> None:
    body = {"query": "{ __typename }", "variables": {"x": "y" * MAX_BODY}}
    response = await system.client.post("/graphql", json=body)
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"

    document = "{ __typename }" + " " * MAX_DOCUMENT
    response = await system.client.post("/graphql", json={"query": document})
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert str(MAX_DOCUMENT) in error["message"]


PROFILE = (
    "mutation($input: ProfileCardInput!) { updateProfileCard(input: $input) { __typename"
    " ...Err } }" + ERROR_FIELDS
)


@pytest.mark.parametrize("size", [MAX_TEXT + 1, 2 * 1024 * 1024])
async def test_a_text_field_too_long_is_a_validation_error_naming_it(
    system: System, size: int
) -> None:
    net = await open_network(system, "pole-11e")
    with captured_logs() as logs:
        answer = await system.gql(PROFILE, {"input": {"bio": "x" * size}}, net.admin.access)
    assert "data" not in answer, answer
    [error] = answer["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "input.bio"}, error
    assert "input.bio" in error["message"]
    assert_client_errors_logged(logs, "x" * 50)

    # a password too: named, never quoted nor logged
    login = "mutation($input: LoginInput!) { login(input: $input) { __typename } }"
    secret = "s3cr3t" * 5000
    with captured_logs() as logs:
        answer = await system.gql(
            login, {"input": {"tenant": net.slug, "email": net.admin.email, "password": secret}}
        )
    assert answer["errors"][0]["extensions"]["field"] == "input.password"
    assert secret[:20] not in str(answer)
    assert_client_errors_logged(logs, secret[:20])


async def test_a_value_repeated_past_the_bus_limit_is_invalid_input_not_internal(
    system: System,
) -> None:
    net = await open_network(system, "pole-11e")
    text = "😀" * MAX_TEXT  # 80 KB of UTF-8, within every limit alone
    links = ", ".join("$x" for _ in range(15))  # 1.2 MB to the service
    document = (
        f"mutation($x: String!) {{ updateProfileCard(input: {{links: [{links}]}})"
        " { __typename ...Err } }" + ERROR_FIELDS
    )
    answer = await system.gql(document, {"x": text}, net.admin.access)
    result = answer["data"]["updateProfileCard"]
    assert result["__typename"] == "ValidationError", answer
    assert result["code"] == "invalid_input"
    assert "too large" in result["message"]


async def test_inline_text_too_long_is_named_by_the_service(system: System) -> None:
    net = await open_network(system, "pole-11e")
    document = (
        'mutation { updateProfileCard(input: {bio: "' + "x" * (MAX_TEXT + 1) + '"})'
        " { __typename ...Err } }" + ERROR_FIELDS
    )
    answer = await system.gql(document, token=net.admin.access)
    result = answer["data"]["updateProfileCard"]
    assert result["__typename"] == "ValidationError", answer
    assert result["field"].split(".")[-1] == "bio", answer


async def test_client_mistakes_in_variables_are_logged_without_values(system: System) -> None:
    net = await open_network(system, "pole-11e")
    login = "mutation($input: LoginInput!) { login(input: $input) { __typename } }"
    mistakes: list[tuple[str, dict[str, Any]]] = [
        (
            login,
            {
                "input": {
                    "tenant": net.slug,
                    "email": net.admin.email,
                    "password": PASSWORD,
                    "rememberMe": True,  # no such field
                }
            },
        ),
        (login, {"input": {"tenant": net.slug, "email": net.admin.email, "password": 7}}),
        (
            "query($n: Int!) { members(first: $n) { totalCount } }",
            {"n": 2**40},  # an Int overflow
        ),
        (PROFILE, {"input": {"bio": None, "nope": PASSWORD}}),
    ]
    for document, variables in mistakes:
        with captured_logs() as logs:
            answer = await system.gql(document, variables, net.admin.access)
        assert "data" not in answer, answer
        assert answer["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", answer
        assert_client_errors_logged(logs, PASSWORD)


async def test_over_websocket_the_same_limits_hold(system: System) -> None:
    net = await open_network(system, "pole-11e")
    bomb = doubling(30).replace("query { ...F0 }", "subscription { tenantEvents { id } ...F0 }")
    bomb = bomb.replace("on Query", "on Subscription").replace("__typename", "tenantEvents { id }")
    async with connect(
        system.gateway.ws_url, subprotocols=[Subprotocol("graphql-transport-ws")]
    ) as ws:

        async def receive() -> dict[str, Any]:
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), WS_TIMEOUT))
                if message["type"] == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
                elif message["type"] != "pong":
                    return message

        payload = {"Authorization": f"Bearer {net.admin.access}"}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert await receive() == {"type": "connection_ack"}
        for op_id, query, variables, limit in (
            ("bomb", bomb, {}, "fields"),
            (
                "text",
                "subscription($t: [String!]) { tenantEvents(types: $t) { id } }",
                {"t": ["x" * (MAX_TEXT + 1)]},
                None,
            ),
        ):
            await ws.send(
                json.dumps(
                    {
                        "id": op_id,
                        "type": "subscribe",
                        "payload": {"query": query, "variables": variables},
                    }
                )
            )
            message = await receive()
            assert (message["id"], message["type"]) == (op_id, "error"), message
            [error] = message["payload"]
            if limit is None:
                assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "t.0"}, error
            else:
                assert error["extensions"]["limit"] == limit, error
