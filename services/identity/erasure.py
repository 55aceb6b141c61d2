"""Erasure of a member's personal data (docs/erasure.md).

A member asks for themselves, or a tenant admin on their behalf
(`RequestErasure`). Identity then, in one unit of work:

1. records the request (`Erasure`, one per member: asking again answers the
   same erasure and changes nothing more);
2. withdraws the invitations still pending to the member's address, takes
   back their tenant admin role (the network's only admin is refused
   before anything is recorded: another admin is named first), ends their
   sessions, and deletes the mail-drop files addressed to them or naming
   them;
3. destroys the member's keys (their account and card, and their address:
   `services/runtime/personal.py`), so that their e-mail, password hash and
   card read as erased in every event and snapshot;
4. completes the erasure: the read models drop the member's details (the
   directory row reads as a former member, named in the network's locale
   when read: `former_member`) and the relay publishes the
   non-personal `MemberErased`, on which every other service holding
   personal data destroys its own keys of the member and scrubs its views.

The account cannot sign in any more (the password hash is gone); its id
and everything other members did with it stay.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from eventsourcing.domain import Aggregate

from services.identity import contract as c
from services.identity import views
from services.identity.application import Identity
from services.identity.domain import Invitation, Member, RefreshFamily
from services.identity.erasure_domain import COMPLETED, REQUESTED, Erasure, address_subject
from services.runtime.erasure import clear_replies
from services.runtime.errors import Forbidden, RuleViolation
from services.runtime.handlers import Handlers, handles
from services.runtime.host import ServiceHost
from services.runtime.i18n import t
from services.runtime.logging import get_logger
from services.runtime.personal import checkpoint, clear_mail_drop
from services.runtime.tenancy import RequestContext, scoped
from services.runtime.views import UTCDateTime, check_page

log = get_logger("quartier.identity.erasure")

# -- read model ------------------------------------------------------------------

metadata = sa.MetaData()

erasures = sa.Table(
    "erasures",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("erasure_id", sa.String(36), primary_key=True),
    sa.Column("member_id", sa.String(36), nullable=False),
    sa.Column("requested_by", sa.String(36), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("requested_at", UTCDateTime, nullable=False),
    sa.Column("completed_at", UTCDateTime),
    sa.Index("ix_erasures_requested", "tenant_id", "requested_at"),
)


class ErasureViews:
    """The erasures, for admins. (Identity's other read models drop the
    member's details on `Erasure.Completed` themselves: `views.scrub_member`.)"""

    name = "identity-erasures"
    metadata = metadata

    def apply(self, conn: sa.Connection, event: Any) -> None:
        match event:
            case Erasure.Requested():
                conn.execute(
                    erasures.insert().values(
                        tenant_id=event.tenant_id,
                        erasure_id=str(event.originator_id),
                        member_id=event.member_id,
                        requested_by=event.requested_by,
                        status=REQUESTED,
                        requested_at=event.at,
                    )
                )
            case Erasure.Completed():
                conn.execute(
                    erasures.update()
                    .where(erasures.c.tenant_id == event.tenant_id)
                    .where(erasures.c.erasure_id == str(event.originator_id))
                    .values(status=COMPLETED, completed_at=event.at)
                )


def invitations_to(conn: sa.Connection, tenant_id: str, email: str) -> list[str]:
    i = views.invitations
    rows = conn.execute(
        sa.select(i.c.invitation_id).where(
            i.c.tenant_id == tenant_id, sa.func.lower(i.c.email) == email.lower()
        )
    )
    return [r.invitation_id for r in rows]


def list_erasures(
    conn: sa.Connection, tenant_id: str, offset: int, limit: int, erasure_id: str | None = None
) -> c.ErasurePage:
    query = scoped(erasures, tenant_id)
    if erasure_id is not None:
        query = query.where(erasures.c.erasure_id == erasure_id)
    total = conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
    rows = conn.execute(
        query.order_by(erasures.c.requested_at.desc(), erasures.c.erasure_id)
        .offset(offset)
        .limit(limit)
    )
    return c.ErasurePage(items=[_info(r) for r in rows], total=total)


def _info(row: Any) -> c.ErasureInfo:
    return c.ErasureInfo(
        erasure_id=row.erasure_id,
        member_id=row.member_id,
        status=COMPLETED if row.status == COMPLETED else REQUESTED,
        requested_at=row.requested_at,
        completed_at=row.completed_at,
    )


def _info_of(erasure: Erasure) -> c.ErasureInfo:
    return c.ErasureInfo(
        erasure_id=str(erasure.id),
        member_id=erasure.member_id,
        status=COMPLETED if erasure.status == COMPLETED else REQUESTED,
        requested_at=erasure.requested_at,
        completed_at=erasure.completed_at,
    )


# -- the commands ------------------------------------------------------------------


def request_erasure(
    app: Identity, tenant_id: str, member_id: str, by: str, now: datetime
) -> Erasure:
    """The member's erasure, recorded once (asked again: the same one)."""
    member = app.get(tenant_id, member_id, Member)
    erasure_id = Erasure.create_id(tenant_id, member_id)

    def unit() -> tuple[list[Aggregate], Erasure]:
        found = app.find(erasure_id, Erasure)
        if found is not None:
            return [], found
        subjects = [member_id]
        if member.email:
            subjects.append(address_subject(tenant_id, member.email))
        erasure = Erasure(
            tenant_id=tenant_id, member_id=member_id, requested_by=by, subjects=subjects, at=now
        )
        return [erasure], erasure

    return app.transact(unit, key=str(erasure_id))


class ErasureHandlers(Handlers):
    def __init__(self, host: ServiceHost, app: Identity):
        super().__init__(host)
        self.app = app

    def _require_self_or_admin(self, ctx: RequestContext, member_id: str) -> str:
        """The member themselves, or a tenant admin by identity's current state."""
        tenant_id = ctx.require_tenant()
        actor = ctx.require_member()
        if actor != member_id and not self.app.is_tenant_admin(tenant_id, actor):
            raise Forbidden(t("only the member themselves or a tenant admin may ask for this"))
        return actor

    @handles(c.RequestErasure)
    def request_erasure(self, cmd: c.RequestErasure, ctx: RequestContext) -> c.ErasureInfo:
        tenant_id = ctx.require_tenant()
        by = self._require_self_or_admin(ctx, cmd.member_id)
        if self._admins(tenant_id) == [cmd.member_id]:
            raise RuleViolation(
                t("a network keeps at least one tenant admin: make another member admin first"),
                rule="last_tenant_admin",
            )
        erasure = self.write(
            lambda: request_erasure(self.app, tenant_id, cmd.member_id, by, self.clock.now())
        )
        if erasure.status != COMPLETED:
            erasure = self._carry_out(erasure)
        return _info_of(erasure)

    def _admins(self, tenant_id: str) -> list[str]:
        """The network's tenant admins: as the network records them, or (a
        network registered before it kept them) as the directory says."""
        recorded = self.app.tenant(tenant_id).admin_ids
        if recorded is not None:
            return sorted(recorded)

        def admins(conn: sa.Connection) -> list[str]:
            m = views.members
            rows = conn.execute(
                sa.select(m.c.member_id, m.c.roles).where(m.c.tenant_id == tenant_id)
            )
            return sorted(r.member_id for r in rows if "tenant_admin" in (r.roles or ()))

        return self.read(admins)

    def _carry_out(self, erasure: Erasure) -> Erasure:
        """Steps 2-4 (module doc). Each is safe to run again: a request that
        failed half-way is finished by asking again."""
        tenant_id, member_id = erasure.tenant_id, erasure.member_id
        member = self.app.get(tenant_id, member_id, Member)
        email = member.email
        name = member.card_data.get("display_name") or ""
        invitation_ids = (
            self.read(lambda conn: invitations_to(conn, tenant_id, email)) if email else []
        )
        if member.invitation_id is not None:
            invitation_ids.append(str(member.invitation_id))
        for invitation_id in dict.fromkeys(invitation_ids):
            invitation = self.app.find(invitation_id, Invitation)
            if invitation is not None and invitation.status == "pending":
                self.app.update(tenant_id, invitation_id, Invitation, Invitation.revoke)
        if "tenant_admin" in member.roles:
            # an erased admin cannot act any more: the role goes (the last
            # admin was refused above), so the network's admins can act
            self.write(
                lambda: self.app.set_tenant_admin(
                    tenant_id, member_id, False, lambda: self._admins(tenant_id)
                )
            )
        for session_id in self.read(
            lambda conn: views.active_session_ids(conn, tenant_id, member_id)
        ):
            family = self.app.find(session_id, RefreshFamily)
            if family is not None and family.revoke(reason="erased"):
                self.app.save(family)
        words = [email, name, *_card_texts(member.card_data)]
        cleared = clear_mail_drop(self.settings.mail_dir, words)
        clear_replies(self.engine, words)
        destroyed = self.app.forget(tenant_id, erasure.subjects)
        log.info(
            "erasure.keys_destroyed",
            erasure_id=str(erasure.id),
            keys=destroyed,
            mails_deleted=cleared,
        )

        def complete() -> tuple[list[Aggregate], Erasure]:
            current = self.app.get(tenant_id, erasure.id, Erasure)
            changed = current.complete(sorted(set(invitation_ids)), self.clock.now())
            return ([current] if changed else []), current

        done = self.write(lambda: self.app.transact(complete, key=str(erasure.id)))
        checkpoint(self.engine)
        return done

    @handles(c.ListErasures)
    def list_erasures(self, q: c.ListErasures, ctx: RequestContext) -> c.ErasurePage:
        tenant_id = ctx.require_tenant()
        member_id = ctx.require_member()
        if not self.app.is_tenant_admin(tenant_id, member_id):
            raise Forbidden(t("only a tenant admin may do this"))
        check_page(q.limit, q.offset, t("erasures"))
        return self.read(
            lambda conn: list_erasures(conn, tenant_id, q.offset, q.limit, q.erasure_id)
        )


def _card_texts(card: dict[str, Any]) -> list[str]:
    texts = [v for v in card.values() if isinstance(v, str)]
    texts += [v for v in card.get("links") or () if isinstance(v, str)]
    return texts
