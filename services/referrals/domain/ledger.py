"""The ledger's aggregates: referral slips, thanks for closed business,
one-to-ones, needs, and a network's engagement settings. Pure: no I/O; who is
a member, who met whom and the rules come in as arguments.

Source: DOMAIN.md, "Referrals" (given → accepted or declined → contacted →
won, with the business value, or lost; one-to-ones), "Deontology: ask the
network first", "Concrete results and engagement".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from services.referrals.domain.money import check_money
from services.runtime.errors import Conflict, Forbidden, InvalidInput, RuleViolation
from services.runtime.eventstore import TenantAggregate
from services.runtime.i18n import Text, t
from services.runtime.personal import personal
from services.runtime.text import free_text, single_line

NAMESPACE = uuid5(NAMESPACE_URL, "https://quartier.example/referrals")

# The lifecycle: which status may follow which (every other move is refused).
NEXT: dict[str, tuple[str, ...]] = {
    "given": ("accepted", "declined"),
    "accepted": ("contacted",),
    "contacted": ("won", "lost"),
    "declined": (),
    "won": (),
    "lost": (),
}


# How refusals name a status, in each language (the API's enum values in English).
STATUS_WORDS: dict[str, Text] = {
    "given": t("given"),
    "accepted": t("accepted"),
    "contacted": t("contacted"),
    "declined": t("declined"),
    "won": t("won"),
    "lost": t("lost"),
}


def _said(status: str) -> Text | str:
    return STATUS_WORDS.get(status, status)


def _no_move(status: str, target: str) -> Text:
    """The refusal of a move the lifecycle (NEXT) does not allow, the
    statuses named in the requester's language (`given` → « donnée »)."""
    following = NEXT.get(status, ())
    if following:
        next_: Text | str = (
            t("{first}, {second}", first=_said(following[0]), second=_said(following[1]))
            if len(following) == 2
            else _said(following[0])
        )
        return t(
            "a referral that is {status} cannot become {target} (next: {next})",
            status=_said(status),
            target=_said(target),
            next=next_,
        )
    return t(
        "a referral that is {status} cannot become {target}",
        status=_said(status),
        target=_said(target),
    )


def check_prospect(prospect: dict[str, str]) -> dict[str, str]:
    checked = {
        "name": single_line(prospect.get("name"), "prospect.name", 120, required=True),
        "company": single_line(prospect.get("company"), "prospect.company", 120),
        "email": single_line(prospect.get("email"), "prospect.email", 254),
        "phone": single_line(prospect.get("phone"), "prospect.phone", 40),
    }
    if checked["email"] and ("@" not in checked["email"] or " " in checked["email"]):
        raise InvalidInput(t("not an e-mail address"), field="prospect.email")
    return checked


class Referral(TenantAggregate):
    """A referral slip: the giver passes a prospect to the receiver."""

    noun = "referral"
    not_found = t("referral not found")
    event_context = ("tenant_id", "giver_id", "receiver_id")

    class Event(TenantAggregate.Event):
        giver_id: str
        receiver_id: str

    Given: ClassVar[type[Any]]
    Moved: ClassVar[type[Any]]

    @event("Given")
    def __init__(
        self,
        tenant_id: str,
        giver_id: str,
        receiver_id: str,
        hub_id: str | None,
        meetup_id: str | None,
        about: str,
        warmth: int,
        prospect_member_id: str | None,
        prospect: dict[str, str] | None,
        at: datetime,
    ):
        self.tenant_id = tenant_id
        self.giver_id = giver_id
        self.receiver_id = receiver_id
        self.hub_id = hub_id
        self.meetup_id = meetup_id
        self.about = about
        self.warmth = warmth
        self.prospect_member_id = prospect_member_id
        self.prospect = prospect
        self.status = "given"
        self.value: tuple[Decimal, str] | None = None
        self.given_at = at
        self.updated_at = at
        self.history: list[dict[str, Any]] = [
            {"status": "given", "at": at, "by": giver_id, "reason": None}
        ]

    @staticmethod
    def new(
        tenant_id: str,
        giver_id: str,
        receiver_id: str,
        about: str,
        warmth: int,
        at: datetime,
        *,
        prospect: dict[str, str] | None = None,
        prospect_member_id: str | None = None,
        hub_id: str | None = None,
        meetup_id: str | None = None,
    ) -> Referral:
        """Checked: no self-referral, warmth 1 to 5, one kind of prospect (and
        not the giver or receiver themself), texts bounded."""
        if giver_id == receiver_id:
            raise RuleViolation(
                t("a member cannot refer business to themself"), rule="self_referral"
            )
        if not 1 <= warmth <= 5:
            raise InvalidInput(
                t("warmth is 1 (a name) to 5 (they expect the call)"), field="warmth"
            )
        if (prospect is None) == (prospect_member_id is None):
            raise InvalidInput(
                t("name the prospect: a person or company, or a member of the network"),
                field="prospect",
            )
        if prospect_member_id in (giver_id, receiver_id):
            raise InvalidInput(t("the prospect is someone else"), field="prospect_member_id")
        return Referral(
            tenant_id=tenant_id,
            giver_id=giver_id,
            receiver_id=receiver_id,
            hub_id=hub_id,
            meetup_id=meetup_id,
            about=free_text(about, "about", 1000, required=True),
            warmth=warmth,
            prospect_member_id=prospect_member_id,
            prospect=check_prospect(prospect) if prospect is not None else None,
            at=at,
        )

    @property
    def inside(self) -> bool:
        return self.prospect_member_id is not None

    def visible_to(self, member_id: str | None, hub_admin: bool) -> bool:
        """The prospect's details and the value: giver, receiver, hub admins."""
        return hub_admin or member_id in (self.giver_id, self.receiver_id)

    def move(
        self,
        status: str,
        by: str,
        at: datetime,
        reason: str | None = None,
        value: tuple[Decimal, str] | None = None,
    ) -> None:
        """The receiver moves the slip along its lifecycle (NEXT)."""
        if by != self.receiver_id:
            raise Forbidden(t("only the receiver of a referral moves it along"))
        if status not in NEXT.get(self.status, ()):
            raise RuleViolation(_no_move(self.status, status), rule="referral_lifecycle")
        if status == "declined":
            reason = free_text(reason, "reason", 500, required=True)
        elif status == "lost":
            reason = free_text(reason, "reason", 500) or None
        else:
            reason = None
        amount, currency = None, None
        if status == "won":
            if value is None:
                raise InvalidInput(t("a won referral records the business value"), field="value")
            amount, currency = check_money(*value)
        self._moved(
            status=status,
            by=by,
            reason=reason,
            amount=str(amount) if amount is not None else None,
            currency=currency,
            at=at,
        )

    @event("Moved")
    def _moved(
        self,
        status: str,
        by: str,
        reason: str | None,
        amount: str | None,
        currency: str | None,
        at: datetime,
    ) -> None:
        self.status = status
        self.updated_at = at
        if amount is not None and currency is not None:
            self.value = (Decimal(amount), currency)
        self.history = [*self.history, {"status": status, "at": at, "by": by, "reason": reason}]


class Thanks(TenantAggregate):
    """Thanks for closed business: `receiver_id` credits `giver_id` with a
    value (from a won referral, or by other means)."""

    noun = "thanks"
    not_found = t("thanks not found")
    Recorded: ClassVar[type[Any]]

    @event("Recorded")
    def __init__(
        self,
        tenant_id: str,
        giver_id: str,
        receiver_id: str,
        referral_id: str | None,
        hub_id: str | None,
        about: str,
        amount: str,
        currency: str,
        at: datetime,
    ):
        self.tenant_id = tenant_id
        self.giver_id = giver_id
        self.receiver_id = receiver_id
        self.referral_id = referral_id
        self.hub_id = hub_id
        self.about = about
        self.amount = Decimal(amount)
        self.currency = currency
        self.at = at

    @staticmethod
    def new(
        tenant_id: str,
        giver_id: str,
        receiver_id: str,
        value: tuple[Decimal, str],
        about: str,
        at: datetime,
        referral_id: str | None = None,
        hub_id: str | None = None,
    ) -> Thanks:
        if giver_id == receiver_id:
            raise RuleViolation(t("a member cannot thank themself"), rule="self_referral")
        amount, currency = check_money(*value)
        return Thanks(
            tenant_id=tenant_id,
            giver_id=giver_id,
            receiver_id=receiver_id,
            referral_id=referral_id,
            hub_id=hub_id,
            about=free_text(about, "about", 1000, required=True),
            amount=str(amount),
            currency=currency,
            at=at,
        )


def one_to_one_id(tenant_id: str, a: str, b: str, met_on: date) -> UUID:
    """One per pair and day, whoever logs it."""
    first, second = sorted((a, b))
    return uuid5(NAMESPACE, f"one-to-one:{tenant_id}:{first}:{second}:{met_on.isoformat()}")


class OneToOne(TenantAggregate):
    """Two members met to know each other's business: logged by one,
    confirmed by the other (an unconfirmed one counts for nothing)."""

    noun = "one-to-one"
    not_found = t("one-to-one not found")
    event_context = ("tenant_id", "logged_by", "other_id", "met_on")

    class Event(TenantAggregate.Event):
        logged_by: str
        other_id: str
        met_on: date

    Logged: ClassVar[type[Any]]
    Answered: ClassVar[type[Any]]

    @staticmethod
    def create_id(tenant_id: str, logged_by: str, other_id: str, met_on: date) -> UUID:
        return one_to_one_id(tenant_id, logged_by, other_id, met_on)

    @event("Logged")
    def __init__(self, tenant_id: str, logged_by: str, other_id: str, met_on: date, at: datetime):
        self.tenant_id = tenant_id
        self.logged_by = logged_by
        self.other_id = other_id
        self.met_on = met_on
        self.status = "logged"
        self.logged_at = at
        self.answered_at: datetime | None = None

    @staticmethod
    def new(
        tenant_id: str, logged_by: str, other_id: str, met_on: date, today: date, at: datetime
    ) -> OneToOne:
        if logged_by == other_id:
            raise InvalidInput(t("a one-to-one is with another member"), field="other_id")
        if met_on > today:
            raise InvalidInput(t("log a one-to-one once it has taken place"), field="met_on")
        if met_on < today - timedelta(days=366):
            raise InvalidInput(t("a one-to-one of the last year"), field="met_on")
        return OneToOne(
            tenant_id=tenant_id, logged_by=logged_by, other_id=other_id, met_on=met_on, at=at
        )

    def answer(self, member_id: str, confirmed: bool, at: datetime) -> bool:
        """The other member confirms (or declines); False if already so."""
        if member_id != self.other_id:
            raise Forbidden(t("only the other member confirms a one-to-one"))
        status = "confirmed" if confirmed else "declined"
        if self.status == status:
            return False
        if self.status != "logged":
            raise Conflict(
                t("this one-to-one is already confirmed")
                if self.status == "confirmed"
                else t("this one-to-one is already declined")
            )
        self._answered(status=status, at=at)
        return True

    @event("Answered")
    def _answered(self, status: str, at: datetime) -> None:
        self.status = status
        self.answered_at = at


class Need(TenantAggregate):
    """Ask the network first: a need goes to the members whose offer or
    activity matches; after the window, the poster is free to look outside."""

    noun = "need"
    not_found = t("need not found")
    event_context = ("tenant_id", "poster_id")

    class Event(TenantAggregate.Event):
        poster_id: str

    Posted: ClassVar[type[Any]]
    Answered: ClassVar[type[Any]]
    Met: ClassVar[type[Any]]
    Released: ClassVar[type[Any]]

    @event("Posted")
    def __init__(
        self,
        tenant_id: str,
        poster_id: str,
        activity_codes: list[str],
        words: str,
        description: str,
        deadline: date | None,
        matches: list[str],
        window_ends_at: datetime,
        at: datetime,
    ):
        self.tenant_id = tenant_id
        self.poster_id = poster_id
        self.activity_codes = list(activity_codes)
        self.words = words
        self.description = description
        self.deadline = deadline
        self.matches = list(matches)
        self.window_ends_at = window_ends_at
        self.posted_at = at
        self.status = "open"
        self.answers: list[dict[str, Any]] = []
        self.met_by: str | None = None

    @staticmethod
    def checked(
        activity_codes: list[str], words: str, description: str, deadline: date | None, at: datetime
    ) -> tuple[list[str], str, str]:
        """What a need asks, through the text policy: activity codes (at most
        10, each a one-line code of at most 60 characters, repeats dropped),
        words (one line, at most 200 characters), a description (at most
        2000); at least a code or a word; a deadline today or later. Returns
        (codes, words, description) cleaned. Errors: InvalidInput."""
        if len(activity_codes) > 10:
            raise InvalidInput(t("at most 10 activities"), field="activity_codes")
        codes = list(
            dict.fromkeys(
                single_line(code, "activity_codes", 60, required=True) for code in activity_codes
            )
        )
        words = single_line(words, "words", 200)
        if not codes and not words:
            raise InvalidInput(
                t("say what you look for: activities or words"), field="activity_codes"
            )
        if deadline is not None and deadline < at.date():
            raise InvalidInput(t("a deadline is today or later"), field="deadline")
        return codes, words, free_text(description, "description", 2000)

    @staticmethod
    def new(
        tenant_id: str,
        poster_id: str,
        activity_codes: list[str],
        words: str,
        description: str,
        deadline: date | None,
        matches: list[str],
        window_days: int,
        at: datetime,
    ) -> Need:
        """Posted at `at`; open to the network until `at + window_days` days
        (the network's `need_window_days` when posted: a later change of the
        setting does not move an open need's window)."""
        codes, words, description = Need.checked(activity_codes, words, description, deadline, at)
        return Need(
            tenant_id=tenant_id,
            poster_id=poster_id,
            activity_codes=codes,
            words=words,
            description=description,
            deadline=deadline,
            matches=list(dict.fromkeys(m for m in matches if m != poster_id)),
            window_ends_at=at + timedelta(days=window_days),
            at=at,
        )

    def _check_open(self) -> None:
        if self.status != "open":
            closed = t("this need is met") if self.status == "met" else t("this need is released")
            raise RuleViolation(closed, rule="need_closed")

    def answer(self, member_id: str, message: str, at: datetime) -> None:
        self._check_open()
        if member_id == self.poster_id:
            raise InvalidInput(t("the poster does not answer their own need"), field="need_id")
        if any(a["member_id"] == member_id for a in self.answers):
            raise Conflict(t("you have already answered this need"))
        self._answered(
            member_id=member_id, message=free_text(message, "message", 1000, required=True), at=at
        )

    @event("Answered")
    def _answered(self, member_id: str, message: str, at: datetime) -> None:
        self.answers = [*self.answers, {"member_id": member_id, "message": message, "at": at}]

    def met(self, by: str, member_id: str, at: datetime) -> None:
        if by != self.poster_id:
            raise Forbidden(t("only the poster says a need was met"))
        self._check_open()
        if member_id == self.poster_id:
            raise InvalidInput(t("a need is met by another member"), field="member_id")
        self._met(member_id=member_id, at=at)

    @event("Met")
    def _met(self, member_id: str, at: datetime) -> None:
        self.status = "met"
        self.met_by = member_id

    def release(self, by: str, at: datetime) -> None:
        """The poster is free to look outside: only once the window has
        passed: from `window_ends_at` on (a second earlier is refused with the
        rule `ask_the_network_first`). Never automatic (docs/referrals-rules.md)."""
        if by != self.poster_id:
            raise Forbidden(t("only the poster releases a need"))
        self._check_open()
        if at < self.window_ends_at:
            raise RuleViolation(
                t(
                    "ask the network first: the window ends {ends} UTC",
                    ends=f"{self.window_ends_at:%Y-%m-%d %H:%M}",
                ),
                rule="ask_the_network_first",
            )
        self._released(at=at)

    @event("Released")
    def _released(self, at: datetime) -> None:
        self.status = "released"


def rank_matches(hits: Sequence[tuple[int, Sequence[str]]], limit: int) -> list[str]:
    """The members a need matched, best first, at most `limit`: `hits` are
    (weight, members found) per search (an activity code weighs 2, a word
    1); a member's score is the sum of the weights of the searches that found
    them; ties keep the order in which they were first found."""
    score: dict[str, int] = {}
    for weight, found in hits:
        for member_id in found:
            score[member_id] = score.get(member_id, 0) + weight
    return sorted(score, key=lambda member_id: -score[member_id])[:limit]


def settings_id(tenant_id: str) -> UUID:
    return uuid5(NAMESPACE, f"settings:{tenant_id}")


class EngagementSettings(TenantAggregate):
    noun = "settings"
    not_found = t("settings not found")
    Created: ClassVar[type[Any]]
    Changed: ClassVar[type[Any]]

    @staticmethod
    def create_id(tenant_id: str) -> UUID:
        return settings_id(tenant_id)

    @event("Created")
    def __init__(self, tenant_id: str):
        self.tenant_id = tenant_id
        self.values: dict[str, int] = {}

    def change(self, values: dict[str, int], defaults: dict[str, int]) -> bool:
        checked = check_settings({**defaults, **values})
        if checked == {**defaults, **self.values}:
            return False
        self._changed(values=checked)
        return True

    @event("Changed")
    def _changed(self, values: dict[str, int]) -> None:
        self.values = dict(values)


def _out_of_bounds(name: str, low: int, high: int) -> Text:
    """The refusal of an engagement setting out of its bounds."""
    said = {
        "core_meetups": t("core meetups is {low} to {high}", low=low, high=high),
        "core_days": t("core days is {low} to {high}", low=low, high=high),
        "drifting_weeks": t("drifting weeks is {low} to {high}", low=low, high=high),
        "need_window_days": t("need window days is {low} to {high}", low=low, high=high),
        "light_months": t("light months is {low} to {high}", low=low, high=high),
    }
    return said[name]


def _thresholds(measure: str) -> Text:
    """The refusal of a measure's light thresholds out of order."""
    said = {
        "meetups": t("the meetups thresholds: 0 ≤ amber ≤ green ≤ 1000"),
        "referrals": t("the referrals thresholds: 0 ≤ amber ≤ green ≤ 1000"),
        "one_to_ones": t("the one-to-ones thresholds: 0 ≤ amber ≤ green ≤ 1000"),
    }
    return said[measure]


def check_settings(v: dict[str, int]) -> dict[str, int]:
    bounds = {
        "core_meetups": (1, 100),
        "core_days": (7, 365),
        "drifting_weeks": (1, 52),
        "need_window_days": (0, 60),
        "light_months": (1, 24),
    }
    for name, (low, high) in bounds.items():
        if not low <= v[name] <= high:
            raise InvalidInput(_out_of_bounds(name, low, high), field=name)
    for measure in ("meetups", "referrals", "one_to_ones"):
        green, amber = v[f"green_{measure}"], v[f"amber_{measure}"]
        if not 0 <= amber <= green <= 1000:
            raise InvalidInput(_thresholds(measure), field=f"green_{measure}")
    return v


# -- personal data (services/runtime/personal.py, docs/erasure.md) -------------
# Texts are sealed under their author's key; a slip's prospect under a key of
# its own (`prospect:<referral id>`), destroyed with the giver's erasure.


def prospect_subject(referral_id: Any) -> str:
    return f"prospect:{referral_id}"


def thanks_author(fields: Any) -> str:
    """Who wrote a thanks' text: the thanking member; for a won slip's thanks,
    the slip's giver (it is the slip's text)."""
    return str(fields["giver_id"] if fields.get("referral_id") else fields["receiver_id"])


personal(Referral.Given, about="giver_id", prospect=lambda f: prospect_subject(f["originator_id"]))
personal(Referral.Moved, reason="by")
personal(Thanks.Recorded, about=lambda f: thanks_author(f))
personal(Need.Posted, words="poster_id", description="poster_id")
personal(Need.Answered, message="member_id")
