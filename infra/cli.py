"""The `quartier` console script.

  quartier up [--demo] [--nats-cluster 3] [--replicas N] run the whole system
  quartier tenant create SLUG NAME --admin-email E     platform operator
  quartier stream --tenant SLUG [--from-start] [--follow] [--limit N]
  quartier stream rebuild [--service S] [--timeout SECONDS]   republish what the stream lacks
  quartier parked list [--service S] [--skipped]       events a service could not apply
  quartier parked retry [--service S] [--consumer C]   apply them again
  quartier parked skip --service S --consumer C --position N
  quartier clock [+8d | -2h | +30m]                    development: move the services' clock

`tenant`, `stream`, `parked` and `clock` talk to NATS: `QUARTIER_NATS_URL`
(as `QUARTIER_NATS_USER`, if set), or the URL that a running `quartier up`
wrote into the data dir, as the platform operator's NATS user (`operator`,
its password kept in `<data dir>/nats-auth/`). Links printed start with
`QUARTIER_PUBLIC_URL`, or the public URL of that running system, or the
default `http://<QUARTIER_HTTP_HOST>:<QUARTIER_HTTP_PORT>`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import nats.errors

from services import registry
from services.identity import contract as idc
from services.runtime import operations as ops
from services.runtime.bus import Bus
from services.runtime.errors import NotFound, QuartierError, Unavailable
from services.runtime.logging import configure_logging
from services.runtime.messages import Actor
from services.runtime.settings import ConfigurationError, NatsCredentials, Settings
from services.runtime.stream import read_tenant_events
from services.runtime.tenancy import RequestContext


def _nats(settings: Settings) -> tuple[str, NatsCredentials | None]:
    """Where NATS is, and who the CLI is there: `QUARTIER_NATS_URL` with
    `QUARTIER_NATS_USER` (if set); else the running system's server, as the
    operator's NATS user of the data dir (unless `QUARTIER_NATS_USER` says
    otherwise). The data dir's credentials go to no other server."""
    if settings.nats_url:
        return settings.nats_url, settings.nats_credentials
    from infra import nats_auth
    from infra.launcher import nats_url_file

    path = nats_url_file(settings)
    if path.exists():
        credentials = settings.nats_credentials or nats_auth.credentials(
            settings.data_dir, nats_auth.OPERATOR
        )
        return path.read_text().strip(), credentials
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
    url, credentials = _nats(settings)
    bus = Bus(
        url, "quartier-cli", request_timeout=settings.request_timeout, credentials=credentials
    )
    await bus.connect(wait=5)
    return bus


async def tenant_create(settings: Settings, slug: str, name: str, admin_email: str) -> int:
    bus = await _connect(settings)
    try:
        done = await bus.request(
            idc.CreateTenant(slug=slug, name=name, admin_email=admin_email),
            _operator(settings),
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
    link = f"{public_url(settings)}/accept-invitation?token={invitation.token}"
    print(f"  {link}&network={done.tenant.slug}")
    return 0


async def stream(
    settings: Settings, slug: str, from_start: bool, follow: bool, limit: int | None
) -> int:
    bus = await _connect(settings)
    try:
        await _check_operator(bus, settings)
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
    except (TimeoutError, nats.errors.TimeoutError):
        # NATS answers nothing to what a user may not do: a NATS user without
        # the operator's permissions waits for the stream in vain.
        print(
            "error (unavailable): the stream did not answer "
            "(is the NATS user allowed to read it? QUARTIER_NATS_USER)",
            file=sys.stderr,
        )
        return 2
    finally:
        await bus.close()


async def _ask_leader(bus: Bus, request: Any, ctx: RequestContext, deadline: float) -> Any:
    """Operator requests that the replica leading a service's relay answers:
    another replica says `unavailable`; ask again (a queue group picks a
    replica at random) until the deadline."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            return await bus.request(request, ctx)
        except Unavailable:
            if loop.time() >= deadline:
                raise
            await asyncio.sleep(0.2)


async def stream_rebuild(settings: Settings, services: list[str] | None, timeout: float) -> int:
    """Platform operator: each service publishes again, from its notification
    log, whatever the stream lacks of its events (same ids, so consumers'
    positions hold); wait until every service's relay has caught up, and say
    how many events each republished."""
    wanted = services or list(settings.services)
    unknown = [s for s in wanted if s not in registry.BY_NAME]
    if unknown:
        print(f"error: unknown service {unknown[0]!r}", file=sys.stderr)
        return 2
    ctx = _operator(settings)
    bus = await _connect(settings)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    code = 0
    try:
        running: dict[str, str] = {}
        for service in wanted:
            try:
                started = await _ask_leader(
                    bus, ops.for_service(ops.RebuildStream, service)(), ctx, deadline
                )
            except QuartierError as e:
                print(f"error ({service}, {e.code}): {e.message}", file=sys.stderr)
                code = 2
                continue
            running[service] = started.rebuild_id
            print(f"{service}: rebuilding its events on the stream…", flush=True)
        while running:
            for service, rebuild_id in list(running.items()):
                try:
                    progress = await _ask_leader(
                        bus,
                        ops.for_service(ops.GetRebuildProgress, service)(rebuild_id=rebuild_id),
                        ctx,
                        deadline,
                    )
                except QuartierError as e:
                    print(f"error ({service}, {e.code}): {e.message}", file=sys.stderr)
                    del running[service]
                    code = 2
                    continue
                if progress.state == "failed":
                    print(
                        f"error ({service}): the rebuild failed: {progress.error}", file=sys.stderr
                    )
                    del running[service]
                    code = 1
                elif progress.caught_up:
                    purged = (
                        f", {progress.purged_tenants} network(s) out of order purged and "
                        "republished in full"
                        if progress.purged_tenants
                        else ""
                    )
                    print(
                        f"{service}: {progress.republished} event(s) republished "
                        f"({progress.checked} found on the stream{purged}); caught up",
                        flush=True,
                    )
                    del running[service]
            if running:
                if loop.time() >= deadline:
                    print(
                        f"error: not caught up after {timeout:g}s: {', '.join(running)} "
                        "(the rebuild goes on; run the command again to wait for it)",
                        file=sys.stderr,
                    )
                    return 1
                await asyncio.sleep(0.3)
    finally:
        await bus.close()
    return code


def _operator(settings: Settings) -> RequestContext:
    return RequestContext(actor=Actor(kind="operator"), credential=settings.operator_token)


async def _check_operator(bus: Bus, settings: Settings) -> None:
    """Raise Forbidden unless the system takes our operator token. The stream
    is read from NATS, not from a service, so ask one an operator's question
    that costs nothing (identity's parked events of no consumer): a service
    answers it only with the platform operator's token."""
    await bus.request(
        ops.for_service(ops.ListParked, idc.SERVICE)(consumer=NO_CONSUMER, status=None),
        _operator(settings),
    )


NO_CONSUMER = "-"  # no projection or reaction is named so


async def parked(settings: Settings, args: argparse.Namespace) -> int:
    """Operators: list, retry or skip the events services parked."""
    services = [args.service] if args.service else list(settings.services)
    ctx = _operator(settings)
    bus = await _connect(settings)
    code = 0
    try:
        for service in services:
            if service not in registry.BY_NAME:
                print(f"error: unknown service {service!r}", file=sys.stderr)
                return 2
            try:
                if args.parked_command == "list":
                    status = "skipped" if args.skipped else "parked"
                    found = await bus.request(
                        ops.for_service(ops.ListParked, service)(status=status), ctx
                    )
                    for p in found:
                        print(
                            f"{service}\t{p.consumer}\t{p.position}\t{p.event_type}\t"
                            f"tenant={p.tenant_id}\taggregate={p.aggregate_id}\t"
                            f"attempts={p.attempts}\t{p.error}"
                        )
                elif args.parked_command == "retry":
                    outcome = await bus.request(
                        ops.for_service(ops.RetryParked, service)(consumer=args.consumer), ctx
                    )
                    print(f"{service}: {outcome.applied} applied, {outcome.parked} still parked")
                    if outcome.parked:
                        code = 1
                else:
                    await bus.request(
                        ops.for_service(ops.SkipParked, service)(
                            consumer=args.consumer, position=args.position
                        ),
                        ctx,
                    )
                    print(f"{service}: skipped {args.consumer} at {args.position}")
            except QuartierError as e:
                print(f"error ({service}, {e.code}): {e.message}", file=sys.stderr)
                code = 2
    finally:
        await bus.close()
    return code


DURATION = re.compile(r"^([+-]?)(\d+(?:\.\d+)?)([smhdw])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """`+8d`, `-2h`, `30m` → seconds."""
    found = DURATION.match(text.strip())
    if found is None:
        raise ValueError(f"not a duration: {text!r} (e.g. +8d, -2h, +30m)")
    sign, amount, unit = found.groups()
    return (-1 if sign == "-" else 1) * float(amount) * UNITS[unit]


async def clock(settings: Settings, shift: str | None) -> int:
    """Development and demos: move every service's clock (each replica), or
    tell the time they live in (infra/clock.py). Production services have no
    movable clock."""
    from infra import clock as movable

    if settings.is_prod:
        print("error: the clock cannot be moved in production", file=sys.stderr)
        return 2
    try:
        seconds = parse_duration(shift) if shift else 0.0
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    bus = await _connect(settings)
    try:
        answers = await movable.ask_clocks(bus, settings, seconds)
    finally:
        await bus.close()
    if not answers:
        print(
            "error: no service answered (is the system running, and not in production?)",
            file=sys.stderr,
        )
        return 2
    code = 0
    for a in sorted(answers, key=lambda a: a.service):
        if a.error:
            print(f"{a.service}: error: {a.error}", file=sys.stderr)
            code = 2
        else:
            shifted = timedelta(seconds=a.offset_seconds)
            print(f"{a.service}: {a.now:%Y-%m-%d %H:%M:%S} UTC (clock shifted by {shifted})")
    return code


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="quartier", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the whole system on its embedded default")
    up.add_argument("--demo", action="store_true", help="load the demo network pole-11e")
    up.add_argument(
        "--nats-cluster",
        type=int,
        default=1,
        metavar="N",
        help="run N embedded NATS nodes as a cluster (3: the stream at 3 replicas)",
    )
    up.add_argument(
        "--replicas",
        type=int,
        default=1,
        metavar="N",
        help="run N processes of each service and of the gateway (ports from QUARTIER_HTTP_PORT)",
    )

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
    st.add_argument("--tenant", help="the network's slug")
    st.add_argument("--from-start", action="store_true", help="replay from the first event")
    st.add_argument("--follow", action="store_true", help="keep waiting for new events")
    st.add_argument("--limit", type=int, help="stop after N events")
    st_sub = st.add_subparsers(dest="stream_command")
    rebuild = st_sub.add_parser(
        "rebuild",
        help="platform operator: republish what the stream lacks, from the services' logs",
        description="Each service publishes again, from its notification log (the source of "
        "truth), every event the stream QUARTIER_EVENTS lacks (a stream lost or deleted, a "
        "network's subjects purged, a lost tail), in order and with the same ids, so consumers "
        "resume from their positions without duplicates or gaps; the stream is created if it "
        "is missing. Waits until every service's relay has caught up.",
    )
    rebuild.add_argument(
        "--service", action="append", help="one service (repeatable; default: every service)"
    )
    rebuild.add_argument(
        "--timeout", type=float, default=600.0, help="seconds to wait (default 600)"
    )

    pk = sub.add_parser("parked", help="platform operator: events a service could not apply")
    pk_sub = pk.add_subparsers(dest="parked_command", required=True)
    pk_list = pk_sub.add_parser("list", help="one line per parked event")
    pk_list.add_argument("--service", help="one service (default: every service)")
    pk_list.add_argument("--skipped", action="store_true", help="those given up instead")
    pk_retry = pk_sub.add_parser("retry", help="apply parked events again, in order")
    pk_retry.add_argument("--service", help="one service (default: every service)")
    pk_retry.add_argument("--consumer", help="one projection or reaction")
    pk_skip = pk_sub.add_parser("skip", help="give one parked event up for good")
    pk_skip.add_argument("--service", required=True)
    pk_skip.add_argument("--consumer", required=True)
    pk_skip.add_argument("--position", type=int, required=True)

    ck = sub.add_parser(
        "clock",
        help="development and demos: move the services' clock",
        description="Move every service's clock by a duration (+8d, -2h, +30m), to try "
        "time-based rules on a running system; without one, tell the time they live in. "
        "The shift is kept across restarts (in the data dir). Refused in production.",
    )
    ck.add_argument("shift", nargs="?", help="+8d, -2h, +30m, +45s, +1w")
    return p


def _negative_shift(argv: list[str]) -> list[str]:
    """`quartier clock -2h`: a shift back in time is not an option (argparse
    would take it for one), so it is passed after `--`."""
    if "clock" in argv and "--" not in argv:
        at = argv.index("clock") + 1
        if at < len(argv) and re.fullmatch(r"-\d+(\.\d+)?[a-z]+", argv[at]):
            return [*argv[:at], "--", *argv[at:]]
    return argv


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(_negative_shift(sys.argv[1:] if argv is None else argv))
    try:
        settings = Settings.from_env()
    except ConfigurationError as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    if args.command == "up":
        from infra.launcher import up

        return up(demo=args.demo, nats_cluster=args.nats_cluster, replicas=args.replicas)
    # Log lines (a refused connection or permission, say) go to stderr:
    # stdout is the commands' output (`stream` prints JSON lines there).
    configure_logging(settings.log_format, settings.log_level, service="cli")
    try:
        if args.command == "tenant":
            return asyncio.run(tenant_create(settings, args.slug, args.name, args.admin_email))
        if args.command == "parked":
            return asyncio.run(parked(settings, args))
        if args.command == "clock":
            return asyncio.run(clock(settings, args.shift))
        if args.stream_command == "rebuild":
            return asyncio.run(stream_rebuild(settings, args.service, args.timeout))
        if not args.tenant:
            print("error: quartier stream needs --tenant SLUG", file=sys.stderr)
            return 2
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
