"""GraphQL over HTTP (gateway/http.py), the parts that need no server: which
media type an `Accept` header gets, and what makes a POST body a
well-formed GraphQL-over-HTTP request."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.http import (
    GRAPHQL_RESPONSE,
    JSON,
    GraphQLRequest,
    RequestError,
    negotiate,
    parse_request,
)

# -- Accept --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        # no header: the spec's default since 2025
        (None, GRAPHQL_RESPONSE),
        ("", GRAPHQL_RESPONSE),
        ("  ", GRAPHQL_RESPONSE),
        # one of them named
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (JSON, JSON),
        ("Application/JSON", JSON),
        (f"{GRAPHQL_RESPONSE}; charset=utf-8", GRAPHQL_RESPONSE),
        (f'{JSON}; charset="UTF-8"', JSON),
        # both named: the higher quality, else the first named
        (f"{GRAPHQL_RESPONSE}; charset=utf-8, {JSON}; charset=utf-8", GRAPHQL_RESPONSE),
        (f"{JSON}, {GRAPHQL_RESPONSE}", JSON),
        (f"{JSON};q=0.9, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0.5, {JSON};q=0.8", JSON),
        # GraphiQL's
        (f"{GRAPHQL_RESPONSE}, {JSON}, multipart/mixed", GRAPHQL_RESPONSE),
        # wildcards only: application/json, which legacy clients expect
        ("*/*", JSON),
        ("application/*", JSON),
        ("text/html, */*;q=0.8", JSON),
        # a named type beats a wildcard of the same quality
        (f"*/*, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        # the most specific range decides a type's quality
        (f"{JSON};q=0, */*", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0, application/*", JSON),
        (f"application/*;q=0.2, {GRAPHQL_RESPONSE};q=0.1", JSON),
        # malformed ranges are skipped
        (f"{JSON};q=abc, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f",,{JSON},", JSON),
    ],
)
def test_the_response_media_type_follows_accept(accept: str | None, expected: str) -> None:
    assert negotiate(accept) == expected


@pytest.mark.parametrize(
    "accept",
    [
        "text/html",
        "text/plain, image/png",
        "application/xml",
        f"{JSON};q=0, {GRAPHQL_RESPONSE};q=0",
        "*/*;q=0",
        f"{JSON}; charset=iso-8859-1",  # the GraphQL media types are UTF-8
        f"{JSON};q=abc",
    ],
)
def test_nothing_acceptable(accept: str) -> None:
    assert negotiate(accept) is None


@given(st.text())
def test_any_accept_header_gets_a_media_type_or_none(accept: str) -> None:
    assert negotiate(accept) in (GRAPHQL_RESPONSE, JSON, None)


# -- the POST body ---------------------------------------------------------------


def body(value: object) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    ("raw", "content_type", "expected"),
    [
        (body({"query": "{ me { id } }"}), JSON, GraphQLRequest("{ me { id } }", None, None, None)),
        (
            body(
                {
                    "query": "query Q($n: Int) { x }",
                    "operationName": "Q",
                    "variables": {"n": 1},
                    "extensions": {"persisted": False},
                }
            ),
            "application/json; charset=utf-8",
            GraphQLRequest("query Q($n: Int) { x }", "Q", {"n": 1}, {"persisted": False}),
        ),
        # null is the same as absent; "" is no operation name; other keys are reserved
        (
            body({"query": "{ x }", "operationName": None, "variables": None, "extensions": None}),
            "Application/JSON",
            GraphQLRequest("{ x }", None, None, None),
        ),
        (
            body({"query": "{ x }", "operationName": "", "id": 7}),
            JSON,
            GraphQLRequest("{ x }", None, None, None),
        ),
        # the query only has to be a string (it may not parse)
        (body({"query": ""}), JSON, GraphQLRequest("", None, None, None)),
        (body({"query": "{"}), JSON, GraphQLRequest("{", None, None, None)),
        # a lone surrogate is valid JSON (it is refused later, as bad input)
        (
            b'{"query": "{ x }", "variables": {"s": "\\ud800"}}',
            JSON,
            GraphQLRequest("{ x }", None, {"s": "\ud800"}, None),
        ),
    ],
)
def test_well_formed_requests(raw: bytes, content_type: str, expected: GraphQLRequest) -> None:
    assert parse_request(raw, content_type) == expected


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "says"),
    [
        # not JSON, or not this JSON
        (b"{nope", JSON, 400, "not valid JSON"),
        (b"", JSON, 400, "not valid JSON"),
        (b'{"query":', JSON, 400, "not valid JSON"),
        (b'{"query": "\xff"}', JSON, 400, "not valid JSON"),  # not UTF-8
        (b"[" * 100_000, JSON, 400, "not valid JSON"),  # nested too deep to decode
        (b'{"query": "{ x }", "variables": {"f": NaN}}', JSON, 400, "not valid JSON"),
        (
            b'{"query": "{ x }", "variables": {"n": ' + b"9" * 5000 + b"}}",
            JSON,
            400,
            "not valid JSON",
        ),
        (body([{"query": "{ x }"}]), JSON, 400, "batches are not served"),
        (body("{ x }"), JSON, 400, "must be a JSON object"),
        (body(42), JSON, 400, "must be a JSON object"),
        (body(None), JSON, 400, "must be a JSON object"),
        # parameters of the wrong type, or missing
        (body({}), JSON, 400, "no `query`"),
        (body({"query": None}), JSON, 400, "no `query`"),
        (body({"qeury": "{ x }"}), JSON, 400, "no `query`"),
        (body({"query": ["{ x }"]}), JSON, 400, "`query` must be a string"),
        (body({"query": 1}), JSON, 400, "`query` must be a string"),
        (body({"query": "{ x }", "operationName": 3}), JSON, 400, "`operationName` must be"),
        (body({"query": "{ x }", "variables": [7]}), JSON, 400, "`variables` must be an object"),
        (body({"query": "{ x }", "variables": "{}"}), JSON, 400, "`variables` must be an object"),
        (body({"query": "{ x }", "extensions": 1}), JSON, 400, "`extensions` must be an object"),
        # another media type, or none
        (body({"query": "{ x }"}), None, 415, "Content-Type: application/json"),
        (body({"query": "{ x }"}), "", 415, "Content-Type: application/json"),
        (body({"query": "{ x }"}), "text/plain", 415, "Content-Type: application/json"),
        (b"{ x }", "application/graphql", 415, "Content-Type: application/json"),
        (body({"query": "{ x }"}), "application/x-www-form-urlencoded", 415, "Content-Type"),
        (body({"query": "{ x }"}), "application/json; charset=latin-1", 415, "Content-Type"),
    ],
)
def test_malformed_requests_say_what_is_wrong(
    raw: bytes, content_type: str | None, status: int, says: str
) -> None:
    with pytest.raises(RequestError) as caught:
        parse_request(raw, content_type)
    assert caught.value.status == status
    assert caught.value.code == "BAD_REQUEST"
    assert says in caught.value.message


@given(st.binary())
def test_any_body_is_a_request_or_a_request_error(raw: bytes) -> None:
    try:
        request = parse_request(raw, JSON)
    except RequestError as e:
        assert e.status == 400
    else:
        assert isinstance(request.query, str)
