"""The gateway itself, over real HTTP and WebSocket: health, the query limits,
the production hardening (no introspection, no GraphiQL, no suggestions,
masked internal errors) and the tenant event stream subscription
(graphql-transport-ws)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from gateway.context import Context
from gateway.execution import MAX_ALIASES, MAX_DEPTH, MAX_TOKENS
from services.runtime.auth import issue_access_token
from tests.e2e.conftest import (
    Gateway,
    System,
    join,
    mutate,
    open_network,
    serve_gateway,
)
from tests.support.env import JWT_SECRET, OPERATOR_TOKEN

pytestmark = pytest.mark.asyncio
# the tests that neither stop, break nor count on an empty system share one per store
shared = pytest.mark.shared_system

WS_TIMEOUT = 10.0

# -- health --------------------------------------------------------------------


async def test_liveness_and_readiness(system: System) -> None:
    live = await system.client.get("/health/live")
    assert (live.status_code, live.json()) == (200, {"status": "live"})

    running = dict.fromkeys(system.hosts, True)
    ready = await system.client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "nats": True,
        "services": running,
        "missing": [],
        "parked": {},
    }

    # a configured service that is not running: not ready, and said so
    await system.hosts["referrals"].stop()
    ready = await system.client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "not ready",
        "nats": True,
        "services": {**running, "referrals": False},
        "missing": ["referrals"],
        "parked": {},
    }

    # identity stops too: requests that need it fail with a clear operational error
    await system.identity.stop()
    ready = await system.client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["services"] == {**running, "referrals": False, "identity": False}
    assert ready.json()["missing"] == ["identity", "referrals"]
    answer = await system.gql("{ professions { code } }")
    assert answer["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
    assert (await system.client.get("/health/live")).status_code == 200


# -- query limits --------------------------------------------------------------


def error_messages(answer: dict[str, Any]) -> list[str]:
    return [e["message"] for e in answer.get("errors") or ()]


@shared
async def test_depth_limit(system: System) -> None:
    def nested(depth: int) -> str:
        # `depth` levels below the root field (at depth 0). The schema is
        # shallow: only nonsense nests this deep, and the depth rule must
        # refuse it whatever else is wrong with it.
        inner = "{ x }"
        for _ in range(depth - 2):
            inner = "{ x " + inner + " }"
        return "{ me { work " + inner + " } }"

    refused = await system.gql(nested(MAX_DEPTH + 1))
    assert "data" not in refused  # a request error: nothing ran
    assert f"'anonymous' exceeds maximum operation depth of {MAX_DEPTH}" in error_messages(refused)
    at_limit = await system.gql(nested(MAX_DEPTH))
    assert "data" not in at_limit  # x is no field of Place ...
    assert not any("depth" in m for m in error_messages(at_limit))  # ... but deep enough


async def test_alias_limit(system: System) -> None:
    def aliased(n: int) -> str:
        return "{ " + " ".join(f"a{i}: __typename" for i in range(n)) + " }"

    at_limit = await system.gql(aliased(MAX_ALIASES))
    assert at_limit == {"data": {f"a{i}": "Query" for i in range(MAX_ALIASES)}}
    refused = await system.gql(aliased(MAX_ALIASES + 1))
    assert "data" not in refused
    assert error_messages(refused) == [f"{MAX_ALIASES + 1} aliases found. Allowed: {MAX_ALIASES}"]

    # refused before anything runs: none of these networks is created
    creations = " ".join(
        f't{i}: createTenant(input: {{slug: "net-{i:02d}", name: "N", adminEmail: "a@n.example"}})'
        " { __typename }"
        for i in range(MAX_ALIASES + 1)
    )
    answer = await system.gql(f"mutation {{ {creations} }}", token=OPERATOR_TOKEN)
    assert "data" not in answer
    assert error_messages(answer) == [f"{MAX_ALIASES + 1} aliases found. Allowed: {MAX_ALIASES}"]
    assert await system.event_count() == 0


@shared
async def test_token_limit(system: System) -> None:
    # `query Qn { __typename }` is 5 tokens: a document of many small
    # operations is long but cheap to validate
    operations = [f"query Q{i} {{ __typename }}" for i in range(MAX_TOKENS // 5)]
    at_limit = " ".join(operations)
    answer = await system.client.post("/graphql", json={"query": at_limit, "operationName": "Q7"})
    assert answer.json() == {"data": {"__typename": "Query"}}

    one_more = at_limit.replace("query Q0 { __typename }", "query Q0 { __typename __typename }")
    answer = await system.client.post("/graphql", json={"query": one_more, "operationName": "Q7"})
    assert "data" not in answer.json()
    assert error_messages(answer.json()) == [
        f"Syntax Error: Document contains more than {MAX_TOKENS} tokens. Parsing aborted."
    ]


# -- production hardening ------------------------------------------------------


@asynccontextmanager
async def prod_gateway(system: System) -> AsyncIterator[Gateway]:
    async with serve_gateway(system.settings.with_(env="prod")) as gateway:
        yield gateway


INTROSPECTION = [
    "{ __schema { queryType { name } } }",
    '{ __type(name: "Member") { name fields { name } } }',
]


@shared
async def test_introspection_only_outside_production(system: System) -> None:
    for query in INTROSPECTION:
        answer = await system.gql(query)
        assert "errors" not in answer and answer["data"], answer
    async with prod_gateway(system) as prod:
        for query in INTROSPECTION:
            answer = await prod.gql(query)
            assert "data" not in answer
            assert any("introspection" in m for m in error_messages(answer)), answer
        # an ordinary query still works
        assert await prod.gql("{ __typename }") == {"data": {"__typename": "Query"}}


@shared
async def test_graphiql_only_outside_production(system: System) -> None:
    ide = await system.client.get("/graphql", headers={"Accept": "text/html"})
    assert ide.status_code == 200
    assert "graphiql" in ide.text.lower()
    async with prod_gateway(system) as prod:
        ide = await prod.client.get("/graphql", headers={"Accept": "text/html"})
        assert ide.status_code in (404, 405)
        assert "graphiql" not in ide.text.lower()


SUGGESTED = [
    # a misspelt field, argument and type; each gets "Did you mean …?" in development
    ("{ membrs { totalCount } }", "Cannot query field 'membrs' on type 'Query'."),
    ('{ tenant(slugg: "x") { id } }', "Unknown argument 'slugg' on field 'Query.tenant'."),
    (
        "mutation($i: LoginInpt!) { login(input: $i) { __typename } }",
        "Unknown type 'LoginInpt'.",
    ),
]


# ... and in the values of variables: an enum value, an input field
SUGGESTED_IN_VARIABLES = [
    (
        "query($v: [NominationStatus!]) { hubs { nominations(status: $v) { id } } }",
        {"v": ["OPN"]},
        "Variable '$v' has invalid value at [0]: Value 'OPN' does not exist in 'NominationStatus' enum.",
    ),
    (
        "query($v: GeoPointInput) { members(near: $v) { totalCount } }",
        {"v": {"lat": 48.8, "lon": 2.3, "lng": 2.3}},
        "Variable '$v' has invalid value: Expected value of type 'GeoPointInput' not to include unknown field 'lng'",
    ),
]


@shared
async def test_no_suggestions_in_production(system: System) -> None:
    for query, message in SUGGESTED:
        answer = await system.gql(query)
        assert any(m.startswith(message) and "Did you mean" in m for m in error_messages(answer))
    for query, variables, message in SUGGESTED_IN_VARIABLES:
        answer = await system.gql(query, variables)
        assert any(m.startswith(message) and "Did you mean" in m for m in error_messages(answer))
    async with prod_gateway(system) as prod:
        for query, message in SUGGESTED:
            for _ in range(2):  # the second answer comes from the validation cache
                answer = await prod.gql(query)
                assert message in error_messages(answer), answer
                assert "Did you mean" not in json.dumps(answer), answer
        for query, variables, message in SUGGESTED_IN_VARIABLES:
            answer = await prod.gql(query, variables)
            assert any(m.startswith(message) for m in error_messages(answer)), answer
            assert "Did you mean" not in json.dumps(answer), answer
            assert [e["extensions"]["code"] for e in answer["errors"]] == ["BAD_USER_INPUT"]


async def test_internal_errors_are_masked_in_production(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = await open_network(system, "pole-11e")
    async with prod_gateway(system) as prod:
        # a bug in the gateway: the client sees neither its message nor a trace
        async def broken(self: Context, message: Any, ctx: Any = None) -> Any:
            raise RuntimeError("cannot reach postgresql://quartier:hunter2@db/identity")

        with monkeypatch.context() as patch:
            patch.setattr(Context, "ask", broken)
            response = await prod.post("{ professions { code } }")
        assert response.json()["data"] is None
        assert [e["message"] for e in response.json()["errors"]] == ["Internal error."]
        assert "hunter2" not in response.text and "Traceback" not in response.text

        # a fault in a service (its directory table is gone): an opaque message
        # that carries the request's correlation id, for the logs
        with system.identity.context["engine"].begin() as conn:
            conn.execute(sa.text("DROP TABLE members"))
        response = await prod.client.post(
            "/graphql",
            json={"query": "{ members { totalCount } }"},
            headers={
                "Authorization": f"Bearer {net.admin.access}",
                "X-Correlation-Id": "e2e-corr-0001",
            },
        )
        assert response.json()["data"] is None
        error = response.json()["errors"][0]
        assert error["message"] == "internal error (correlation id e2e-corr-0001)"
        assert error["extensions"] == {"code": "INTERNAL"}
        assert set(error) == {"message", "locations", "path", "extensions"}


# -- the tenant event stream (graphql-transport-ws) ----------------------------

STREAM = (
    "subscription($fromStart: Boolean!, $limit: Int) {"
    " tenantEvents(fromStart: $fromStart, limit: $limit)"
    " { id type source subject time tenant sequence data } }"
)


async def receive(ws: ClientConnection) -> dict[str, Any]:
    """The next protocol message (answering the server's pings)."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), WS_TIMEOUT))
        if message["type"] == "ping":
            await ws.send(json.dumps({"type": "pong"}))
            continue
        if message["type"] != "pong":
            return message


@asynccontextmanager
async def graphql_ws(gateway: Gateway, token: str | None) -> AsyncIterator[ClientConnection]:
    """A graphql-transport-ws connection; the token goes in connection_init,
    as browsers do."""
    async with connect(gateway.ws_url, subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
        payload = {"Authorization": f"Bearer {token}"} if token else {}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert await receive(ws) == {"type": "connection_ack"}
        yield ws


async def subscribe(ws: ClientConnection, op_id: str, variables: dict[str, Any]) -> None:
    await ws.send(
        json.dumps(
            {
                "id": op_id,
                "type": "subscribe",
                "payload": {"query": STREAM, "variables": variables},
            }
        )
    )


async def events(ws: ClientConnection, op_id: str, count: int) -> list[dict[str, Any]]:
    found = []
    while len(found) < count:
        message = await receive(ws)
        assert message["id"] == op_id and message["type"] == "next", message
        assert "errors" not in message["payload"], message
        found.append(message["payload"]["data"]["tenantEvents"])
    return found


@shared
async def test_tenant_admins_follow_their_networks_events(system: System) -> None:
    net = await open_network(system, "pole-11e")
    other = await open_network(system, "other-net")  # its events interleave with ours
    karim = await join(system, net, "karim@pole.example", "Karim Plombier")
    await join(system, other, "someone@other.example", "Someone")
    await mutate(system, "updateProfileCard", {"offers": "Chauffe-eau"}, karim.access)
    expected = [
        "TenantRegistered",
        "InvitationIssued",
        "MemberJoined",
        "InvitationIssued",
        "MemberJoined",
        "ProfileCardUpdated",
    ]

    async with graphql_ws(system.gateway, net.admin.access) as ws:
        await subscribe(ws, "history", {"fromStart": True, "limit": len(expected)})
        history = await events(ws, "history", len(expected))
        assert await receive(ws) == {"id": "history", "type": "complete"}

        assert [e["type"] for e in history] == [f"quartier.identity.{t}.v1" for t in expected]
        assert {e["tenant"] for e in history} == {net.tenant_id}
        assert {e["data"]["tenant_id"] for e in history} == {net.tenant_id}
        sequences = [e["sequence"] for e in history]
        assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
        assert [e["id"] for e in history] == [f"identity:{s}" for s in sequences]
        assert {e["source"] for e in history} == {"quartier/identity"}
        assert history[2]["data"]["member_id"] == history[2]["subject"] == net.admin.member_id
        assert history[4]["data"]["member_id"] == karim.member_id
        assert history[5]["data"]["changed"] == ["offers"]
        # ids and non-personal facts only
        text = json.dumps(history)
        for personal in ("karim@pole.example", "Karim Plombier", "Chauffe-eau", "admin@"):
            assert personal not in text

        # following: the history, then what happens next, as it happens
        await subscribe(ws, "live", {"fromStart": True, "limit": len(expected) + 1})
        assert await events(ws, "live", len(expected)) == history
        await mutate(
            system, "setTenantAdmin", {"memberId": karim.id, "admin": True}, net.admin.access
        )
        [new] = await events(ws, "live", 1)
        assert new["type"] == "quartier.identity.MemberRolesChanged.v1"
        assert new["data"]["roles"] == ["tenant_admin"]
        assert new["sequence"] > sequences[-1]
        assert await receive(ws) == {"id": "live", "type": "complete"}


@shared
async def test_the_event_stream_is_for_tenant_admins_only(system: System) -> None:
    net = await open_network(system, "pole-11e")
    member = await join(system, net, "m@pole.example", "Member")
    for token, code in [
        (member.access, "FORBIDDEN"),
        (None, "UNAUTHENTICATED"),
        ("not-a-token", "UNAUTHENTICATED"),
        (net.admin.access[:-4] + "AAAA", "UNAUTHENTICATED"),  # a forged signature
    ]:
        async with graphql_ws(system.gateway, token) as ws:
            await subscribe(ws, "1", {"fromStart": True, "limit": 1})
            message = await receive(ws)
            assert message["type"] == "next" and message["payload"]["data"] is None, message
            assert [e["extensions"]["code"] for e in message["payload"]["errors"]] == [code]
            assert await receive(ws) == {"id": "1", "type": "complete"}


@shared
async def test_a_limit_below_one_is_refused_not_an_empty_stream(system: System) -> None:
    net = await open_network(system, "pole-11e")
    async with graphql_ws(system.gateway, net.admin.access) as ws:
        for op_id, variables in [
            ("minus-one", {"fromStart": True, "limit": -1}),
            ("zero", {"fromStart": True, "limit": 0}),
            ("new-only", {"fromStart": False, "limit": -5}),
        ]:
            await subscribe(ws, op_id, variables)
            message = await receive(ws)
            assert message["type"] == "next" and message["payload"]["data"] is None, message
            [error] = message["payload"]["errors"]
            assert error["extensions"]["code"] == "INVALID_INPUT"
            assert "limit" in error["message"]
            assert await receive(ws) == {"id": op_id, "type": "complete"}
        # null is no limit; 1 is the smallest
        await subscribe(ws, "one", {"fromStart": True, "limit": 1})
        [first] = await events(ws, "one", 1)
        assert first["type"] == "quartier.identity.TenantRegistered.v1"
        assert await receive(ws) == {"id": "one", "type": "complete"}


@shared
async def test_request_errors_over_websocket_have_codes(system: System) -> None:
    net = await open_network(system, "pole-11e")
    async with graphql_ws(system.gateway, net.admin.access) as ws:
        for op_id, payload, code in [
            ("fragment", {"query": "subscription { ...Nope }"}, "GRAPHQL_VALIDATION_FAILED"),
            ("variable", {"query": STREAM, "variables": {"fromStart": "yes"}}, "BAD_USER_INPUT"),
            # two operations and no name: not a subscription it can tell
            (
                "no-name",
                {
                    "query": "subscription A { tenantEvents { id } }"
                    " subscription B { tenantEvents { id } }"
                },
                "BAD_REQUEST",
            ),
            # queries and mutations go over HTTP, authorised afresh each time: on
            # the socket they would run as its opener for as long as it stays open
            ("query", {"query": "{ me { id } }"}, "BAD_REQUEST"),
            (
                "mutation",
                {"query": "mutation { setTenantLocale(input: {locale: EN}) { __typename } }"},
                "BAD_REQUEST",
            ),
        ]:
            await ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))
            message = await receive(ws)
            errors = (
                message["payload"] if message["type"] == "error" else message["payload"]["errors"]
            )
            assert {e["extensions"]["code"] for e in errors} == {code}, message
            if message["type"] == "next":
                assert await receive(ws) == {"id": op_id, "type": "complete"}
    # a document that does not parse closes the connection (strawberry's choice,
    # as graphql-ws does), saying why
    async with graphql_ws(system.gateway, net.admin.access) as ws:
        await ws.send(
            json.dumps({"id": "s", "type": "subscribe", "payload": {"query": "subscription {"}})
        )
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4400
        assert closed.value.rcvd.reason.startswith("Syntax Error")


@shared
async def test_the_stream_ends_when_the_token_expires(system: System) -> None:
    net = await open_network(system, "pole-11e")
    now = datetime.now(UTC)
    short_lived, _ = issue_access_token(
        JWT_SECRET,
        member_id=net.admin.member_id,
        tenant_id=net.tenant_id,
        tenant_slug=net.slug,
        roles=("tenant_admin",),
        session_id=jwt.decode(net.admin.access, options={"verify_signature": False})["sid"],
        now=now,
        ttl=2,
    )
    async with graphql_ws(system.gateway, short_lived) as ws:
        await subscribe(ws, "follow", {"fromStart": True})
        history = await events(ws, "follow", 3)  # the history comes while the token is valid
        assert history[0]["type"] == "quartier.identity.TenantRegistered.v1"
        message = await receive(ws)  # then, at expiry, the stream ends with an error
        assert message["type"] == "next", message
        assert [e["extensions"]["code"] for e in message["payload"]["errors"]] == [
            "UNAUTHENTICATED"
        ]
        assert datetime.now(UTC) >= now + timedelta(seconds=1)
        assert await receive(ws) == {"id": "follow", "type": "complete"}


@shared
async def test_errors_are_logged_without_the_operation_text(
    system: System, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused operation may carry a password or an e-mail address inline:
    the log keeps codes and paths, never the operation's text."""
    secret = "s3cret-passw0rd-in-line"
    query = (
        'mutation { login(input: {tenant: "pole-11e", email: "who@pole.example", '
        f'password: "{secret}", bogus: 1}}) {{ __typename }} }}'
    )
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with structlog.testing.capture_logs() as logs:
            answer = await system.gql(query)
    finally:
        structlog.configure(**saved)
    assert answer["errors"]  # refused by validation
    assert any(entry["event"] == "graphql.refused" for entry in logs)
    everything = repr(logs) + caplog.text
    assert secret not in everything and "who@pole.example" not in everything


@shared
async def test_the_gateway_serves_its_metrics(system: System) -> None:
    await system.gql("{ professions { code } }")
    await system.client.get("/no/such/page")
    text = (await system.client.get("/metrics")).text
    lines = [
        line for line in text.splitlines() if line.startswith("quartier_gateway_requests_total")
    ]
    assert any('route="graphql"' in line and 'status="200"' in line for line in lines)
    assert any('route="other"' in line and 'status="404"' in line for line in lines)
    assert not any("/no/such/page" in line for line in lines)  # paths never become labels
    assert "quartier_gateway_request_seconds_bucket" in text


@shared
async def test_an_idempotency_key_makes_a_create_safe_to_retry(system: System) -> None:
    net = await open_network(system, "pole-retry")
    query = """mutation($input: CreateHubInput!) { createHub(input: $input) {
        __typename ... on HubPayload { hub { id } } ... on Error { code message } } }"""
    variables = {
        "input": {
            "name": "Voltaire",
            "kind": "NEIGHBOURHOOD",
            "area": {"centre": {"lat": 48.8575, "lon": 2.3795}, "radiusKm": 1.5},
        }
    }
    headers = {"Authorization": f"Bearer {net.admin.access}", "Idempotency-Key": "hub-1"}
    answers = []
    for _ in range(2):
        response = await system.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        answers.append(response.json()["data"]["createHub"])
    assert answers[0]["__typename"] == "HubPayload" and answers[0] == answers[1]
    hubs = await system.gql("{ hubs { id } }", token=net.admin.access)
    assert [h["id"] for h in hubs["data"]["hubs"]] == [answers[0]["hub"]["id"]]
