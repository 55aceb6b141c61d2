"""GraphQL for the exports service: a tenant admin exports the network, a
member their own data (right of access); each export's state, progress and,
once ready, a short-lived download link (docs/exports.md). The download
itself is plain HTTP: `GET /v1/exports/<id>/download?token=…` streams the
archive from the service in chunks (`routes`, mounted by `gateway.app`).

By convention (see `gateway.kit`): `Query`, `Mutation`, `types`, `nodes`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from enum import Enum
from typing import Any
from urllib.parse import quote

import strawberry
from litestar import Request, get
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Response, Stream
from strawberry.types import Info

from gateway.budgets import Buckets, Budgets, Refused
from gateway.context import Context, peer_address
from gateway.keys import EXPORT, require_scope
from gateway.kit import (
    Connection,
    NodeLoader,
    as_error_type,
    ask,
    connection,
    public_errors,
    result_union,
)
from gateway.nodes import Node, parse_page, split_raw_id, to_global_id
from services.exports import contract as c
from services.runtime.errors import QuartierError
from services.runtime.i18n import request_locale, t
from services.runtime.logging import get_logger
from services.runtime.messages import Actor, new_correlation_id
from services.runtime.tenancy import RequestContext

log = get_logger("quartier.gateway.exports")

DOWNLOAD = "/v1/exports/{export_id:str}/download"


@strawberry.enum(description="What an export holds.")
class ExportScope(Enum):
    NETWORK = "network"  # the whole network (tenant admins)
    ME = "me"  # everything the network holds about the member asking (right of access)


@strawberry.enum(description="Where an export stands.")
class ExportStatus(Enum):
    QUEUED = "queued"
    RUNNING = "running"
    READY = "ready"  # downloadable until `expiresAt`
    FAILED = "failed"
    EXPIRED = "expired"  # its archive is no longer kept


def download_path(export_id: str, token: str) -> str:
    return f"/v1/exports/{quote(export_id, safe='')}/download?token={quote(token, safe='')}"


@strawberry.type(description="An export of the network, or of a member's own data.")
class Export(Node):
    export_id: strawberry.ID
    scope: ExportScope
    status: ExportStatus
    progress: float = strawberry.field(description="From 0 to 1.")
    requested_at: datetime
    ready_at: datetime | None
    expires_at: datetime | None = strawberry.field(
        description="When the archive is deleted (24 hours after it is ready)."
    )
    size: int | None = strawberry.field(description="The archive's bytes, once ready.")
    error: str | None = strawberry.field(description="Why it failed.")
    download_url: str | None = strawberry.field(
        description="Null unless READY: a signed link to the zip, valid a few minutes "
        "(ask again for a fresh one)."
    )
    download_expires_at: datetime | None

    @classmethod
    def from_contract(cls, x: c.Export, base_url: str = "") -> Export:
        url = None
        if x.status == "ready" and x.download_token:
            url = base_url.rstrip("/") + download_path(x.export_id, x.download_token)
        return cls(
            id=to_global_id("Export", x.export_id),
            export_id=strawberry.ID(x.export_id),
            scope=ExportScope(x.scope),
            status=ExportStatus(x.status),
            progress=x.progress,
            requested_at=x.requested_at,
            ready_at=x.ready_at,
            expires_at=x.expires_at,
            size=x.size,
            error=x.error,
            download_url=url,
            download_expires_at=x.download_expires_at if url else None,
        )


def _export(info: Info[Context, Any], x: c.Export) -> Export:
    return Export.from_contract(x, info.context.settings.public_url)


@strawberry.type
class ExportStarted:
    export: Export


StartExportResult = result_union("StartExportResult", ExportStarted)


@strawberry.input
class StartExportInput:
    scope: ExportScope


def _caller(info: Info[Context, Any]) -> tuple[RequestContext, str | None]:
    """The request context to ask the service with, and the API key's id:
    a signed-in member as themself; a tenant API key (docs/api-keys.md) with
    the `export` scope as the `service` actor of its network (a key is no
    member). Raises a QuartierError (no key scope, signed out…)."""
    principal = info.context.principal
    if principal.key_id is None:
        return info.context.require_member(), None
    grant = require_scope(principal, EXPORT)
    ctx = RequestContext(
        tenant_id=grant.tenant_id,
        actor=Actor(kind="service"),
        correlation_id=info.context.correlation_id,
    )
    return ctx, grant.key_id


def _as_caller(info: Info[Context, Any]) -> tuple[RequestContext, str | None]:
    with public_errors():
        return _caller(info)


@strawberry.type
class Query:
    @strawberry.field(
        description="Exports, newest first: a tenant admin sees the network's and their own, "
        "a member their own."
    )
    async def exports(
        self, info: Info[Context, Any], first: int = 20, after: str | None = None
    ) -> Connection[Export]:
        rctx, _ = _as_caller(info)
        with public_errors():
            offset, limit = parse_page(first, after)
        found = await ask(info, c.ListExports(offset=offset, limit=limit), rctx)
        return connection(found.items, offset, found.total, lambda x: _export(info, x))


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Start an export: NETWORK (tenant admins) or ME (any member). While one "
        "is queued or running, starting again answers it."
    )
    async def start_export(
        self, info: Info[Context, Any], input: StartExportInput
    ) -> StartExportResult:
        try:
            rctx, key_id = _caller(info)
            scope: c.Scope = "network" if input.scope is ExportScope.NETWORK else "me"
            found = await info.context.ask(c.StartExport(scope=scope, api_key_id=key_id), rctx)
        except QuartierError as error:
            return as_error_type(error)
        return ExportStarted(export=_export(info, found))


async def export_node(info: Info[Context, Any], raw_id: str) -> Export | None:
    parts = split_raw_id(raw_id)
    if parts is None:
        return None
    rctx, _ = _as_caller(info)
    found = await ask(info, c.GetExport(export_id=parts[0]), rctx, missing_as_none=True)
    return _export(info, found) if found else None


types: list[type] = [Export]
nodes: dict[str, NodeLoader] = {"Export": export_node}


# -- the download (HTTP) ----------------------------------------------------------------

STATUS = {"invalid_input": 400, "invalid_token": 403, "not_found": 404, "unavailable": 503}

DOWNLOADS_PER_MINUTE = 10
"""Downloads of one export a minute, per gateway replica, whoever asks (a
leaked link cannot be hammered from many addresses); each client address
spends its own request budget too (`gateway.budgets`)."""


def _error(error: QuartierError) -> Response[Any]:
    return _json(error.code, error.message_in(request_locale()), STATUS.get(error.code, 500))


def _json(code: str, message: str, status: int, **headers: str) -> Response[Any]:
    return Response(
        {"error": {"code": code, "message": message}},
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store", **headers},
    )


def _admit(state: State, request: Request[Any, Any, Any], export_id: str) -> None:
    """Spend a request of the client's address (the budgets every anonymous
    request spends), then one of the export's downloads; Refused when
    either is spent (nothing is taken from the export's bucket then)."""
    budgets: Budgets = state.budgets
    budgets.request(f"address:{peer_address(state, request.headers, request.scope)}", None)
    downloads: Buckets | None = state.get("export_downloads")
    if downloads is None:
        downloads = Buckets(DOWNLOADS_PER_MINUTE)
        state["export_downloads"] = downloads
    key = f"export:{export_id}"
    wait = downloads.wait(key, 1)
    if wait > 0:
        raise Refused(t("this export was downloaded too often: come back after Retry-After"), wait)
    downloads.take(key, 1)


async def _rest(
    state: State, ctx: RequestContext, first: c.ArchiveChunk, token: str
) -> AsyncIterator[bytes]:
    """The archive, chunk after chunk, each asked only once the previous one
    was written (one chunk held at a time). A failure midway ends the
    response short: the client sees a truncated zip and downloads again."""
    yield first.data
    for index in range(1, first.count):
        try:
            chunk = await state.bus.request(
                c.GetArchiveChunk(export_id=first.export_id, token=token, index=index), ctx
            )
        except QuartierError as e:
            log.warning("exports.download_cut", code=e.code)
            return
        yield chunk.data


@get(DOWNLOAD)
async def download(
    request: Request[Any, Any, Any], state: State, export_id: FromPath[str]
) -> Response[Any]:
    """The archive of a ready export, for whoever holds a valid link (no
    sign-in: the link is short-lived and signed for this export only), within
    the client's request budget and the export's downloads a minute (429
    with `Retry-After` past them)."""
    token = request.query_params.get("token") or ""
    export_id = export_id[:64]
    try:
        _admit(state, request, export_id)
    except Refused as refused:
        return _json(
            "rate_limited", refused.said(), 429, **{"Retry-After": str(refused.retry_after)}
        )
    ctx = RequestContext(correlation_id=new_correlation_id())
    try:
        first = await state.bus.request(
            c.GetArchiveChunk(export_id=export_id, token=token[:600], index=0), ctx
        )
    except QuartierError as e:
        return _error(e)
    return Stream(
        _rest(state, ctx, first, token[:600]),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{first.filename}"',
            "Content-Length": str(first.size),
            "Cache-Control": "no-store",
        },
    )


routes = [download]
