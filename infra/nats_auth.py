"""Who may do what on the bus: one NATS user per process, with permissions per
subject (docs/security.md, "The bus").

* a **service** answers only its own requests (`quartier.cmd.<service>.>`,
  `quartier.qry.<service>.>`, its ping, the development clock), may ask only
  the services it needs (services/registry.py `needs`), publishes only its own
  events (`quartier.evt.*.<service>.>`), and of the JetStream API uses only the
  stream QUARTIER_EVENTS (create it if missing, read its info and one message:
  the relay's check of its tail) and its own durable consumers (`<service>-
  <reaction>`, created only on the events of a service it needs, read and
  acknowledged);
* the **gateway** asks every service, pings them, and reads the stream
  through ephemeral (ordered) consumers for the `tenantEvents` subscription;
  it publishes no event and answers nothing;
* the **launcher** (`quartier up`) pings the services and loads the demo
  network through them, as the gateway would, moving the development clock
  to write the demo's history (infra/demo_meetups.py);
* the **operator** (the `quartier` CLI) sends the platform operator's
  requests — create a network, look one up, parked events — moves the
  development clock, and reads the stream (`quartier stream`);
* **admin** (the embedded server only; used by no process) may do anything:
  for maintenance with the `nats` CLI.

Every user reads replies only on its own inboxes, `_INBOX.<user>.>` (the bus
connects with that inbox prefix), so nobody overhears another's answers; a
service may answer whoever asked it (`allow_responses`), once per request.

For the embedded server, `quartier up` keeps a password per user in
`<data dir>/nats-auth/<user>.password` (generated once, mode 0600, like the
JWT secret) and writes `<data dir>/nats-auth/nats-server.conf`: the base
configuration (infra/nats-server.conf) and these users. `python -m
infra.nats_auth` prints the `authorization` block for an external server, its
passwords taken from environment variables.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from infra.nats_server import CONFIG
from services import registry
from services.identity import contract as idc
from services.registry import ServiceSpec
from services.runtime import operations as ops
from services.runtime.settings import NatsCredentials, inbox_prefix
from services.runtime.stream import STREAM, rebuild_consumer, service_filter

GATEWAY = "gateway"
LAUNCHER = "launcher"
OPERATOR = "operator"
ADMIN = "admin"
PROCESSES = (GATEWAY, LAUNCHER, OPERATOR)  # besides the services

AUTH_DIR = "nats-auth"
SERVER_CONFIG = "nats-server.conf"

JS_API = "$JS.API"


@dataclass(frozen=True)
class Permissions:
    """A NATS user's `permissions {}`: the subjects it may publish to and
    subscribe to (allow lists: anything else is denied); `allow_responses`
    lets it answer the requests it receives, once each."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    allow_responses: bool = False


def requests_to(service: str) -> tuple[str, ...]:
    return (f"quartier.cmd.{service}.>", f"quartier.qry.{service}.>")


def ping(service: str) -> str:
    return f"quartier.ping.{service}"  # services/runtime/bus.py answers it


def own_inbox(user: str) -> str:
    return f"{inbox_prefix(user)}.>"


# Reading the stream through an ephemeral ordered consumer
# (services/runtime/stream.py read_tenant_events): nats-py finds the stream by
# subject, reads its info (the size of a tenant's history), creates the
# consumer (the API subject without a consumer name: an ephemeral one) and
# answers the flow control of its deliveries.
# The resumable reader (`GET /v1/events`, the `tenantEvents` subscription)
# also reads single messages (the position's hint) and pulls from an
# ephemeral consumer of its own, which it deletes when done. Its name is the
# server's choice, so the subjects that name it end in a wildcard: this user
# could delete or pull from another consumer too (docs/security.md, "The bus").
STREAM_READER = (
    f"{JS_API}.STREAM.NAMES",
    f"{JS_API}.STREAM.INFO.{STREAM}",
    f"{JS_API}.STREAM.MSG.GET.{STREAM}",
    f"{JS_API}.CONSUMER.CREATE.{STREAM}",
    f"{JS_API}.CONSUMER.INFO.{STREAM}.*",
    f"{JS_API}.CONSUMER.MSG.NEXT.{STREAM}.*",
    f"{JS_API}.CONSUMER.DELETE.{STREAM}.*",
    f"$JS.FC.{STREAM}.>",
)


def service_permissions(spec: ServiceSpec) -> Permissions:
    publish = [
        service_filter(spec.name),  # its own events, any tenant
        *(subject for need in spec.needs for subject in requests_to(need)),
        # ensure_stream (create it if missing), the relay's check of its tail
        f"{JS_API}.STREAM.INFO.{STREAM}",
        f"{JS_API}.STREAM.CREATE.{STREAM}",
        f"{JS_API}.STREAM.MSG.GET.{STREAM}",
    ]
    for durable in spec.durables:
        # Created (or updated) only with the subject that names the consumer
        # and its filter: the server checks that the filter is that one, and
        # the filter must be the events of a service it needs, or its own (a
        # reaction to what it did itself, such as the mails it plans).
        publish += [
            f"{JS_API}.CONSUMER.CREATE.{STREAM}.{durable}.{service_filter(upstream)}"
            for upstream in (*spec.needs, spec.name)
        ]
        publish += [
            f"{JS_API}.CONSUMER.MSG.NEXT.{STREAM}.{durable}",
            f"$JS.ACK.{STREAM}.{durable}.>",
        ]
    # the rebuild: its own events' headers through a consumer it names, and
    # the purge of a network's events published out of order (the purge's
    # filter is in the request's body: the bus cannot hold it to its own)
    rebuild = rebuild_consumer(spec.name)
    publish += [
        f"{JS_API}.CONSUMER.CREATE.{STREAM}.{rebuild}.{service_filter(spec.name)}",
        f"{JS_API}.CONSUMER.MSG.NEXT.{STREAM}.{rebuild}",
        f"{JS_API}.CONSUMER.DELETE.{STREAM}.{rebuild}",
        f"{JS_API}.STREAM.PURGE.{STREAM}",
    ]
    subscribe = [
        *requests_to(spec.name),
        ping(spec.name),
        ops.CLOCK_SUBJECT,
        own_inbox(spec.name),
    ]
    return Permissions(tuple(publish), tuple(subscribe), allow_responses=True)


def gateway_permissions(services: Iterable[ServiceSpec]) -> Permissions:
    names = [spec.name for spec in services]
    publish = [
        *(subject for name in names for subject in requests_to(name)),
        ping("*"),
        *STREAM_READER,
    ]
    return Permissions(tuple(publish), (own_inbox(GATEWAY),))


def launcher_permissions(services: Iterable[ServiceSpec]) -> Permissions:
    names = [spec.name for spec in services]
    publish = [
        *(subject for name in names for subject in requests_to(name)),
        ping("*"),
        ops.CLOCK_SUBJECT,  # the demo's history (infra/clock.py; services refuse it in prod)
    ]
    return Permissions(tuple(publish), (own_inbox(LAUNCHER),))


def operator_permissions(services: Iterable[ServiceSpec]) -> Permissions:
    """Exactly the `quartier` CLI's requests (infra/cli.py)."""
    names = [spec.name for spec in services]
    publish = [
        idc.CreateTenant.subject(),
        idc.GetTenant.subject(),
        *(
            ops.for_service(request, name).subject()
            for name in names
            for request in (
                ops.ListParked,
                ops.RetryParked,
                ops.SkipParked,
                ops.RebuildStream,
                ops.GetRebuildProgress,
            )
        ),
        ops.CLOCK_SUBJECT,
        *STREAM_READER,
    ]
    return Permissions(tuple(publish), (own_inbox(OPERATOR),))


ADMIN_PERMISSIONS = Permissions((">",), (">",))


def users(
    services: Iterable[ServiceSpec] = registry.SERVICES, admin: bool = False
) -> dict[str, Permissions]:
    """Every user of the bus and its permissions."""
    specs = list(services)
    found = {spec.name: service_permissions(spec) for spec in specs}
    for name in (*PROCESSES, ADMIN):
        if name in found:
            raise ValueError(f"a service may not be named {name!r}: it is a NATS user already")
    found[GATEWAY] = gateway_permissions(specs)
    found[LAUNCHER] = launcher_permissions(specs)
    found[OPERATOR] = operator_permissions(specs)
    if admin:
        found[ADMIN] = ADMIN_PERMISSIONS
    return found


# -- the server's configuration ------------------------------------------------------


def _quote(text: str) -> str:
    """A NATS configuration string: JSON's double quotes (no `$` variable
    expansion inside them)."""
    return json.dumps(text)


def _subjects(subjects: Iterable[str]) -> str:
    return "[" + ", ".join(_quote(s) for s in subjects) + "]"


def password_variable(user: str) -> str:
    return f"QUARTIER_NATS_{user.upper().replace('-', '_')}_PASSWORD"


def authorization(
    permissions: Mapping[str, Permissions], passwords: Mapping[str, str] | None = None
) -> str:
    """The `authorization {}` block of a nats-server configuration. Without
    `passwords`, each password is an environment variable of the server
    (`$QUARTIER_NATS_<USER>_PASSWORD`): NATS reads it when it starts."""
    lines = ["authorization {", "  users = ["]
    for user, p in permissions.items():
        password = (
            _quote(passwords[user]) if passwords is not None else "$" + password_variable(user)
        )
        lines.append(f"    {{user: {_quote(user)}, password: {password}, permissions: {{")
        lines.append(f"      publish: {{allow: {_subjects(p.publish)}}}")
        lines.append(f"      subscribe: {{allow: {_subjects(p.subscribe)}}}")
        if p.allow_responses:
            lines.append("      allow_responses: true")
        lines.append("    }}")
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


# -- the embedded server's credentials, kept in the data dir --------------------------


def auth_dir(data_dir: Path) -> Path:
    return data_dir / AUTH_DIR


def password_file(data_dir: Path, user: str) -> Path:
    return auth_dir(data_dir) / f"{user}.password"


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def kept_password(data_dir: Path, user: str) -> str:
    """The user's password, generated the first time and kept (mode 0600),
    so that a restart of NATS or of the system keeps every credential."""
    _private_dir(auth_dir(data_dir))
    path = password_file(data_dir, user)
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
        try:
            os.link(tmp, path)  # atomic: the first process to get here wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    path.chmod(0o600)
    return path.read_text().strip()


def write_server_config(
    data_dir: Path, services: Iterable[ServiceSpec] = registry.SERVICES
) -> Path:
    """`<data dir>/nats-auth/nats-server.conf`: the base configuration and
    every user with its kept password (mode 0600). Written again at each
    start (permissions follow the code); the passwords stay."""
    permissions = users(services, admin=True)
    passwords = {user: kept_password(data_dir, user) for user in permissions}
    text = (
        "# Generated by `quartier up` at each start: edit infra/nats-server.conf or\n"
        "# infra/nats_auth.py instead. Holds the users' passwords: keep it private.\n\n"
        + CONFIG.read_text()
        + "\n"
        + authorization(permissions, passwords)
    )
    path = auth_dir(data_dir) / SERVER_CONFIG
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    tmp.replace(path)
    return path


def credentials(data_dir: Path, user: str) -> NatsCredentials | None:
    """A user's kept credentials, if the embedded server has some."""
    path = password_file(data_dir, user)
    try:
        password = path.read_text().strip()
    except OSError:
        return None
    return NatsCredentials(user, password) if password else None


def main() -> None:
    """Print the `authorization` block for an external NATS server."""
    sys.stdout.write(
        "# Quartier's NATS users (python -m infra.nats_auth). Each password is read\n"
        "# from the server's environment; give each process its own user\n"
        "# (QUARTIER_NATS_USER, QUARTIER_NATS_PASSWORD) — docs/operations.md.\n"
        + authorization(users())
    )


if __name__ == "__main__":
    main()
