"""Identity's endpoints for tenant API keys (services/identity/apikeys.py,
docs/api-keys.md): tenant admins create, list and revoke keys; the gateway
verifies a key presented as a Bearer credential."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from services.identity import apikeys as k
from services.identity import contract as c
from services.identity import throttle as t
from services.identity import views
from services.identity.application import Identity
from services.identity.throttle import Throttle
from services.runtime.errors import Forbidden, RateLimited, RuleViolation, Unauthenticated
from services.runtime.handlers import Handlers, handles
from services.runtime.host import ServiceHost
from services.runtime.logging import get_logger
from services.runtime.tenancy import RequestContext
from services.runtime.views import check_page

log = get_logger("quartier.identity.api_keys")


class ApiKeyHandlers(Handlers):
    def __init__(self, host: ServiceHost, app: Identity, throttle: Throttle):
        super().__init__(host)
        self.app = app
        self.throttle = throttle

    def _require_admin_now(self, ctx: RequestContext) -> str:
        """A tenant admin as identity's own aggregate says now (not a token)."""
        member_id = ctx.require_tenant_admin()
        if not self.app.is_tenant_admin(ctx.require_tenant(), member_id):
            raise Forbidden("only a tenant admin may do this")
        return member_id

    @handles(c.CreateApiKey)
    def create_api_key(self, cmd: c.CreateApiKey, ctx: RequestContext) -> c.ApiKeyIssued:
        by = self._require_admin_now(ctx)
        tenant_id, now = ctx.require_tenant(), self.clock.now()
        key, secret = k.new_key(tenant_id, cmd.name, cmd.scopes, cmd.expires_at, by, now)
        if self.read(lambda conn: k.live_count(conn, tenant_id)) >= k.MAX_LIVE_KEYS:
            raise RuleViolation(
                f"a network has at most {k.MAX_LIVE_KEYS} API keys: revoke one first",
                rule="api_key_limit",
            )
        self.write(lambda: self.app.save(key))
        log.info("api_key.created", key_id=str(key.id), scopes=key.scopes)
        info = self.read(lambda conn: k.key_info(conn, tenant_id, str(key.id)))
        assert info is not None  # projected by `write`
        return c.ApiKeyIssued(key=info, secret=secret)

    @handles(c.RevokeApiKey)
    def revoke_api_key(self, cmd: c.RevokeApiKey, ctx: RequestContext) -> c.ApiKeyInfo:
        by = self._require_admin_now(ctx)
        tenant_id, now = ctx.require_tenant(), self.clock.now()
        self.write(
            lambda: self.app.update(tenant_id, cmd.key_id, k.ApiKey, lambda a: a.revoke(by, now))
        )
        log.info("api_key.revoked", key_id=cmd.key_id)
        info = self.read(lambda conn: k.key_info(conn, tenant_id, cmd.key_id))
        assert info is not None
        return info

    @handles(c.ListApiKeys)
    def list_api_keys(self, q: c.ListApiKeys, ctx: RequestContext) -> c.ApiKeyPage:
        ctx.require_tenant_admin()
        check_page(q.limit, q.offset, "API keys")
        tenant_id = ctx.require_tenant()
        return self.read(lambda conn: k.list_keys(conn, tenant_id, q.offset, q.limit))

    @handles(c.VerifyApiKey)
    def verify_api_key(self, q: c.VerifyApiKey, ctx: RequestContext) -> c.ApiKeyGrant:
        """Who the key is now. An address that presented too many bad keys
        waits (RateLimited) before anything is checked; a good key costs
        reads and, at most once a minute, the write of its last use."""
        now = self.clock.now()
        keys = (
            [(t.API_KEY_ADDRESS, t.key(t.API_KEY_ADDRESS, q.client_address))]
            if q.client_address
            else []
        )
        wait = self.throttle.waiting(keys, now)
        if wait:
            raise RateLimited(
                f"too many invalid API keys: try again in {wait} second{'s' if wait != 1 else ''}",
                retry_after=wait,
            )

        def look(conn: sa.Connection) -> tuple[Any, c.Tenant | None]:
            row = k.key_row(conn, str(key_id))
            return row, views.tenant_by_id(conn, row.tenant_id) if row is not None else None

        try:
            key_id, secret = k.split_key(q.key)
            row, tenant = self.read(look)
            k.check(row, secret, now)
            if tenant is None:
                raise Unauthenticated("this API key is not valid")
        except Unauthenticated:
            if keys:
                self.throttle.attempt(keys, now, "API key")
            raise
        try:
            with self.engine.begin() as conn:
                k.record_use(conn, row.key_id, now)
        except sa.exc.IntegrityError:  # a concurrent first use recorded it
            pass
        return c.ApiKeyGrant(
            key_id=row.key_id,
            tenant_id=row.tenant_id,
            tenant_slug=tenant.slug,
            scopes=list(row.scopes or ()),
            expires_at=k.as_utc(row.expires_at),
        )
