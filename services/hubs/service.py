"""Assembly of the hubs service: application, read models, endpoints, outbox
relay, reactions to identity's events and the objection-window scheduler.
`python -m services.hubs` runs it."""

from __future__ import annotations

import asyncio

from services.hubs import reactions
from services.hubs.application import Hubs
from services.hubs.handlers import HubsHandlers
from services.hubs.publication import to_public
from services.hubs.scheduler import WindowCloser
from services.hubs.views import HubViews, directory_metadata
from services.runtime.clock import SYSTEM_CLOCK, Clock
from services.runtime.host import ServiceHost
from services.runtime.logging import configure_logging
from services.runtime.projection import Projector
from services.runtime.reactions import views_tracking
from services.runtime.settings import Settings

SERVICE = "hubs"


def build(settings: Settings, clock: Clock = SYSTEM_CLOCK) -> ServiceHost:
    host = ServiceHost(SERVICE, settings)
    app = Hubs(env=host.store.application_env("hubs"))
    engine = host.store.views_engine()
    projector = Projector(app, engine, HubViews())
    directory_metadata.create_all(engine)
    views_tracking.metadata.create_all(engine)
    handlers = HubsHandlers(app, projector, engine, host.bus, clock, host.offload)
    closer = WindowCloser(app, engine, projector, clock, host.offload)
    host.add_app(app, translate=to_public)
    host.add_projector(projector)
    host.add_endpoints(handlers.endpoints())
    host.add_reaction(reactions.directory(engine, host.offload))
    host.add_reaction(reactions.admissions(app, engine, host.bus, clock, host.offload))
    host.add_job("objection-windows", closer.run)
    host.closers.append(engine.dispose)
    host.context = {"app": app, "projector": projector, "engine": engine, "closer": closer}
    return host


def main() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_format, settings.log_level, service=SERVICE)
    asyncio.run(build(settings).run_until_signalled())
