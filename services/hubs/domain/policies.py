"""The hub's admission policies, as pure functions of its state: the
one-per-profession rule (with its exceptions), and who keeps their seat when
the rule comes back into force. Source: DOMAIN.md, "Non-competition rule"."""

from __future__ import annotations

from collections.abc import Mapping

from services.hubs.domain.values import Membership, Rules
from services.runtime.errors import RuleViolation
from services.runtime.i18n import t


def grandfathered_reason(version: int) -> str:
    return f"admitted before the one-per-profession rule came into force (version {version})"


def competitor(
    activity: str | None, members: Mapping[str, str | None], exclude: str | None = None
) -> str | None:
    """A member who already represents `activity`, if any (an erased
    member's reads empty: they represent none)."""
    if not activity:
        return None
    for member_id, code in members.items():
        if member_id != exclude and code == activity:
            return member_id
    return None


def current_activities(
    members: Mapping[str, Membership], fresh: Mapping[str, str | None]
) -> dict[str, str | None]:
    """Members' activities: the latest known from identity (`fresh`), else the
    one recorded at admission."""
    return {m: fresh.get(m, info.activity_code) or None for m, info in members.items()}


def non_competition_exception(
    rules: Rules,
    members: Mapping[str, Membership],
    candidate_id: str | None,
    activity: str | None,
    fresh: Mapping[str, str | None],
    exception_reason: str | None,
) -> str | None:
    """The exception to record for a candidate (None if none is needed).
    Raises RuleViolation when the rule is in force, a member already
    represents the activity, and no exception reason is given."""
    if not rules.non_competition_in_force(len(members)):
        return None
    rival = competitor(activity, current_activities(members, fresh), exclude=candidate_id)
    if rival is None:
        return None
    if exception_reason:
        return exception_reason
    raise RuleViolation(
        t(
            "the hub already has a member whose activity is {activity!r}, and the "
            "one-per-profession rule is in force (an admin may admit with an exception)",
            activity=activity,
        ),
        rule="non_competition",
    )


def sharing_an_activity(
    members: Mapping[str, Membership], fresh: Mapping[str, str | None]
) -> list[str]:
    """Members without a recorded exception who share an activity with a
    member admitted before them: they keep their seat as exceptions when the
    rule comes back into force."""
    first: dict[str, str] = {}
    found = []
    activities = current_activities(members, fresh)
    for member_id, info in sorted(members.items(), key=lambda item: item[1].admitted_at):
        code = activities.get(member_id)
        if not code or info.exception_reason:
            continue
        if code in first:
            found.append(member_id)
        else:
            first[code] = member_id
    return found
