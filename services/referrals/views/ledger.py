"""The ledger read model: slips (with their history, prospect and value, for
those who may see them), thanks, one-to-ones and needs; and the results
(counts and totals over a period) that reports read."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from services.referrals import contract as c
from services.referrals.domain import CURRENCIES, Need, OneToOne, Referral, Thanks, total
from services.runtime.tenancy import scoped
from services.runtime.views import UTCDateTime, keyed_update

metadata = sa.MetaData()

slips = sa.Table(
    "slips",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("referral_id", sa.String(36), primary_key=True),
    sa.Column("giver_id", sa.String(36), nullable=False),
    sa.Column("receiver_id", sa.String(36), nullable=False),
    sa.Column("hub_id", sa.String(36)),
    sa.Column("meetup_id", sa.String(36)),
    sa.Column("about", sa.Text, nullable=False),
    sa.Column("warmth", sa.Integer, nullable=False),
    sa.Column("prospect_member_id", sa.String(36)),
    sa.Column("prospect", sa.JSON),  # personal data: shown to giver, receiver, hub admins
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("amount", sa.Numeric(18, 4)),
    sa.Column("currency", sa.String(3)),
    sa.Column("history", sa.JSON, nullable=False),
    sa.Column("given_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_slips_giver", "tenant_id", "giver_id", "given_at"),
    sa.Index("ix_slips_receiver", "tenant_id", "receiver_id", "given_at"),
    sa.Index("ix_slips_hub", "tenant_id", "hub_id", "given_at"),
)

thanks = sa.Table(
    "thanks",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("thanks_id", sa.String(36), primary_key=True),
    sa.Column("giver_id", sa.String(36), nullable=False),
    sa.Column("receiver_id", sa.String(36), nullable=False),
    sa.Column("referral_id", sa.String(36)),
    sa.Column("hub_id", sa.String(36)),
    sa.Column("about", sa.Text, nullable=False),
    sa.Column("amount", sa.Numeric(18, 4), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_thanks_giver", "tenant_id", "giver_id", "at"),
    sa.Index("ix_thanks_receiver", "tenant_id", "receiver_id", "at"),
)

one_to_ones = sa.Table(
    "one_to_ones",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("one_to_one_id", sa.String(36), primary_key=True),
    sa.Column("logged_by", sa.String(36), nullable=False),
    sa.Column("other_id", sa.String(36), nullable=False),
    sa.Column("met_on", sa.Date, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("logged_at", UTCDateTime, nullable=False),
    sa.Column("answered_at", UTCDateTime),
    sa.Index("ix_one_to_ones_members", "tenant_id", "logged_by", "other_id"),
)

needs = sa.Table(
    "needs",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("need_id", sa.String(36), primary_key=True),
    sa.Column("poster_id", sa.String(36), nullable=False),
    sa.Column("activity_codes", sa.JSON, nullable=False),
    sa.Column("words", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("deadline", sa.Date),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("window_ends_at", UTCDateTime, nullable=False),
    sa.Column("matches", sa.JSON, nullable=False),
    sa.Column("answers", sa.JSON, nullable=False),
    sa.Column("met_by", sa.String(36)),
    sa.Column("posted_at", UTCDateTime, nullable=False),
    sa.Index("ix_needs_poster", "tenant_id", "poster_id", "posted_at"),
)

need_matches = sa.Table(
    "need_matches",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("need_id", sa.String(36), primary_key=True),
    sa.Column("member_id", sa.String(36), primary_key=True),
    sa.Column("rank", sa.Integer, nullable=False),  # 0: the best match
    sa.Index("ix_need_matches_member", "tenant_id", "member_id"),
)


def apply(conn: sa.Connection, e: Any) -> None:
    tenant_id, aggregate_id = e.tenant_id, str(e.originator_id)
    match e:
        case Referral.Given():
            conn.execute(
                slips.insert().values(
                    tenant_id=tenant_id,
                    referral_id=aggregate_id,
                    giver_id=e.giver_id,
                    receiver_id=e.receiver_id,
                    hub_id=e.hub_id,
                    meetup_id=e.meetup_id,
                    about=e.about,
                    warmth=e.warmth,
                    prospect_member_id=e.prospect_member_id,
                    prospect=e.prospect,
                    status="given",
                    history=[
                        {
                            "status": "given",
                            "at": e.at.isoformat(),
                            "by": e.giver_id,
                            "reason": None,
                        }
                    ],
                    given_at=e.at,
                    updated_at=e.at,
                )
            )
        case Referral.Moved():
            key = {"tenant_id": tenant_id, "referral_id": aggregate_id}
            row = conn.execute(
                scoped(slips, tenant_id).where(slips.c.referral_id == aggregate_id)
            ).one()
            step = {"status": e.status, "at": e.at.isoformat(), "by": e.by, "reason": e.reason}
            values: dict[str, Any] = {
                "status": e.status,
                "updated_at": e.at,
                "history": [*row.history, step],
            }
            if e.amount is not None:
                values |= {"amount": Decimal(e.amount), "currency": e.currency}
            keyed_update(conn, slips, key, **values)
        case Thanks.Recorded():
            conn.execute(
                thanks.insert().values(
                    tenant_id=tenant_id,
                    thanks_id=aggregate_id,
                    giver_id=e.giver_id,
                    receiver_id=e.receiver_id,
                    referral_id=e.referral_id,
                    hub_id=e.hub_id,
                    about=e.about,
                    amount=Decimal(e.amount),
                    currency=e.currency,
                    at=e.at,
                )
            )
        case OneToOne.Logged():
            conn.execute(
                one_to_ones.insert().values(
                    tenant_id=tenant_id,
                    one_to_one_id=aggregate_id,
                    logged_by=e.logged_by,
                    other_id=e.other_id,
                    met_on=e.met_on,
                    status="logged",
                    logged_at=e.at,
                )
            )
        case OneToOne.Answered():
            keyed_update(
                conn,
                one_to_ones,
                {"tenant_id": tenant_id, "one_to_one_id": aggregate_id},
                status=e.status,
                answered_at=e.at,
            )
        case Need.Posted():
            conn.execute(
                needs.insert().values(
                    tenant_id=tenant_id,
                    need_id=aggregate_id,
                    poster_id=e.poster_id,
                    activity_codes=list(e.activity_codes),
                    words=e.words,
                    description=e.description,
                    deadline=e.deadline,
                    status="open",
                    window_ends_at=e.window_ends_at,
                    matches=list(e.matches),
                    answers=[],
                    posted_at=e.at,
                )
            )
            if e.matches:
                conn.execute(
                    need_matches.insert(),
                    [
                        {
                            "tenant_id": tenant_id,
                            "need_id": aggregate_id,
                            "member_id": member_id,
                            "rank": rank,
                        }
                        for rank, member_id in enumerate(e.matches)
                    ],
                )
        case Need.Answered():
            key = {"tenant_id": tenant_id, "need_id": aggregate_id}
            row = conn.execute(
                scoped(needs, tenant_id).where(needs.c.need_id == aggregate_id)
            ).one()
            answer = {"member_id": e.member_id, "message": e.message, "at": e.at.isoformat()}
            keyed_update(conn, needs, key, answers=[*row.answers, answer])
        case Need.Met():
            keyed_update(
                conn,
                needs,
                {"tenant_id": tenant_id, "need_id": aggregate_id},
                status="met",
                met_by=e.member_id,
            )
        case Need.Released():
            keyed_update(
                conn, needs, {"tenant_id": tenant_id, "need_id": aggregate_id}, status="released"
            )


# -- replies -------------------------------------------------------------------------


def in_minor_units(amount: Decimal, currency: str) -> Decimal:
    """An amount with its currency's decimals (ISO 4217 minor units): the
    store keeps four (`Numeric(18, 4)`), so 1200.5 EUR is read back 1200.5000
    and answered 1200.50; 5000 JPY is answered 5000."""
    return Decimal(amount).quantize(Decimal(1).scaleb(-CURRENCIES.get(currency, 2)))


def money(amount: Decimal | None, currency: str | None) -> c.Money | None:
    if amount is None or currency is None:
        return None
    return c.Money(amount=in_minor_units(amount, currency), currency=currency)


def to_slip(row: Any, private: bool) -> c.Slip:
    """`private`: the reader may see the prospect and the value."""
    return c.Slip(
        referral_id=row.referral_id,
        giver_id=row.giver_id,
        receiver_id=row.receiver_id,
        hub_id=row.hub_id,
        meetup_id=row.meetup_id,
        about=row.about,
        warmth=row.warmth,
        inside=row.prospect_member_id is not None,
        prospect_member_id=row.prospect_member_id,
        prospect=c.Prospect(**row.prospect) if private and row.prospect else None,
        status=row.status,
        value=money(row.amount, row.currency) if private else None,
        given_at=row.given_at,
        updated_at=row.updated_at,
        history=[
            c.StatusChange(
                status=h["status"],
                at=datetime.fromisoformat(h["at"]),
                by=h["by"],
                reason=h["reason"] if private else None,
            )
            for h in row.history
        ],
    )


def to_thanks(row: Any, private: bool) -> c.Thanks:
    return c.Thanks(
        thanks_id=row.thanks_id,
        giver_id=row.giver_id,
        receiver_id=row.receiver_id,
        referral_id=row.referral_id,
        hub_id=row.hub_id,
        about=row.about,
        value=money(row.amount, row.currency) if private else None,
        at=row.at,
    )


def to_one_to_one(row: Any) -> c.OneToOne:
    return c.OneToOne(
        one_to_one_id=row.one_to_one_id,
        logged_by=row.logged_by,
        other_id=row.other_id,
        met_on=row.met_on,
        status=row.status,
        logged_at=row.logged_at,
        answered_at=row.answered_at,
    )


def to_need(row: Any) -> c.Need:
    return c.Need(
        need_id=row.need_id,
        poster_id=row.poster_id,
        activity_codes=list(row.activity_codes),
        words=row.words,
        description=row.description,
        deadline=row.deadline,
        status=row.status,
        window_ends_at=row.window_ends_at,
        matches=list(row.matches),
        answers=[
            c.NeedAnswer(
                member_id=a["member_id"], message=a["message"], at=datetime.fromisoformat(a["at"])
            )
            for a in row.answers
        ],
        met_by=row.met_by,
        posted_at=row.posted_at,
    )


# -- queries -------------------------------------------------------------------------


def slip_row(conn: sa.Connection, tenant_id: str, referral_id: str) -> Any:
    return conn.execute(scoped(slips, tenant_id).where(slips.c.referral_id == referral_id)).first()


def page(
    conn: sa.Connection, query: sa.Select[Any], order: Any, offset: int, limit: int
) -> tuple[list[Any], int]:
    total_count = conn.execute(
        sa.select(sa.func.count()).select_from(query.subquery())
    ).scalar_one()
    ordering = order if isinstance(order, tuple) else (order,)
    rows = conn.execute(query.order_by(*ordering).offset(offset).limit(limit)).all()
    return list(rows), int(total_count)


def one_to_ones_of(
    conn: sa.Connection, tenant_id: str, member_id: str, limit: int
) -> list[c.OneToOne]:
    """A member's one-to-ones (logged by them or with them), the latest
    first, at most `limit`."""
    rows = conn.execute(
        scoped(one_to_ones, tenant_id)
        .where(sa.or_(one_to_ones.c.logged_by == member_id, one_to_ones.c.other_id == member_id))
        .order_by(one_to_ones.c.met_on.desc(), one_to_ones.c.one_to_one_id)
        .limit(limit)
    )
    return [to_one_to_one(r) for r in rows]


def confirmed_one_to_ones(conn: sa.Connection, tenant_id: str, a: str, b: str) -> list[Any]:
    rows = conn.execute(
        scoped(one_to_ones, tenant_id).where(
            one_to_ones.c.status == "confirmed",
            sa.or_(
                sa.and_(one_to_ones.c.logged_by == a, one_to_ones.c.other_id == b),
                sa.and_(one_to_ones.c.logged_by == b, one_to_ones.c.other_id == a),
            ),
        )
    )
    return [r.met_on for r in rows]


def matched_needs(tenant_id: str, member_id: str) -> sa.Select[Any]:
    """The needs `member_id` was matched to (told of)."""
    m = need_matches
    return (
        scoped(needs, tenant_id)
        .join(m, sa.and_(m.c.tenant_id == needs.c.tenant_id, m.c.need_id == needs.c.need_id))
        .where(m.c.member_id == member_id)
    )


def need_row(conn: sa.Connection, tenant_id: str, need_id: str) -> Any:
    return conn.execute(scoped(needs, tenant_id).where(needs.c.need_id == need_id)).first()


def amounts(rows: list[Any]) -> c.Amounts:
    sums = total([(Decimal(r.amount), r.currency) for r in rows])
    return c.Amounts(
        items=[c.Money(amount=in_minor_units(v, k), currency=k) for k, v in sorted(sums.items())]
    )


def results(
    conn: sa.Connection,
    tenant_id: str,
    scope: str,
    subject_id: str,
    members: list[str] | None,
    since: datetime,
    until: datetime,
    attended: int,
    missions: int,
) -> c.Results:
    """Counts and totals over [since, until]: `members` restricts to a hub's
    members (scope hub) or one member (scope member); None is the network."""

    def who(column: Any) -> Any:
        return column.in_(members) if members is not None else sa.true()

    def count(table: sa.Table, column: Any, time_column: Any, *where: Any) -> int:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(table)
                .where(
                    table.c.tenant_id == tenant_id,
                    who(column),
                    time_column >= since,
                    time_column <= until,
                    *where,
                )
            ).scalar_one()
        )

    def thanks_rows(column: Any) -> list[Any]:
        return list(
            conn.execute(
                sa.select(thanks.c.amount, thanks.c.currency).where(
                    thanks.c.tenant_id == tenant_id,
                    who(column),
                    thanks.c.at >= since,
                    thanks.c.at <= until,
                )
            )
        )

    confirmed = one_to_ones.c.status == "confirmed"
    return c.Results(
        scope=scope,  # type: ignore[arg-type]
        subject_id=subject_id,
        since=since,
        until=until,
        meetups_attended=attended,
        referrals_given=count(slips, slips.c.giver_id, slips.c.given_at),
        referrals_received=count(slips, slips.c.receiver_id, slips.c.given_at),
        referrals_won=count(
            slips, slips.c.receiver_id, slips.c.updated_at, slips.c.status == "won"
        ),
        value_given=amounts(thanks_rows(thanks.c.giver_id)),
        value_received=amounts(thanks_rows(thanks.c.receiver_id)),
        one_to_ones=int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(one_to_ones)
                .where(
                    one_to_ones.c.tenant_id == tenant_id,
                    confirmed,
                    sa.or_(who(one_to_ones.c.logged_by), who(one_to_ones.c.other_id)),
                    one_to_ones.c.answered_at >= since,
                    one_to_ones.c.answered_at <= until,
                )
            ).scalar_one()
        ),
        missions_done=missions,
        needs_posted=count(needs, needs.c.poster_id, needs.c.posted_at),
        needs_met_inside=count(
            needs, needs.c.poster_id, needs.c.posted_at, needs.c.status == "met"
        ),
    )


def given_since(conn: sa.Connection, tenant_id: str, since: datetime) -> dict[str, int]:
    rows = conn.execute(
        sa.select(slips.c.giver_id, sa.func.count())
        .where(slips.c.tenant_id == tenant_id, slips.c.given_at >= since)
        .group_by(slips.c.giver_id)
    )
    return {r[0]: int(r[1]) for r in rows}


def one_to_ones_since(conn: sa.Connection, tenant_id: str, since: datetime) -> dict[str, int]:
    rows = conn.execute(
        sa.select(one_to_ones.c.logged_by, one_to_ones.c.other_id).where(
            one_to_ones.c.tenant_id == tenant_id,
            one_to_ones.c.status == "confirmed",
            one_to_ones.c.answered_at >= since,
        )
    )
    counts: dict[str, int] = {}
    for a, b in rows:
        counts[a] = counts.get(a, 0) + 1
        counts[b] = counts.get(b, 0) + 1
    return counts
