"""The gateway against the GraphQL spec and the GraphQL-over-HTTP spec, over
real HTTP: every client mistake is a GraphQL error (JSON, with an
`extensions.code`) logged at info level without values or traceback; only
bugs are internal errors; the `application/graphql-response+json` media type
gets the status codes the spec recommends, `application/json` keeps 200 for
any well-formed request."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import structlog

from gateway import execution, http
from tests.e2e.conftest import System, open_network, serve_gateway

# one system per store for the module: each test opens its own network, counts
# events relative to what it saw first, and serves its own gateway for budgets
pytestmark = [pytest.mark.asyncio, pytest.mark.shared_system]

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
MEDIA_TYPES = (GRAPHQL_RESPONSE, JSON)


async def post(
    system: System,
    body: Any,
    accept: str | None = JSON,
    token: str | None = None,
    **headers: str,
) -> httpx.Response:
    """POST `body` (JSON-encoded unless bytes) to /graphql."""
    sent = {"content-type": JSON, **headers}
    if accept is not None:
        sent["accept"] = accept
    if token:
        sent["authorization"] = f"Bearer {token}"
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = system.client.build_request("POST", "/graphql", content=content, headers=sent)
    if accept is None:
        del request.headers["accept"]  # httpx sends `*/*` unless told otherwise
    return await system.client.send(request)


def refusal(response: httpx.Response, status: int, code: str, media_type: str = JSON) -> str:
    """The response is a GraphQL request error: `status`, the media type,
    no `data`, one error with `code`. Returns its message."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].split(";")[0] == media_type, response.headers
    body = response.json()
    assert set(body) == {"errors"}, body
    [error] = body["errors"]
    assert error["extensions"] == {"code": code}, error
    assert error["message"]
    return str(error["message"])


def request_error_status(media_type: str) -> int:
    """What a well-formed request that cannot run gets."""
    return 400 if media_type == GRAPHQL_RESPONSE else 200


@contextmanager
def captured_logs() -> Iterator[list[dict[str, Any]]]:
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with structlog.testing.capture_logs() as logs:
            yield logs
    finally:
        structlog.configure(**saved)


def assert_client_errors_logged(logs: list[dict[str, Any]], *secrets: str) -> None:
    """Each refusal is logged once at info level with its code; nothing is
    logged as an error, and no value or traceback reaches the log (the
    services' per-request debug lines, which name no value, aside)."""
    for secret in secrets:
        assert secret not in repr(logs)
    logs = [e for e in logs if e["log_level"] != "debug"]
    assert logs, "nothing logged"
    assert {e["log_level"] for e in logs} == {"info"}, logs
    assert {e["event"] for e in logs} == {"graphql.refused"}, logs
    assert all(e.get("code") for e in logs), logs
    assert not any("exc_info" in e for e in logs), logs
    for secret in secrets:
        assert secret not in repr(logs)


# -- requests that are not well-formed: 4xx whatever the media type ------------------

MALFORMED: list[tuple[bytes | Any, dict[str, str], int]] = [
    (b"{nope", {}, 400),
    (b'{"query":', {}, 400),
    (b"NONSENSE", {}, 400),
    (b'{"query": "\xff"}', {}, 400),
    (b"[" * 50_000, {}, 400),
    ([{"query": "{ __typename }"}], {}, 400),
    ("{ __typename }", {}, 400),
    ({"qeury": "{ __typename }"}, {}, 400),
    ({"query": ["{ __typename }"]}, {}, 400),
    ({"query": "{ __typename }", "variables": [7]}, {}, 400),
    ({"query": "query A { __typename }", "operationName": 1}, {}, 400),
    ({"query": "{ __typename }"}, {"content-type": "text/plain"}, 415),
    ({"query": "{ __typename }"}, {"content-type": "application/graphql"}, 415),
]


@pytest.mark.parametrize("media_type", MEDIA_TYPES)
async def test_requests_that_are_not_graphql_requests(system: System, media_type: str) -> None:
    with captured_logs() as logs:
        for body, headers, status in MALFORMED:
            response = await post(system, body, media_type, **headers)
            refusal(response, status, "BAD_REQUEST", media_type)
    assert_client_errors_logged(logs)
    assert [e["status"] for e in logs] == [status for _, _, status in MALFORMED]


async def test_only_post_is_served(system: System) -> None:
    for method, params in [
        ("GET", {"query": "{ __typename }"}),
        ("GET", {"query": 'mutation { logout(input: {refreshToken: "x"}) { __typename } }'}),
        ("PUT", {}),
        ("DELETE", {}),
        ("PATCH", {}),
    ]:
        for media_type in MEDIA_TYPES:
            response = await system.client.request(
                method, "/graphql", params=params, headers={"accept": media_type}
            )
            refusal(response, 405, "BAD_REQUEST", media_type)
            assert response.headers["allow"] == "POST"
    # elsewhere, litestar's own answer
    response = await system.client.put("/health/live")
    assert response.status_code == 405 and "errors" not in response.json()


async def test_nothing_acceptable_is_406(system: System) -> None:
    for accept in ("text/html", "image/png, text/plain", f"{JSON};q=0, {GRAPHQL_RESPONSE};q=0"):
        response = await post(system, {"query": "{ __typename }"}, accept)
        refusal(response, 406, "BAD_REQUEST")


async def test_the_response_media_type_follows_accept(system: System) -> None:
    for accept, media_type in [
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (JSON, JSON),
        (f"{GRAPHQL_RESPONSE}; charset=utf-8, {JSON}; charset=utf-8", GRAPHQL_RESPONSE),
        (f"{JSON}, {GRAPHQL_RESPONSE};q=0.5", JSON),
        ("*/*", JSON),
        (None, GRAPHQL_RESPONSE),  # no Accept: the spec's default since 2025
    ]:
        response = await post(system, {"query": "{ __typename }"}, accept)
        assert response.status_code == 200
        assert response.headers["content-type"].split(";")[0] == media_type, accept
        assert response.json() == {"data": {"__typename": "Query"}}
    response = await post(system, {"query": "{ __typename }"}, GRAPHQL_RESPONSE)
    assert response.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"


# -- well-formed requests that cannot run: request errors ---------------------------

PARSE_FAILURES = [
    "{",
    "query {",
    "{ members(first: ) { totalCount } }",
    "{ me { id } } }",
    "query Q($n: Int!) { members(first: $n) { totalCount }",
    "",
    "   ",
    "# only a comment",
]
VALIDATION_FAILURES = [
    # unknown fragments, wherever they are spread
    "query { ...Nope }",
    "{ me { ...Nope } }",
    "{ hubs { ...Nope members { totalCount } } }",
    "fragment F on Query { ...Nope } query { ...F }",
    "query { ...F } fragment F on Query { __typename ...Nope }",
    # fragments that spread themselves
    "query { ...F } fragment F on Query { ...F }",
    "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
    # and the rest of the spec's rules
    "{ membrs { totalCount } }",
    '{ members(first: "x") { totalCount } }',
    "{ members(first: 1.5) { totalCount } }",
    "{ members(first: 99999999999) { totalCount } }",
    "{ hub { id } }",
    '{ hubs(mine: "yes") { id } }',
    "{ me }",
    "query($n: Int) { members { totalCount } }",
    "query { members(first: $n) { totalCount } }",
    "query A { __typename } query A { __typename }",
    "fragment F on Query { __typename } { __typename }",
    # documents with no operation to run, before anything asks which to run
    "fragment F on Query { __typename }",
    "{ __typename } { me { id } }",
]


@pytest.mark.parametrize("media_type", MEDIA_TYPES)
async def test_documents_that_do_not_parse_or_validate(system: System, media_type: str) -> None:
    status = request_error_status(media_type)
    with captured_logs() as logs:
        for query in PARSE_FAILURES:
            refusal(
                await post(system, {"query": query}, media_type),
                status,
                "GRAPHQL_PARSE_FAILED",
                media_type,
            )
        for query in VALIDATION_FAILURES:
            response = await post(system, {"query": query}, media_type)
            assert response.status_code == status, (query, response.text)
            errors = response.json()["errors"]
            assert "data" not in response.json(), query
            assert {e["extensions"]["code"] for e in errors} == {"GRAPHQL_VALIDATION_FAILED"}, (
                query,
                errors,
            )
    assert_client_errors_logged(logs)


# (variable type, a value that does not fit, a query using it)
BAD_VARIABLES: list[tuple[str, Any, str]] = [
    ("Int!", "x", "members(first: $v) { totalCount }"),
    ("Int!", 2**40, "members(first: $v) { totalCount }"),
    ("Int!", 1.5, "members(first: $v) { totalCount }"),
    ("Int!", None, "members(first: $v) { totalCount }"),
    ("Int", [1], "members(first: $v) { totalCount }"),
    ("Boolean!", "yes", "hubs(mine: $v) { id }"),
    ("ID!", {"a": 1}, "hub(id: $v) { id }"),
    ("String", {"text": "x"}, "members(text: $v) { totalCount }"),
    ("GeoPointInput", {"lat": 48.8, "lon": 2.3, "alt": 35}, "members(near: $v) { totalCount }"),
    ("GeoPointInput", {"lat": 48.8}, "members(near: $v) { totalCount }"),
    ("GeoPointInput", {"lat": "north", "lon": 2.3}, "members(near: $v) { totalCount }"),
    ("GeoPointInput", [48.8, 2.3], "members(near: $v) { totalCount }"),
    (
        "[NominationStatus!]",
        ["OPEN", "NOPE"],
        'hub(id: "x") { nominations(status: $v) { id } }',
    ),
    ("[NominationStatus!]", [None], 'hub(id: "x") { nominations(status: $v) { id } }'),
    ("Float", "far", "members(radiusKm: $v) { totalCount }"),
]


@pytest.mark.parametrize("media_type", MEDIA_TYPES)
async def test_variables_that_do_not_fit_their_type(system: System, media_type: str) -> None:
    net = await open_network(system, "pole-11e")
    status = request_error_status(media_type)
    with captured_logs() as logs:
        for type_, value, selection in BAD_VARIABLES:
            query = f"query($v: {type_}) {{ {selection} }}"
            response = await post(
                system, {"query": query, "variables": {"v": value}}, media_type, net.admin.access
            )
            message = refusal(response, status, "BAD_USER_INPUT", media_type)
            assert "$v" in message, message
            # the same value written inline: a validation error
            if isinstance(value, str | int) and not isinstance(value, bool):
                inline = selection.replace("$v", json.dumps(value))
                answer = (await post(system, {"query": f"{{ {inline} }}"}, media_type)).json()
                assert [e["extensions"]["code"] for e in answer["errors"]] == [
                    "GRAPHQL_VALIDATION_FAILED"
                ], (inline, answer)
        # a required variable left out
        response = await post(
            system,
            {"query": "query($v: Int!) { members(first: $v) { totalCount } }"},
            media_type,
            net.admin.access,
        )
        assert "$v" in refusal(response, status, "BAD_USER_INPUT", media_type)
    assert_client_errors_logged(logs, "NOPE", "far", "north")


@pytest.mark.parametrize("media_type", MEDIA_TYPES)
async def test_the_operation_to_run_must_be_determined(system: System, media_type: str) -> None:
    net = await open_network(system, "pole-11e")
    status = request_error_status(media_type)
    two = "query A { __typename } query B { me { id } }"
    query_and_mutation = (
        'query A { __typename } mutation B { inviteMember(input: {email: "n@pole.example"})'
        " { __typename } }"
    )
    with_subscription = "subscription S { tenantEvents { id } } query A { __typename }"
    before = await system.event_count()
    with captured_logs() as logs:
        for body in [
            {"query": two},
            {"query": query_and_mutation},
            {"query": with_subscription},
            {"query": two, "operationName": "C"},
            {"query": two, "operationName": "a"},
            {"query": "{ __typename }", "operationName": "A"},
        ]:
            response = await post(system, body, media_type, net.admin.access)
            refusal(response, status, "OPERATION_NOT_FOUND", media_type)
    assert_client_errors_logged(logs)
    assert await system.event_count() == before  # the mutation never ran
    # named, each one runs
    for name, data in [("A", {"__typename": "Query"}), ("B", {"me": {"id": net.admin.id}})]:
        response = await post(
            system, {"query": two, "operationName": name}, media_type, net.admin.access
        )
        assert (response.status_code, response.json()) == (200, {"data": data})
    # an empty operationName is no name
    response = await post(system, {"query": "{ __typename }", "operationName": ""}, media_type)
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("media_type", MEDIA_TYPES)
async def test_subscriptions_are_not_served_over_http(system: System, media_type: str) -> None:
    net = await open_network(system, "pole-11e")
    status = request_error_status(media_type)
    for body in [
        {"query": "subscription { tenantEvents { id } }"},
        {"query": "subscription { tenantEvents(limit: -1) { id } }"},
        {
            "query": "subscription S { tenantEvents { id } } query A { __typename }",
            "operationName": "S",
        },
    ]:
        response = await post(system, body, media_type, net.admin.access)
        message = refusal(response, status, "BAD_REQUEST", media_type)
        assert "WebSocket" in message


# -- well-formed requests that ran ---------------------------------------------------


@pytest.mark.parametrize("media_type", MEDIA_TYPES)
async def test_field_errors_are_partial_results_with_200(system: System, media_type: str) -> None:
    net = await open_network(system, "pole-11e")
    for query, token, data, code in [
        ("{ members { totalCount } }", None, None, "UNAUTHENTICATED"),  # non-null root: data null
        (
            '{ me { id } hub(id: "garbage") { id } }',
            net.admin.access,
            {"me": {"id": net.admin.id}, "hub": None},
            "INVALID_INPUT",
        ),
        ("{ invitations(first: 0) { totalCount } }", net.admin.access, None, "INVALID_INPUT"),
    ]:
        response = await post(system, {"query": query}, media_type, token)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["data"] == data
        assert [e["extensions"]["code"] for e in body["errors"]] == [code]
        assert all(e["path"] for e in body["errors"])


@pytest.mark.parametrize("media_type", MEDIA_TYPES)
async def test_only_bugs_are_internal_errors(
    system: System, media_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug before execution (here in validation): masked, logged with its
    traceback; with application/graphql-response+json it is a 500."""

    def broken(*args: Any) -> Any:
        raise RuntimeError("cannot reach postgresql://quartier:hunter2@db")

    monkeypatch.setattr(execution, "_validate", broken)
    with captured_logs() as logs:
        response = await post(system, {"query": "{ __typename }"}, media_type)
    status = 500 if media_type == GRAPHQL_RESPONSE else 200
    assert refusal(response, status, "INTERNAL", media_type) == "Internal error."
    assert "hunter2" not in response.text
    [entry] = logs
    assert (entry["event"], entry["log_level"], entry["error"]) == (
        "graphql.internal_error",
        "error",
        "RuntimeError",
    )
    assert isinstance(entry["exc_info"], RuntimeError)


@pytest.mark.parametrize("media_type", MEDIA_TYPES)
async def test_a_bug_in_the_http_layer_is_an_internal_error_too(
    system: System, media_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("cannot reach postgresql://quartier:hunter2@db")

    monkeypatch.setattr(http, "parse_request", broken)
    with captured_logs() as logs:
        response = await post(system, {"query": "{ __typename }"}, media_type)
    assert refusal(response, 500, "INTERNAL", media_type) == "Internal error."
    assert "hunter2" not in response.text
    [entry] = logs
    assert (entry["event"], entry["log_level"]) == ("graphql.internal_error", "error")
    assert isinstance(entry["exc_info"], RuntimeError)


async def test_a_body_too_large_is_a_graphql_error(system: System) -> None:
    padding = "#" + "x" * (10 * 1024 * 1024)  # litestar's limit is 10 MB
    for media_type in MEDIA_TYPES:
        response = await post(system, {"query": padding + "\n{ __typename }"}, media_type)
        refusal(response, 413, "BAD_REQUEST", media_type)


async def test_the_rate_limit_is_a_graphql_error(system: System) -> None:
    async with serve_gateway(system.settings.with_(rate_limit_per_minute=2)) as gateway:
        for _ in range(2):
            response = await gateway.client.post("/graphql", json={"query": "{ __typename }"})
            assert response.json() == {"data": {"__typename": "Query"}}
        for accept in MEDIA_TYPES:
            response = await gateway.client.post(
                "/graphql", json={"query": "{ __typename }"}, headers={"accept": accept}
            )
            refusal(response, 429, "RATE_LIMITED", accept)
