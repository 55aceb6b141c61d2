"""The gateway: litestar + strawberry. It owns no data: it authenticates,
resolves the tenant, and turns GraphQL operations into NATS requests.

Routes: `/graphql` (GraphQL over HTTP as `gateway.http` describes, and
graphql-transport-ws; GraphiQL outside production), `/health/live`,
`/health/ready` (NATS connected and every service answering), and the pages
e-mails link to, without login (`gateway.pages`: `/links/…`,
`/unsubscribe/…`, `/calendar/<token>.ics`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, get
from litestar.datastructures import State
from litestar.exceptions import MethodNotAllowedException
from litestar.response import Response
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from gateway.context import RateLimiter, context_getter
from gateway.http import graphql_controller, method_not_allowed_handler
from gateway.pages import routes as page_routes
from gateway.schema import build_schema
from services.runtime.bus import Bus
from services.runtime.logging import configure_logging, get_logger
from services.runtime.settings import Settings

log = get_logger("quartier.gateway")

GRAPHQL_PATH = "/graphql"


@get("/health/live", sync_to_thread=False)
def live() -> dict[str, str]:
    return {"status": "live"}


@get("/health/ready")
async def ready(state: State) -> Response[dict[str, object]]:
    bus: Bus = state.bus
    services = state.settings.services
    answers = (
        dict(zip(services, await asyncio.gather(*(bus.ping(s) for s in services)), strict=True))
        if bus.is_connected
        else dict.fromkeys(services, False)
    )
    ok = bus.is_connected and all(answers.values())
    return Response(
        {"status": "ready" if ok else "not ready", "nats": bus.is_connected, "services": answers},
        status_code=HTTP_200_OK if ok else HTTP_503_SERVICE_UNAVAILABLE,
    )


def create_app(settings: Settings) -> Litestar:
    bus = Bus(
        settings.nats_url or "nats://127.0.0.1:4222", "quartier-gateway", settings.request_timeout
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
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
    return Litestar(
        route_handlers=[controller, live, ready, *page_routes],
        exception_handlers={MethodNotAllowedException: method_not_allowed_handler(GRAPHQL_PATH)},
        lifespan=[lifespan],
        state=State(
            {
                "bus": bus,
                "settings": settings,
                "limiter": RateLimiter(settings.rate_limit_per_minute),
            }
        ),
        debug=False,
    )


def main() -> None:
    import uvicorn

    settings = Settings.from_env()
    configure_logging(settings.log_format, settings.log_level, service="gateway")
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        ws="websockets-sansio",
        timeout_graceful_shutdown=10,
    )
