"""The HTTP API, version 1 (docs/stream.md): a network's event stream for
analytics consumers, and the published contracts of its events.

* `GET /v1/events`: the caller's network's events as CloudEvents 1.0, one
  JSON object per line (`application/x-ndjson`) or as Server-Sent Events
  (`text/event-stream`, chosen by `Accept`), each with its `position`;
  `after=<position>` (or `Last-Event-ID`) resumes just after an event,
  `types=` keeps the types starting with one of its comma-separated prefixes,
  `follow=true` waits for new events (with a heartbeat), `limit=` stops after
  so many. Who may read is decided by `gateway.stream.events_reader` (the
  `events:read` scope: a tenant admin's access token, or an API key), as for
  the GraphQL subscription; a running response re-checks it every few
  seconds and ends when it no longer holds (a revoked or expired key); a
  response the server ends (that, expiry, stopping, a failure) ends with a
  last line saying why (`body`).
* `GET /v1/schemas`: the index of the JSON Schemas; `GET /v1/schemas/<type>`
  one event type's `data` schema, `GET /v1/schemas/cloudevent` the envelope.
  Public, as in docs/schemas/.

Errors are JSON, `{"error": {"code", "message", "field"?}}`, with the status
of their code (400, 401, 403, 404, 406, 429, 503); never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from litestar import Request, get
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Response, Stream

from gateway.budgets import Budgets, OpenStreams, Refused
from gateway.context import (
    Principal,
    caller_key,
    current_principal,
    peer_address,
    resolve_principal,
)
from gateway.keys import Stopping, while_allowed
from gateway.stream import EventsReader, events_reader, still_reading
from infra.catalogue import event_schema_copy, schema_index
from services.runtime.errors import Forbidden, QuartierError, Unauthenticated
from services.runtime.i18n import request_locale, t, translate
from services.runtime.logging import get_logger
from services.runtime.messages import new_correlation_id
from services.runtime.stream import (
    HEARTBEAT,
    EventReader,
    Position,
    StreamedEvent,
    parse_type_prefixes,
)

log = get_logger("quartier.gateway.v1")

NDJSON = "application/x-ndjson"
SSE = "text/event-stream"
FORMATS = (NDJSON, SSE)  # the first is the default (no Accept, or */*)
PARAMETERS = ("after", "types", "follow", "limit", "heartbeat")
DEFAULT_HEARTBEAT = 15.0  # seconds
MAX_HEARTBEAT = 300
MAX_LIMIT = 1_000_000
SSE_RETRY_MS = 3000
STATUS = {
    "invalid_input": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "not_acceptable": 406,
    "rate_limited": 429,
    "unavailable": 503,
}


class ApiError(Exception):
    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.code, self.message, self.field = code, str(message), field
        self.text = message  # a `t()` message, said in the request's language


def error_response(
    code: str, message: str, field: str | None = None, retry_after: int | None = None
) -> Response[Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if field:
        error["field"] = field
    if code == "rate_limited" and retry_after:
        error["retryAfter"] = retry_after
    headers = {"Cache-Control": "no-store"}
    if code == "unauthenticated":
        headers["WWW-Authenticate"] = 'Bearer realm="quartier"'
    if code == "rate_limited" and retry_after:
        headers["Retry-After"] = str(retry_after)
    return Response(
        {"error": error},
        status_code=STATUS.get(code, 500),
        media_type="application/json",
        headers=headers,
    )


# -- the request --------------------------------------------------------------------


def query_parameters(query_string: bytes) -> dict[str, list[str]]:
    """The query's parameters; an unknown one is refused (a misspelt filter
    must not silently read everything)."""
    found: dict[str, list[str]] = {}
    for name, value in parse_qsl(query_string.decode("utf-8", "replace"), keep_blank_values=True):
        if name not in PARAMETERS:
            raise ApiError(
                "invalid_input",
                t(
                    "unknown parameter {name}: the parameters are {names}",
                    name=repr(name[:40]),
                    names=", ".join(PARAMETERS),
                ),
                name[:40],
            )
        found.setdefault(name, []).append(value)
    for name, values in found.items():
        if name != "types" and len(values) > 1:
            raise ApiError("invalid_input", t("{name} is given more than once", name=name), name)
    return found


def boolean(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no", ""):
        return False
    raise ApiError("invalid_input", t("{name} must be true or false", name=name), name)


def bounded_int(value: str, name: str, low: int, high: int) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise ApiError(
            "invalid_input", t("{name} must be a whole number", name=name), name
        ) from None
    if not low <= number <= high:
        raise ApiError(
            "invalid_input",
            t("{name} must be between {low} and {high}", name=name, low=low, high=high),
            name,
        )
    return number


def _quality(parameters: list[str]) -> float:
    for parameter in parameters:
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "q":
            try:
                return max(0.0, min(1.0, float(value)))
            except ValueError:
                return 0.0
    return 1.0


def negotiate(accept: str | None) -> str:
    """NDJSON or SSE, from `Accept` (no header, or a wildcard: NDJSON)."""
    if not accept or not accept.strip():
        return FORMATS[0]
    best: dict[str, tuple[int, float]] = {}  # format: (specificity, quality)
    for item in accept.split(","):
        media, *parameters = (part.strip() for part in item.split(";"))
        media = media.lower()
        for candidate in FORMATS:
            kind = candidate.split("/")[0]
            if media == candidate:
                specificity = 2
            elif media == f"{kind}/*":
                specificity = 1
            elif media == "*/*":
                specificity = 0
            else:
                continue
            if specificity >= best.get(candidate, (-1, 0.0))[0]:
                best[candidate] = (specificity, _quality(parameters))
    ranked = sorted(
        (candidate for candidate in FORMATS if best.get(candidate, (0, 0.0))[1] > 0),
        key=lambda c: (-best[c][1], -best[c][0], FORMATS.index(c)),
    )
    if not ranked:
        raise ApiError(
            "not_acceptable",
            t(
                "the event stream is served as {ndjson} or {sse}: ask for one in Accept",
                ndjson=NDJSON,
                sse=SSE,
            ),
        )
    return ranked[0]


# -- the response -------------------------------------------------------------------


def ndjson_line(item: StreamedEvent | None) -> bytes:
    """One CloudEvent per line; a heartbeat is an empty line."""
    return b"\n" if item is HEARTBEAT else item.json_with_position() + b"\n"


def sse_message(item: StreamedEvent | None) -> bytes:
    """`id:` (the position, sent back by browsers as `Last-Event-ID`) and
    `data:` (the CloudEvent); a heartbeat is a comment."""
    if item is None:
        return b": keep-alive\n\n"
    return b"id: " + item.position.encode() + b"\ndata: " + item.json_with_position() + b"\n\n"


def ending(code: str, message: str) -> dict[str, Any]:
    """The last line of a response the server ends (docs/stream.md, "How a
    response ends"): the same shape as an error before the stream starts."""
    return {"error": {"code": code, "message": message}}


def ndjson_end(error: dict[str, Any]) -> bytes:
    return json.dumps(error, ensure_ascii=False).encode() + b"\n"


def sse_end(error: dict[str, Any]) -> bytes:
    """An `error` event (`addEventListener("error", …)` gets it with its
    `data`; a network failure's error event has none)."""
    return b"event: error\ndata: " + json.dumps(error, ensure_ascii=False).encode() + b"\n\n"


EXPIRED = (
    "the credential has expired: reconnect with a fresh one and the position of your last event"
)
EXPIRED_KEY = (
    "this API key has expired: reconnect with a valid key (a network admin issues a new one) "
    "and the position of your last event"
)
RESUME = "reconnect and resume from the position of your last event"


async def body(
    reader: EventReader,
    media_type: str,
    caller: EventsReader,
    recheck: Callable[[], Awaitable[None]],
    stopping: asyncio.Event | None = None,
    release: Callable[[], None] | None = None,
) -> AsyncIterator[bytes]:
    """The response's lines. When the server ends it — the credential no
    longer allows reading (revoked or expired key, ended session, demoted
    admin), the credential's expiry, the server stopping, the stream failing —
    a last line says why (`ending`), in NDJSON as a JSON object, in SSE as an
    `error` event; an end the client asked for (`limit`, the end of the
    history without `follow`) has none."""
    render = sse_message if media_type == SSE else ndjson_line
    end = sse_end if media_type == SSE else ndjson_end
    try:
        if media_type == SSE:
            yield f"retry: {SSE_RETRY_MS}\n\n".encode()
        try:
            async for item in while_allowed(reader, recheck, stopping=stopping):
                yield render(item)
        except (Unauthenticated, Forbidden) as refused:  # revoked, expired, demoted
            log.info(
                "v1.events_refused", tenant=caller.tenant_id, who=caller.who, code=refused.code
            )
            yield end(ending(refused.code, f"{refused.message}: the stream has ended"))
            return
        except Stopping as stopped:
            log.info("v1.events_stopping", tenant=caller.tenant_id, who=caller.who)
            yield end(ending(stopped.code, stopped.message))
            return
        if reader.expired:
            expired = EXPIRED_KEY if caller.who.startswith("key:") else EXPIRED
            yield end(ending("unauthenticated", expired))
    except QuartierError as e:  # the stream failed midway: the client resumes
        log.warning("v1.events_failed", tenant=caller.tenant_id, code=e.code)
        yield end(ending(e.code, f"{e.message}: the stream has ended; {RESUME}"))
    finally:
        log.info(
            "v1.events_closed",
            tenant=caller.tenant_id,
            who=caller.who,
            delivered=reader.delivered,
            expired=reader.expired,
        )
        if release is not None:
            release()
        await reader.close()


def spend(state: State, caller: str, tenant: str | None) -> None:
    """One request of `caller` (then of network `tenant`) from the budgets
    GraphQL spends (`gateway.budgets`), or `Refused`."""
    budgets: Budgets = state.budgets
    budgets.request(caller, tenant)


def too_many(refused: Refused) -> Response[Any]:
    return error_response("rate_limited", refused.said(), retry_after=refused.retry_after)


@get("/v1/events")
async def events(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    reader: EventReader | None = None
    release: Callable[[], None] | None = None
    address = peer_address(state, request.headers, request.scope)
    correlation_id = new_correlation_id()
    presented = resolve_principal(state.settings, request.headers.get("authorization"))
    # the budgets first, as for GraphQL (gateway.context.context_getter): a
    # refused request costs identity nothing
    first = caller_key(presented, address)
    try:
        spend(state, first, presented.tenant_id if first.startswith("member:") else None)
    except Refused as refused:
        return too_many(refused)
    principal: Principal = await current_principal(state.bus, presented, correlation_id, address)
    try:
        caller = events_reader(principal)
        if principal.key_id is not None:  # a verified key: its own bucket, then its network's
            spend(state, caller.who, caller.tenant_id)
        params = query_parameters(request.scope.get("query_string", b""))
        media_type = negotiate(request.headers.get("accept"))
        last_event_id = (request.headers.get("last-event-id") or "").strip()
        if last_event_id:  # a browser reconnecting: it knows better than the URL
            after = Position.decode(last_event_id, caller.tenant_id, "Last-Event-ID")
        elif "after" in params:
            after = Position.decode(params["after"][0].strip(), caller.tenant_id, "after")
        else:
            after = None
        follow = boolean(params["follow"][0], "follow") if "follow" in params else False
        limit = (
            bounded_int(params["limit"][0], "limit", 1, MAX_LIMIT) if "limit" in params else None
        )
        heartbeat = (
            float(bounded_int(params["heartbeat"][0], "heartbeat", 1, MAX_HEARTBEAT))
            if "heartbeat" in params
            else DEFAULT_HEARTBEAT
        )
        types = parse_type_prefixes(params.get("types", ()))
        if "types" in params and not types:  # `types=`: a filter lost on the way
            raise ApiError(
                "invalid_input",
                t(
                    "types is empty: give at least one prefix of event types "
                    "(e.g. quartier.hubs.), or leave types out to read every type"
                ),
                "types",
            )
        if follow:
            streams: OpenStreams = state.streams
            release = streams.open(caller.tenant_id, caller.who)
        reader = EventReader(
            state.bus.jetstream(),
            caller.tenant_id,
            after=after,
            from_start=True,
            types=types,
            follow=follow,
            limit=limit,
            heartbeat=heartbeat,
            deadline=caller.deadline(),
        )
        await reader.open()
    except (ApiError, QuartierError, Refused) as e:
        if reader is not None:
            await reader.close()
        if release is not None:
            release()
        if isinstance(e, Refused):
            return too_many(e)
        if isinstance(e, ApiError):
            return error_response(e.code, translate(e.text, request_locale()), e.field)
        return error_response(e.code, e.message_in(request_locale()), e.field, e.retry_after)
    log.info(
        "v1.events_opened",
        tenant=caller.tenant_id,
        who=caller.who,
        media_type=media_type,
        resumed=after is not None,
        follow=follow,
    )
    recheck = still_reading(state.bus, principal, correlation_id, address)
    lines = body(reader, media_type, caller, recheck, state.get("stopping"), release=release)
    if release is not None:
        # a response never started (the client gone at once) runs no `finally`:
        # its following turn is given back when it is collected
        weakref.finalize(lines, release)
    return Stream(
        lines,
        media_type=media_type,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@get("/v1/schemas", sync_to_thread=False)
def schemas() -> Response[Any]:
    return Response(
        schema_index(lambda name: f"/v1/schemas/{name}"),
        media_type="application/json",
        headers={"Cache-Control": "public, max-age=300"},
    )


@get("/v1/schemas/{name:str}", sync_to_thread=False)
def schema(name: FromPath[str]) -> Response[Any]:
    found = event_schema_copy(name)
    if found is None:
        return error_response(
            "not_found", f"no event type {name[:80]!r}: /v1/schemas lists them", "type"
        )
    return Response(
        json.dumps(found, ensure_ascii=False).encode(),
        media_type="application/schema+json",
        headers={"Cache-Control": "public, max-age=300"},
    )


routes = [events, schemas, schema]
