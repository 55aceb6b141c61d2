"""Referrals' read queries for the exports service (docs/exports.md): the
network's one-to-ones and needs, which the member-facing queries answer per
member only. Tenant admins only (identity's roles as referrals' directory
knows them now); paged with the runtime's page limit; oldest first, so that
pages stay stable while new rows come."""

from __future__ import annotations

import sqlalchemy as sa

from services.referrals import contract as c
from services.referrals.views import directory, ledger
from services.runtime.errors import Forbidden
from services.runtime.handlers import Handlers, handles
from services.runtime.i18n import t
from services.runtime.tenancy import RequestContext, scoped
from services.runtime.views import check_page


class ExportQueries(Handlers):
    def _tenant_admin(self, ctx: RequestContext) -> str:
        member_id = ctx.require_member()
        tenant_id = ctx.require_tenant()
        if not self.read(lambda conn: directory.is_tenant_admin(conn, tenant_id, member_id)):
            raise Forbidden(t("only tenant admins see all the network's records"))
        return tenant_id

    @handles(c.ListNetworkOneToOnes)
    def one_to_ones(self, q: c.ListNetworkOneToOnes, ctx: RequestContext) -> c.OneToOnePage:
        tenant_id = self._tenant_admin(ctx)
        check_page(q.limit, q.offset, t("one-to-ones"))
        o = ledger.one_to_ones

        def query(conn: sa.Connection) -> c.OneToOnePage:
            rows, total = ledger.page(
                conn, scoped(o, tenant_id), (o.c.logged_at, o.c.one_to_one_id), q.offset, q.limit
            )
            return c.OneToOnePage(items=[ledger.to_one_to_one(r) for r in rows], total=total)

        return self.read(query)

    @handles(c.ListNetworkNeeds)
    def needs(self, q: c.ListNetworkNeeds, ctx: RequestContext) -> c.NeedPage:
        tenant_id = self._tenant_admin(ctx)
        check_page(q.limit, q.offset, t("needs"))
        n = ledger.needs

        def query(conn: sa.Connection) -> c.NeedPage:
            rows, total = ledger.page(
                conn, scoped(n, tenant_id), (n.c.posted_at, n.c.need_id), q.offset, q.limit
            )
            return c.NeedPage(items=[ledger.to_need(r) for r in rows], total=total)

        return self.read(query)
