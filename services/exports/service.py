"""Assembly of the exports service: its tables, the export job (leader
only), the reaction to identity's erasures, the endpoints. `python -m
services.exports` runs it.

Settings of its own (docs/exports.md): `QUARTIER_EXPORTS_KEY`, the key that
signs download links (at least 32 characters; generated once in the data
dir outside production; every replica needs the same).
"""

from __future__ import annotations

from eventsourcing.persistence import Tracking

from services.exports.contract import SERVICE
from services.exports.handlers import ExportsHandlers
from services.exports.job import Exporter, Options
from services.exports.links import Signer, key_material
from services.exports.views import metadata
from services.runtime.clock import SYSTEM_CLOCK, Clock
from services.runtime.host import ServiceHost, run_service
from services.runtime.reactions import Reaction
from services.runtime.settings import Settings
from services.runtime.stream import CloudEvent

ERASED = "quartier.identity.MemberErased."  # identity's erasure (issue #10 item 7), any version


def erasures(host: ServiceHost, exporter: Exporter) -> Reaction:
    """On identity's `MemberErased`: every archive of the network goes (it
    may hold the person's data). Idempotent: a redelivery changes nothing
    more, so it keeps no position of its own."""

    async def handle(event: CloudEvent, tracking: Tracking) -> None:
        if event.type.startswith(ERASED):
            await host.offload(exporter.forget_tenant, event.tenant)

    return Reaction(name="identity", upstream="identity", handle=handle)


def build(
    settings: Settings, clock: Clock = SYSTEM_CLOCK, options: Options | None = None
) -> ServiceHost:
    options = options or Options()
    host = ServiceHost(SERVICE, settings, clock)
    metadata.create_all(host.engine)
    exporter = Exporter(host, options)
    signer = Signer(key_material(settings))
    host.add_endpoints(ExportsHandlers(host, signer, options, exporter.wake).endpoints())
    host.add_reaction(erasures(host, exporter))
    host.add_job("exports", exporter.run)
    host.context = {"engine": host.engine, "exporter": exporter, "signer": signer}
    return host


def main() -> None:
    run_service(SERVICE, build)
