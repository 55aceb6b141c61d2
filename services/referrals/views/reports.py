"""Reports over many members that reveal no one member's figures.

A hub's or the network's totals are sums over members; asked over a narrow
window, of a tiny hub, or twice over windows a day apart, a sum minus what
the asker knows (their own part) is one other member's business value. So
for a member who is not an admin of what they ask about (docs/referrals.md,
"Reports and privacy"):

* **whole calendar months, completed ones only.** The window asked is widened
  to the months it touches (UTC) and ends at the start of the current month:
  two reports can only differ by whole months, never by a day or an hour;
* **k-anonymity per month** (`K` = 3): a figure that sums members' own
  figures — business value given and received, referrals given, received
  and won — is withheld (its amounts empty, its count 0, its name listed in
  `Results.withheld`) when any month of the window has between 1 and K - 1
  members contributing to it. Per month, and not only over the whole
  window: otherwise a two-month total minus a one-month total would be the
  other month's, of perhaps one member. With at least K contributors in
  every month a total minus the asker's own still sums at least two others.

Admins (the hub's, for its report; the network's, for every report) see
exact figures: they see each referral's value already.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import sqlalchemy as sa

from services.referrals import contract as c
from services.referrals.views.ledger import slips, thanks

K = 3
"""Fewest members whose figures a non-admin's total may sum, in every month."""

Month = tuple[int, int]


def month_start(at: datetime) -> datetime:
    at = at.astimezone(UTC)
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def next_month(at: datetime) -> datetime:
    start = month_start(at)
    return month_start(start + timedelta(days=32))


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime  # inclusive, as GetResults' own


def coarse_window(since: datetime, until: datetime, now: datetime) -> Window | None:
    """The completed calendar months that [since, until] touches; None when
    it touches none (the current month only, or the future)."""
    start = month_start(since)
    end = min(next_month(until) if until != month_start(until) else until, month_start(now))
    if end <= start:
        return None
    return Window(start, end - timedelta(microseconds=1))


def _month(at: datetime) -> Month:
    at = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    return at.year, at.month


def too_few(pairs: Iterable[tuple[Any, datetime]]) -> bool:
    """Whether some month has between 1 and K - 1 distinct members among
    (member, when) pairs."""
    by_month: dict[Month, set[Any]] = defaultdict(set)
    for member, at in pairs:
        by_month[_month(at)].add(member)
    return any(0 < len(members) < K for members in by_month.values())


def withheld(
    conn: sa.Connection,
    tenant_id: str,
    members: list[str] | None,
    since: datetime,
    until: datetime,
) -> list[str]:
    """The figures of `ledger.results` that sum fewer than K members in
    some month of [since, until] (`members`: a hub's; None: the network)."""

    def pairs(table: sa.Table, who: Any, when: Any, *where: Any) -> list[tuple[Any, datetime]]:
        scope = who.in_(members) if members is not None else sa.true()
        rows = conn.execute(
            sa.select(who, when).where(
                table.c.tenant_id == tenant_id, scope, when >= since, when <= until, *where
            )
        )
        return [(r[0], r[1]) for r in rows]

    found = []
    if too_few(pairs(thanks, thanks.c.giver_id, thanks.c.at)):
        found.append("value_given")
    if too_few(pairs(thanks, thanks.c.receiver_id, thanks.c.at)):
        found.append("value_received")
    if too_few(pairs(slips, slips.c.giver_id, slips.c.given_at)):
        found.append("referrals_given")
    if too_few(pairs(slips, slips.c.receiver_id, slips.c.given_at)):
        found.append("referrals_received")
    if too_few(pairs(slips, slips.c.receiver_id, slips.c.updated_at, slips.c.status == "won")):
        found.append("referrals_won")
    return found


def without(results: c.Results, names: list[str]) -> c.Results:
    """The report with the figures named withheld."""
    changes: dict[str, Any] = {"withheld": names}
    for name in names:
        changes[name] = c.Amounts(items=[]) if name.startswith("value_") else 0
    return msgspec.structs.replace(results, **changes)
