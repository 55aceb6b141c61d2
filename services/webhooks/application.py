"""The webhooks application: the event store of endpoints (their signing
secrets are not in it: secrets.py)."""

from __future__ import annotations

from services.runtime.eventstore import ServiceApplication


class Webhooks(ServiceApplication):
    name = "webhooks"
