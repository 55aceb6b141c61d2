"""Assembly of the referrals service: application, read models, endpoints,
outbox relay, the reactions to identity's, hubs' and meetups' events, and
the mails of needs (the planner reacting to this service's own events, the
sender job).
`python -m services.referrals` runs it."""

from __future__ import annotations

from services.referrals import erasure, mail, reactions
from services.referrals.application import Referrals
from services.referrals.contract import SERVICE
from services.referrals.exports import ExportQueries
from services.referrals.handlers import ReferralsHandlers
from services.referrals.publication import to_public
from services.referrals.views import LedgerViews, directory
from services.runtime.clock import SYSTEM_CLOCK, Clock
from services.runtime.host import ServiceHost, run_service
from services.runtime.mail import Mailer, mailer_for
from services.runtime.settings import Settings


def build(
    settings: Settings, clock: Clock = SYSTEM_CLOCK, mailer: Mailer | None = None
) -> ServiceHost:
    host = ServiceHost(SERVICE, settings, clock)
    app = host.new_app(Referrals, translate=to_public)
    projector = host.add_projection(app, LedgerViews())
    for tables in (directory.MEMBERS, directory.HUBS, directory.MEETUPS):
        host.add_tables(tables)
    host.add_endpoints(ReferralsHandlers(host, app).endpoints())
    host.add_endpoints(ExportQueries(host).endpoints())  # for the exports service
    for reaction in reactions.reactions(host):
        host.add_reaction(reaction)
    # needs' mails: planned from this service's own NeedPosted, sent from the outbox
    host.add_tables(mail.OUTBOX)
    sender = mail.NeedMailSender(host, mailer or mailer_for(settings))
    host.add_reaction(mail.mail_reaction(host, projector, sender.wake))
    host.add_job("mail", sender.run)
    host.add_reaction(erasure.reaction(host, app))
    host.add_endpoints(erasure.ProspectErasure(host, app).endpoints())
    host.context = {"app": app, "projector": projector, "engine": host.engine, "mail": sender}
    return host


def main() -> None:
    run_service(SERVICE, build)
