"""Referrals' domain: the ledger (ledger.py: referral slips, thanks,
one-to-ones, needs, settings), money (money.py) and engagement (engagement.py).
Pure: no I/O."""

from services.referrals.domain.engagement import DEFAULTS, engagement, met_recently
from services.referrals.domain.ledger import (
    NEXT,
    EngagementSettings,
    Need,
    OneToOne,
    Referral,
    Thanks,
    one_to_one_id,
    rank_matches,
    settings_id,
)
from services.referrals.domain.money import CURRENCIES, check_money, total

__all__ = [
    "CURRENCIES",
    "DEFAULTS",
    "NEXT",
    "EngagementSettings",
    "Need",
    "OneToOne",
    "Referral",
    "Thanks",
    "check_money",
    "engagement",
    "met_recently",
    "one_to_one_id",
    "rank_matches",
    "settings_id",
    "total",
]
