"""Identity's read models: the member directory (search by activity, by words,
near a point), tenants by slug, and invitations for admins. Rows are projected
from identity's own events and hold personal data: they never leave identity
except through the queries in `contract.py`, which decide what each viewer
may see."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from services.identity import contract as c
from services.identity.domain import (
    EmailIndex,
    Invitation,
    Member,
    RefreshFamily,
    Tenant,
    fingerprint,
    fold,
)
from services.identity.erasure_domain import FORMER_MEMBER, Erasure, former_member
from services.identity.taxonomy import BY_CODE
from services.runtime.tenancy import scoped
from services.runtime.views import keyed_upsert

metadata = sa.MetaData()

members = sa.Table(
    "members",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("member_id", sa.String(36), primary_key=True),
    sa.Column("display_name", sa.String(80), nullable=False),
    sa.Column("sort_name", sa.String(80), nullable=False),
    sa.Column("business_name", sa.String(120), nullable=False),
    sa.Column("activity_code", sa.String(40)),
    sa.Column("activity_text", sa.String(200), nullable=False),
    sa.Column("offers", sa.Text, nullable=False),
    sa.Column("seeks", sa.Text, nullable=False),
    sa.Column("available_for", sa.Text, nullable=False),
    sa.Column("bio", sa.Text, nullable=False),
    sa.Column("links", sa.JSON, nullable=False),
    sa.Column("work_lat", sa.Float),
    sa.Column("work_lon", sa.Float),
    sa.Column("work_postcode", sa.String(10)),
    sa.Column("home_lat", sa.Float),
    sa.Column("home_lon", sa.Float),
    sa.Column("home_postcode", sa.String(10)),
    # Where the directory search looks: each point snapped to a grid cell of
    # about 550 x 370 m, so that distances answered to other members cannot be
    # combined into a member's address.
    sa.Column("work_cell_lat", sa.Float),
    sa.Column("work_cell_lon", sa.Float),
    sa.Column("home_cell_lat", sa.Float),
    sa.Column("home_cell_lon", sa.Float),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("search_text", sa.Text, nullable=False),
    sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_members_activity", "tenant_id", "activity_code"),
    sa.Index("ix_members_name", "tenant_id", "sort_name"),
)

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("slug", sa.String(40), nullable=False, unique=True),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# A network's settings, in a table of their own (a network without a row has
# the defaults), so that databases made before a setting existed need no
# migration: the table is created on start, and filled as settings change.
tenant_settings = sa.Table(
    "tenant_settings",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("locale", sa.String(5), nullable=False),
)

invitations = sa.Table(
    "invitations",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("invitation_id", sa.String(36), primary_key=True),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("invited_by", sa.String(36)),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_invitations_created", "tenant_id", "created_at"),
)

# Sign-in sessions (refresh-token families): listed to their owner, checked by
# the gateway on every request (`CurrentSession`), ended with a change of
# password or roles. No token or hash here: ids and times only.
sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("session_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(36), nullable=False),
    sa.Column("member_id", sa.String(36), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("ended_reason", sa.String(40)),
    sa.Index("ix_sessions_member", "tenant_id", "member_id", "ended_at"),
)


# Which password each session was started with, and which the member has now
# (fingerprints, not hashes: `domain.fingerprint`): a session whose password
# is no longer the member's is over (`current_session`), even one started by
# a sign-in that raced the change. Tables of their own, so that databases
# made before them need no migration; a session or member without a row is
# not bound (sessions started before this, members who have not changed
# their password since).
session_credentials = sa.Table(
    "session_credentials",
    metadata,
    sa.Column("session_id", sa.String(36), primary_key=True),
    sa.Column("fingerprint", sa.String(32), nullable=False),
)
member_credentials = sa.Table(
    "member_credentials",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("member_id", sa.String(36), primary_key=True),
    sa.Column("fingerprint", sa.String(32), nullable=False),
)


class IdentityViews:
    name = "identity-views"
    metadata = metadata

    def apply(self, conn: sa.Connection, event: Any) -> None:
        match event:
            case Tenant.Registered():
                conn.execute(
                    tenants.insert().values(
                        tenant_id=event.tenant_id,
                        slug=event.slug,
                        name=event.name,
                        created_at=event.timestamp,
                    )
                )
            case Tenant.LocaleChanged():
                keyed_upsert(
                    conn, tenant_settings, {"tenant_id": event.tenant_id}, locale=event.locale
                )
            case Invitation.Issued():
                conn.execute(
                    invitations.insert().values(
                        tenant_id=event.tenant_id,
                        invitation_id=str(event.originator_id),
                        email=event.email,
                        status="pending",
                        invited_by=event.invited_by,
                        expires_at=event.expires_at,
                        created_at=event.timestamp,
                    )
                )
            case Invitation.Accepted() | Invitation.Revoked():
                status = "accepted" if isinstance(event, Invitation.Accepted) else "revoked"
                conn.execute(
                    invitations.update()
                    .where(invitations.c.tenant_id == event.tenant_id)
                    .where(invitations.c.invitation_id == str(event.originator_id))
                    .values(status=status)
                )
            case Member.Joined():
                conn.execute(
                    members.insert().values(
                        tenant_id=event.tenant_id,
                        member_id=str(event.originator_id),
                        email=event.email,
                        roles=sorted(event.roles),
                        joined_at=event.timestamp,
                        **_card_columns(event.card, event.timestamp),
                    )
                )
            case Member.CardUpdated():
                _update_member(conn, event, **_card_columns(event.card, event.timestamp))
            case Member.RolesChanged():
                _update_member(conn, event, roles=sorted(event.roles), updated_at=event.timestamp)
            case RefreshFamily.Started():
                bound = getattr(event, "password_fingerprint", None)
                if bound:
                    conn.execute(
                        session_credentials.insert().values(
                            session_id=str(event.originator_id), fingerprint=bound
                        )
                    )
                conn.execute(
                    sessions.insert().values(
                        session_id=str(event.originator_id),
                        tenant_id=event.tenant_id,
                        member_id=str(event.member_id),
                        started_at=event.timestamp,
                        last_used_at=event.timestamp,
                        expires_at=event.expires_at,
                    )
                )
            case RefreshFamily.Rebound():
                keyed_upsert(
                    conn,
                    session_credentials,
                    {"session_id": str(event.originator_id)},
                    fingerprint=event.password_fingerprint,
                )
            case RefreshFamily.Rotated():
                conn.execute(
                    sessions.update()
                    .where(sessions.c.session_id == str(event.originator_id))
                    .values(last_used_at=event.timestamp)
                )
            case RefreshFamily.Revoked():
                conn.execute(
                    sessions.update()
                    .where(sessions.c.session_id == str(event.originator_id))
                    .values(ended_at=event.timestamp, ended_reason=event.reason[:40])
                )
            case Member.PasswordChanged():
                if not getattr(event, "rehash", False):
                    keyed_upsert(
                        conn,
                        member_credentials,
                        {"tenant_id": event.tenant_id, "member_id": str(event.originator_id)},
                        fingerprint=fingerprint(event.password_hash),
                    )
            case EmailIndex.Registered():
                pass
            case Erasure.Completed():
                scrub_member(conn, event.tenant_id, event.member_id, list(event.invitation_ids))


def scrub_member(
    conn: sa.Connection, tenant_id: str, member_id: str, invitation_ids: list[str]
) -> None:
    """Identity's read models without the member's details (their row
    stays, as FORMER_MEMBER, with its id, roles and dates: no activity, no
    text, no place, no address)."""
    m = members
    conn.execute(
        m.update()
        .where(m.c.tenant_id == tenant_id, m.c.member_id == member_id)
        .values(
            display_name=FORMER_MEMBER,
            sort_name=FORMER_MEMBER,
            business_name="",
            activity_code=None,
            activity_text="",
            offers="",
            seeks="",
            available_for="",
            bio="",
            links=[],
            work_lat=None,
            work_lon=None,
            work_postcode=None,
            home_lat=None,
            home_lon=None,
            home_postcode=None,
            work_cell_lat=None,
            work_cell_lon=None,
            home_cell_lat=None,
            home_cell_lon=None,
            email="",
            search_text="",
        )
    )
    if invitation_ids:
        i = invitations
        conn.execute(
            i.update()
            .where(i.c.tenant_id == tenant_id, i.c.invitation_id.in_(invitation_ids))
            .values(email="")
        )


# Built once: its compiled form is cached, where a statement built per event
# with .values(...) would be compiled again each time.
_UPDATE_MEMBER = members.update().where(
    members.c.tenant_id == sa.bindparam("key_tenant_id"),
    members.c.member_id == sa.bindparam("key_member_id"),
)


def _update_member(conn: sa.Connection, event: Any, **values: Any) -> None:
    conn.execute(
        _UPDATE_MEMBER,
        {"key_tenant_id": event.tenant_id, "key_member_id": str(event.originator_id), **values},
    )


def _card_columns(card: dict[str, Any], at: datetime) -> dict[str, Any]:
    work = card.get("work") or {}
    home = card.get("home") or {}
    text = " ".join(
        card.get(k) or ""
        for k in ("offers", "seeks", "available_for", "activity_text", "business_name")
    )
    return {
        "display_name": card.get("display_name") or "",
        "sort_name": fold(card.get("display_name") or ""),
        "business_name": card.get("business_name") or "",
        "activity_code": card.get("activity_code"),
        "activity_text": card.get("activity_text") or "",
        "offers": card.get("offers") or "",
        "seeks": card.get("seeks") or "",
        "available_for": card.get("available_for") or "",
        "bio": card.get("bio") or "",
        "links": list(card.get("links") or ()),
        "work_lat": work.get("lat"),
        "work_lon": work.get("lon"),
        "work_postcode": work.get("postcode"),
        "home_lat": home.get("lat"),
        "home_lon": home.get("lon"),
        "home_postcode": home.get("postcode"),
        "work_cell_lat": _cell(work.get("lat")),
        "work_cell_lon": _cell(work.get("lon")),
        "home_cell_lat": _cell(home.get("lat")),
        "home_cell_lon": _cell(home.get("lon")),
        "search_text": fold(text),
        "updated_at": at,
    }


def member_row(member: Member) -> Any:
    """The directory row of a member, from the aggregate itself (what the
    projection writes), for replies that need no read."""
    return SimpleNamespace(
        tenant_id=member.tenant_id,
        member_id=str(member.id),
        email=member.email,
        roles=sorted(member.roles),
        joined_at=member.created_on,
        **_card_columns(member.card_data, member.modified_on),
    )


CELL_DEGREES = 0.005
DISTANCE_STEP_KM = 0.5


def _cell(value: float | None) -> float | None:
    return None if value is None else round(round(value / CELL_DEGREES) * CELL_DEGREES, 6)


# -- queries -------------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def to_card(
    row: Any, *, viewer_id: str | None, viewer_is_admin: bool, distance_km: float | None = None
) -> c.MemberCard:
    is_self = viewer_id == row.member_id
    profession = BY_CODE.get(row.activity_code or "")
    # an erased member has no address (every other member has one): their
    # name is shown in the network's locale (the row's `locale`, when read)
    erased = not row.email
    return c.MemberCard(
        member_id=row.member_id,
        tenant_id=row.tenant_id,
        display_name=former_member(getattr(row, "locale", None)) if erased else row.display_name,
        business_name=row.business_name,
        activity_code=row.activity_code,
        activity_label=profession.label if profession else None,
        activity_text=row.activity_text,
        offers=row.offers,
        seeks=row.seeks,
        available_for=row.available_for,
        bio=row.bio,
        links=list(row.links or ()),
        work_postcode=row.work_postcode,
        home_postcode=row.home_postcode,
        roles=list(row.roles or ()),
        joined_at=_utc(row.joined_at),
        email=row.email if (is_self or viewer_is_admin) else None,
        work=_place(row.work_lat, row.work_lon, row.work_postcode) if is_self else None,
        home=_place(row.home_lat, row.home_lon, row.home_postcode) if is_self else None,
        distance_km=None if distance_km is None else _coarse(distance_km),
        erased=erased,
    )


def _place(lat: float | None, lon: float | None, postcode: str | None) -> c.Place | None:
    if lat is None and postcode is None:
        return None
    return c.Place(lat=lat, lon=lon, postcode=postcode)


def _tenant_query() -> sa.Select[Any]:
    return sa.select(tenants, tenant_settings.c.locale).outerjoin(
        tenant_settings, tenant_settings.c.tenant_id == tenants.c.tenant_id
    )


def _to_tenant(row: Any) -> c.Tenant:
    return c.Tenant(
        tenant_id=row.tenant_id,
        slug=row.slug,
        name=row.name,
        created_at=_utc(row.created_at),
        locale=row.locale or "fr",
    )


def tenant_by_slug(conn: sa.Connection, slug: str) -> c.Tenant | None:
    row = conn.execute(_tenant_query().where(tenants.c.slug == slug)).first()
    return _to_tenant(row) if row is not None else None


def tenant_by_id(conn: sa.Connection, tenant_id: str) -> c.Tenant | None:
    row = conn.execute(_tenant_query().where(tenants.c.tenant_id == tenant_id)).first()
    return _to_tenant(row) if row is not None else None


def member_rows(conn: sa.Connection, tenant_id: str, member_ids: list[str]) -> list[Any]:
    if not member_ids:
        return []
    rows = conn.execute(
        with_locale(scoped(members, tenant_id)).where(members.c.member_id.in_(member_ids))
    )
    by_id = {r.member_id: r for r in rows}
    return [by_id[m] for m in member_ids if m in by_id]


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = 6371.0088
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(min(1.0, math.sqrt(a)))


def _coarse(km: float) -> float:
    """Distances shown to other members: in steps of half a kilometre."""
    return round(km / DISTANCE_STEP_KM) * DISTANCE_STEP_KM


def nearest_km(row: Any, lat: float, lon: float) -> float | None:
    """From a point to the nearer of the member's work and home grid cells."""
    distances = [
        haversine_km(lat, lon, plat, plon)
        for plat, plon in (
            (row.work_cell_lat, row.work_cell_lon),
            (row.home_cell_lat, row.home_cell_lon),
        )
        if plat is not None and plon is not None
    ]
    return min(distances) if distances else None


def with_locale(query: sa.Select[Any]) -> sa.Select[Any]:
    """Member rows with their network's locale (`locale`, None for the
    default): an erased member's name is shown in it (`to_card`)."""
    return query.add_columns(tenant_settings.c.locale).outerjoin(
        tenant_settings, tenant_settings.c.tenant_id == members.c.tenant_id
    )


def search(
    conn: sa.Connection, tenant_id: str, q: c.SearchMembers
) -> tuple[Sequence[tuple[sa.Row[Any], float | None]], int]:
    # erased members (no address left) are not in the directory's searches
    query = with_locale(scoped(members, tenant_id)).where(members.c.email != "")
    if q.activity_code:
        query = query.where(members.c.activity_code == q.activity_code)
    words = fold(q.text or "").split()[:8]
    for word in words:
        query = query.where(members.c.search_text.contains(word, autoescape=True))
    if q.offered_only and words:
        # the words in the offer itself: checked on the rows the index found
        # (bounded by the tenant's members whose card has them all)
        def offered(row: sa.Row[Any]) -> bool:
            offer = fold(" ".join((row.offers or "", row.activity_text or "")))
            return all(word in offer for word in words)

        ordered = query.order_by(members.c.sort_name, members.c.member_id)
        offering = [r for r in conn.execute(ordered) if offered(r)]
        if q.near is None:
            return [(r, None) for r in offering[q.offset : q.offset + q.limit]], len(offering)
        query = query.where(members.c.member_id.in_([r.member_id for r in offering]))
    if q.near is None:
        total = conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
        rows = conn.execute(
            query.order_by(members.c.sort_name, members.c.member_id).offset(q.offset).limit(q.limit)
        ).all()
        return [(r, None) for r in rows], total
    radius = q.radius_km or 0.0
    lat, lon = q.near.lat, q.near.lon
    dlat = radius / 111.32
    dlon = radius / max(0.01, 111.32 * math.cos(math.radians(lat)))

    def box(plat: sa.Column[Any], plon: sa.Column[Any]) -> sa.ColumnElement[bool]:
        return sa.and_(plat.between(lat - dlat, lat + dlat), plon.between(lon - dlon, lon + dlon))

    query = query.where(
        sa.or_(
            box(members.c.work_cell_lat, members.c.work_cell_lon),
            box(members.c.home_cell_lat, members.c.home_cell_lon),
        )
    )
    found = []
    for row in conn.execute(query):
        distance = nearest_km(row, lat, lon)
        if distance is not None and distance <= radius:
            found.append((row, distance))
    found.sort(key=lambda item: (item[1], item[0].sort_name, item[0].member_id))
    return found[q.offset : q.offset + q.limit], len(found)


def list_invitations(
    conn: sa.Connection, tenant_id: str, q: c.ListInvitations, now: datetime
) -> c.InvitationPage:
    """Newest first; a pending invitation past its expiry reads `expired`."""
    query = scoped(invitations, tenant_id)
    if q.status == "expired":
        query = query.where(invitations.c.status == "pending", invitations.c.expires_at <= now)
    elif q.status == "pending":
        query = query.where(invitations.c.status == "pending", invitations.c.expires_at > now)
    elif q.status:
        query = query.where(invitations.c.status == q.status)
    total = conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
    rows = conn.execute(
        query.order_by(invitations.c.created_at.desc(), invitations.c.invitation_id)
        .offset(q.offset)
        .limit(q.limit)
    )
    items = [
        c.InvitationInfo(
            invitation_id=r.invitation_id,
            tenant_id=r.tenant_id,
            email=r.email,
            status="expired" if r.status == "pending" and _utc(r.expires_at) <= now else r.status,
            invited_by=r.invited_by,
            expires_at=_utc(r.expires_at),
            created_at=_utc(r.created_at),
        )
        for r in rows
    ]
    return c.InvitationPage(items=items, total=total)


# -- sessions --------------------------------------------------------------------


def active_session_ids(conn: sa.Connection, tenant_id: str, member_id: str) -> list[str]:
    rows = conn.execute(
        sa.select(sessions.c.session_id).where(
            sessions.c.tenant_id == tenant_id,
            sessions.c.member_id == member_id,
            sessions.c.ended_at.is_(None),
        )
    )
    return [r.session_id for r in rows]


def current_session(
    conn: sa.Connection, tenant_id: str, member_id: str, session_id: str, now: datetime
) -> list[str] | None:
    """The member's current roles if the session is theirs, in this network,
    not ended and not expired; else None. One primary-key read and a join."""
    row = conn.execute(
        sa.select(
            sessions.c.expires_at,
            members.c.roles,
            session_credentials.c.fingerprint.label("started_with"),
            member_credentials.c.fingerprint.label("current"),
        )
        .join(
            members,
            sa.and_(
                members.c.tenant_id == sessions.c.tenant_id,
                members.c.member_id == sessions.c.member_id,
            ),
        )
        .outerjoin(session_credentials, session_credentials.c.session_id == sessions.c.session_id)
        .outerjoin(
            member_credentials,
            sa.and_(
                member_credentials.c.tenant_id == sessions.c.tenant_id,
                member_credentials.c.member_id == sessions.c.member_id,
            ),
        )
        .where(
            sessions.c.session_id == session_id,
            sessions.c.tenant_id == tenant_id,
            sessions.c.member_id == member_id,
            sessions.c.ended_at.is_(None),
        )
    ).first()
    if row is None or _utc(row.expires_at) <= now:
        return None
    if row.started_with and row.current and row.started_with != row.current:
        return None  # started with a password the member has changed since
    return sorted(row.roles or ())


def list_sessions(
    conn: sa.Connection, tenant_id: str, member_id: str, now: datetime, limit: int
) -> list[c.SessionInfo]:
    """The member's sessions that have not ended or expired, most recently used first."""
    current = (
        sa.select(member_credentials.c.fingerprint)
        .where(
            member_credentials.c.tenant_id == tenant_id,
            member_credentials.c.member_id == member_id,
        )
        .scalar_subquery()
    )
    rows = conn.execute(
        sa.select(sessions)
        .outerjoin(session_credentials, session_credentials.c.session_id == sessions.c.session_id)
        .where(
            sessions.c.tenant_id == tenant_id,
            sessions.c.member_id == member_id,
            sessions.c.ended_at.is_(None),
            sessions.c.expires_at > now,
            # not one started with a password changed since (current_session)
            sa.or_(
                session_credentials.c.fingerprint.is_(None),
                current.is_(None),
                session_credentials.c.fingerprint == current,
            ),
        )
        .order_by(sessions.c.last_used_at.desc(), sessions.c.session_id)
        .limit(limit)
    )
    return [
        c.SessionInfo(
            session_id=r.session_id,
            started_at=_utc(r.started_at),
            last_used_at=_utc(r.last_used_at),
            expires_at=_utc(r.expires_at),
        )
        for r in rows
    ]
