"""The Hub aggregate. Pure: no I/O; time, places and activities come in as
arguments (the handlers gather them from identity and the local directory).

One aggregate per hub keeps its invariants in one place: the members, the
pending nominations, the versioned rules, the co-admins, the facilitator
roster and its terms. A hub's history is long-lived, so the application
snapshots it (the typed state below is stored in snapshots; `upcast_v1_v2`
reads the dicts of snapshots taken before it was typed, `upcast_v2_v3` those
taken before terms counted meetups).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, ClassVar

from eventsourcing.domain import event

from services.hubs.domain.policies import (
    grandfathered_reason,
    non_competition_exception,
    sharing_an_activity,
)
from services.hubs.domain.values import (
    KINDS,
    PENDING,
    Area,
    Candidate,
    CandidatePlaces,
    Membership,
    Nomination,
    Objection,
    Rules,
    RulesVersion,
    text,
)
from services.runtime.errors import Conflict, Forbidden, InvalidInput, NotFound, RuleViolation
from services.runtime.eventstore import TenantAggregate
from services.runtime.i18n import t
from services.runtime.personal import KEY, each, personal, personal_state

# A nomination no longer (or not yet) to decide, by its status: one sentence
# each, so that each language says the status its own way.
DECIDED = {
    "invited": t("this nomination is invited: nothing to decide"),
    "admitted": t("this nomination is admitted: nothing to decide"),
    "rejected": t("this nomination is rejected: nothing to decide"),
}


class Hub(TenantAggregate):
    class_version: ClassVar[int] = 3  # 2: typed state (snapshots); 3: terms count meetups
    not_found = t("hub not found")  # what the store says of a missing hub
    # its events: the classes @event defines, declared for type checkers
    Created: ClassVar[type[Any]]
    RulesChanged: ClassVar[type[Any]]
    CandidateNominated: ClassVar[type[Any]]
    CandidateJoinedNetwork: ClassVar[type[Any]]
    ObjectionRaised: ClassVar[type[Any]]
    ObjectionWindowClosed: ClassVar[type[Any]]
    MemberAdmitted: ClassVar[type[Any]]
    AdmissionRejected: ClassVar[type[Any]]
    MemberLeft: ClassVar[type[Any]]
    CoAdminAdded: ClassVar[type[Any]]
    CoAdminRemoved: ClassVar[type[Any]]
    FacilitatorRosterChanged: ClassVar[type[Any]]
    FacilitatorChanged: ClassVar[type[Any]]
    MeetupCounted: ClassVar[type[Any]]

    @event("Created")
    def __init__(
        self,
        tenant_id: str,
        name: str,
        kind: str,
        area: dict[str, Any],
        rules: dict[str, Any],
        founder_id: str,
        founder_activity: str | None,
        at: datetime,
    ):
        self.tenant_id = tenant_id
        self.name = name
        self.kind = kind
        self.area = Area.from_dict(area)
        self.rules_history: list[RulesVersion] = [
            RulesVersion(1, Rules.from_dict(rules), founder_id, "hub created", at)
        ]
        self.members: dict[str, Membership] = {
            founder_id: Membership(
                sponsor_id=None,
                admitted_at=at,
                rules_version=1,
                activity_code=founder_activity,
                exception_reason=None,
            )
        }
        self.co_admins: list[str] = [founder_id]
        self.nominations: dict[str, Nomination] = {}
        self.roster: list[str] = []
        self.facilitator_id: str | None = None
        self.term_ends_at: datetime | None = None
        self.term_meetup_limit: int | None = None  # fixed when the term began
        self.meetups_this_term: int = 0  # meetups of the hub closed during the current term

    @staticmethod
    def new(
        tenant_id: str,
        name: str,
        kind: str,
        area: Area,
        rules: Rules,
        founder_id: str,
        founder_activity: str | None,
        at: datetime,
    ) -> Hub:
        if kind not in KINDS:
            raise InvalidInput(t("a hub is one of {kinds}", kinds=KINDS), field="kind")
        return Hub(
            tenant_id=tenant_id,
            name=text(name, "name", 120, required=True),
            kind=kind,
            area=area.validate().to_dict(),
            rules=rules.validate().to_dict(),
            founder_id=founder_id,
            founder_activity=founder_activity,
            at=at,
        )

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """Snapshots taken before the state was typed kept dicts."""
        state["area"] = Area.from_dict(state.pop("area_data"))
        state["rules_history"] = [RulesVersion.from_dict(v) for v in state["rules_history"]]
        state["members"] = {m: Membership.from_dict(d) for m, d in state["members"].items()}
        state["nominations"] = {n: Nomination.from_dict(d) for n, d in state["nominations"].items()}

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        """Snapshots taken before terms counted meetups: the current term (if
        any) counts in days only, as it did when it began."""
        state["term_meetup_limit"] = None
        state["meetups_this_term"] = 0

    # -- reading ---------------------------------------------------------------

    @property
    def rules(self) -> Rules:
        return self.rules_history[-1].rules

    @property
    def rules_version(self) -> int:
        return self.rules_history[-1].version

    def rules_at(self, at: datetime) -> RulesVersion:
        current = self.rules_history[0]
        for version in self.rules_history:
            if version.at <= at:
                current = version
        return current

    def is_member(self, member_id: str | None) -> bool:
        return member_id is not None and member_id in self.members

    def is_co_admin(self, member_id: str | None) -> bool:
        return member_id is not None and member_id in self.co_admins

    def nomination(self, nomination_id: str) -> Nomination:
        found = self.nominations.get(nomination_id)
        if found is None:
            raise NotFound(t("nomination not found"))
        return found

    def pending_for(self, candidate_id: str) -> str | None:
        for nid, n in self.nominations.items():
            if n.candidate_id == candidate_id and n.is_pending:
                return nid
        return None

    def pending_invitation(self, invitation_id: str) -> str | None:
        """The pending nomination of an e-mail candidate, by their invitation."""
        for nid, n in self.nominations.items():
            if n.invitation_id == invitation_id and n.is_pending:
                return nid
        return None

    def non_competition_in_force(self) -> bool:
        return self.rules.non_competition_in_force(len(self.members))

    # -- rules -----------------------------------------------------------------

    def change_rules(
        self,
        changes: Mapping[str, Any],
        by: str,
        reason: str | None,
        at: datetime,
        activities: Mapping[str, str | None] | None = None,
    ) -> bool:
        """A new version of the rules. When the one-per-profession rule comes
        into force again, members who already share an activity keep their
        place as recorded exceptions ("grandfathered"); a lift threshold
        already reached lifts the rule at once, as a version of its own.
        Returns False when nothing changed."""
        old = self.rules
        new = old.with_changes(changes)
        if new == old:
            return False
        reason = text(reason, "reason", 500) or None
        if new.non_competition_lifted and not old.non_competition_lifted and not reason:
            raise InvalidInput(t("say why the one-per-profession rule is lifted"), field="reason")
        size = len(self.members)
        grandfathered: list[str] = []
        if new.non_competition_in_force(size) and not old.non_competition_in_force(size):
            grandfathered = sharing_an_activity(self.members, activities or {})
        self._rules_changed(
            version=self.rules_version + 1,
            rules=new.to_dict(),
            changed_by=by,
            reason=reason,
            grandfathered=grandfathered,
            at=at,
        )
        self._lift_if_grown(at)
        return True

    @event("RulesChanged")
    def _rules_changed(
        self,
        version: int,
        rules: dict[str, Any],
        changed_by: str | None,
        reason: str | None,
        grandfathered: list[str],
        at: datetime,
    ) -> None:
        for member_id in grandfathered:
            self.members[member_id].exception_reason = grandfathered_reason(version)
        self.rules_history.append(
            RulesVersion(version, Rules.from_dict(rules), changed_by, reason, at)
        )

    # -- admission -------------------------------------------------------------

    def check_nomination(self, sponsor_id: str, note: str, exception_reason: str | None) -> None:
        """What can be refused before anyone is asked anything (identity will
        e-mail an invitation for an e-mail candidate: refuse first)."""
        if not self.is_member(sponsor_id):
            raise Forbidden(t("only members of the hub may co-opt a candidate"))
        text(note, "note", 1000)
        text(exception_reason, "exception_reason", 500)

    def check_candidate(
        self,
        candidate: Candidate,
        activities: Mapping[str, str | None],
        exception_reason: str | None,
    ) -> str | None:
        """Area and one-per-profession checks; returns the exception reason to
        record (None if no exception was needed)."""
        self._check_place(candidate)
        return self._non_competition(
            candidate.member_id, candidate.activity_code, activities, exception_reason
        )

    def _check_place(self, candidate: Candidate) -> None:
        """Not already in (or nominated to) the hub, and inside its area."""
        if candidate.member_id is not None:
            if self.is_member(candidate.member_id):
                raise Conflict(t("already a member of this hub"))
            if self.pending_for(candidate.member_id):
                raise Conflict(t("this candidate is already nominated"))
        if candidate.places is not None:
            result = self.area.check(candidate.places)
            if not result.inside:
                raise RuleViolation(result.explanation, rule="area")

    def _non_competition(
        self,
        candidate_id: str | None,
        activity: str | None,
        activities: Mapping[str, str | None],
        exception_reason: str | None,
    ) -> str | None:
        return non_competition_exception(
            self.rules, self.members, candidate_id, activity, activities, exception_reason
        )

    def nominate(
        self,
        nomination_id: str,
        sponsor_id: str,
        candidate: Candidate,
        note: str,
        activities: Mapping[str, str | None],
        exception_reason: str | None,
        at: datetime,
    ) -> None:
        self.check_nomination(sponsor_id, note, exception_reason)
        note = text(note, "note", 1000)
        exception_reason = text(exception_reason, "exception_reason", 500) or None
        if candidate.member_id is None and candidate.invitation_id is None:
            raise InvalidInput(
                t("name a member of the network or an e-mail address"), field="candidate_id"
            )
        if candidate.invitation_id is not None and self.pending_invitation(candidate.invitation_id):
            # the same address again, in any letter case: identity answered
            # its pending invitation (and mailed nothing)
            raise Conflict(t("this candidate is already nominated"), field="email")
        recorded_exception = None
        window = None
        if candidate.member_id is not None:
            recorded_exception = self.check_candidate(candidate, activities, exception_reason)
            window = at + timedelta(days=self.rules.objection_window_days)
        self._nominated(
            nomination_id=nomination_id,
            sponsor_id=sponsor_id,
            candidate_id=candidate.member_id,
            candidate_activity=candidate.activity_code,
            invitation_id=candidate.invitation_id,
            note=note,
            exception_reason=recorded_exception or exception_reason,
            window_closes_at=window,
            at=at,
        )
        if candidate.member_id is not None and self.rules.admission_mode == "open":
            self._admit(nomination_id, decided_by=None, exception_reason=recorded_exception, at=at)

    @event("CandidateNominated")
    def _nominated(
        self,
        nomination_id: str,
        sponsor_id: str,
        candidate_id: str | None,
        candidate_activity: str | None,
        invitation_id: str | None,
        note: str,
        exception_reason: str | None,
        window_closes_at: datetime | None,
        at: datetime,
    ) -> None:
        self.nominations[nomination_id] = Nomination(
            sponsor_id=sponsor_id,
            candidate_id=candidate_id,
            candidate_activity=candidate_activity,
            invitation_id=invitation_id,
            note=note,
            exception_reason=exception_reason,
            window_closes_at=window_closes_at,
            nominated_at=at,
            status="invited" if candidate_id is None else "open",
        )

    def candidate_joined(
        self,
        nomination_id: str,
        member_id: str,
        activity_code: str | None,
        places: CandidatePlaces,
        activities: Mapping[str, str | None],
        at: datetime,
    ) -> None:
        """An invited candidate accepted the invitation and filled their card:
        check them now. Outside the area (or already in): refused with the
        reason. Otherwise the objection window opens; if the one-per-profession
        rule refuses them, the admins decide when it closes (they may admit
        with an exception), as for any other candidate."""
        n = self.nomination(nomination_id)
        if n.status != "invited":
            return
        candidate = Candidate(member_id=member_id, activity_code=activity_code, places=places)
        try:
            self._check_place(candidate)
        except (RuleViolation, Conflict) as refused:
            self._joined(
                nomination_id=nomination_id,
                member_id=member_id,
                activity_code=activity_code,
                window_closes_at=None,
                at=at,
            )
            self._rejected(
                nomination_id=nomination_id,
                candidate_id=member_id,
                decided_by=None,
                reason=refused.message,
                rule=refused.rule or "already_member",
                at=at,
            )
            return
        self._joined(
            nomination_id=nomination_id,
            member_id=member_id,
            activity_code=activity_code,
            window_closes_at=at + timedelta(days=self.rules.objection_window_days),
            at=at,
        )
        if self.rules.admission_mode == "open":
            try:
                exception = self._non_competition(
                    member_id, activity_code, activities, n.exception_reason
                )
            except RuleViolation:
                self._window_closed(
                    nomination_id=nomination_id,
                    outcome="awaiting_decision",
                    objection_count=0,
                    at=at,
                )
                return
            self._admit(nomination_id, decided_by=None, exception_reason=exception, at=at)

    @event("CandidateJoinedNetwork")
    def _joined(
        self,
        nomination_id: str,
        member_id: str,
        activity_code: str | None,
        window_closes_at: datetime | None,
        at: datetime,
    ) -> None:
        n = self.nominations[nomination_id]
        n.candidate_id = member_id
        n.candidate_activity = activity_code
        n.window_closes_at = window_closes_at
        n.status = "open"

    def raise_objection(
        self, nomination_id: str, objector_id: str, reason: str, at: datetime
    ) -> None:
        n = self.nomination(nomination_id)
        if not self.is_member(objector_id):
            raise Forbidden(t("only members of the hub may object"))
        if n.status != "open" or n.window_closes_at is None or at >= n.window_closes_at:
            raise RuleViolation(t("the objection window is not open"), rule="objection_window")
        if objector_id == n.candidate_id:
            raise Forbidden(t("a candidate cannot object to themself"))
        if n.has_objected(objector_id):
            raise Conflict(t("you have already objected to this candidate"))
        self._objection_raised(
            nomination_id=nomination_id,
            objector_id=objector_id,
            reason=text(reason, "reason", 1000, required=True),
            at=at,
        )

    @event("ObjectionRaised")
    def _objection_raised(
        self, nomination_id: str, objector_id: str, reason: str, at: datetime
    ) -> None:
        self.nominations[nomination_id].objections.append(Objection(objector_id, reason, at))

    def close_window(
        self, nomination_id: str, activities: Mapping[str, str | None], at: datetime
    ) -> bool:
        """When the window has closed: silence means consent in co-optation
        mode; objections, approval mode or a rule now refusing leave the
        decision to the admins. Returns False if there was nothing to do."""
        n = self.nomination(nomination_id)
        if n.status != "open" or n.window_closes_at is None or at < n.window_closes_at:
            return False
        outcome = "admitted"
        exception = n.exception_reason
        if n.objections or self.rules.admission_mode != "cooptation":
            outcome = "awaiting_decision"
        else:
            try:
                exception = self._non_competition(
                    n.candidate_id, n.candidate_activity, activities, n.exception_reason
                )
            except RuleViolation:
                outcome = "awaiting_decision"
        self._window_closed(
            nomination_id=nomination_id,
            outcome=outcome,
            objection_count=len(n.objections),
            at=at,
        )
        if outcome == "admitted":
            self._admit(nomination_id, decided_by=None, exception_reason=exception, at=at)
        return True

    @event("ObjectionWindowClosed")
    def _window_closed(
        self, nomination_id: str, outcome: str, objection_count: int, at: datetime
    ) -> None:
        if outcome == "awaiting_decision":
            self.nominations[nomination_id].status = "awaiting_decision"

    def _decidable(
        self, nomination_id: str, statuses: tuple[str, ...] = ("open", "awaiting_decision")
    ) -> Nomination:
        n = self.nomination(nomination_id)
        if n.status not in statuses:
            raise Conflict(
                DECIDED.get(n.status)
                or t(
                    "this nomination is {status}: nothing to decide",
                    status=n.status.replace("_", " "),
                )
            )
        return n

    def admit(
        self,
        nomination_id: str,
        by: str,
        activities: Mapping[str, str | None],
        exception_reason: str | None,
        at: datetime,
    ) -> None:
        n = self._decidable(nomination_id)
        exception_reason = text(exception_reason, "exception_reason", 500) or n.exception_reason
        if self.is_member(n.candidate_id):
            raise Conflict(t("already a member of this hub"))
        recorded = self._non_competition(
            n.candidate_id, n.candidate_activity, activities, exception_reason
        )
        self._admit(nomination_id, decided_by=by, exception_reason=recorded, at=at)

    def _admit(
        self, nomination_id: str, decided_by: str | None, exception_reason: str | None, at: datetime
    ) -> None:
        n = self.nominations[nomination_id]
        assert n.candidate_id is not None  # every caller admits a candidate who has joined
        self._admitted(
            nomination_id=nomination_id,
            member_id=n.candidate_id,
            sponsor_id=n.sponsor_id,
            activity_code=n.candidate_activity,
            rules_version=self.rules_version,
            exception_reason=exception_reason,
            decided_by=decided_by,
            at=at,
        )
        self._lift_if_grown(at)

    def join(
        self,
        member_id: str,
        activity_code: str | None,
        places: CandidatePlaces,
        activities: Mapping[str, str | None],
        at: datetime,
    ) -> None:
        """Open hubs: a member of the network joins by themself."""
        if self.rules.admission_mode != "open":
            raise RuleViolation(
                t("this hub admits by co-optation: ask a member to nominate you"),
                rule="admission_mode",
            )
        self.check_candidate(
            Candidate(member_id=member_id, activity_code=activity_code, places=places),
            activities,
            None,
        )
        self._admitted(
            nomination_id=None,
            member_id=member_id,
            sponsor_id=None,
            activity_code=activity_code,
            rules_version=self.rules_version,
            exception_reason=None,
            decided_by=member_id,
            at=at,
        )
        self._lift_if_grown(at)

    @event("MemberAdmitted")
    def _admitted(
        self,
        nomination_id: str | None,
        member_id: str,
        sponsor_id: str | None,
        activity_code: str | None,
        rules_version: int,
        exception_reason: str | None,
        decided_by: str | None,
        at: datetime,
    ) -> None:
        self.members[member_id] = Membership(
            sponsor_id=sponsor_id,
            admitted_at=at,
            rules_version=rules_version,
            activity_code=activity_code,
            exception_reason=exception_reason,
        )
        if nomination_id is not None:
            n = self.nominations[nomination_id]
            n.status = "admitted"
            n.decided_at = at
            n.exception_reason = exception_reason

    def _lift_if_grown(self, at: datetime) -> None:
        rules = self.rules
        if (
            rules.non_competition
            and not rules.non_competition_lifted
            and rules.non_competition_lift_at is not None
            and len(self.members) >= rules.non_competition_lift_at
        ):
            self._rules_changed(
                version=self.rules_version + 1,
                rules=replace(rules, non_competition_lifted=True).to_dict(),
                changed_by=None,
                reason=f"lifted automatically: the hub reached {rules.non_competition_lift_at} members",
                grandfathered=[],
                # just after the admission (or rules change) that caused it:
                # that member was admitted under the previous version
                at=at + timedelta(microseconds=1),
            )

    def reject(self, nomination_id: str, by: str, reason: str, at: datetime) -> None:
        n = self._decidable(nomination_id, PENDING)  # an invitee may be refused before joining
        self._rejected(
            nomination_id=nomination_id,
            candidate_id=n.candidate_id,
            decided_by=by,
            reason=text(reason, "reason", 1000, required=True),
            rule=None,
            at=at,
        )

    @event("AdmissionRejected")
    def _rejected(
        self,
        nomination_id: str,
        candidate_id: str | None,
        decided_by: str | None,
        reason: str,
        rule: str | None,
        at: datetime,
    ) -> None:
        n = self.nominations[nomination_id]
        n.status = "rejected"
        n.decided_at = at
        n.decision_reason = reason
        n.rule = rule

    # -- leaving ---------------------------------------------------------------

    def _check_not_last_admin(self, member_id: str) -> None:
        if self.co_admins == [member_id]:
            raise RuleViolation(
                t("a hub always keeps at least one co-admin: name another one first"),
                rule="last_co_admin",
            )

    def leave(self, member_id: str, at: datetime) -> None:
        if not self.is_member(member_id):
            raise NotFound(t("you are not a member of this hub"))
        self._check_not_last_admin(member_id)
        self._left(member_id=member_id, removed_by=None, reason=None, at=at)

    def remove(self, member_id: str, by: str, reason: str, at: datetime) -> None:
        if not self.is_member(member_id):
            raise NotFound(t("member not found in this hub"))
        self._check_not_last_admin(member_id)
        self._left(
            member_id=member_id,
            removed_by=by,
            reason=text(reason, "reason", 1000, required=True),
            at=at,
        )

    @event("MemberLeft")
    def _left(
        self, member_id: str, removed_by: str | None, reason: str | None, at: datetime
    ) -> None:
        self.members.pop(member_id, None)
        if member_id in self.co_admins:
            self.co_admins = [m for m in self.co_admins if m != member_id]
        if member_id in self.roster:
            self.roster = [m for m in self.roster if m != member_id]
        if self.facilitator_id == member_id:
            self.facilitator_id = None
            self.term_ends_at = None
            self.term_meetup_limit = None
            self.meetups_this_term = 0

    # -- erasure (docs/erasure.md) ----------------------------------------------

    def hand_on_erased(self, member_id: str, at: datetime) -> bool:
        """A member of the network was erased: they cannot act any more, so
        what they held that others depend on is handed on, with the hub's
        usual events. Their membership stays (counts do not change). They
        leave the roster; a facilitator hands over to the next volunteer as
        a hand-over does (without going back to the roster), or, with nobody
        on it, the hub has no facilitator (`FacilitatorChanged` to none); a
        co-admin stops being one (the last one too: the network's tenant
        admins administer every hub); a nomination of theirs still pending
        is refused (rule `erased`). False when there was nothing to do
        (asked again: nothing more)."""
        changed = False
        if self.facilitator_id == member_id:
            roster = [m for m in self.roster if m != member_id]
            next_id: str | None = roster[0] if roster else None
            rest = roster[1:]
            self._facilitator_changed(
                facilitator_id=next_id,
                previous_id=member_id,
                term_ends_at=(
                    at + timedelta(days=self.rules.facilitator_term_days) if next_id else None
                ),
                roster=rest,
                term_meetups=self.rules.facilitator_term_meetups if next_id else None,
                ended_by=None,
            )
            changed = True
        elif member_id in self.roster:
            self._roster_changed(roster=[m for m in self.roster if m != member_id])
            changed = True
        if member_id in self.co_admins:
            self._co_admin_removed(member_id=member_id, by=member_id)
            changed = True
        for nomination_id, n in list(self.nominations.items()):
            if n.candidate_id == member_id and n.is_pending:
                self._rejected(
                    nomination_id=nomination_id,
                    candidate_id=member_id,
                    decided_by=None,
                    reason="the candidate's personal data was erased",
                    rule="erased",
                    at=at,
                )
                changed = True
        return changed

    # -- co-admins -------------------------------------------------------------

    def add_co_admin(self, member_id: str, by: str) -> None:
        if not self.is_member(member_id):
            raise NotFound(t("member not found in this hub"))
        if member_id in self.co_admins:
            raise Conflict(t("already a co-admin"))
        self._co_admin_added(member_id=member_id, by=by)

    @event("CoAdminAdded")
    def _co_admin_added(self, member_id: str, by: str) -> None:
        self.co_admins = [*self.co_admins, member_id]

    def remove_co_admin(self, member_id: str, by: str) -> None:
        if member_id not in self.co_admins:
            raise NotFound(t("not a co-admin of this hub"))
        self._check_not_last_admin(member_id)
        self._co_admin_removed(member_id=member_id, by=by)

    @event("CoAdminRemoved")
    def _co_admin_removed(self, member_id: str, by: str) -> None:
        self.co_admins = [m for m in self.co_admins if m != member_id]

    # -- the rotating facilitator ---------------------------------------------

    def volunteer(self, member_id: str) -> None:
        if not self.is_member(member_id):
            raise Forbidden(t("only members of the hub may volunteer"))
        if member_id in self.roster or member_id == self.facilitator_id:
            raise Conflict(t("already on the facilitator roster"))
        self._roster_changed(roster=[*self.roster, member_id])

    def withdraw(self, member_id: str) -> None:
        if member_id not in self.roster:
            raise NotFound(t("not on the facilitator roster"))
        self._roster_changed(roster=[m for m in self.roster if m != member_id])

    def swap_turns(self, first: str, second: str, by: str, by_admin: bool) -> None:
        """A co-admin swaps any two turns; a volunteer may only give their own
        turn to someone after them, never jump ahead of someone who has not
        agreed."""
        if not by_admin and not self._gives_own_turn(by, first, second):
            raise Forbidden(
                t(
                    "only a co-admin may swap turns; a volunteer may give their own turn to "
                    "someone after them"
                )
            )
        if first == second:
            raise InvalidInput(t("name two different members"), field="second_id")
        if first not in self.roster or second not in self.roster:
            raise NotFound(t("both members must be on the roster"))
        roster = list(self.roster)
        i, j = roster.index(first), roster.index(second)
        roster[i], roster[j] = roster[j], roster[i]
        self._roster_changed(roster=roster)

    def _gives_own_turn(self, member_id: str, first: str, second: str) -> bool:
        if member_id not in (first, second):
            return False
        other = second if member_id == first else first
        roster = self.roster
        return (
            member_id in roster
            and other in roster
            and roster.index(member_id) < roster.index(other)
        )

    @event("FacilitatorRosterChanged")
    def _roster_changed(self, roster: list[str]) -> None:
        self.roster = list(roster)

    def hand_over(self, at: datetime, by: str, by_admin: bool) -> None:
        """The next volunteer takes over for a term; the outgoing facilitator
        goes to the end of the roster. A co-admin or the facilitator may hand over."""
        if not by_admin and by != self.facilitator_id:
            raise Forbidden(t("only a co-admin or the current facilitator may hand over"))
        if not self.roster:
            raise RuleViolation(
                t("nobody has volunteered: the roster is empty"), rule="facilitator_roster"
            )
        self._next_term(at, ended_by=None)

    def meetup_closed(self, meetup_id: str, at: datetime) -> bool:
        """A meetup of this hub was closed: it counts in the current term, and
        when the term's meetups are done, the term ends (`_next_term`). Without
        a facilitator there is no term: nothing is counted (False)."""
        if self.facilitator_id is None:
            return False
        self._meetup_counted(meetup_id=meetup_id, at=at)
        limit = self.term_meetup_limit
        if limit is not None and self.meetups_this_term >= limit:
            self._next_term(at, ended_by="meetups")
        return True

    @event("MeetupCounted")
    def _meetup_counted(self, meetup_id: str, at: datetime) -> None:
        self.meetups_this_term += 1

    def term_is_over(self, at: datetime) -> bool:
        return self.term_ends_at is not None and at >= self.term_ends_at

    def end_term_if_due(self, at: datetime) -> bool:
        """The term's days are over (the scheduler asks): the term ends
        (`_next_term`). False if it is not over (or there is no term)."""
        if self.facilitator_id is None or not self.term_is_over(at):
            return False
        self._next_term(at, ended_by="days")
        return True

    def _next_term(self, at: datetime, ended_by: str | None) -> None:
        """A new term, its length fixed now from the rules in force (days, and
        meetups if the hub counts them): the next volunteer takes over and the
        outgoing facilitator goes to the end of the roster. When a term ends by
        itself (`ended_by`: "meetups" or "days") and nobody has volunteered,
        the facilitator stays for a new term."""
        previous = self.facilitator_id
        if self.roster:
            next_id, *rest = self.roster
            roster = [*rest, previous] if previous is not None else rest
        else:
            assert ended_by is not None and previous is not None  # hand_over checks the roster
            next_id, roster = previous, []
        self._facilitator_changed(
            facilitator_id=next_id,
            previous_id=previous,
            term_ends_at=at + timedelta(days=self.rules.facilitator_term_days),
            roster=roster,
            term_meetups=self.rules.facilitator_term_meetups,
            ended_by=ended_by,
        )

    @event("FacilitatorChanged")
    def _facilitator_changed(
        self,
        facilitator_id: str | None,
        previous_id: str | None,
        term_ends_at: datetime | None,
        roster: list[str],
        # added with the count of meetups: events stored before have neither
        term_meetups: int | None = None,
        ended_by: str | None = None,  # None: handed over on demand
    ) -> None:
        self.facilitator_id = facilitator_id
        self.term_ends_at = term_ends_at
        self.roster = list(roster)
        self.term_meetup_limit = term_meetups
        self.meetups_this_term = 0


# -- personal data (services/runtime/personal.py, docs/erasure.md) -------------
# A sponsor's note, an objector's reason: under their author's key. What is
# about a member (their activity code: in a small network it says who they
# are; why they were admitted past the one-per-profession rule, refused or
# removed): under theirs. In the events and in the hub's snapshots.
personal(Hub.Created, founder_activity="founder_id")
personal(
    Hub.CandidateNominated,
    note="sponsor_id",
    candidate_activity="candidate_id",
    exception_reason="candidate_id",
)
personal(Hub.CandidateJoinedNetwork, activity_code="member_id")
personal(Hub.ObjectionRaised, reason="objector_id")
personal(Hub.MemberAdmitted, activity_code="member_id", exception_reason="member_id")
personal(Hub.AdmissionRejected, reason="candidate_id")
personal(Hub.MemberLeft, reason="member_id")
personal_state(
    Hub,
    members=each(activity_code=KEY, exception_reason=KEY),
    nominations=each(
        note="sponsor_id",
        candidate_activity="candidate_id",
        exception_reason="candidate_id",
        decision_reason="candidate_id",
        objections=each(reason="objector_id"),
    ),
)
