"""Assembly of the meetups service: application, read models, endpoints,
outbox relay and the reaction that keeps the local hub directory.
`python -m services.events` runs it."""

from __future__ import annotations

from services.events import reactions
from services.events.application import Meetups
from services.events.contract import SERVICE
from services.events.handlers import all_handlers
from services.events.publication import to_public
from services.events.views import MeetupViews
from services.events.views.directory import DIRECTORY
from services.runtime.clock import SYSTEM_CLOCK, Clock
from services.runtime.host import ServiceHost, run_service
from services.runtime.settings import Settings


def build(settings: Settings, clock: Clock = SYSTEM_CLOCK) -> ServiceHost:
    host = ServiceHost(SERVICE, settings, clock)
    app = host.new_app(Meetups, translate=to_public)
    projector = host.add_projection(app, MeetupViews())
    host.add_tables(DIRECTORY)
    for handlers in all_handlers(host, app):
        host.add_endpoints(handlers.endpoints())
    host.add_reaction(reactions.hub_directory(host))
    host.context = {"app": app, "projector": projector, "engine": host.engine}
    return host


def main() -> None:
    run_service(SERVICE, build)
