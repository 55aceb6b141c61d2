"""Hubs' part of a member's erasure (docs/erasure.md): on identity's
`MemberErased`, the member's key is destroyed (the notes they wrote as a
sponsor, the reasons of their objections, and what was written about them:
why they were admitted past the one-per-profession rule, refused or
removed) and the read models' copies are blanked, with the notes written
about them as a candidate; their activity
code is dropped from the local directory (they no longer hold their
profession's seat under the one-per-profession rule). What they held that
other members depend on is handed on, in every hub of the network
(`Hub.hand_on_erased`): roster places, the facilitator role (to the next
volunteer, or none), co-admin seats. Memberships, rules and counts stay."""

from __future__ import annotations

import sqlalchemy as sa

from services.hubs.application import Hubs
from services.hubs.domain import Hub
from services.hubs.views import directory
from services.hubs.views.hubs import hub_members, hubs
from services.hubs.views.nominations import nominations, objections
from services.identity import contract as idc
from services.runtime.erasure import erasure_reaction
from services.runtime.host import ServiceHost
from services.runtime.logging import get_logger
from services.runtime.projection import Projector
from services.runtime.reactions import Reaction
from services.runtime.tenancy import scoped

log = get_logger("quartier.hubs.erasure")


def _none(conn: sa.Connection, tenant_id: str, member_id: str) -> list[str]:
    return []


def needles(conn: sa.Connection, tenant_id: str, member_id: str) -> list[str]:
    n = nominations
    rows = conn.execute(
        sa.select(n.c.note).where(n.c.tenant_id == tenant_id, n.c.sponsor_id == member_id)
    )
    found = [r.note for r in rows]
    # what was written about them as a candidate, and why they were admitted
    rows = conn.execute(
        sa.select(n.c.note, n.c.exception_reason, n.c.decision_reason).where(
            n.c.tenant_id == tenant_id, n.c.candidate_id == member_id
        )
    )
    found += [t for r in rows for t in (r.note, r.exception_reason, r.decision_reason) if t]
    rows = conn.execute(
        sa.select(hub_members.c.exception_reason).where(
            hub_members.c.tenant_id == tenant_id, hub_members.c.member_id == member_id
        )
    )
    found += [r.exception_reason for r in rows if r.exception_reason]
    rows = conn.execute(
        sa.select(objections.c.reason).where(
            objections.c.tenant_id == tenant_id, objections.c.objector_id == member_id
        )
    )
    return found + [r.reason for r in rows]


def scrub(conn: sa.Connection, tenant_id: str, member_id: str) -> None:
    n = nominations
    # why they were admitted past the one-per-profession rule, or refused
    conn.execute(
        n.update()
        .where(n.c.tenant_id == tenant_id, n.c.candidate_id == member_id)
        .values(
            exception_reason=sa.case((n.c.exception_reason.is_(None), None), else_=""),
            decision_reason=sa.case((n.c.decision_reason.is_(None), None), else_=""),
        )
    )
    m = hub_members
    conn.execute(
        m.update()
        .where(
            m.c.tenant_id == tenant_id,
            m.c.member_id == member_id,
            m.c.exception_reason.is_not(None),
        )
        .values(exception_reason="")
    )
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
    directory.record_activity(conn, tenant_id, member_id, None)


def reaction(host: ServiceHost, app: Hubs, projector: Projector) -> Reaction:
    def release(tenant_id: str, member_id: str) -> None:
        with host.engine.connect() as conn:
            hub_ids = [r.hub_id for r in conn.execute(scoped(hubs, tenant_id))]
        changed = 0
        for hub_id in hub_ids:
            _, done = app.update(
                tenant_id, hub_id, Hub, lambda hub: hub.hand_on_erased(member_id, host.clock.now())
            )
            changed += done
        if changed:
            projector.after_write()  # the scheduler reads the new terms' ends
        log.info("erasure.handed_on", hubs=changed, member_id=member_id)

    return erasure_reaction(
        host,
        app,
        idc.MemberErased,
        subjects=_none,
        needles=needles,
        scrub=scrub,
        release=release,
    )
