"""Assembly of the webhooks service: the endpoints' application and read
model, the secrets' box, the delivery reactions (one per upstream service)
and the dispatcher. `python -m services.webhooks` runs it.

Settings of its own (docs/webhooks.md): `QUARTIER_WEBHOOKS_KEY` (the key
that seals signing secrets; generated in the data dir outside production),
`QUARTIER_WEBHOOKS_ALLOW_PRIVATE` (`true`/`false`: whether URLs may reach
private and loopback addresses; `true` by default in development and tests,
always `false` in production), `QUARTIER_WEBHOOKS_TIMEOUT` (seconds per
attempt, 10 by default, at most 30) and `QUARTIER_WEBHOOKS_RETENTION_DAYS`
(how long finished deliveries and attempts are kept, and so the replay
window: 30 by default, from 4 — past the three days of retries — to 3650).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta

from services.runtime.clock import SYSTEM_CLOCK, Clock
from services.runtime.host import ServiceHost, run_service
from services.runtime.mail import Mailer, mailer_for
from services.runtime.settings import ConfigurationError, Settings
from services.webhooks import delivery
from services.webhooks.application import Webhooks
from services.webhooks.contract import SERVICE
from services.webhooks.delivery import Dispatcher, Options
from services.webhooks.handlers import WebhooksHandlers
from services.webhooks.publication import to_public
from services.webhooks.secrets import SecretBox, key_material
from services.webhooks.secrets import metadata as secrets_metadata
from services.webhooks.views import DELIVERIES, KEYS, EndpointOwners, EndpointViews


def options_from_env(settings: Settings, environ: Mapping[str, str] | None = None) -> Options:
    """The service's options from QUARTIER_WEBHOOKS_* (see the module's
    docstring). Raises ConfigurationError."""
    env = os.environ if environ is None else environ
    raw = env.get("QUARTIER_WEBHOOKS_ALLOW_PRIVATE", "").strip().lower()
    if raw not in ("", "true", "false"):
        raise ConfigurationError("QUARTIER_WEBHOOKS_ALLOW_PRIVATE is true or false")
    allow_private = (raw or ("false" if settings.is_prod else "true")) == "true"
    if allow_private and settings.is_prod:
        raise ConfigurationError("QUARTIER_WEBHOOKS_ALLOW_PRIVATE may not be true in production")
    try:
        timeout = float(env.get("QUARTIER_WEBHOOKS_TIMEOUT", "10"))
    except ValueError:
        raise ConfigurationError("QUARTIER_WEBHOOKS_TIMEOUT is a number of seconds") from None
    if not 0 < timeout <= 30:
        raise ConfigurationError("QUARTIER_WEBHOOKS_TIMEOUT is more than 0 and at most 30")
    try:
        days = int(env.get("QUARTIER_WEBHOOKS_RETENTION_DAYS", "30"))
    except ValueError:
        raise ConfigurationError("QUARTIER_WEBHOOKS_RETENTION_DAYS is a number of days") from None
    if not 4 <= days <= 3650:
        raise ConfigurationError("QUARTIER_WEBHOOKS_RETENTION_DAYS is from 4 to 3650")
    return Options(allow_private=allow_private, timeout=timeout, retention=timedelta(days=days))


def build(
    settings: Settings,
    clock: Clock = SYSTEM_CLOCK,
    options: Options | None = None,
    mailer: Mailer | None = None,
) -> ServiceHost:
    options = options or options_from_env(settings)
    host = ServiceHost(SERVICE, settings, clock)
    app = host.new_app(Webhooks, translate=to_public)
    projector = host.add_projection(app, EndpointViews())
    host.add_projection(app, EndpointOwners())
    host.add_tables(DELIVERIES)
    host.add_tables(KEYS)
    secrets_metadata.create_all(host.engine)
    box = SecretBox(key_material(settings))

    def project() -> None:
        for p in host.projectors:
            p.after_write()

    dispatcher = Dispatcher(host, app, box, options, mailer or mailer_for(settings), project)
    host.add_endpoints(WebhooksHandlers(host, app, box, options, dispatcher.wake).endpoints())
    for reaction in delivery.reactions(host, dispatcher.wake):
        host.add_reaction(reaction)
    host.add_reaction(delivery.key_reaction(host, dispatcher))
    host.add_job("deliveries", dispatcher.run)
    host.context = {
        "app": app,
        "projector": projector,
        "engine": host.engine,
        "dispatcher": dispatcher,
        "options": options,
        "box": box,
    }
    return host


def main() -> None:
    run_service(SERVICE, build)
