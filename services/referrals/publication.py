"""Which of referrals' domain events go on the public stream, and as what:
ids, statuses, warmth, dates and business values. Never the prospect, the
slip's text, a reason, a need's words or an answer's message."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.referrals import contract as c
from services.referrals.domain import Need, OneToOne, Referral, Thanks

MOVED = {
    "accepted": c.ReferralAccepted,
    "declined": c.ReferralDeclined,
    "contacted": c.ReferralContacted,
    "lost": c.ReferralLost,
}


def to_public(e: Any) -> c.ReferralsEvent | None:
    tenant_id, aggregate_id = e.tenant_id, str(e.originator_id)
    match e:
        case Referral.Given():
            return c.ReferralGiven(
                tenant_id=tenant_id,
                referral_id=aggregate_id,
                giver_id=e.giver_id,
                receiver_id=e.receiver_id,
                hub_id=e.hub_id,
                meetup_id=e.meetup_id,
                warmth=e.warmth,
                inside=e.prospect_member_id is not None,
            )
        case Referral.Moved():
            pair = {"giver_id": e.giver_id, "receiver_id": e.receiver_id}
            if e.status == "won":
                return c.ReferralWon(
                    tenant_id=tenant_id,
                    referral_id=aggregate_id,
                    value=c.Money(amount=Decimal(e.amount), currency=e.currency),
                    **pair,
                )
            return MOVED[e.status](tenant_id=tenant_id, referral_id=aggregate_id, **pair)
        case Thanks.Recorded():
            return c.ThanksRecorded(
                tenant_id=tenant_id,
                thanks_id=aggregate_id,
                giver_id=e.giver_id,
                receiver_id=e.receiver_id,
                referral_id=e.referral_id,
                hub_id=e.hub_id,
                value=c.Money(amount=Decimal(e.amount), currency=e.currency),
            )
        case OneToOne.Logged():
            return c.OneToOneLogged(
                tenant_id=tenant_id,
                one_to_one_id=aggregate_id,
                logged_by=e.logged_by,
                other_id=e.other_id,
                met_on=e.met_on,
            )
        case OneToOne.Answered():
            if e.status != "confirmed":
                return None
            return c.OneToOneConfirmed(
                tenant_id=tenant_id,
                one_to_one_id=aggregate_id,
                logged_by=e.logged_by,
                other_id=e.other_id,
                met_on=e.met_on,
            )
        case Need.Posted():
            return c.NeedPosted(
                tenant_id=tenant_id,
                need_id=aggregate_id,
                poster_id=e.poster_id,
                activity_codes=list(e.activity_codes),
                matches=len(e.matches),
            )
        case Need.Answered():
            return c.NeedAnswered(tenant_id=tenant_id, need_id=aggregate_id, member_id=e.member_id)
        case Need.Met():
            return c.NeedMet(
                tenant_id=tenant_id, need_id=aggregate_id, poster_id=e.poster_id, met_by=e.member_id
            )
        case Need.Released():
            return c.NeedReleased(tenant_id=tenant_id, need_id=aggregate_id, poster_id=e.poster_id)
    return None
