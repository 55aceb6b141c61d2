"""Engagement: the core of a hub, the members drifting away, and a traffic
light per member (in the spirit of BNI's traffic lights, but per network and
explained: each light names the measure that set it). Pure functions of what
a member did and the network's settings.

Source: DOMAIN.md, "Concrete results and engagement" ("the core of very
active members (e.g. 3+ meetups in 90 days), members drifting away").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

DEFAULTS: dict[str, int] = {
    "core_meetups": 3,
    "core_days": 90,
    "drifting_weeks": 6,
    "need_window_days": 7,
    "light_months": 6,
    "green_meetups": 12,
    "amber_meetups": 6,
    "green_referrals": 6,
    "amber_referrals": 2,
    "green_one_to_ones": 6,
    "amber_one_to_ones": 2,
}
ORDER = ("green", "amber", "red")  # worse to the right


@dataclass(frozen=True)
class Measure:
    measure: str
    value: int
    light: str


@dataclass(frozen=True)
class MemberEngagement:
    member_id: str
    light: str
    measures: tuple[Measure, ...]
    meetups_in_core_window: int
    in_core: bool
    drifting: bool
    last_meetup_at: datetime | None


def light(value: int, green: int, amber: int) -> str:
    return "green" if value >= green else "amber" if value >= amber else "red"


def engagement(
    member_id: str,
    attended: Sequence[datetime],
    referrals_given: int,
    one_to_ones: int,
    settings: Mapping[str, int],
    now: datetime,
) -> MemberEngagement:
    """`attended`: when the member was present (or late) at the hub's
    meetups; `referrals_given` and `one_to_ones` (confirmed): over the light's
    window, `settings["light_months"]` months back (30-day months)."""
    s = {**DEFAULTS, **settings}
    light_since = now - timedelta(days=30 * s["light_months"])
    core_since = now - timedelta(days=s["core_days"])
    in_core_window = sum(1 for at in attended if core_since <= at <= now)
    last = max((at for at in attended if at <= now), default=None)
    meetups = sum(1 for at in attended if light_since <= at <= now)
    measures = (
        Measure("meetups", meetups, light(meetups, s["green_meetups"], s["amber_meetups"])),
        Measure(
            "referrals_given",
            referrals_given,
            light(referrals_given, s["green_referrals"], s["amber_referrals"]),
        ),
        Measure(
            "one_to_ones",
            one_to_ones,
            light(one_to_ones, s["green_one_to_ones"], s["amber_one_to_ones"]),
        ),
    )
    return MemberEngagement(
        member_id=member_id,
        light=max((m.light for m in measures), key=ORDER.index),
        measures=measures,
        meetups_in_core_window=in_core_window,
        in_core=in_core_window >= s["core_meetups"],
        drifting=last is None or last < now - timedelta(weeks=s["drifting_weeks"]),
        last_meetup_at=last,
    )


def met_recently(
    co_attended: Sequence[datetime], one_to_ones: Sequence[date], now: datetime, days: int
) -> bool:
    """The hub rule "referrals only between members who met in the last
    `days` days" (hubs' `referrals_meeting_days`): both were present (or late)
    at one of the hub's meetups that started in [now - days, now], or
    confirmed a one-to-one that took place on a day from (now - days)'s date
    (UTC) to today. The window's edges are inclusive: a meetup exactly `days`
    days ago counts, one a second earlier does not; a one-to-one is a date, so
    one on the window's first day counts whatever the hour."""
    since = now - timedelta(days=days)
    return any(since <= at <= now for at in co_attended) or any(
        since.date() <= day <= now.date() for day in one_to_ones
    )
