"""Outbound HTTP: where a webhook may go, how it is signed, and one attempt.

* **Signing** follows Standard Webhooks (the `standardwebhooks` library's
  `Webhook.sign`): `webhook-id` (the CloudEvent's id), `webhook-timestamp`
  (Unix seconds, the wall clock's: receivers compare it with theirs) and
  `webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one
  per valid secret, space-separated).
* **SSRF.** Outside development and tests (`allow_private` False) a URL whose
  host resolves to any non-public address (domain.is_public_address) is
  refused: at registration, and again at each attempt after resolving the
  name, and the request then goes to the address that was checked (the
  `Host` header and TLS server name stay the URL's), so a name that changes
  its answer in between (DNS rebinding) reaches nothing else.
* **Limits.** No redirect is followed (a 3xx is a failed attempt); an
  attempt lasts at most `timeout` seconds in all (connect, send, the
  receiver's answer); at most MAX_RESPONSE bytes of the response are read.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import httpx
from standardwebhooks import Webhook

from services.runtime.errors import InvalidInput
from services.runtime.i18n import t
from services.webhooks.domain import is_public_address

MAX_RESPONSE = 64 * 1024  # bytes of a receiver's answer read, at most
USER_AGENT = "Quartier-Webhooks/1"

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses as the system resolves them (A and AAAA)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


async def destination(url: str, allow_private: bool, resolve: Resolver) -> str:
    """The address a delivery to `url` connects to: the host itself if it is
    an IP address, else the first address it resolves to. Raises
    InvalidInput (field `url`) if the name does not resolve, or, unless
    `allow_private`, if any of its addresses is not public."""
    host = (urlsplit(url).hostname or "").lower()
    literal = _literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = await resolve(host, _port(url))
        except (OSError, UnicodeError):
            addresses = []
        if not addresses:
            raise InvalidInput(t("the host {host} does not resolve", host=host), field="url")
    if not allow_private and not all(is_public_address(a) for a in addresses):
        raise InvalidInput(
            t("a webhook URL may not reach a private, loopback or link-local address"),
            field="url",
        )
    return addresses[0]


def signature_headers(
    event_id: str, body: str, secrets: Sequence[str], at: datetime | None = None
) -> dict[str, str]:
    """Standard Webhooks headers for `body` signed with each secret."""
    when = at or datetime.now(UTC)
    signatures = [Webhook(s).sign(event_id, when, body) for s in secrets]
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None
    duration_ms: int
    error: str | None


def _pinned(url: str, address: str) -> tuple[str, str]:
    """(the URL with its host replaced by `address`, the original netloc)."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), parts.netloc


async def post(
    client: httpx.AsyncClient,
    url: str,
    body: str,
    headers: dict[str, str],
    *,
    allow_private: bool,
    resolve: Resolver,
    timeout: float,
) -> Outcome:
    """One attempt: POST `body` (JSON) to `url`. Never raises: a refusal,
    a network error, a timeout, a redirect or a non-2xx answer is a failed
    Outcome with a short error (no header, body or secret in it)."""
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        async with asyncio.timeout(timeout):
            address = await destination(url, allow_private, resolve)
            target, netloc = _pinned(url, address)
            host = (urlsplit(url).hostname or "").lower()
            request = client.build_request(
                "POST",
                target,
                content=body.encode(),
                headers={
                    **headers,
                    "host": netloc,
                    "content-type": "application/json",
                    "user-agent": USER_AGENT,
                },
                extensions={"sni_hostname": host} if url.startswith("https:") else {},
            )
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read >= MAX_RESPONSE:
                        break
            finally:
                await response.aclose()
    except InvalidInput as e:
        return Outcome(False, None, took(), f"refused: {e}")
    except TimeoutError:
        return Outcome(False, None, took(), f"timed out after {timeout:g} s")
    except httpx.HTTPError as e:
        return Outcome(False, None, took(), f"{type(e).__name__}: {e}"[:300])
    except OSError as e:
        return Outcome(False, None, took(), f"{type(e).__name__}: {e}"[:300])
    code = response.status_code
    if 200 <= code < 300:
        return Outcome(True, code, took(), None)
    if 300 <= code < 400:
        return Outcome(False, code, took(), f"HTTP {code}: redirects are not followed")
    return Outcome(False, code, took(), f"HTTP {code}")


def new_client() -> httpx.AsyncClient:
    """No redirects, no proxy from the environment (it would bypass the
    address check), no cookies kept between receivers."""
    # each attempt is bounded as a whole by `post`'s timeout; this is a backstop
    return httpx.AsyncClient(follow_redirects=False, trust_env=False, timeout=30.0)
