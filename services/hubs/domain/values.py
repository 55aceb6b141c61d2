"""The hub's values: its area, its rules, what identity tells about a
candidate, and the typed pieces of the aggregate's state. Pure: no I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from services.runtime.errors import InvalidInput
from services.runtime.i18n import t
from services.runtime.text import single_line

KINDS = ("neighbourhood", "trade_club", "regional_club")
MODES = ("cooptation", "approval", "open")
POSTCODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 -]{1,9}$")
PENDING = ("invited", "open", "awaiting_decision")
MAX_RADIUS_KM = 50.0
MAX_POSTCODES = 50
MAX_TERM_MEETUPS = 52  # a year of weekly meetups


class Immutable:
    """Frozen values are shared, not copied, when the library deep-copies an
    aggregate out of its cache (on every load: the copy would otherwise grow
    with the hub's history)."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self


@dataclass(frozen=True)
class Area(Immutable):
    lat: float | None = None
    lon: float | None = None
    radius_km: float | None = None
    postcodes: tuple[str, ...] = ()

    def validate(self) -> Area:
        has_centre = self.lat is not None or self.lon is not None or self.radius_km is not None
        if has_centre:
            if self.lat is None or self.lon is None or self.radius_km is None:
                raise InvalidInput(
                    t("a centre needs a latitude, a longitude and a radius"), field="area"
                )
            if not -90 <= self.lat <= 90 or not -180 <= self.lon <= 180:
                raise InvalidInput(t("the centre is not a valid point"), field="area")
            if not 0 < self.radius_km <= MAX_RADIUS_KM:
                raise InvalidInput(
                    t(
                        "the radius must be more than 0 and at most {limit:g} km",
                        limit=MAX_RADIUS_KM,
                    ),
                    field="area",
                )
        if len(self.postcodes) > MAX_POSTCODES:
            raise InvalidInput(t("at most {limit} postcodes", limit=MAX_POSTCODES), field="area")
        for postcode in self.postcodes:
            if not POSTCODE.fullmatch(postcode):
                raise InvalidInput(
                    t("not a valid postcode: {postcode!r}", postcode=postcode[:12]), field="area"
                )
        if not has_centre and not self.postcodes:
            raise InvalidInput(t("an area needs a centre and radius, or postcodes"), field="area")
        return self

    @property
    def has_centre(self) -> bool:
        return self.lat is not None and self.lon is not None and self.radius_km is not None

    def check(self, places: CandidatePlaces) -> AreaCheck:
        """Inside if the candidate works or lives within the radius, or in one
        of the postcodes."""
        if self.has_centre:
            assert self.radius_km is not None
            for label, km in (("works", places.work_km), ("lives", places.home_km)):
                if km is not None and km <= self.radius_km:
                    return AreaCheck(True, f"{label} {km:.1f} km from the centre")
        codes = {p.replace(" ", "").upper() for p in self.postcodes}
        for label, postcode in (("works", places.work_postcode), ("lives", places.home_postcode)):
            if postcode and postcode.replace(" ", "").upper() in codes:
                return AreaCheck(True, f"{label} in {postcode}")
        known = [
            km for km in (places.work_km, places.home_km) if km is not None and self.has_centre
        ]
        has_postcode = bool(places.work_postcode or places.home_postcode)
        if not self.has_centre and not has_postcode:
            return AreaCheck(
                False,
                t(
                    "outside the area: the candidate's card gives no postcode, and this hub's "
                    "area is a list of postcodes"
                ),
            )
        if not known and not has_postcode:
            return AreaCheck(
                False,
                t(
                    "outside the area: the candidate's card says neither where they work nor "
                    "where they live"
                ),
            )
        return AreaCheck(False, self._outside(known))

    def _outside(self, known: list[float]) -> str:
        """Why a candidate who gave where they are is outside: one sentence
        for each shape of the area (a centre, postcodes, both), so that each
        language says it its own way."""
        postcodes = ", ".join(self.postcodes)
        if not self.has_centre:
            return t(
                "outside the area: lives and works outside the hub's area: not in {postcodes}",
                postcodes=postcodes,
            )
        radius = self.radius_km
        if not known:
            if not self.postcodes:
                return t(
                    "outside the area: lives and works outside the hub's area: not within "
                    "{radius:g} km of the centre (no point on the card)",
                    radius=radius,
                )
            return t(
                "outside the area: lives and works outside the hub's area: not within "
                "{radius:g} km of the centre (no point on the card) and not in {postcodes}",
                radius=radius,
                postcodes=postcodes,
            )
        # to the nearest half kilometre: the nominator learns no address
        distance = round(min(known) * 2) / 2
        if not self.postcodes:
            return t(
                "outside the area: lives and works outside the hub's area: not within "
                "{radius:g} km of the centre ({distance:.1f} km)",
                radius=radius,
                distance=distance,
            )
        return t(
            "outside the area: lives and works outside the hub's area: not within "
            "{radius:g} km of the centre ({distance:.1f} km) and not in {postcodes}",
            radius=radius,
            distance=distance,
            postcodes=postcodes,
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["postcodes"] = list(self.postcodes)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Area:
        return cls(
            lat=d.get("lat"),
            lon=d.get("lon"),
            radius_km=d.get("radius_km"),
            postcodes=tuple(d.get("postcodes") or ()),
        )


@dataclass(frozen=True)
class CandidatePlaces:
    """Identity's answer about a candidate: distances and postcodes only."""

    work_km: float | None = None
    home_km: float | None = None
    work_postcode: str | None = None
    home_postcode: str | None = None


@dataclass(frozen=True)
class AreaCheck:
    inside: bool
    # inside: where the candidate is; outside: the refusal itself, a `t()`
    # message ("outside the area: …") said in the requester's language
    explanation: str


@dataclass(frozen=True)
class Rules(Immutable):
    admission_mode: str = "cooptation"
    non_competition: bool = True
    non_competition_lift_at: int | None = None
    non_competition_lifted: bool = False
    objection_window_days: int = 7
    max_visits: int = 3
    facilitator_term_days: int = 28
    facilitator_term_meetups: int | None = None  # None: terms count in days only
    referrals_meeting_days: int | None = None  # None: off (see the contract)

    def validate(self) -> Rules:
        if self.admission_mode not in MODES:
            raise InvalidInput(
                t("admission mode must be one of {modes}", modes=MODES), field="admission_mode"
            )
        if (
            self.non_competition_lift_at is not None
            and not 2 <= self.non_competition_lift_at <= 10_000
        ):
            raise InvalidInput(
                t("the lift threshold is between 2 and 10000 members"),
                field="non_competition_lift_at",
            )
        if not 0 <= self.objection_window_days <= 60:
            raise InvalidInput(
                t("the objection window is 0 to 60 days"), field="objection_window_days"
            )
        if not 0 <= self.max_visits <= 20:
            raise InvalidInput(t("a visitor may come 0 to 20 times"), field="max_visits")
        if not 1 <= self.facilitator_term_days <= 365:
            raise InvalidInput(
                t("a facilitator's term is 1 to 365 days"), field="facilitator_term_days"
            )
        if self.facilitator_term_meetups is not None and not (
            1 <= self.facilitator_term_meetups <= MAX_TERM_MEETUPS
        ):
            raise InvalidInput(
                t(
                    "a facilitator's term is 1 to {limit} meetups, or none (days only)",
                    limit=MAX_TERM_MEETUPS,
                ),
                field="facilitator_term_meetups",
            )
        if self.referrals_meeting_days is not None and not 1 <= self.referrals_meeting_days <= 365:
            raise InvalidInput(
                t("members must have met within 1 to 365 days, or the rule is off (null)"),
                field="referrals_meeting_days",
            )
        return self

    def non_competition_in_force(self, member_count: int) -> bool:
        if not self.non_competition or self.non_competition_lifted:
            return False
        return self.non_competition_lift_at is None or member_count < self.non_competition_lift_at

    def with_changes(self, changes: Mapping[str, Any]) -> Rules:
        unknown = set(changes) - set(asdict(self))
        if unknown:
            raise InvalidInput(
                t("unknown rules {names}", names=sorted(unknown)), field=sorted(unknown)[0]
            )
        return replace(self, **changes).validate()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Rules:
        return cls(**d)


def text(value: str | None, field_name: str, max_len: int, required: bool = False) -> str:
    """A one-line text of a hub (a name, a note, a reason): the runtime's text policy."""
    return single_line(value, field_name, max_len, required=required)


@dataclass(frozen=True)
class Candidate:
    """Who is nominated: a member of the network, or an invited e-mail address."""

    member_id: str | None = None
    invitation_id: str | None = None
    activity_code: str | None = None
    places: CandidatePlaces | None = None


# -- the aggregate's state -------------------------------------------------------


@dataclass(frozen=True)
class RulesVersion(Immutable):
    """One version of a hub's rules, and who changed them (None: automatic)."""

    version: int
    rules: Rules
    changed_by: str | None
    reason: str | None
    at: datetime

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RulesVersion:
        rules = d["rules"]
        return cls(
            version=int(d["version"]),
            rules=rules if isinstance(rules, Rules) else Rules.from_dict(rules),
            changed_by=d["changed_by"],
            reason=d["reason"],
            at=d["at"],
        )


@dataclass
class Membership:
    """A member of the hub: who co-opted them, when, under which rules, with
    which activity, and why they were admitted past the one-per-profession
    rule if they were."""

    sponsor_id: str | None
    admitted_at: datetime
    rules_version: int
    activity_code: str | None
    exception_reason: str | None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Membership:
        return cls(**d)

    def __deepcopy__(self, memo: dict[int, Any]) -> Membership:
        return replace(self)  # its fields are immutable


@dataclass(frozen=True)
class Objection(Immutable):
    objector_id: str
    reason: str
    raised_at: datetime

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Objection:
        return cls(**d)


@dataclass
class Nomination:
    """A co-opted candidate on their way in (or refused)."""

    sponsor_id: str
    candidate_id: str | None  # None while an invited e-mail candidate has not joined
    candidate_activity: str | None
    invitation_id: str | None
    note: str
    exception_reason: str | None
    window_closes_at: datetime | None
    nominated_at: datetime
    status: str  # one of PENDING, "admitted" or "rejected"
    objections: list[Objection] = field(default_factory=list)
    decided_at: datetime | None = None
    decision_reason: str | None = None
    rule: str | None = None

    @property
    def is_pending(self) -> bool:
        return self.status in PENDING

    def __deepcopy__(self, memo: dict[int, Any]) -> Nomination:
        return replace(self, objections=list(self.objections))  # objections are frozen

    def has_objected(self, member_id: str) -> bool:
        return any(o.objector_id == member_id for o in self.objections)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Nomination:
        values = dict(d)
        values["objections"] = [
            o if isinstance(o, Objection) else Objection.from_dict(o) for o in d["objections"]
        ]
        return cls(**values)
