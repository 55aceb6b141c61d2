"""Referrals' part of a member's erasure (docs/erasure.md): on identity's
`MemberErased`, the member's key is destroyed (their slips' and thanks'
texts, their needs, their answers and reasons), and so are the keys of the
prospects of the slips they gave; the ledger's copies are blanked. Slips,
values, statuses and counts stay: other members' ledgers do not change."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from services.identity import contract as idc
from services.referrals.application import Referrals
from services.referrals.domain.ledger import prospect_subject
from services.referrals.views.ledger import needs, slips, thanks
from services.runtime.erasure import erasure_reaction
from services.runtime.host import ServiceHost
from services.runtime.reactions import Reaction
from services.runtime.tenancy import scoped


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
