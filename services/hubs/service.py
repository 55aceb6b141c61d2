"""Assembly of the hubs service: application, read models, endpoints, outbox
relay, reactions to identity's and the meetups service's events, and the
schedulers of objection windows and facilitator terms. `python -m
services.hubs` runs it."""

from __future__ import annotations

from services.hubs import erasure, reactions
from services.hubs.application import Hubs
from services.hubs.contract import SERVICE
from services.hubs.handlers import HubsHandlers
from services.hubs.publication import to_public
from services.hubs.scheduler import TermEnder, WindowCloser
from services.hubs.views import HubViews
from services.hubs.views.directory import DIRECTORY
from services.runtime.clock import SYSTEM_CLOCK, Clock
from services.runtime.host import ServiceHost, run_service
from services.runtime.settings import Settings


def build(settings: Settings, clock: Clock = SYSTEM_CLOCK) -> ServiceHost:
    host = ServiceHost(SERVICE, settings, clock)
    app = host.new_app(Hubs, translate=to_public)
    projector = host.add_projection(app, HubViews())
    host.add_tables(DIRECTORY)
    host.add_endpoints(HubsHandlers(host, app).endpoints())
    host.add_reaction(reactions.directory_reaction(host))
    host.add_reaction(reactions.admissions(host, app))
    host.add_reaction(reactions.facilitator_terms(host, app, projector))
    host.add_reaction(erasure.reaction(host, app, projector))
    closer = WindowCloser(host, app, projector)
    host.add_job("objection-windows", closer.run)
    terms = TermEnder(host, app, projector)
    host.add_job("facilitator-terms", terms.run)
    host.context = {
        "app": app,
        "projector": projector,
        "engine": host.engine,
        "closer": closer,
        "terms": terms,
    }
    return host


def main() -> None:
    run_service(SERVICE, build)
