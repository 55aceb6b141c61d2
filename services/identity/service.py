"""Assembly of the identity service: application, read models, endpoints and
outbox relay on a service host. `python -m services.identity` runs it."""

from __future__ import annotations

from services.identity.apikey_handlers import ApiKeyHandlers
from services.identity.apikeys import ApiKeyViews
from services.identity.application import Identity
from services.identity.contract import SERVICE
from services.identity.erasure import ErasureHandlers, ErasureViews
from services.identity.handlers import IdentityHandlers
from services.identity.publication import to_public
from services.identity.security import PasswordHasher
from services.identity.views import IdentityViews
from services.runtime.clock import SYSTEM_CLOCK, Clock
from services.runtime.host import ServiceHost, run_service
from services.runtime.mail import Mailer, mailer_for
from services.runtime.settings import Settings


def build(
    settings: Settings, clock: Clock = SYSTEM_CLOCK, mailer: Mailer | None = None
) -> ServiceHost:
    host = ServiceHost(SERVICE, settings, clock)
    app = host.new_app(
        Identity, translate=to_public, hasher=PasswordHasher(cheap=settings.env == "test")
    )
    projector = host.add_projection(app, IdentityViews())
    handlers = IdentityHandlers(host, app, mailer or mailer_for(settings))
    host.add_endpoints(handlers.endpoints())
    host.add_projection(app, ApiKeyViews())
    host.add_endpoints(ApiKeyHandlers(host, app, handlers.throttle).endpoints())
    host.add_projection(app, ErasureViews())
    host.add_endpoints(ErasureHandlers(host, app).endpoints())
    host.context = {"app": app, "projector": projector, "engine": host.engine, "handlers": handlers}
    return host


def main() -> None:
    run_service(SERVICE, build)
