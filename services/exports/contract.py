"""Exports' published language: the only module of this service that the
gateway and other services may import.

A tenant admin exports the whole network (`scope="network"`); any member
exports what the network holds about them (`scope="me"`, the right of
access). An export is made in the background by the service's leader: it
asks the other services over the bus, as its requester, and writes a zip of
CSV and NDJSON files with a `manifest.json` and a `README.txt`
(docs/exports.md). The archive is kept in the service's own database in
chunks, for 24 hours after it is ready, and downloaded through the gateway
(`GET /v1/exports/<id>/download?token=…`) with a signed link that lives a few
minutes (`download_token`, minted with each reply of a ready export).

Requests go to `quartier.cmd.exports.<Name>` / `quartier.qry.exports.<Name>`.
The service publishes no events yet (docs/exports.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from services.runtime.messages import Command, Message, Query, R

SERVICE = "exports"

Scope = Literal["network", "me"]
Status = Literal["queued", "running", "ready", "failed", "expired"]

CHUNK_BYTES = 512 * 1024  # an archive's chunk: well below NATS's 1 MiB payload limit


class ExportsCommand(Command[R]):
    service: ClassVar[str] = SERVICE


class ExportsQuery(Query[R]):
    service: ClassVar[str] = SERVICE


# -- replies -------------------------------------------------------------------


class Export(Message):
    """An export as its requester (or, for a network export, the network's
    tenant admins) sees it. `progress` goes from 0 to 1; `size` (bytes) once
    ready; `error` says why it failed. `download_token` is set only while it
    is ready: a signed link's token, valid until `download_expires_at` (a few
    minutes; never after the archive's `expires_at`)."""

    export_id: str
    tenant_id: str
    scope: Scope
    status: Status
    progress: float
    requested_by: str
    requested_at: datetime
    started_at: datetime | None
    ready_at: datetime | None
    expires_at: datetime | None
    size: int | None
    error: str | None
    download_token: str | None = None
    download_expires_at: datetime | None = None


class ExportPage(Message):
    items: list[Export]
    total: int


class ArchiveChunk(Message):
    """One chunk of a ready archive (`index` of `count`, `CHUNK_BYTES` at most)."""

    export_id: str
    index: int
    count: int
    size: int  # the whole archive's bytes
    filename: str
    data: bytes


# -- commands ------------------------------------------------------------------


class StartExport(ExportsCommand[Export]):
    """`network`: tenant admins, or a tenant API key with the `export` scope.
    `me`: any member, about themself. At most one export per network and
    scope (per member for `me`) is queued or running: starting again answers
    that one. Exports started in 24 hours are counted in separate budgets
    (docs/exports.md, "Limits"): the network's `network` exports
    (RuleViolation `max_exports`), a member's own `me` exports
    (`max_own_exports`) and all its members' `me` exports together
    (`max_members_exports`); no member can spend the `network` budget.

    `api_key_id`: set by the gateway only, for a key whose `export` scope it
    has just checked with identity; the request then comes from the `service`
    actor of the key's network (a key never acts as a member)."""

    scope: Scope
    api_key_id: str | None = None


# -- queries -------------------------------------------------------------------


class GetExport(ExportsQuery[Export]):
    """A member, or (the `service` actor) the gateway for an API key with
    the `export` scope: the network's exports."""

    export_id: str


class ListExports(ExportsQuery[ExportPage]):
    """Newest first: a tenant admin's list holds the network's exports and
    their own `me` exports; a member's, their own."""

    offset: int = 0
    limit: int = 20


class GetArchiveChunk(ExportsQuery[ArchiveChunk]):
    """No sign-in: the signed `token` of a download link is the credential.
    A tampered, expired or other network's link: InvalidToken; an archive
    gone (expired, erased): NotFound."""

    export_id: str
    token: str
    index: int = 0
