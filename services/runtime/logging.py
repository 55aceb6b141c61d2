"""structlog set-up: console lines in development, JSON in production.

Request-scoped values (tenant, correlation id, service) are bound with
`structlog.contextvars`, so every log line of a request carries them. Personal
data (e-mail addresses, names, coordinates) is never passed to a logger.
"""

from __future__ import annotations

import logging
import sys

import structlog

_configured = False


def configure_logging(log_format: str = "console", level: str = "info", service: str = "") -> None:
    global _configured
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    if log_format == "json":
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        # Plain tracebacks: rich's (with local variables) takes seconds and runs
        # on the event loop.
        processors += [
            structlog.dev.ConsoleRenderer(
                colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
            )
        ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr)
    if service:
        structlog.contextvars.bind_contextvars(service=service)
    _configured = True


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    # structlog answers Any; configure() above sets this wrapper class
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
