"""The erasure of a member (services/identity/erasure.py): its aggregate."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Final
from uuid import UUID, uuid5

from eventsourcing.domain import event

from services.identity.domain import NAMESPACE, slot_key
from services.runtime.eventstore import TenantAggregate
from services.runtime.i18n import Locale, locale_of

FORMER_MEMBER = "former member"
"""How an erased member's directory row is named in storage; it is shown
in the network's locale (`former_member`)."""

FORMER_MEMBER_NAMES: dict[Locale, str] = {"fr": "ancien membre", "en": FORMER_MEMBER}


def former_member(locale: str | None) -> str:
    """An erased member's display name, in the network's locale."""
    return FORMER_MEMBER_NAMES[locale_of(locale)]


REQUESTED: Final = "requested"
COMPLETED: Final = "completed"


def address_subject(tenant_id: str, email: str) -> str:
    """The key subject of an e-mail address (invitations to it, before and
    after it is a member's): the id of its invitation slot."""
    return str(slot_key(tenant_id, email))


class Erasure(TenantAggregate):
    """One member's erasure: who asked, when, whose keys go, and when done."""

    noun = "erasure"
    Requested: ClassVar[type[Any]]
    Completed: ClassVar[type[Any]]

    @staticmethod
    def create_id(tenant_id: str, member_id: str) -> UUID:
        return uuid5(NAMESPACE, f"erasure:{tenant_id}:{member_id}")

    @event("Requested")
    def __init__(
        self,
        tenant_id: str,
        member_id: str,
        requested_by: str,
        subjects: list[str],
        at: datetime,
    ):
        self.tenant_id = tenant_id
        self.member_id = member_id
        self.requested_by = requested_by
        self.subjects = list(subjects)  # key subjects (ids), not personal
        self.requested_at = at
        self.status = REQUESTED
        self.completed_at: datetime | None = None

    def complete(self, invitation_ids: list[str], at: datetime) -> bool:
        if self.status == COMPLETED:
            return False
        self._completed(member_id=self.member_id, invitation_ids=sorted(invitation_ids), at=at)
        return True

    @event("Completed")
    def _completed(self, member_id: str, invitation_ids: list[str], at: datetime) -> None:
        self.status = COMPLETED
        self.completed_at = at
