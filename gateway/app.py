"""The gateway: litestar + strawberry. It owns no data: it authenticates,
resolves the tenant, and turns GraphQL operations into NATS requests.

Routes: `/graphql` (GraphQL over HTTP as `gateway.http` describes, and
graphql-transport-ws; GraphiQL outside production), `/v1/…` (the HTTP API:
the event stream and its schemas, `gateway.v1`), `/health/live`,
`/health/ready` (NATS connected and every service answering), and the pages
e-mails link to, without login (`gateway.pages`: `/links/…`,
`/unsubscribe/…`, `/calendar/<token>.ics`; `gateway.account_pages`:
`/accept-invitation`, `/reset-password`), and the admin console at
`/console/` (`gateway.console`, static files on the GraphQL API)."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request, get
from litestar.datastructures import State
from litestar.exceptions import MethodNotAllowedException
from litestar.response import Response
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from litestar.types import ASGIApp, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from gateway.account_pages import routes as account_page_routes
from gateway.budgets import Budgets, Limits, OpenStreams
from gateway.console import routes as console_routes
from gateway.context import context_getter
from gateway.exports import routes as export_routes
from gateway.http import graphql_controller, method_not_allowed_handler
from gateway.limits import MAX_HEADER_BYTES, MAX_HEADER_VALUE, MAX_WS_MESSAGE
from gateway.pages import routes as page_routes
from gateway.schema import build_schema
from gateway.v1 import routes as v1_routes
from services.runtime.bus import Bus
from services.runtime.errors import QuartierError
from services.runtime.i18n import accepted_locale, set_request_locale
from services.runtime.logging import configure_logging, get_logger
from services.runtime.settings import ConfigurationError, Settings

log = get_logger("quartier.gateway")

GRAPHQL_PATH = "/graphql"


@get("/health/live", sync_to_thread=False)
def live() -> dict[str, str]:
    return {"status": "live"}


@get("/health/ready")
async def ready(state: State) -> Response[dict[str, object]]:
    """Ready when NATS is connected and every service answers. Says what is
    missing, and how many events each service has parked (they do not make
    the system unready: everything else is served)."""
    bus: Bus = state.bus
    services = state.settings.services
    details: list[dict[str, Any] | None] = (
        list(await asyncio.gather(*(bus.health(s) for s in services)))
        if bus.is_connected
        else [None] * len(services)
    )
    answers = {s: d is not None for s, d in zip(services, details, strict=True)}
    ok = bus.is_connected and all(answers.values())
    missing = ([] if bus.is_connected else ["nats"]) + [s for s, up in answers.items() if not up]
    parked = {s: int(d.get("parked", 0)) for s, d in zip(services, details, strict=True) if d}
    return Response(
        {
            "status": "ready" if ok else "not ready",
            "nats": bus.is_connected,
            "services": answers,
            "missing": missing,
            "parked": {s: n for s, n in parked.items() if n},
        },
        status_code=HTTP_200_OK if ok else HTTP_503_SERVICE_UNAVAILABLE,
    )


GATEWAY_REQUESTS = Counter(
    "quartier_gateway_requests_total",
    "HTTP requests to the gateway, by route and status",
    ["route", "status"],
)
GATEWAY_SECONDS = Histogram(
    "quartier_gateway_request_seconds",
    "Time to answer an HTTP request (a WebSocket counts until it closes)",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ROUTES = (
    "graphql",
    "v1",
    "health",
    "metrics",
    "rsvp",
    "vote",
    "visit",
    "unsubscribe",
    "calendar",
    "console",
    "accept-invitation",
    "reset-password",
)


def oversized_headers(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """What is too large in a request's headers (`gateway.limits`), or None."""
    total = 0
    for name, value in headers:
        if len(value) > MAX_HEADER_VALUE:
            return f"the {name.decode('latin-1')} header is larger than {MAX_HEADER_VALUE} bytes"
        total += len(name) + len(value) + 4
    if total > MAX_HEADER_BYTES:
        return f"the headers are larger than {MAX_HEADER_BYTES} bytes"
    return None


async def _refuse_headers(scope: Scope, send: Send, message: str) -> None:
    log.info("http.refused", code="BAD_REQUEST", status=431)
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1009})
        return
    body = json.dumps({"errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]})
    await send(
        {
            "type": "http.response.start",
            "status": 431,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})


def measured(app: ASGIApp) -> ASGIApp:
    """Count and time every HTTP request by route (a bounded label: the first
    path segment when it is one of ours, else "other"); refuse one whose
    headers are too large (431) before anything reads them (the HTTP server
    refuses larger ones still before: `server_options`)."""

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await app(scope, receive, send)
            return
        segment = scope["path"].strip("/").split("/", 1)[0]
        route = segment if segment in ROUTES else "other"
        status = {"code": 0}
        too_large = oversized_headers(scope["headers"])
        if too_large is not None:
            GATEWAY_REQUESTS.labels(route=route, status="431").inc()
            await _refuse_headers(scope, send, too_large)
            return

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await app(scope, receive, sending)
        finally:
            GATEWAY_SECONDS.labels(route=route).observe(time.perf_counter() - started)
            GATEWAY_REQUESTS.labels(route=route, status=str(status["code"] or 101)).inc()

    return wrapper


@get("/metrics", sync_to_thread=False)
def metrics_endpoint() -> Response[bytes]:
    """Prometheus metrics of this gateway process."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def budgets_of(settings: Settings) -> Budgets:
    """The replica's budgets from the settings (a caller's never above its network's)."""
    return Budgets(
        Limits(
            tenant_requests=settings.rate_limit_per_minute,
            member_requests=min(
                settings.member_rate_limit_per_minute, settings.rate_limit_per_minute
            ),
            tenant_cost=settings.cost_limit_per_minute,
            member_cost=min(settings.member_cost_limit_per_minute, settings.cost_limit_per_minute),
            tenant_concurrency=settings.tenant_concurrency,
            queue_timeout=settings.request_timeout,
        )
    )


def gateway_bus(settings: Settings) -> Bus:
    """The gateway's NATS bus (not connected yet). Raises ConfigurationError
    for a malformed `QUARTIER_NATS_URL`."""
    return Bus(
        settings.nats_url or "nats://127.0.0.1:4222",
        "quartier-gateway",
        settings.request_timeout,
        credentials=settings.nats_credentials,
    )


def create_app(
    settings: Settings, bus: Bus | None = None, stopping: asyncio.Event | None = None
) -> ASGIApp:
    """The ASGI app. Its start-up connects `bus` unless it is connected
    already (`main` connects it before the HTTP server starts). `stopping`,
    once set (`gateway_server`), ends the long responses (`GET /v1/events`)
    with a last line saying the server is stopping."""
    bus = bus or gateway_bus(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if bus.nc is None:
            await bus.connect(wait=None if settings.is_prod else 30.0)
        log.info("gateway.started", url=f"http://{settings.http_host}:{settings.http_port}/graphql")
        try:
            yield
        finally:
            await bus.close()

    controller = graphql_controller(
        build_schema(prod=settings.is_prod),
        path=GRAPHQL_PATH,
        graphql_ide=not settings.is_prod,
        context_getter=context_getter,
    )
    app = Litestar(
        route_handlers=[
            controller,
            *v1_routes,
            *export_routes,
            live,
            ready,
            metrics_endpoint,
            *page_routes,
            *account_page_routes,
            *console_routes,
        ],
        exception_handlers={MethodNotAllowedException: method_not_allowed_handler(GRAPHQL_PATH)},
        before_request=say_in_the_language_asked_for,
        lifespan=[lifespan],
        state=State(
            {
                "bus": bus,
                "settings": settings,
                "budgets": budgets_of(settings),
                "streams": OpenStreams(settings.stream_follows),
                "stopping": stopping if stopping is not None else asyncio.Event(),
            }
        ),
        debug=False,
    )
    return measured(app)  # around the router: 404s and 405s are counted too


async def say_in_the_language_asked_for(request: Request[Any, Any, Any]) -> None:
    """Every handler's refusals in the language of `Accept-Language`
    (docs/api.md, "Errors"); GraphQL sets it again where resolvers run
    (`gateway.execution.Language`)."""
    set_request_locale(accepted_locale(request.headers.get("accept-language")))


def server_options() -> dict[str, Any]:
    """uvicorn's options for the gateway: the h11 parser, which refuses a
    request line and headers larger than `MAX_HEADER_BYTES` while reading
    them (httptools, uvicorn's other parser, reads headers of any size), and
    WebSocket messages of at most `MAX_WS_MESSAGE` bytes. uvicorn's own
    handling of `X-Forwarded-For` is off: by default it believes the header
    from 127.0.0.1 and rewrites the client's address before the app sees
    it; the gateway decides from `QUARTIER_TRUSTED_PROXIES` instead
    (`gateway.budgets.client_address`)."""
    return {
        "proxy_headers": False,
        "http": "h11",
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "ws": "websockets-sansio",
        "ws_max_size": MAX_WS_MESSAGE,
        "log_level": "warning",
    }


def gateway_server(config: Any, stopping: asyncio.Event) -> Any:
    """uvicorn's server for `config`, which sets `stopping` as its shutdown
    begins (SIGTERM, SIGINT, `should_exit`), before it waits for the open
    connections: the running event streams then end with a last line
    saying so (docs/stream.md) instead of being cut when the graceful
    shutdown's time is up."""
    import uvicorn

    class GatewayServer(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            stopping.set()
            await super().shutdown(sockets)

    return GatewayServer(config)


async def serve(settings: Settings, bus: Bus, server: Any) -> None:
    """NATS first, then `server` (uvicorn's, serving the app on `bus`) until
    SIGTERM or SIGINT (uvicorn's own handling). A signal while NATS does not
    answer yet stops the gateway there, with a log line, not a failed
    start-up's traceback."""
    loop = asyncio.get_running_loop()
    connecting = asyncio.ensure_future(bus.connect(wait=None if settings.is_prod else 30.0))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, connecting.cancel)
    try:
        await connecting
    except asyncio.CancelledError:
        log.info("gateway.stopped", reason="a signal while waiting for NATS", servers=bus.shown)
        return
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    await server.serve()


def main() -> None:
    """`python -m gateway`. A bad setting, or NATS unreachable (outside
    production, for 30 s: docs/deployment.md), stops it with one line on
    stderr (`quartier-gateway: …`) and exit status 2 or 1, not a traceback;
    SIGTERM or SIGINT while it waits for NATS, with exit status 0."""
    import uvicorn

    try:
        settings = Settings.from_env()
        configure_logging(settings.log_format, settings.log_level, service="gateway")
        bus = gateway_bus(settings)
        stopping = asyncio.Event()
        config = uvicorn.Config(
            create_app(settings, bus, stopping),
            host=settings.http_host,
            port=settings.http_port,
            timeout_graceful_shutdown=10,
            **server_options(),
        )
        # the event loop uvicorn.run would use (uvloop when installed)
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            runner.run(serve(settings, bus, gateway_server(config, stopping)))
    except ConfigurationError as e:
        print(f"quartier-gateway: configuration error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except QuartierError as e:
        print(f"quartier-gateway: cannot start: {e.message}", file=sys.stderr)
        raise SystemExit(1) from None
