"""The `quartier` console script.

  quartier up [--demo]                                  run the whole system
  quartier tenant create SLUG NAME --admin-email E     platform operator
  quartier stream --tenant SLUG [--from-start] [--follow] [--limit N]

`tenant` and `stream` talk to NATS: `QUARTIER_NATS_URL`, or the URL that a
running `quartier up` wrote into the data dir. Links printed start with
`QUARTIER_PUBLIC_URL`, or the public URL of that running system, or the
default `http://<QUARTIER_HTTP_HOST>:<QUARTIER_HTTP_PORT>`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping

from services.identity import contract as idc
from services.runtime.bus import Bus
from services.runtime.errors import NotFound, QuartierError
from services.runtime.messages import Actor
from services.runtime.settings import ConfigurationError, Settings
from services.runtime.stream import read_tenant_events
from services.runtime.tenancy import RequestContext


def _nats_url(settings: Settings) -> str:
    if settings.nats_url:
        return settings.nats_url
    from infra.launcher import nats_url_file

    path = nats_url_file(settings)
    if path.exists():
        return path.read_text().strip()
    raise SystemExit(
        "No NATS server: set QUARTIER_NATS_URL, or start the system with `quartier up`."
    )


def public_url(settings: Settings, environ: Mapping[str, str] | None = None) -> str:
    """Where the links point: `QUARTIER_PUBLIC_URL`, else the running system's
    (`<data dir>/public.url`, written by `quartier up`), else the default."""
    if (os.environ if environ is None else environ).get("QUARTIER_PUBLIC_URL"):
        return settings.public_url
    from infra.launcher import public_url_file

    path = public_url_file(settings)
    if path.exists():
        written = path.read_text().strip()
        if written:
            return written
    return settings.public_url


async def _connect(settings: Settings) -> Bus:
    bus = Bus(_nats_url(settings), "quartier-cli", request_timeout=settings.request_timeout)
    await bus.connect(wait=5)
    return bus


async def tenant_create(settings: Settings, slug: str, name: str, admin_email: str) -> int:
    bus = await _connect(settings)
    try:
        done = await bus.request(
            idc.CreateTenant(slug=slug, name=name, admin_email=admin_email),
            RequestContext(actor=Actor(kind="operator"), credential=settings.operator_token),
        )
    except QuartierError as e:
        print(f"error ({e.code}): {e.message}", file=sys.stderr)
        return 2
    finally:
        await bus.close()
    invitation = done.admin_invitation
    print(f"Created network {done.tenant.slug!r} ({done.tenant.name}), id {done.tenant.tenant_id}")
    print(
        f"Invitation for its admin {admin_email} (expires {invitation.expires_at:%Y-%m-%d %H:%M} UTC):"
    )
    print(f"  {public_url(settings)}/accept-invitation?token={invitation.token}")
    return 0


async def stream(
    settings: Settings, slug: str, from_start: bool, follow: bool, limit: int | None
) -> int:
    bus = await _connect(settings)
    try:
        try:
            tenant = await bus.request(idc.GetTenant(slug=slug), RequestContext())
        except NotFound:
            print(f"error: no network with slug {slug!r}", file=sys.stderr)
            return 2
        async for raw in read_tenant_events(
            bus.jetstream(),
            tenant.tenant_id,
            from_start=from_start,
            follow=follow or not from_start,
            limit=limit,
        ):
            sys.stdout.write(raw.decode() + "\n")
            sys.stdout.flush()
        return 0
    except QuartierError as e:
        print(f"error ({e.code}): {e.message}", file=sys.stderr)
        return 2
    finally:
        await bus.close()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="quartier", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the whole system on its embedded default")
    up.add_argument("--demo", action="store_true", help="load the demo network pole-11e")

    tenant = sub.add_parser("tenant", help="platform operator: networks")
    tenant_sub = tenant.add_subparsers(dest="tenant_command", required=True)
    create = tenant_sub.add_parser("create", help="create a network and invite its admin")
    create.add_argument("slug")
    create.add_argument("name")
    create.add_argument("--admin-email", required=True)

    st = sub.add_parser(
        "stream",
        help="print a network's events as CloudEvents JSON lines",
        description="Without --from-start, print new events as they come. With --from-start, "
        "print the history and stop at its end, unless --follow.",
    )
    st.add_argument("--tenant", required=True, help="the network's slug")
    st.add_argument("--from-start", action="store_true", help="replay from the first event")
    st.add_argument("--follow", action="store_true", help="keep waiting for new events")
    st.add_argument("--limit", type=int, help="stop after N events")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigurationError as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    if args.command == "up":
        from infra.launcher import up

        return up(demo=args.demo)
    try:
        if args.command == "tenant":
            return asyncio.run(tenant_create(settings, args.slug, args.name, args.admin_email))
        if args.limit is not None and args.limit < 1:
            print("error: --limit must be at least 1", file=sys.stderr)
            return 2
        return asyncio.run(stream(settings, args.tenant, args.from_start, args.follow, args.limit))
    except QuartierError as e:  # e.g. NATS unreachable
        print(f"error ({e.code}): {e.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
