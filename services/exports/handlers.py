"""Exports' endpoints: who may do what, and the calls.

Who: the token says who signed in; whether they are (still) a member and a
tenant admin is asked of identity, the owner of roles, at each request. A
network export is for tenant admins; a member's own export (`me`) for any
member. **Tenant API keys** (issue #10 item 1) are not built yet: when they
are, `_requester` is where a key with the `export` scope is accepted for a
network export (docs/exports.md, "API keys").

A download needs no sign-in: the signed link is the credential
(`links.py`). A signed-in caller of another network is refused even with a
valid link.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from services.exports import contract as c
from services.exports import views
from services.exports.job import Options
from services.exports.links import Signer
from services.identity import contract as idc
from services.runtime.errors import Forbidden, InvalidInput, InvalidToken, NotFound, RuleViolation
from services.runtime.handlers import Handlers, handles
from services.runtime.host import ServiceHost
from services.runtime.i18n import Text, t
from services.runtime.tenancy import RequestContext, as_service
from services.runtime.views import check_page

DAY = timedelta(hours=24)


class ExportsHandlers(Handlers):
    def __init__(
        self, host: ServiceHost, signer: Signer, options: Options, wake: Callable[[], None]
    ):
        super().__init__(host)
        self.signer = signer
        self.options = options
        self._wake = wake

    async def _requester(self, ctx: RequestContext) -> tuple[str, bool]:
        """The acting member and whether they are a tenant admin, by
        identity's current state. Unauthenticated if not signed in as a
        member of this network; Forbidden if identity no longer knows them.

        The `service` actor is the gateway for a tenant API key whose
        `export` scope it has just checked (docs/api-keys.md; only the
        gateway may send to this service, by the bus's permissions): it
        acts on the network's exports, as a tenant admin would, with no
        member id (`""`)."""
        if ctx.actor.kind == "service":
            ctx.require_tenant()
            return "", True
        member_id = ctx.require_member()
        found = await self.bus.request(idc.GetMembers(member_ids=[member_id]), as_service(ctx))
        if not found:
            raise Forbidden(t("you are no longer a member of this network"))
        return member_id, "tenant_admin" in found[0].roles

    def _reply(self, row: sa.Row[tuple[object, ...]]) -> c.Export:
        if row.status != "ready" or row.expires_at is None:
            return views.reply(row)
        expires = min(
            self.clock.now() + timedelta(seconds=self.options.link_seconds), row.expires_at
        )
        return views.reply(row, self.signer.token(row.export_id, row.tenant_id, expires), expires)

    def _visible(self, tenant_id: str, member_id: str, admin: bool, export_id: str) -> c.Export:
        if not _is_uuid(export_id):
            raise NotFound(t("export not found"))

        def query(conn: sa.Connection) -> c.Export:
            row = conn.execute(
                views.visible(tenant_id, member_id, admin).where(
                    views.exports.c.export_id == export_id
                )
            ).first()
            if row is None:
                raise NotFound(t("export not found"))
            return self._reply(row)

        return self.read(query)

    def _within_budget(
        self, conn: sa.Connection, tenant_id: str, scope: str, member_id: str, now: datetime
    ) -> None:
        """RuleViolation if starting one more export of `scope` would pass a
        budget of the last 24 hours (docs/exports.md, "Limits"): the
        network's `network` exports, or the member's own `me` exports and
        then all its members' together. The budgets are separate, so no
        member can use up what the network's admins and keys need."""
        since = now - DAY
        o = self.options
        budgets: list[tuple[str | None, int, str]] = (
            [(None, o.network_per_day, "max_exports")]
            if scope == "network"
            else [
                (member_id, o.own_per_day, "max_own_exports"),
                (None, o.members_per_day, "max_members_exports"),
            ]
        )
        for who, limit, rule in budgets:
            count, oldest = views.started_since(conn, tenant_id, scope, since, who)
            if count >= limit:
                raise RuleViolation(
                    _over_budget(rule, limit, scope.upper(), _minute_after((oldest or now) + DAY)),
                    rule=rule,
                )

    # -- commands -----------------------------------------------------------------------

    @handles(c.StartExport)
    async def start(self, cmd: c.StartExport, ctx: RequestContext) -> c.Export:
        member_id, admin = await self._requester(ctx)
        tenant_id = ctx.require_tenant()
        if cmd.scope == "network" and not admin:
            raise Forbidden(t("only a tenant admin may export the network"))
        if not member_id:  # an API key
            key_hex = _uuid_hex(cmd.api_key_id or "")
            if cmd.scope != "network" or key_hex is None:
                raise Forbidden(t("an API key exports the network (scope NETWORK) only"))
            member_id = f"key:{key_hex}"  # 36 characters, as a member id
        key = views.active_key(tenant_id, cmd.scope, member_id)

        def unit() -> c.Export:
            now = self.clock.now()
            try:
                with self.engine.begin() as conn:
                    running = views.active(conn, key)
                    if running is not None:
                        return self._reply(running)
                    self._within_budget(conn, tenant_id, cmd.scope, member_id, now)
                    export_id = str(uuid.uuid4())
                    conn.execute(
                        views.exports.insert().values(
                            export_id=export_id,
                            tenant_id=tenant_id,
                            scope=cmd.scope,
                            status="queued",
                            progress=0.0,
                            requested_by=member_id,
                            requested_at=now,
                            active_key=key,
                        )
                    )
            except sa.exc.IntegrityError:  # another replica started it just now
                pass
            with self.engine.connect() as conn:
                row = views.active(conn, key)
            if row is None:  # started and already done: rare; answer the latest
                raise RuleViolation(t("an export was just made: look at the list"), rule="repeated")
            return self._reply(row)

        reply = await self.unit(unit)
        self._wake()
        return reply

    # -- queries ----------------------------------------------------------------------------

    @handles(c.GetExport)
    async def get_export(self, q: c.GetExport, ctx: RequestContext) -> c.Export:
        member_id, admin = await self._requester(ctx)
        tenant_id = ctx.require_tenant()
        return await self.unit(lambda: self._visible(tenant_id, member_id, admin, q.export_id))

    @handles(c.ListExports)
    async def list_exports(self, q: c.ListExports, ctx: RequestContext) -> c.ExportPage:
        member_id, admin = await self._requester(ctx)
        check_page(q.limit, q.offset, t("exports"))
        tenant_id = ctx.require_tenant()

        def query(conn: sa.Connection) -> c.ExportPage:
            rows, total = views.page(conn, tenant_id, member_id, admin, q.offset, q.limit)
            return c.ExportPage(items=[self._reply(r) for r in rows], total=total)

        return await self.unit(lambda: self.read(query))

    @handles(c.GetArchiveChunk)
    def chunk(self, q: c.GetArchiveChunk, ctx: RequestContext) -> c.ArchiveChunk:
        if not _is_uuid(q.export_id):
            raise NotFound(t("export not found"))
        tenant_id = self.signer.check(q.token, q.export_id, self.clock.now())
        if ctx.tenant_id is not None and ctx.tenant_id != tenant_id:
            raise InvalidToken(
                t("this download link is not valid or has expired: ask for a new one")
            )

        def query(conn: sa.Connection) -> c.ArchiveChunk:
            row = views.get(conn, tenant_id, q.export_id)
            if row is None or row.status != "ready" or not row.chunks:
                raise NotFound(t("this export's archive is no longer kept: start a new export"))
            if not 0 <= q.index < row.chunks:
                raise InvalidInput(
                    t("the archive has {count} chunks", count=row.chunks), field="index"
                )
            data = views.chunk(conn, tenant_id, q.export_id, q.index)
            if data is None:
                raise NotFound(t("this export's archive is no longer kept: start a new export"))
            return c.ArchiveChunk(
                export_id=q.export_id,
                index=q.index,
                count=row.chunks,
                size=row.size,
                filename=f"quartier-export-{row.scope}-{row.ready_at:%Y%m%d-%H%M%S}.zip",
                data=data,
            )

        return self.read(query)


def _over_budget(rule: str, limit: int, scope: str, next_at: str) -> Text:
    """The refusal of one more export past a budget (`rule`): one sentence
    for each budget, so that each language says it its own way."""
    if rule == "max_exports":
        return t(
            "a network may start at most {limit} exports of scope {scope} in 24 hours: "
            "the next one may start from {next_at} UTC",
            limit=limit,
            scope=scope,
            next_at=next_at,
        )
    if rule == "max_own_exports":
        return t(
            "you may start at most {limit} exports of scope {scope} in 24 hours: "
            "the next one may start from {next_at} UTC",
            limit=limit,
            scope=scope,
            next_at=next_at,
        )
    return t(
        "this network's members, all together, may start at most {limit} exports of scope "
        "{scope} in 24 hours: the next one may start from {next_at} UTC",
        limit=limit,
        scope=scope,
        next_at=next_at,
    )


def _minute_after(when: datetime) -> str:
    """`when` in UTC to the minute, rounded up (never a time still refused)."""
    up = when.astimezone(UTC).replace(second=0, microsecond=0)
    return f"{up if up == when else up + timedelta(minutes=1):%Y-%m-%d %H:%M}"


def _is_uuid(text: str) -> bool:
    try:
        return len(text) == 36 and str(uuid.UUID(text)) == text
    except ValueError:
        return False


def _uuid_hex(text: str) -> str | None:
    """An API key's id (a UUID, with or without dashes) as 32 hex digits."""
    try:
        return uuid.UUID(text).hex if len(text) in (32, 36) else None
    except ValueError:
        return None
