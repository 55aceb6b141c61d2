"""Identity's endpoints for tenant API keys (services/identity/apikeys.py,
docs/api-keys.md): tenant admins create, list and revoke keys; the gateway
verifies a key presented as a Bearer credential."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from services.identity import apikeys as k
from services.identity import contract as c
from services.identity import throttle as th
from services.identity import views
from services.identity.application import Identity
from services.identity.throttle import Throttle
from services.runtime.errors import Forbidden, RateLimited, RuleViolation, Unauthenticated
from services.runtime.handlers import Handlers, handles
from services.runtime.host import ServiceHost
from services.runtime.i18n import t
from services.runtime.logging import get_logger
from services.runtime.tenancy import RequestContext
from services.runtime.views import check_page

log = get_logger("quartier.identity.api_keys")

# Failures against one key id (a wrong secret for a real key), from any
# address: a distributed guesser of that key. Like the address's policy, it
# only slows failures down: the right secret always works, so an attacker
# who knows a key's id (it is in the ApiKeyCreated event) cannot lock its
# consumer out.
API_KEY_ID = th.Policy("api-key-id", free=20, base=1, cap=900, forget=3600)


class ApiKeyHandlers(Handlers):
    def __init__(self, host: ServiceHost, app: Identity, throttle: Throttle):
        super().__init__(host)
        self.app = app
        self.throttle = throttle

    def _require_admin_now(self, ctx: RequestContext) -> str:
        """A tenant admin as identity's own aggregate says now (not a token)."""
        member_id = ctx.require_tenant_admin()
        if not self.app.is_tenant_admin(ctx.require_tenant(), member_id):
            raise Forbidden(t("only a tenant admin may do this"))
        return member_id

    @handles(c.CreateApiKey)
    def create_api_key(self, cmd: c.CreateApiKey, ctx: RequestContext) -> c.ApiKeyIssued:
        by = self._require_admin_now(ctx)
        tenant_id, now = ctx.require_tenant(), self.clock.now()
        key, secret = k.new_key(tenant_id, cmd.name, cmd.scopes, cmd.expires_at, by, now)
        if self.read(lambda conn: k.live_count(conn, tenant_id)) >= k.MAX_LIVE_KEYS:
            raise RuleViolation(
                t(
                    "a network has at most {limit} API keys: revoke one first",
                    limit=k.MAX_LIVE_KEYS,
                ),
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
        check_page(q.limit, q.offset, t("API keys"))
        tenant_id = ctx.require_tenant()
        return self.read(lambda conn: k.list_keys(conn, tenant_id, q.offset, q.limit))

    @handles(c.VerifyApiKey)
    def verify_api_key(self, q: c.VerifyApiKey, ctx: RequestContext) -> c.ApiKeyGrant:
        """Who the key is now. A good key always works, whatever others sent
        before it: only failures are throttled, per client address and per
        key id (docs/api-keys.md). While one of them waits, a failing key is
        refused (RateLimited) without a write and a malformed one without
        reading the key. A revoked or expired key presented with its right
        secret is no guess: it is answered why (Unauthenticated), uncounted.
        A good key costs reads and, at most once a minute, the write of its
        last use."""
        now = self.clock.now()
        try:
            key_id, secret = k.split_key(q.key)
        except Unauthenticated:
            key_id, secret = None, ""
        watched = self._throttled(q.client_address, key_id)
        wait = self.throttle.waiting(watched, now)
        if key_id is None:
            self._failed(watched, wait, now, found=False)
            raise Unauthenticated(t("this API key is not valid"))

        def look(conn: sa.Connection) -> tuple[Any, c.Tenant | None]:
            row = k.key_row(conn, str(key_id))
            return row, views.tenant_by_id(conn, row.tenant_id) if row is not None else None

        row, tenant = self.read(look)
        try:
            k.check(row, secret, now)
            if tenant is None:
                raise Unauthenticated(t("this API key is not valid"))
        except Unauthenticated:
            if k.authentic(row, secret):  # revoked or expired: no guess, its holder is told why
                raise
            self._failed(watched, wait, now, found=row is not None)
            raise
        try:
            with th.writing(self.engine) as conn:
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

    @staticmethod
    def _throttled(address: str | None, key_id: UUID | None) -> list[tuple[th.Policy, str]]:
        """The throttle's keys a failure counts on: the client's address,
        and the key id it named (when it named one)."""
        watched = [(th.API_KEY_ADDRESS, th.key(th.API_KEY_ADDRESS, address))] if address else []
        if key_id is not None:
            watched.append((API_KEY_ID, th.key(API_KEY_ID, key_id.hex)))
        return watched

    def _failed(
        self, watched: list[tuple[th.Policy, str]], wait: int, now: datetime, found: bool
    ) -> None:
        """A failed key: RateLimited while its address or key id waits
        (counting nothing: a flood costs no write, and retrying early does
        not lengthen the wait); else the failure is counted (on the key id
        only if such a key exists: random ids would only fill the table)."""
        if wait:
            raise RateLimited(
                t("too many invalid API keys: try again in 1 second")
                if wait == 1
                else t("too many invalid API keys: try again in {seconds} seconds", seconds=wait),
                retry_after=wait,
            )
        counted = [(p, h) for p, h in watched if found or p is not API_KEY_ID]
        if counted:
            self.throttle.attempt(counted, now, "API key")
