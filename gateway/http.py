"""GraphQL over HTTP, as the GraphQL-over-HTTP specification says, on
strawberry's litestar controller (which keeps GraphiQL and the
graphql-transport-ws endpoint).

* `POST /graphql` with `Content-Type: application/json` (UTF-8) and a JSON
  object `{query, operationName?, variables?, extensions?}`; queries over GET
  are not served (mutations must not ride GETs): 405.
* The response's media type follows `Accept`: `application/graphql-response+json`
  or `application/json` (between equals, as for `*/*`, `application/json`; no
  header: `application/graphql-response+json`, as the spec says since 2025);
  neither acceptable: 406.
* Status codes: a request that is not a well-formed GraphQL-over-HTTP request
  (body not JSON, parameters of the wrong type, no `query`, another content
  type) is a 4xx with either media type. A well-formed one is 200 with
  `application/json` whatever its errors; with
  `application/graphql-response+json`, a request error (nothing ran: no
  `data`) is 400 (500 if only a bug stopped it), and anything that ran is 200.
* Every refusal is a GraphQL response with `errors[].extensions.code`, never
  a plain-text body.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from litestar import Request, Response
from litestar.background_tasks import BackgroundTasks
from litestar.di import Provide
from litestar.exceptions import HTTPException, MethodNotAllowedException
from litestar.exceptions.responses import create_exception_response
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_400_BAD_REQUEST,
    HTTP_405_METHOD_NOT_ALLOWED,
    HTTP_406_NOT_ACCEPTABLE,
    HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    HTTP_429_TOO_MANY_REQUESTS,
    HTTP_500_INTERNAL_SERVER_ERROR,
)
from strawberry.litestar import make_graphql_controller
from strawberry.litestar.controller import GraphQLController
from strawberry.schema.base import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from gateway.budgets import Refused
from gateway.execution import (
    BAD_REQUEST,
    INTERNAL,
    MASKED_MESSAGE,
    PARSE_FAILED,
    RATE_LIMITED,
    SERVER_CODES,
    error_code,
)
from gateway.limits import MAX_BODY, MAX_DOCUMENT
from gateway.stream import SubscriptionsPerConnection
from services.runtime.logging import get_logger

log = get_logger("quartier.gateway")

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
HTTP_OPERATIONS = frozenset({OperationType.QUERY, OperationType.MUTATION})
ONLY_POST = {"Allow": "POST"}
SEND_POST = "send GraphQL requests with POST"


@dataclass
class RequestError(Exception):
    """A request the server refuses before GraphQL sees it."""

    status: int
    message: str
    code: str = BAD_REQUEST
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GraphQLRequest:
    query: str
    operation_name: str | None
    variables: dict[str, Any] | None
    extensions: dict[str, Any] | None


# -- content negotiation ---------------------------------------------------------------


def _parameters(value: str) -> tuple[str, dict[str, str]]:
    """`type/subtype` (lower case) and its parameters."""
    media, *params = value.split(";")
    found: dict[str, str] = {}
    for param in params:
        key, _, val = param.partition("=")
        found[key.strip().lower()] = val.strip().strip('"').lower()
    return media.strip().lower(), found


def negotiate(accept: str | None) -> str | None:
    """The response's media type for an `Accept` header, or None: nothing
    acceptable. Per RFC 9110 §12.5.1 the most specific range decides a type's
    quality; among equals an explicitly named type beats a wildcard, the one
    named first wins, and `application/json` wins over wildcards alone."""
    if accept is None or not accept.strip():
        return GRAPHQL_RESPONSE
    ranges: list[tuple[str, float]] = []
    for part in accept.split(","):
        media, params = _parameters(part)
        if not media:
            continue
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            continue
        if params.get("charset", "utf-8") != "utf-8":
            quality = 0.0  # the GraphQL media types are UTF-8
        ranges.append((media, quality))

    def preference(candidate: str) -> tuple[float, int, int, bool]:
        kind = candidate.split("/")[0]
        matches = [
            (specificity, -position, quality)
            for position, (media, quality) in enumerate(ranges)
            for specificity, pattern in ((2, candidate), (1, f"{kind}/*"), (0, "*/*"))
            if media == pattern
        ]
        if not matches:
            return (0.0, 0, 0, False)
        specificity, position, quality = max(matches)
        return (quality, specificity, position, candidate == JSON)

    best = max((GRAPHQL_RESPONSE, JSON), key=preference)
    return best if preference(best)[0] > 0 else None


# -- the request ---------------------------------------------------------------------


def _strict_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_request(body: bytes, content_type: str | None) -> GraphQLRequest:
    """The GraphQL-over-HTTP request in a POST body, or a RequestError (400,
    415) saying what is wrong with it."""
    media, params = _parameters(content_type or "")
    if media != JSON or params.get("charset", "utf-8") != "utf-8":
        raise RequestError(
            HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "send the request as JSON, with the header Content-Type: application/json",
        )
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_strict_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        raise RequestError(HTTP_400_BAD_REQUEST, "the request body is not valid JSON") from None
    if isinstance(data, list):
        raise RequestError(HTTP_400_BAD_REQUEST, "batches are not served: one operation a request")
    if not isinstance(data, dict):
        raise RequestError(HTTP_400_BAD_REQUEST, "the request body must be a JSON object")
    query = data.get("query")
    if not isinstance(query, str):
        raise RequestError(
            HTTP_400_BAD_REQUEST,
            "the request has no `query`"
            if query is None
            else "`query` must be a string: the GraphQL document",
        )
    if len(query) > MAX_DOCUMENT:
        raise RequestError(
            HTTP_400_BAD_REQUEST,
            f"the document is longer than {MAX_DOCUMENT} characters",
            PARSE_FAILED,
        )
    operation_name = data.get("operationName")
    if not isinstance(operation_name, str | None):
        raise RequestError(HTTP_400_BAD_REQUEST, "`operationName` must be a string or null")
    for name in ("variables", "extensions"):
        if not isinstance(data.get(name), dict | None):
            raise RequestError(HTTP_400_BAD_REQUEST, f"`{name}` must be an object or null")
    return GraphQLRequest(
        query=query,
        operation_name=operation_name or None,  # "" is no name, as in a GET
        variables=data.get("variables"),
        extensions=data.get("extensions"),
    )


# -- the response --------------------------------------------------------------------


def _encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _content_type(media_type: str) -> str:
    return f"{media_type}; charset=utf-8" if media_type == GRAPHQL_RESPONSE else media_type


def graphql_response(result: ExecutionResult, media_type: str) -> Response[bytes]:
    """A request error (nothing ran) has no `data` entry, as the GraphQL spec
    says; errors met while running (they have a path) leave `data` there."""
    errors = result.errors or []
    request_error = result.data is None and bool(errors) and not any(e.path for e in errors)
    body: dict[str, Any] = {} if request_error else {"data": result.data}
    if errors:
        body["errors"] = [e.formatted for e in errors]
    if result.extensions:
        body["extensions"] = result.extensions
    status = HTTP_200_OK
    headers: dict[str, str] = {}
    retry = [e for e in errors if error_code(e) == RATE_LIMITED] if request_error else []
    if retry:
        # over a budget: 429 whatever the media type, as for the request rate
        status = HTTP_429_TOO_MANY_REQUESTS
        headers["Retry-After"] = str((retry[0].extensions or {}).get("retryAfter", 1))
    elif request_error and media_type == GRAPHQL_RESPONSE:
        client = any(error_code(e) not in SERVER_CODES for e in errors)
        status = HTTP_400_BAD_REQUEST if client else HTTP_500_INTERNAL_SERVER_ERROR
    return Response(
        _encode(body),
        status_code=status,
        media_type=_content_type(media_type),
        headers=headers,
    )


def _refusal(error: RequestError, media_type: str | None) -> Response[bytes]:
    body = {"errors": [{"message": error.message, "extensions": {"code": error.code}}]}
    return Response(
        _encode(body),
        status_code=error.status,
        media_type=_content_type(media_type or JSON),
        headers=error.headers,
    )


def error_response(error: RequestError, media_type: str | None) -> Response[bytes]:
    """A refusal before GraphQL ran, as a GraphQL response (errors, no
    data), logged with its code and status."""
    if error.code == INTERNAL:
        log.error("graphql.internal_error", status=error.status)
    else:
        log.info("graphql.refused", code=error.code, status=error.status)
    return _refusal(error, media_type)


def _from_http_exception(exc: HTTPException) -> RequestError:
    status = exc.status_code
    if status == HTTP_429_TOO_MANY_REQUESTS:
        code = RATE_LIMITED
    elif status >= HTTP_500_INTERNAL_SERVER_ERROR:
        code = INTERNAL
    else:
        code = BAD_REQUEST
    message = MASKED_MESSAGE if code == INTERNAL else exc.detail
    headers = {k: v for k, v in (exc.headers or {}).items() if isinstance(v, str)}
    return RequestError(status, message, code, headers)


def http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    """litestar's refusals on the GraphQL path (the rate limit, say) as
    GraphQL responses."""
    return error_response(_from_http_exception(exc), negotiate(request.headers.get("accept")))


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """A bug outside GraphQL's own error handling: logged with its traceback,
    answered as an opaque GraphQL error."""
    log.error("graphql.internal_error", error=type(exc).__name__, exc_info=exc)
    return _refusal(
        RequestError(HTTP_500_INTERNAL_SERVER_ERROR, MASKED_MESSAGE, INTERNAL),
        negotiate(request.headers.get("accept")),
    )


def method_not_allowed_handler(path: str) -> Callable[..., Response[Any]]:
    """The app's handler of 405s (litestar answers them before any
    controller): a GraphQL response on the GraphQL path, litestar's own
    elsewhere."""

    def handle(request: Request[Any, Any, Any], exc: MethodNotAllowedException) -> Response[Any]:
        if request.url.path.rstrip("/") != path.rstrip("/"):
            return create_exception_response(request, exc)
        return error_response(
            RequestError(HTTP_405_METHOD_NOT_ALLOWED, SEND_POST, headers=dict(ONLY_POST)),
            negotiate(request.headers.get("accept")),
        )

    return handle


# -- the controller ------------------------------------------------------------------


def _new_response() -> Response[dict[str, object]]:
    return Response({}, background=BackgroundTasks([]))


def graphql_controller(
    schema: BaseSchema,
    *,
    path: str,
    graphql_ide: bool,
    context_getter: Callable[..., Any],
) -> type[GraphQLController]:
    """strawberry's litestar controller, with POST served as described above."""
    base = make_graphql_controller(
        schema,
        path=path,
        graphql_ide="graphiql" if graphql_ide else None,
        allow_queries_via_get=False,
        context_getter=context_getter,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        keep_alive=True,
        keep_alive_interval=15,
    )

    class QuartierGraphQLController(base):  # type: ignore[valid-type, misc]
        request_max_body_size = MAX_BODY
        graphql_transport_ws_handler_class = SubscriptionsPerConnection
        exception_handlers = {
            HTTPException: http_exception_handler,
            Exception: internal_error_handler,
        }
        # strawberry provides the response object with sync_to_thread=True: a
        # thread hop per request for building an empty Response.
        dependencies = {
            **base.dependencies,
            "response": Provide(_new_response, sync_to_thread=False),
        }

        async def execute_request(
            self, request: Request[Any, Any, Any], context: Any, root_value: Any
        ) -> Response[Any]:
            media_type = negotiate(request.headers.get("accept"))
            try:
                if request.method != "POST":
                    if self.graphql_ide and self.should_render_graphql_ide(
                        self.request_adapter_class(request)
                    ):
                        return await self.render_graphql_ide(request)
                    raise RequestError(
                        HTTP_405_METHOD_NOT_ALLOWED, SEND_POST, headers=dict(ONLY_POST)
                    )
                if media_type is None:
                    raise RequestError(
                        HTTP_406_NOT_ACCEPTABLE,
                        f"the response can be {GRAPHQL_RESPONSE} or {JSON}: accept one of them",
                    )
                data = parse_request(await request.body(), request.headers.get("content-type"))
                budgets = getattr(context, "budgets", None)
                async with (
                    budgets.turn(context.budget_tenant) if budgets else contextlib.nullcontext()
                ):
                    result = await self.schema.execute(
                        data.query,
                        variable_values=data.variables,
                        context_value=context,
                        root_value=root_value,
                        operation_name=data.operation_name,
                        allowed_operation_types=HTTP_OPERATIONS,
                        operation_extensions=data.extensions,
                    )
            except Refused as refused:
                return error_response(
                    RequestError(
                        HTTP_429_TOO_MANY_REQUESTS,
                        refused.said(),
                        RATE_LIMITED,
                        {"Retry-After": str(refused.retry_after)},
                    ),
                    media_type,
                )
            except RequestError as error:
                return error_response(error, media_type)
            except HTTPException as exc:  # litestar's, e.g. a body too large
                return error_response(_from_http_exception(exc), media_type)
            response = graphql_response(result, media_type)
            extra = getattr(context, "response", None)
            if isinstance(extra, Response):
                response.headers.update(extra.headers)
                response.cookies.extend(extra.cookies)
                response.background = extra.background
            return response

    return QuartierGraphQLController
