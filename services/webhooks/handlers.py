"""Webhooks' endpoints: who may do what, and the calls.

Every request is a tenant admin's, or a tenant API key's with
`events:read` (`key:<id>`, checked by the gateway at each request). The
token says who signed in; whether they are still a tenant admin is asked of
identity, the owner of roles, at each request (`_admin`), so a demoted admin
loses access at once rather than when their token expires.

A URL is checked (syntax, then where its host resolves) before anything is
saved; the endpoint and its secret are saved in one unit of work.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from services.identity import contract as idc
from services.runtime.errors import Forbidden, InvalidInput, NotFound, RuleViolation
from services.runtime.handlers import Handlers, handles
from services.runtime.host import ServiceHost
from services.runtime.i18n import t
from services.runtime.messages import Done
from services.runtime.tenancy import RequestContext, as_service
from services.runtime.views import check_page
from services.webhooks import contract as c
from services.webhooks import outbound, views
from services.webhooks.application import Webhooks
from services.webhooks.delivery import Options
from services.webhooks.domain import MAX_ENDPOINTS, Endpoint, check_url
from services.webhooks.secrets import SecretBox, new_secret


class WebhooksHandlers(Handlers):
    def __init__(
        self,
        host: ServiceHost,
        app: Webhooks,
        box: SecretBox,
        options: Options,
        wake: Callable[[], None] | None = None,
    ):
        super().__init__(host)
        self.app = app
        self.box = box
        self.options = options
        self._wake = wake

    # -- checks -----------------------------------------------------------------------

    async def _admin(self, ctx: RequestContext) -> str:
        """Who acts: a tenant admin by identity's current state (their id),
        or a tenant API key (`key:<id>`: the gateway acts for a key holding
        `events:read` as its network's service actor, docs/api-keys.md).
        Raises Unauthenticated (not signed in as a member) or Forbidden."""
        if ctx.actor.kind == "service" and ctx.actor.key_id and ctx.tenant_id:
            return f"key:{ctx.actor.key_id}"
        member_id = ctx.require_tenant_admin()
        found = await self.bus.request(idc.GetMembers(member_ids=[member_id]), as_service(ctx))
        if not found or "tenant_admin" not in found[0].roles:
            raise Forbidden(t("only a tenant admin may do this"))
        return member_id

    async def _check_destination(self, url: str) -> None:
        check_url(url)  # the syntax first: an invalid URL is not resolved
        await outbound.destination(url, self.options.allow_private, self.options.resolve)

    def _now(self) -> datetime:
        return self.clock.now()

    def _endpoint(self, ctx: RequestContext, endpoint_id: str) -> c.Endpoint:
        tenant_id = ctx.require_tenant()

        def read(conn: sa.Connection) -> c.Endpoint:
            row = views.live_endpoint(conn, tenant_id, endpoint_id)
            if row is None:
                raise NotFound(t("endpoint not found"))
            return views.endpoint_reply(conn, row)

        return self.read(read)

    def _live(self, ctx: RequestContext, endpoint_id: str) -> Endpoint:
        endpoint = self.app.get(ctx.tenant_id, endpoint_id, Endpoint)
        if endpoint.deleted:
            raise NotFound(t("endpoint not found"))
        return endpoint

    def _change(
        self, ctx: RequestContext, endpoint_id: str, change: Callable[[Endpoint], object]
    ) -> None:
        def unit() -> tuple[list[Endpoint], None]:
            endpoint = self._live(ctx, endpoint_id)
            change(endpoint)
            return [endpoint], None

        self.write(lambda: self.app.transact(unit))

    # -- commands -------------------------------------------------------------------------

    @handles(c.CreateEndpoint)
    async def create(self, cmd: c.CreateEndpoint, ctx: RequestContext) -> c.EndpointSecret:
        by = await self._admin(ctx)
        tenant_id = ctx.require_tenant()
        await self._check_destination(cmd.url)

        def unit() -> c.EndpointSecret:
            if self.read(lambda conn: views.count_endpoints(conn, tenant_id)) >= MAX_ENDPOINTS:
                raise RuleViolation(
                    t("a network has at most {limit} endpoints", limit=MAX_ENDPOINTS),
                    rule="max_endpoints",
                )
            now = self._now()
            endpoint = Endpoint.new(tenant_id, cmd.url, cmd.event_types, cmd.description, by, now)
            secret = new_secret()
            with self.engine.begin() as conn:  # the secret first: an orphan row is harmless
                self.box.store(conn, tenant_id, str(endpoint.id), 1, secret, now)
            self.write(lambda: self.app.save(endpoint))
            return c.EndpointSecret(endpoint=self._endpoint(ctx, str(endpoint.id)), secret=secret)

        return await self.unit(unit)

    @handles(c.UpdateEndpoint)
    async def update(self, cmd: c.UpdateEndpoint, ctx: RequestContext) -> c.Endpoint:
        by = await self._admin(ctx)
        if cmd.url is not None:
            await self._check_destination(cmd.url)

        def unit() -> c.Endpoint:
            now = self._now()
            turned_on: list[bool] = []

            def change(e: Endpoint) -> None:
                was = e.enabled
                e.update(
                    by,
                    now,
                    url=cmd.url,
                    event_types=cmd.event_types,
                    description=cmd.description,
                    enabled=cmd.enabled,
                )
                turned_on[:] = [e.enabled and not was]

            self._change(ctx, cmd.endpoint_id, change)
            if any(turned_on):  # enabled again: its queue goes on at once
                self._restart(ctx.require_tenant(), cmd.endpoint_id, now)
            return self._endpoint(ctx, cmd.endpoint_id)

        reply = await self.unit(unit)
        if reply.enabled and self._wake is not None:
            self._wake()
        return reply

    def _restart(self, tenant_id: str, endpoint_id: str, now: datetime) -> bool:
        with self.engine.begin() as conn:
            return views.restart_schedule(conn, tenant_id, endpoint_id, now)

    @handles(c.RetryDeliveries)
    async def retry(self, cmd: c.RetryDeliveries, ctx: RequestContext) -> c.Endpoint:
        await self._admin(ctx)
        tenant_id = ctx.require_tenant()

        def unit() -> c.Endpoint:
            self._endpoint(ctx, cmd.endpoint_id)  # one of the network's, not deleted
            self._restart(tenant_id, cmd.endpoint_id, self._now())
            return self._endpoint(ctx, cmd.endpoint_id)

        reply = await self.unit(unit)
        if reply.enabled and self._wake is not None:
            self._wake()
        return reply

    @handles(c.RotateEndpointSecret)
    async def rotate(self, cmd: c.RotateEndpointSecret, ctx: RequestContext) -> c.EndpointSecret:
        by = await self._admin(ctx)
        tenant_id = ctx.require_tenant()

        def unit() -> c.EndpointSecret:
            now = self._now()
            versions: list[int] = []

            def rotate(e: Endpoint) -> None:
                e.rotate_secret(by, now)
                versions.append(e.secret_version)

            secret = new_secret()
            # the event first here: the new version's row must not exist before its number does
            self._change(ctx, cmd.endpoint_id, rotate)
            with self.engine.begin() as conn:
                until = self.box.store(conn, tenant_id, cmd.endpoint_id, versions[-1], secret, now)
            return c.EndpointSecret(
                endpoint=self._endpoint(ctx, cmd.endpoint_id),
                secret=secret,
                previous_valid_until=until,
            )

        return await self.unit(unit)

    @handles(c.DeleteEndpoint)
    async def delete(self, cmd: c.DeleteEndpoint, ctx: RequestContext) -> Done:
        by = await self._admin(ctx)

        def unit() -> Done:
            now = self._now()
            self._change(ctx, cmd.endpoint_id, lambda e: e.delete(by, now))
            with self.engine.begin() as conn:
                self.box.forget(conn, ctx.require_tenant(), cmd.endpoint_id)
            return Done()

        return await self.unit(unit)

    def _queue_again(self, sources: Sequence[Any], now: datetime) -> list[str]:
        ids: list[str] = []
        with self.engine.begin() as conn:
            for row in sources:
                delivery_id = str(uuid.uuid4())
                conn.execute(
                    views.deliveries.insert().values(
                        delivery_id=delivery_id,
                        tenant_id=row.tenant_id,
                        endpoint_id=row.endpoint_id,
                        event_id=row.event_id,
                        event_type=row.event_type,
                        body=row.body,
                        status="pending",
                        attempts=0,
                        created_at=now,
                        next_attempt_at=now,
                        replay_of=row.delivery_id,
                    )
                )
                ids.append(delivery_id)
        return ids

    @handles(c.ReplayDelivery)
    async def replay(self, cmd: c.ReplayDelivery, ctx: RequestContext) -> c.Replayed:
        await self._admin(ctx)
        tenant_id = ctx.require_tenant()

        def unit() -> c.Replayed:
            row = self.read(lambda conn: views.get_delivery(conn, tenant_id, cmd.delivery_id))
            if row is None:
                raise NotFound(t("delivery not found"))
            self._endpoint(ctx, row.endpoint_id)  # not deleted
            ids = self._queue_again([row], self._now())
            return c.Replayed(queued=len(ids), deliveries=ids)

        replayed = await self.unit(unit)
        if self._wake is not None:
            self._wake()
        return replayed

    @handles(c.ReplayDeliveries)
    async def replay_range(self, cmd: c.ReplayDeliveries, ctx: RequestContext) -> c.Replayed:
        await self._admin(ctx)
        tenant_id = ctx.require_tenant()
        if cmd.since.tzinfo is None or (cmd.until is not None and cmd.until.tzinfo is None):
            raise InvalidInput(t("give times with a time zone"), field="since")

        def unit() -> c.Replayed:
            now = self._now()
            self._endpoint(ctx, cmd.endpoint_id)
            until = cmd.until or now
            if until < cmd.since:
                raise InvalidInput(t("`until` comes after `since`"), field="until")
            sources = self.read(
                lambda conn: views.replay_sources(
                    conn, tenant_id, cmd.endpoint_id, cmd.since, until, cmd.all, c.MAX_REPLAY
                )
            )
            ids = self._queue_again(sources, now)
            return c.Replayed(queued=len(ids), deliveries=ids)

        replayed = await self.unit(unit)
        if self._wake is not None:
            self._wake()
        return replayed

    # -- queries --------------------------------------------------------------------------

    @handles(c.GetEndpoint)
    async def get_endpoint(self, q: c.GetEndpoint, ctx: RequestContext) -> c.Endpoint:
        await self._admin(ctx)
        return await self.unit(lambda: self._endpoint(ctx, q.endpoint_id))

    @handles(c.ListEndpoints)
    async def list_endpoints(self, q: c.ListEndpoints, ctx: RequestContext) -> c.EndpointPage:
        await self._admin(ctx)
        check_page(q.limit, q.offset, t("endpoints"))
        tenant_id = ctx.require_tenant()
        items, total = await self.unit(
            lambda: self.read(lambda conn: views.list_endpoints(conn, tenant_id, q.offset, q.limit))
        )
        return c.EndpointPage(items=items, total=total)

    @handles(c.ListDeliveries)
    async def list_deliveries(self, q: c.ListDeliveries, ctx: RequestContext) -> c.DeliveryPage:
        await self._admin(ctx)
        check_page(q.limit, q.offset, t("deliveries"))
        tenant_id = ctx.require_tenant()

        def unit() -> c.DeliveryPage:
            self._endpoint(ctx, q.endpoint_id)
            items, total = self.read(
                lambda conn: views.list_deliveries(
                    conn, tenant_id, q.endpoint_id, q.status, q.offset, q.limit
                )
            )
            return c.DeliveryPage(items=items, total=total)

        return await self.unit(unit)

    @handles(c.GetDelivery)
    async def get_delivery(self, q: c.GetDelivery, ctx: RequestContext) -> c.Delivery:
        await self._admin(ctx)
        tenant_id = ctx.require_tenant()

        def unit() -> c.Delivery:
            row = self.read(lambda conn: views.get_delivery(conn, tenant_id, q.delivery_id))
            if row is None:
                raise NotFound(t("delivery not found"))
            return views.delivery_reply(row)

        return await self.unit(unit)

    @handles(c.ListAttempts)
    async def list_attempts(self, q: c.ListAttempts, ctx: RequestContext) -> list[c.Attempt]:
        await self._admin(ctx)
        tenant_id = ctx.require_tenant()

        def unit() -> list[c.Attempt]:
            if self.read(lambda conn: views.get_delivery(conn, tenant_id, q.delivery_id)) is None:
                raise NotFound(t("delivery not found"))
            return self.read(lambda conn: views.list_attempts(conn, tenant_id, q.delivery_id))

        return await self.unit(unit)
