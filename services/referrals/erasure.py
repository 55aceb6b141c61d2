"""Referrals' part of a member's erasure (docs/erasure.md): on identity's
`MemberErased`, the member's key is destroyed (their slips' and thanks'
texts, their needs, their answers and reasons), and so are the keys of the
prospects of the slips they gave; the ledger's copies are blanked. Slips,
values, statuses and counts stay: other members' ledgers do not change.
The member is no longer an active member of the network here
(`directory.member_erased`, also done in order by the members reaction):
nothing more can be given to them, and the engagement reports leave them
out of a hub's core and drifting members."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from services.identity import contract as idc
from services.referrals import contract as c
from services.referrals.application import Referrals
from services.referrals.domain.ledger import prospect_subject
from services.referrals.views import directory
from services.referrals.views.ledger import needs, slips, thanks
from services.runtime.erasure import clear_replies, erasure_reaction
from services.runtime.errors import Forbidden, NotFound
from services.runtime.handlers import Handlers, handles
from services.runtime.host import ServiceHost
from services.runtime.i18n import t
from services.runtime.messages import Done
from services.runtime.personal import checkpoint, clear_mail_drop
from services.runtime.reactions import Reaction
from services.runtime.tenancy import RequestContext, scoped


def _given(conn: sa.Connection, tenant_id: str, member_id: str) -> list[Any]:
    return list(conn.execute(scoped(slips, tenant_id).where(slips.c.giver_id == member_id)))


def subjects(conn: sa.Connection, tenant_id: str, member_id: str) -> list[str]:
    return [prospect_subject(r.referral_id) for r in _given(conn, tenant_id, member_id)]


def needles(conn: sa.Connection, tenant_id: str, member_id: str) -> list[str]:
    """The prospects' details and the member's texts, as mails and kept
    replies would quote them."""
    found: list[str] = []
    for row in _given(conn, tenant_id, member_id):
        found += [v for v in (row.prospect or {}).values() if isinstance(v, str)]
        found.append(row.about)
    for row in conn.execute(scoped(needs, tenant_id).where(needs.c.poster_id == member_id)):
        found += [row.words, row.description]
    for row in conn.execute(scoped(thanks, tenant_id).where(_thanks_by(member_id))):
        found.append(row.about)
    for row in conn.execute(scoped(slips, tenant_id)):
        found += [h.get("reason") or "" for h in row.history if h.get("by") == member_id]
    for row in conn.execute(scoped(needs, tenant_id)):
        found += [a.get("message") or "" for a in row.answers if a.get("member_id") == member_id]
    return found


def _thanks_by(member_id: str) -> sa.ColumnElement[bool]:
    """Thanks whose text the member wrote (`thanks_author`)."""
    return sa.or_(
        sa.and_(thanks.c.referral_id.is_(None), thanks.c.receiver_id == member_id),
        sa.and_(thanks.c.referral_id.is_not(None), thanks.c.giver_id == member_id),
    )


def scrub(conn: sa.Connection, tenant_id: str, member_id: str) -> None:
    directory.member_erased(conn, tenant_id, member_id)
    conn.execute(
        slips.update()
        .where(slips.c.tenant_id == tenant_id, slips.c.giver_id == member_id)
        .values(about="", prospect=None)
    )
    conn.execute(
        thanks.update()
        .where(thanks.c.tenant_id == tenant_id, _thanks_by(member_id))
        .values(about="")
    )
    conn.execute(
        needs.update()
        .where(needs.c.tenant_id == tenant_id, needs.c.poster_id == member_id)
        .values(words="", description="")
    )
    # their reasons in any slip's history, their answers to any need
    for row in conn.execute(scoped(slips, tenant_id)).fetchall():
        history = [
            {**h, "reason": ""} if h.get("by") == member_id and h.get("reason") else h
            for h in row.history
        ]
        if history != row.history:
            conn.execute(
                slips.update()
                .where(slips.c.tenant_id == tenant_id, slips.c.referral_id == row.referral_id)
                .values(history=history)
            )
    for row in conn.execute(scoped(needs, tenant_id)).fetchall():
        answers = [
            {**a, "message": ""} if a.get("member_id") == member_id else a for a in row.answers
        ]
        if answers != row.answers:
            conn.execute(
                needs.update()
                .where(needs.c.tenant_id == tenant_id, needs.c.need_id == row.need_id)
                .values(answers=answers)
            )


def reaction(host: ServiceHost, app: Referrals) -> Reaction:
    return erasure_reaction(
        host, app, idc.MemberErased, subjects=subjects, needles=needles, scrub=scrub
    )


class ProspectErasure(Handlers):
    """`EraseProspect`: one slip's outside prospect alone (the prospect's
    own request, passed on by the giver or an admin)."""

    def __init__(self, host: ServiceHost, app: Referrals):
        super().__init__(host)
        self.app = app

    def _is_admin(self, ctx: RequestContext, hub_id: str | None) -> bool:
        """A tenant admin, or a co-admin of `hub_id` (current state), as the
        other referrals handlers decide."""
        tenant_id, member_id = ctx.require_tenant(), ctx.actor.member_id or ""

        def query(conn: sa.Connection) -> bool:
            if directory.is_tenant_admin(conn, tenant_id, member_id):
                return True
            hub = directory.hub_row(conn, tenant_id, hub_id) if hub_id else None
            return hub is not None and member_id in hub.co_admins

        return self.read(query)

    @handles(c.EraseProspect)
    def erase_prospect(self, cmd: c.EraseProspect, ctx: RequestContext) -> Done:
        tenant_id = ctx.require_tenant()
        ctx.require_member()
        row = self.read(
            lambda conn: conn.execute(
                scoped(slips, tenant_id).where(slips.c.referral_id == cmd.referral_id)
            ).first()
        )
        if row is None:
            raise NotFound(t("referral not found"))
        if ctx.actor.member_id != row.giver_id and not self._is_admin(ctx, row.hub_id):
            raise Forbidden(t("only the slip's giver or an admin may do this"))
        words = [v for v in (row.prospect or {}).values() if isinstance(v, str)]
        clear_mail_drop(self.settings.mail_dir, words)
        clear_replies(self.engine, words)
        self.app.forget(tenant_id, [prospect_subject(row.referral_id)])
        with self.engine.connect().execution_options(write_lock=True) as conn, conn.begin():
            conn.execute(
                slips.update()
                .where(slips.c.tenant_id == tenant_id, slips.c.referral_id == row.referral_id)
                .values(prospect=None)
            )
        checkpoint(self.engine)
        return Done()
