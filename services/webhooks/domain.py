"""Webhooks' domain: the endpoint aggregate, and the pure rules of delivery —
which URLs and type filters are valid, which events an endpoint wants, which
addresses are private, and the retry schedule. No I/O: the time, the
resolved addresses and the outcome of an attempt come in as arguments.

Sources: issue #10 item 3; DESIGN.md, "Outbound HTTP (webhooks) follows the
Standard Webhooks specification, refuses private addresses outside
development, follows no redirects"; docs/webhooks.md.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

from eventsourcing.domain import event

from services.runtime.errors import Forbidden, InvalidInput, RuleViolation
from services.runtime.eventstore import TenantAggregate
from services.runtime.i18n import t
from services.runtime.text import single_line

MAX_URL = 2000
MAX_TYPES = 20
MAX_TYPE_LEN = 200
MAX_DESCRIPTION = 200
MAX_ENDPOINTS = 20  # per network
_TYPE_PREFIX = re.compile(r"^quartier\.[A-Za-z0-9_.]*$")
KEY_REASONS = ("api_key_revoked", "api_key_expired")
"""Why an endpoint its API key created was disabled: that key no longer works."""


def key_of(owner: str) -> str | None:
    """The API key id an owner names (`key:<id>`), or None for a member."""
    return owner.removeprefix("key:") if owner.startswith("key:") else None


# -- the retry schedule --------------------------------------------------------------

FIRST_RETRY = timedelta(seconds=10)
MAX_RETRY_GAP = timedelta(hours=12)
RETRY_FOR = timedelta(days=3)


def retry_delays() -> tuple[timedelta, ...]:
    """The waits after each failed attempt: 10 s, doubling up to 12 h
    between attempts, until the attempts span three days (RETRY_FOR). The
    first attempt is at once; the last is three days after the first, so a
    delivery gets 1 + len(retry_delays()) attempts (19). No jitter: the
    schedule is the same for everyone, which receivers and tests can rely
    on; deliveries of different endpoints are independent anyway."""
    delays: list[timedelta] = []
    total = timedelta(0)
    gap = FIRST_RETRY
    while total < RETRY_FOR:
        step = min(gap, MAX_RETRY_GAP, RETRY_FOR - total)
        delays.append(step)
        total += step
        gap *= 2
    return tuple(delays)


RETRY_DELAYS = retry_delays()


def next_attempt_after(failed_attempts: int) -> timedelta | None:
    """How long after the `failed_attempts`-th failed attempt (1-based) the
    next one is due; None when the schedule is spent (the delivery fails)."""
    if failed_attempts < 1:
        raise ValueError("counts failed attempts, from 1")
    if failed_attempts > len(RETRY_DELAYS):
        return None
    return RETRY_DELAYS[failed_attempts - 1]


# -- URLs, types, addresses ---------------------------------------------------------------


def check_url(url: str) -> tuple[str, str]:
    """A receiver's URL: http or https, a host, no user info (credentials
    would be stored and shown), no fragment, at most MAX_URL characters.
    Returns (the URL, its host in lower case). Raises InvalidInput (field
    `url`). Whether its host may be private is checked on resolution
    (outbound.py), outside the domain."""
    text = single_line(url, "url", MAX_URL, required=True)
    if text != url.strip() or " " in text:
        raise InvalidInput(t("a URL has no spaces"), field="url")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise InvalidInput(t("this URL is not valid"), field="url") from None
    if parts.scheme not in ("https", "http"):
        raise InvalidInput(t("a webhook URL starts with https:// (or http://)"), field="url")
    host = (parts.hostname or "").lower()
    if not host:
        raise InvalidInput(t("a webhook URL names a host"), field="url")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(t("a webhook URL carries no user name or password"), field="url")
    if parts.fragment:
        raise InvalidInput(t("a webhook URL has no #fragment"), field="url")
    if port == 0:
        raise InvalidInput(t("this URL's port is not valid"), field="url")
    return text, host


def url_host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def check_event_types(types: Iterable[str]) -> list[str]:
    """Prefixes of CloudEvents types (`quartier.hubs.`, `quartier.hubs.Member`,
    `quartier.identity.MemberJoined.v1`), as the stream's `types=` filter
    takes them (docs/stream.md): plain prefixes, no wildcards. Duplicates are
    dropped; at most MAX_TYPES. Empty: every type."""
    found: list[str] = []
    for raw in types:
        prefix = raw.strip()
        if len(prefix) > MAX_TYPE_LEN or not _TYPE_PREFIX.match(prefix):
            raise InvalidInput(
                t("an event type is a prefix such as quartier.hubs. (letters, digits, _ and .)"),
                field="event_types",
            )
        if prefix not in found:
            found.append(prefix)
    if len(found) > MAX_TYPES:
        raise InvalidInput(t("at most {limit} event types", limit=MAX_TYPES), field="event_types")
    return found


def wants(event_types: Sequence[str], event_type: str) -> bool:
    """Whether an endpoint filtering on `event_types` wants an event of this type."""
    return not event_types or any(event_type.startswith(p) for p in event_types)


def is_public_address(address: str) -> bool:
    """Whether an IP address is one a webhook may reach outside development:
    globally routable — not private (10/8, 172.16/12, 192.168/16, fc00::/7),
    loopback, link-local (169.254/16, the clouds' metadata service; fe80::/10),
    shared (100.64/10), multicast, reserved or unspecified. An IPv4-mapped
    IPv6 address is judged as its IPv4 address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(ip.is_global) and not ip.is_multicast and not ip.is_reserved


# -- the endpoint ----------------------------------------------------------------------


class Endpoint(TenantAggregate):
    """A network's webhook endpoint. The signing secret is not in its
    events (they are kept for ever): the service keeps it encrypted beside
    the event store (secrets.py); events only count its rotations."""

    noun = "endpoint"
    not_found = t("endpoint not found")

    Created: ClassVar[type[Any]]
    Updated: ClassVar[type[Any]]
    Disabled: ClassVar[type[Any]]
    Adopted: ClassVar[type[Any]]
    SecretRotated: ClassVar[type[Any]]
    Deleted: ClassVar[type[Any]]

    @event("Created")
    def __init__(
        self,
        tenant_id: str,
        url: str,
        event_types: list[str],
        description: str,
        created_by: str,
        at: datetime,
    ):
        self.tenant_id = tenant_id
        self.url = url
        self.event_types = list(event_types)
        self.description = description
        self.created_by = created_by
        # whose credential the endpoint depends on: its creator (a member, or
        # `key:<id>`: revoking or the expiry of that key disables it), until
        # a tenant admin enables it again after that (`Adopted`)
        self.owner = created_by
        self.created_at = at
        self.updated_at = at
        self.enabled = True
        self.disabled_reason: str | None = None
        self.secret_version = 1
        self.secret_rotated_at: datetime | None = None
        self.deleted = False

    @staticmethod
    def new(
        tenant_id: str,
        url: str,
        event_types: Sequence[str],
        description: str,
        by: str,
        at: datetime,
    ) -> Endpoint:
        text, _ = check_url(url)
        return Endpoint(
            tenant_id=tenant_id,
            url=text,
            event_types=check_event_types(event_types),
            description=single_line(description, "description", MAX_DESCRIPTION),
            created_by=by,
            at=at,
        )

    def _check_live(self) -> None:
        if self.deleted:
            raise RuleViolation(t("this endpoint was deleted"), rule="endpoint_deleted")

    def update(
        self,
        by: str,
        at: datetime,
        url: str | None = None,
        event_types: Sequence[str] | None = None,
        description: str | None = None,
        enabled: bool | None = None,
    ) -> bool:
        """Change what is given; returns whether anything changed. Disabling
        is `disable` (its own event); `enabled=False` here calls it."""
        self._check_live()
        new_url = check_url(url)[0] if url is not None else self.url
        types = check_event_types(event_types) if event_types is not None else self.event_types
        text = (
            single_line(description, "description", MAX_DESCRIPTION)
            if description is not None
            else self.description
        )
        if enabled is False:
            if self.enabled:
                self.disable("admin", by, at)
            enabled = None
        turn_on = enabled is True and not self.enabled
        if turn_on and self.disabled_reason in KEY_REASONS:
            # disabled because the key that made it stopped working: a person
            # looks at it and takes it over, never another key
            if key_of(by) is not None:
                raise Forbidden(
                    t(
                        "an endpoint disabled because its API key stopped working "
                        "is enabled again by a tenant admin only"
                    )
                )
            if self.owner != by:
                self._adopted(by=by, at=at)
        if (new_url, types, text) == (self.url, self.event_types, self.description) and not turn_on:
            return False
        self._updated(
            url=new_url,
            event_types=types,
            description=text,
            enabled=self.enabled or turn_on,
            by=by,
            at=at,
        )
        return True

    @event("Updated")
    def _updated(
        self,
        url: str,
        event_types: list[str],
        description: str,
        enabled: bool,
        by: str,
        at: datetime,
    ) -> None:
        self.url = url
        self.event_types = list(event_types)
        self.description = description
        if enabled and not self.enabled:
            self.disabled_reason = None
        self.enabled = enabled
        self.updated_at = at

    def disable(self, reason: str, by: str | None, at: datetime) -> bool:
        """Reason "admin" (by a member), or by the service (`by` None):
        "failing", "api_key_revoked", "api_key_expired". Returns
        False if it was disabled already (nothing recorded)."""
        self._check_live()
        if not self.enabled:
            return False
        self._disabled(reason=reason, by=by, at=at)
        return True

    @event("Disabled")
    def _disabled(self, reason: str, by: str | None, at: datetime) -> None:
        self.enabled = False
        self.disabled_reason = reason
        self.updated_at = at

    @event("Adopted")
    def _adopted(self, by: str, at: datetime) -> None:
        self.owner = by
        self.updated_at = at

    def rotate_secret(self, by: str, at: datetime) -> None:
        self._check_live()
        self._rotated(version=self.secret_version + 1, by=by, at=at)

    @event("SecretRotated")
    def _rotated(self, version: int, by: str, at: datetime) -> None:
        self.secret_version = version
        self.secret_rotated_at = at
        self.updated_at = at

    def delete(self, by: str, at: datetime) -> None:
        self._check_live()
        self._deleted(by=by, at=at)

    @event("Deleted")
    def _deleted(self, by: str, at: datetime) -> None:
        self.deleted = True
        self.enabled = False
        self.updated_at = at
