"""Hubs' part of a member's erasure (docs/erasure.md): on identity's
`MemberErased`, the member's key is destroyed (the notes they wrote as a
sponsor, the reasons of their objections) and the read models' copies are
blanked, with the notes written about them as a candidate. Memberships,
roles, rules and counts stay."""

from __future__ import annotations

import sqlalchemy as sa

from services.hubs.application import Hubs
from services.hubs.views.nominations import nominations, objections
from services.identity import contract as idc
from services.runtime.erasure import erasure_reaction
from services.runtime.host import ServiceHost
from services.runtime.reactions import Reaction


def _none(conn: sa.Connection, tenant_id: str, member_id: str) -> list[str]:
    return []


def needles(conn: sa.Connection, tenant_id: str, member_id: str) -> list[str]:
    n = nominations
    rows = conn.execute(
        sa.select(n.c.note).where(n.c.tenant_id == tenant_id, n.c.sponsor_id == member_id)
    )
    found = [r.note for r in rows]
    rows = conn.execute(
        sa.select(objections.c.reason).where(
            objections.c.tenant_id == tenant_id, objections.c.objector_id == member_id
        )
    )
    return found + [r.reason for r in rows]


def scrub(conn: sa.Connection, tenant_id: str, member_id: str) -> None:
    n = nominations
    conn.execute(
        n.update()
        .where(
            n.c.tenant_id == tenant_id,
            sa.or_(n.c.sponsor_id == member_id, n.c.candidate_id == member_id),
        )
        .values(note="")
    )
    conn.execute(
        objections.update()
        .where(objections.c.tenant_id == tenant_id, objections.c.objector_id == member_id)
        .values(reason="")
    )


def reaction(host: ServiceHost, app: Hubs) -> Reaction:
    return erasure_reaction(
        host, app, idc.MemberErased, subjects=_none, needles=needles, scrub=scrub
    )
