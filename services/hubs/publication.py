"""Which of hubs' domain events go on the public stream, and as what: ids and
non-personal facts. Free texts (notes, objection and removal reasons,
exception reasons) stay inside hubs."""

from __future__ import annotations

from typing import Any

from services.hubs import contract as c
from services.hubs.domain import Hub


def to_public(e: Any) -> c.HubsEvent | None:
    base = {"tenant_id": e.tenant_id, "hub_id": str(e.originator_id)}
    match e:
        case Hub.Created():
            return c.HubCreated(
                **base,
                name=e.name,
                kind=e.kind,
                founder_id=e.founder_id,
                rules=c.Rules(**e.rules),
            )
        case Hub.RulesChanged():
            return c.HubRulesChanged(
                **base,
                version=e.version,
                rules=c.Rules(**e.rules),
                changed_by=e.changed_by,
                automatic=e.changed_by is None,
                grandfathered=list(e.grandfathered),
            )
        case Hub.CandidateNominated():
            return c.CandidateNominated(
                **base,
                nomination_id=e.nomination_id,
                sponsor_id=e.sponsor_id,
                candidate_id=e.candidate_id,
                invitation_id=e.invitation_id,
                window_closes_at=e.window_closes_at,
            )
        case Hub.CandidateJoinedNetwork():
            return c.CandidateJoinedNetwork(
                **base,
                nomination_id=e.nomination_id,
                candidate_id=e.member_id,
                window_closes_at=e.window_closes_at,
            )
        case Hub.ObjectionRaised():
            return c.ObjectionRaised(**base, nomination_id=e.nomination_id)
        case Hub.ObjectionWindowClosed():
            return c.ObjectionWindowClosed(
                **base,
                nomination_id=e.nomination_id,
                objection_count=e.objection_count,
                outcome=e.outcome,
            )
        case Hub.MemberAdmitted():
            return c.MemberAdmitted(
                **base,
                member_id=e.member_id,
                sponsor_id=e.sponsor_id,
                nomination_id=e.nomination_id,
                rules_version=e.rules_version,
                with_exception=e.exception_reason is not None,
                decided_by=e.decided_by,
            )
        case Hub.AdmissionRejected():
            return c.AdmissionRejected(
                **base,
                nomination_id=e.nomination_id,
                candidate_id=e.candidate_id,
                rule=e.rule,
                decided_by=e.decided_by,
            )
        case Hub.MemberLeft():
            if e.removed_by is None:
                return c.MemberLeft(**base, member_id=e.member_id)
            return c.MemberRemoved(**base, member_id=e.member_id, removed_by=e.removed_by)
        case Hub.CoAdminAdded():
            return c.CoAdminAdded(**base, member_id=e.member_id, added_by=e.by)
        case Hub.CoAdminRemoved():
            return c.CoAdminRemoved(**base, member_id=e.member_id, removed_by=e.by)
        case Hub.FacilitatorRosterChanged():
            return c.FacilitatorRosterChanged(**base, roster=list(e.roster))
        case Hub.FacilitatorChanged():
            return c.FacilitatorChanged(
                **base,
                facilitator_id=e.facilitator_id,
                previous_id=e.previous_id,
                term_ends_at=e.term_ends_at,
                # events stored before terms counted meetups have neither
                term_meetups=getattr(e, "term_meetups", None),
                automatic=getattr(e, "ended_by", None) is not None,
                term_ended_by=getattr(e, "ended_by", None),
            )
    return None
