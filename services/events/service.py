"""Assembly of the meetups service: application, read models, endpoints,
outbox relay, the reaction that keeps the local hub directory, and the mails
(the planner reacting to this service's own events, the sender, the reminder
scheduler). `python -m services.events` runs it."""

from __future__ import annotations

from services.events import erasure, notify, reactions
from services.events.application import Meetups
from services.events.contract import SERVICE
from services.events.handlers import all_handlers
from services.events.notify_handlers import MailHandlers
from services.events.publication import to_public
from services.events.scheduler import ReminderScheduler
from services.events.views import MeetupViews
from services.events.views.directory import DIRECTORY
from services.runtime.clock import SYSTEM_CLOCK, Clock
from services.runtime.host import ServiceHost, run_service
from services.runtime.mail import Mailer, mailer_for
from services.runtime.settings import Settings


def build(
    settings: Settings, clock: Clock = SYSTEM_CLOCK, mailer: Mailer | None = None
) -> ServiceHost:
    host = ServiceHost(SERVICE, settings, clock)
    app = host.new_app(Meetups, translate=to_public)
    projector = host.add_projection(app, MeetupViews())
    host.add_tables(DIRECTORY)
    for handlers in all_handlers(host, app):
        host.add_endpoints(handlers.endpoints())
    host.add_reaction(reactions.hub_directory(host))
    # mails: planned from this service's own events, sent from the outbox
    host.add_tables(notify.OUTBOX)
    sender = notify.MailSender(host, app, mailer or mailer_for(settings))
    reminders = ReminderScheduler(host, app, projector)
    host.add_endpoints(MailHandlers(host, app).endpoints())
    host.add_reaction(notify.mail_reaction(host, projector, sender.wake))
    host.add_job("mail", sender.run)
    host.add_job("reminders", reminders.run)
    host.add_reaction(erasure.reaction(host, app))
    host.add_endpoints(erasure.VisitorErasure(host, app).endpoints())
    host.context = {
        "app": app,
        "projector": projector,
        "engine": host.engine,
        "mail": sender,
        "reminders": reminders,
    }
    return host


def main() -> None:
    run_service(SERVICE, build)
