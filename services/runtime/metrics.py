"""Prometheus metrics (prometheus-client) of every service and the gateway.

Labels are bounded: service, request (a contract class name), outcome (`ok`
or an error code), projection, reaction, process. Never a tenant, a member or
an id: their number grows without bound.

A service serves its metrics on `QUARTIER_METRICS_PORT` + 1 + its index in
services/registry.py (identity +1, hubs +2, …) when that setting is given; the
gateway serves them at `/metrics` on its own port.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from services.runtime.logging import get_logger

log = get_logger("quartier.metrics")

REQUESTS = Counter(
    "quartier_requests_total",
    "Commands and queries handled, by outcome (ok or the error code)",
    ["service", "request", "outcome"],
)
REQUEST_SECONDS = Histogram(
    "quartier_request_seconds",
    "Time to handle a command or query, in the service",
    ["service", "request"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RELAY_LAG = Gauge(
    "quartier_relay_lag_events",
    "Events stored but not yet published on the stream",
    ["service"],
)
PROJECTION_LAG = Gauge(
    "quartier_projection_lag_events",
    "Events stored but not yet in a read model",
    ["service", "projection"],
)
REACTION_LAG = Gauge(
    "quartier_reaction_lag_messages",
    "Upstream messages a reaction has yet to handle",
    ["service", "reaction"],
)
REACTION_FAILURES = Counter(
    "quartier_reaction_failures_total",
    "Attempts of a reaction that failed (retried, or parked)",
    ["service", "reaction"],
)
PARKED = Gauge(
    "quartier_parked_events",
    "Events a projection or reaction could not apply (parked)",
    ["service"],
)
REQUEST_RESENDS = Counter(
    "quartier_request_resends_total",
    "Queries and idempotent commands sent again after a quarter of their timeout without"
    " an answer (the replica holding the first send may have died), by the process sending",
    ["service", "request"],
)
NATS_RECONNECTS = Counter(
    "quartier_nats_reconnects_total",
    "Reconnections to NATS",
    ["process"],
)


def serve(port: int, host: str = "127.0.0.1") -> bool:
    """Serve the metrics over HTTP; a port in use is logged, not fatal."""
    try:
        start_http_server(port, addr=host)
    except OSError as e:
        log.warning("metrics.not_served", port=port, error=str(e))
        return False
    log.info("metrics.served", url=f"http://{host}:{port}/metrics")
    return True
