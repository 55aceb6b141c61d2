"""Which of meetups' domain events go on the public stream, and as what: ids
and non-personal facts (times, counts, states). Never a visitor's name or
e-mail address, a venue, a title, a reason or any free text."""

from __future__ import annotations

from typing import Any

from services.events import contract as c
from services.events.domain import DatePoll, Meetup, MeetupSeries, Rsvp, Visitor, WorkshopProposal
from services.events.domain.calendar import to_utc


def to_public(e: Any) -> c.EventsEvent | None:
    tenant_id, aggregate_id = e.tenant_id, str(e.originator_id)
    match e:
        case MeetupSeries.Created():
            return c.SeriesCreated(
                tenant_id=tenant_id,
                hub_id=e.hub_id,
                series_id=aggregate_id,
                rrule=e.rrule,
                timezone=e.timezone,
            )
        case Meetup.Scheduled():
            return c.MeetupScheduled(
                tenant_id=tenant_id,
                hub_id=e.hub_id,
                meetup_id=aggregate_id,
                series_id=e.series_id,
                kind=e.kind,
                starts_at=to_utc(e.local_start, e.timezone),
                timezone=e.timezone,
                capacity=e.capacity,
                previous_meetup_id=e.previous_meetup_id,
                poll_id=e.poll_id,
                host_id=e.host_id,
            )
        case Meetup.Rescheduled():
            return c.MeetupRescheduled(
                tenant_id=tenant_id,
                hub_id=e.hub_id,
                meetup_id=aggregate_id,
                starts_at=e.starts_at,
                capacity=e.capacity,
                sequence=e.sequence,
            )
        case Meetup.Cancelled():
            return c.MeetupCancelled(
                tenant_id=tenant_id, hub_id=e.hub_id, meetup_id=aggregate_id, sequence=e.sequence
            )
        case Rsvp.Answered():
            return c.RsvpGiven(
                tenant_id=tenant_id,
                hub_id=e.hub_id,
                meetup_id=e.meetup_id,
                member_id=e.member_id,
                answer=e.answer,
                seat=e.seat,
                by_link=e.by_link,
            )
        case Rsvp.Changed():
            return c.RsvpChanged(
                tenant_id=tenant_id,
                hub_id=e.hub_id,
                meetup_id=e.meetup_id,
                member_id=e.member_id,
                answer=e.answer,
                seat=e.seat,
                previous=e.previous,
                by_link=e.by_link,
            )
        case Rsvp.Promoted():
            return c.PromotedFromWaitlist(
                tenant_id=tenant_id, hub_id=e.hub_id, meetup_id=e.meetup_id, member_id=e.member_id
            )
        case DatePoll.Opened():
            return c.DatePollOpened(
                tenant_id=tenant_id, hub_id=e.hub_id, poll_id=aggregate_id, slots=len(e.slots)
            )
        case DatePoll.Voted():
            return c.DatePollVoted(
                tenant_id=tenant_id, hub_id=e.hub_id, poll_id=aggregate_id, member_id=e.member_id
            )
        case DatePoll.Closed():
            return c.DatePollClosed(
                tenant_id=tenant_id,
                hub_id=e.hub_id,
                poll_id=aggregate_id,
                meetup_id=e.meetup_id,
                starts_at=e.starts_at,
            )
        case Meetup.Held():
            return c.MeetupHeld(tenant_id=tenant_id, hub_id=e.hub_id, meetup_id=aggregate_id)
        case Meetup.AttendanceMarked():
            return c.AttendanceRecorded(
                tenant_id=tenant_id,
                hub_id=e.hub_id,
                meetup_id=aggregate_id,
                member_id=e.member_id,
                status=e.status,
                starts_at=e.starts_at,
            )
        case Meetup.Closed():
            return c.MeetupClosed(
                tenant_id=tenant_id,
                hub_id=e.hub_id,
                meetup_id=aggregate_id,
                next_meetup_id=e.next_meetup_id,
                present=e.present,
                visitors=e.visitors,
            )
        case Meetup.CardDrawn():
            return c.MissionCardDrawn(
                tenant_id=tenant_id,
                hub_id=e.hub_id,
                meetup_id=aggregate_id,
                draw_id=e.draw_id,
                member_id=e.member_id,
                card_id=e.card_id,
                seed=e.seed,
            )
        case Meetup.CardCompleted():
            return c.MissionCardCompleted(
                tenant_id=tenant_id,
                hub_id=e.hub_id,
                meetup_id=aggregate_id,
                draw_id=e.draw_id,
                member_id=e.member_id,
            )
        case Meetup.ReminderSent():
            return c.ReminderSent(
                tenant_id=tenant_id,
                hub_id=e.hub_id,
                meetup_id=aggregate_id,
                lead_hours=e.lead_hours,
            )
        case Visitor.Invited():
            return c.VisitorInvited(
                tenant_id=tenant_id,
                hub_id=e.hub_id,
                meetup_id=e.meetup_id,
                visitor_id=aggregate_id,
                invited_by=e.by,
                visits=e.visits,
            )
        case WorkshopProposal.Proposed():
            return c.WorkshopProposed(
                tenant_id=tenant_id,
                hub_id=e.hub_id,
                proposal_id=aggregate_id,
                host_id=e.host_id,
            )
    return None
