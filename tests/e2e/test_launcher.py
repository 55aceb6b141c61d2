"""`quartier up --demo` as a user runs it: the real console script in its own
process group, on a fresh data dir and a free port; then the GraphQL API, the
`stream` and `tenant` commands against it; Ctrl-C; and a second `up --demo` on
the same data dir.

One system per module (it takes a few seconds to start). The tests run in
file order: the shutdown test stops the first system, the last one restarts it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.demo import ADMIN_EMAIL, ADMISSIONS, MEMBERS, PASSWORD, SLUG
from infra.nats_server import free_port

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="finds the system's processes through /proc"
)

START_DEADLINE = 60.0
STOP_DEADLINE = 30.0
COMMAND_DEADLINE = 60.0
# identity's public events of the demo network: TenantRegistered, then per
# member an InvitationIssued and a MemberJoined; hubs' follow, the facilitator
# hand-over last.
DEMO_IDENTITY_EVENTS = 1 + 2 * len(MEMBERS)
DEMO_LAST_HUBS_EVENT = "quartier.hubs.FacilitatorChanged.v1"


def quartier(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("quartier")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "infra.cli", *args]


def environment(data_dir: Path, port: int) -> dict[str, str]:
    """The user's environment without any QUARTIER_* of the test run's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUARTIER_")}
    env.update(
        QUARTIER_DATA_DIR=str(data_dir),
        QUARTIER_HTTP_PORT=str(port),
        QUARTIER_ENV="test",  # cheap argon2
        PYTHONUNBUFFERED="1",
    )
    return env


# -- processes, through /proc ----------------------------------------------------


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    state: str
    args: str
    environ: tuple[bytes, ...]


def process_table() -> dict[int, Proc]:
    table: dict[int, Proc] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            args = (entry / "cmdline").read_bytes()
            try:
                environ = (entry / "environ").read_bytes()
            except PermissionError:  # another user's process
                environ = b""
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # gone meanwhile
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        table[int(entry.name)] = Proc(
            pid=int(entry.name),
            ppid=int(ppid),
            state=state,
            args=args.replace(b"\0", b" ").decode(errors="replace").strip(),
            environ=tuple(environ.split(b"\0")),
        )
    return table


def system_processes(data_dir: Path) -> dict[int, Proc]:
    """Live processes of the system on `data_dir`: they carry it in their
    environment (the launcher passes its own on) or on their command line."""
    marker = f"QUARTIER_DATA_DIR={data_dir}".encode()
    return {
        pid: p
        for pid, p in process_table().items()
        if p.state != "Z" and (marker in p.environ or str(data_dir) in p.args)
    }


def descendants(root: int, table: dict[int, Proc]) -> dict[int, Proc]:
    found: dict[int, Proc] = {}
    frontier = {root}
    while frontier:
        children = {pid for pid, p in table.items() if p.ppid in frontier and pid not in found}
        found.update({pid: table[pid] for pid in children})
        frontier = children
    return found


def still_running(recorded: dict[int, Proc]) -> list[Proc]:
    """Those of `recorded` that still run (same pid and command line: no reuse)."""
    table = process_table()
    return [
        p
        for pid, p in recorded.items()
        if pid in table and table[pid].state != "Z" and table[pid].args == p.args
    ]


# -- the launcher ----------------------------------------------------------------


@dataclass
class Launcher:
    data_dir: Path
    port: int
    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    children: dict[int, Proc] = field(default_factory=dict)
    returncode: int | None = None
    leftovers: list[Proc] = field(default_factory=list)
    demo_events: int | None = None  # the demo's stream length, once read

    @classmethod
    def start(cls, data_dir: Path, run: str) -> Launcher:
        port = free_port()
        stdout_path = data_dir.parent / f"{run}.stdout"
        stderr_path = data_dir.parent / f"{run}.stderr"
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            process = subprocess.Popen(
                quartier("up", "--demo"),
                env=environment(data_dir, port),
                cwd=data_dir.parent,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own process group, as in a terminal
            )
        return cls(data_dir, port, process, stdout_path, stderr_path)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return environment(self.data_dir, self.port)

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def output(self) -> str:
        err = self.stderr_path.read_text(errors="replace")
        return f"--- stdout\n{self.stdout()}\n--- stderr (end)\n{err[-6000:]}"

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/health/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_running(self) -> None:
        """Until /health/ready answers 200 and the banner is out (the banner
        comes after the demo network is loaded)."""
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                pytest.fail(f"`quartier up --demo` exited with {code}\n{self.output()}")
            if "Quartier is running" in self.stdout() and self.ready():
                table = process_table()
                self.children = descendants(self.process.pid, table)
                return
            time.sleep(0.2)
        pytest.fail(f"not running within {START_DEADLINE:.0f}s\n{self.output()}")

    def stop(self) -> int:
        """Ctrl-C, as a terminal sends it: SIGINT to the process group."""
        if self.returncode is None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        return self.wait_exit()

    def wait_exit(self) -> int:
        """The launcher's exit code; then what is left of what it ran."""
        if self.returncode is None:
            try:
                self.returncode = self.process.wait(timeout=STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                self.kill()
                pytest.fail(f"still running after {STOP_DEADLINE:.0f}s\n{self.output()}")
            self.leftovers = still_running(self.children) + [
                p for p in system_processes(self.data_dir).values() if p.pid not in self.children
            ]
        return self.returncode

    def child(self, module: str) -> Proc:
        (found,) = [p for p in self.children.values() if p.args.endswith(f"-m {module}")]
        return found

    def kill(self) -> None:
        """Last resort after a failure: the launcher, then what it started."""
        if self.process.poll() is None:
            self.process.kill()
            self.returncode = self.process.wait()
        for p in [*still_running(self.children), *system_processes(self.data_dir).values()]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)

    def close(self) -> None:
        try:
            if self.returncode is None:
                self.stop()
        finally:
            self.kill()

    # -- talking to it -------------------------------------------------------------

    def graphql(self, query: str, token: str | None = None, **variables: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = httpx.post(
            f"{self.base_url}/graphql",
            json={"query": query, "variables": variables},
            headers=headers,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert not body.get("errors"), body
        return body["data"]

    def login(self, email: str = ADMIN_EMAIL, password: str = PASSWORD) -> dict[str, Any]:
        data = self.graphql(LOGIN, input={"tenant": SLUG, "email": email, "password": password})
        return data["login"]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            quartier(*args),
            env=self.env,
            cwd=self.data_dir.parent,
            capture_output=True,
            text=True,
            timeout=COMMAND_DEADLINE,
            check=False,
        )

    def history(self, slug: str = SLUG) -> list[dict[str, Any]]:
        result = self.run("stream", "--tenant", slug, "--from-start")
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]

    def wait_history(self, size: int = 0) -> list[dict[str, Any]]:
        """The stream is a derived copy, filled by the relays: wait until it
        has at least `size` events of the demo network, and the demo hubs'
        last one."""

        def complete(events: list[dict[str, Any]]) -> bool:
            return len(events) >= size and any(e["type"] == DEMO_LAST_HUBS_EVENT for e in events)

        deadline = time.monotonic() + COMMAND_DEADLINE
        events = self.history()
        while not complete(events) and time.monotonic() < deadline:
            time.sleep(0.2)
            events = self.history()
        return events


LOGIN = """
mutation Login($input: LoginInput!) {
  login(input: $input) {
    __typename
    ... on AuthPayload {
      accessToken refreshToken tenantSlug
      member { memberId displayName email isTenantAdmin roles }
    }
    ... on Error { code message }
  }
}
"""

MEMBERS_QUERY = """
{
  members(first: 50) {
    totalCount
    edges { node { memberId displayName email isTenantAdmin } }
  }
}
"""

TENANT_QUERY = "query Tenant($slug: String!) { tenant(slug: $slug) { tenantId slug name } }"

ACCEPT = """
mutation Accept($input: AcceptInvitationInput!) {
  acceptInvitation(input: $input) {
    __typename
    ... on AuthPayload { tenantSlug member { displayName isTenantAdmin } }
    ... on Error { code message }
  }
}
"""


# -- fixtures ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("quartier-up").resolve() / "data"


@pytest.fixture(scope="module")
def first_run(data_dir: Path) -> Iterator[Launcher]:
    launcher = Launcher.start(data_dir, "first")
    try:
        launcher.wait_running()
        yield launcher
    finally:
        launcher.close()


@pytest.fixture(scope="module")
def admin_token(first_run: Launcher) -> str:
    login = first_run.login()
    assert login["__typename"] == "AuthPayload", login
    return login["accessToken"]


# -- the first run -------------------------------------------------------------------


def test_up_demo_prints_the_banner_and_runs_every_process(first_run: Launcher) -> None:
    banner = first_run.stdout()
    assert "Quartier is running." in banner
    assert f"{first_run.base_url}/graphql" in banner
    assert str(first_run.data_dir) in banner
    assert "Demo network: " in banner and f"(slug {SLUG})" in banner
    assert f"admin: {ADMIN_EMAIL} / {PASSWORD}" in banner
    health = httpx.get(f"{first_run.base_url}/health/ready", timeout=10).json()
    assert health == {
        "status": "ready",
        "nats": True,
        "services": {"identity": True, "hubs": True},
    }
    args = [p.args for p in first_run.children.values()]
    assert any("nats-server" in a and str(first_run.data_dir) in a for a in args), args
    assert first_run.child("services.identity")
    assert first_run.child("services.hubs")
    assert first_run.child("gateway")
    running = system_processes(first_run.data_dir)
    assert set(first_run.children) | {first_run.process.pid} == set(running)  # what the end checks
    nats_url = (first_run.data_dir / "nats.url").read_text().strip()
    assert nats_url.startswith("nats://127.0.0.1:")
    assert nats_url in banner


def test_login_as_the_demo_admin(first_run: Launcher) -> None:
    login = first_run.login()
    assert login["__typename"] == "AuthPayload", login
    assert login["tenantSlug"] == SLUG
    assert login["member"]["email"] == ADMIN_EMAIL
    assert login["member"]["isTenantAdmin"] is True
    assert login["accessToken"].count(".") == 2
    wrong = first_run.login(password="not the demo password")
    assert wrong["__typename"] == "InvalidCredentials", wrong


def test_the_demo_has_a_dozen_members(first_run: Launcher, admin_token: str) -> None:
    members = first_run.graphql(MEMBERS_QUERY, token=admin_token)["members"]
    assert members["totalCount"] >= 12
    assert members["totalCount"] == len(MEMBERS) == len(members["edges"])
    emails = sorted(edge["node"]["email"] for edge in members["edges"])
    assert emails == sorted(m.email for m in MEMBERS)
    admins = [e["node"]["email"] for e in members["edges"] if e["node"]["isTenantAdmin"]]
    assert admins == [ADMIN_EMAIL]
    member = MEMBERS[1]
    assert (
        first_run.login(email=member.email)["member"]["displayName"] == member.card["display_name"]
    )


def test_stream_prints_cloudevents_json_lines(first_run: Launcher) -> None:
    tenant_id = first_run.graphql(TENANT_QUERY, slug=SLUG)["tenant"]["tenantId"]
    first_run.wait_history(3)
    result = first_run.run("stream", "--tenant", SLUG, "--from-start", "--limit", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3, result.stdout
    events = [json.loads(line) for line in lines]
    for event in events:
        assert isinstance(event, dict)
        assert event["specversion"] == "1.0"
        assert event["type"].startswith("quartier.identity."), event
        assert event["tenant"] == tenant_id
        assert event["id"].startswith("identity:")
        assert isinstance(event["data"], dict)
        assert event["data"]["tenant_id"] == tenant_id
    assert events[0]["type"] == "quartier.identity.TenantRegistered.v1"
    assert events[0]["data"]["slug"] == SLUG
    sequences = [e["sequence"] for e in events]
    assert sequences == sorted(sequences)
    assert len(set(sequences)) == 3


def test_the_stream_holds_the_demo_history_without_personal_data(first_run: Launcher) -> None:
    events = first_run.wait_history(DEMO_IDENTITY_EVENTS)
    identity = [e for e in events if e["id"].startswith("identity:")]
    types = [e["type"].split(".")[2] for e in identity]
    assert len(identity) == DEMO_IDENTITY_EVENTS, types
    assert types.count("MemberJoined") == types.count("InvitationIssued") == len(MEMBERS)
    hubs = [e["type"].split(".")[2] for e in events if e["id"].startswith("hubs:")]
    assert hubs.count("HubCreated") == 2
    assert hubs.count("MemberAdmitted") == len(ADMISSIONS)
    assert hubs.count("ObjectionRaised") == 1
    first_run.demo_events = len(events)
    assert len({e["id"] for e in events}) == len(events)
    text = json.dumps(events, ensure_ascii=False)
    for member in MEMBERS:
        assert member.email not in text
        assert member.card["display_name"] not in text


def test_tenant_create_prints_an_accept_url(first_run: Launcher) -> None:
    result = first_run.run(
        "tenant", "create", "other-net", "Other", "--admin-email", "a@other.example"
    )
    assert result.returncode == 0, result.stderr
    match = re.search(r"(\S+)/accept-invitation\?token=(\S+)", result.stdout)
    assert match, result.stdout
    assert match.group(1) == first_run.base_url
    assert "'other-net'" in result.stdout
    # the link works: its token opens the new network
    accepted = first_run.graphql(
        ACCEPT,
        input={
            "token": match.group(2),
            "password": "other password",
            "card": {"displayName": "Other Admin", "activityCode": "lawyer"},
        },
    )["acceptInvitation"]
    assert accepted["__typename"] == "AuthPayload", accepted
    assert accepted["tenantSlug"] == "other-net"
    assert accepted["member"]["isTenantAdmin"] is True
    again = first_run.run(
        "tenant", "create", "other-net", "Other", "--admin-email", "b@other.example"
    )
    assert again.returncode == 2
    assert "conflict" in again.stderr


def test_stream_of_an_unknown_network_exits_2(first_run: Launcher) -> None:
    result = first_run.run("stream", "--tenant", "nope", "--from-start")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "nope" in result.stderr


def test_ctrl_c_stops_every_process_and_exits_0(first_run: Launcher) -> None:
    assert len(first_run.children) >= 3
    assert first_run.stop() == 0, first_run.output()
    assert first_run.leftovers == [], first_run.leftovers
    assert system_processes(first_run.data_dir) == {}
    err = first_run.stderr_path.read_text()
    assert "Stopped." in err
    assert not (first_run.data_dir / "nats.url").exists()
    assert not first_run.ready()


# -- a second run on the same data dir --------------------------------------------------


def test_up_demo_again_on_the_same_data_is_idempotent_then_a_crash_stops_all(
    first_run: Launcher, data_dir: Path
) -> None:
    first_run.stop()  # should the shutdown test have been deselected
    before_secret = (data_dir / "jwt-secret").read_text()
    second = Launcher.start(data_dir, "second")
    try:
        second.wait_running()
        login = second.login()
        assert login["__typename"] == "AuthPayload", login
        members = second.graphql(MEMBERS_QUERY, token=login["accessToken"])["members"]
        assert members["totalCount"] == len(MEMBERS)
        emails = [e["node"]["email"] for e in members["edges"]]
        assert sorted(emails) == sorted(m.email for m in MEMBERS)
        admins = [e["node"]["email"] for e in members["edges"] if e["node"]["isTenantAdmin"]]
        assert admins == [ADMIN_EMAIL]
        # the network created in the first run is still there, and no demo event was added
        assert second.graphql(TENANT_QUERY, slug="other-net")["tenant"]["name"] == "Other"
        expected = first_run.demo_events or len(second.wait_history(DEMO_IDENTITY_EVENTS))
        assert len(second.history()) == expected
        assert (data_dir / "jwt-secret").read_text() == before_secret
        # a crashed service stops the whole system, which leaves nothing behind
        os.kill(second.child("services.identity").pid, signal.SIGKILL)
        assert second.wait_exit() == 1, second.output()
        assert second.leftovers == [], second.leftovers
        assert "launcher.process_exited" in second.stderr_path.read_text()
    finally:
        second.close()


def test_a_command_without_nats_says_so(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("QUARTIER_")},
        "QUARTIER_ENV": "test",
        "QUARTIER_DATA_DIR": str(tmp_path),
        "QUARTIER_NATS_URL": "nats://127.0.0.1:1",  # nothing listens there
    }
    result = subprocess.run(
        quartier("stream", "--tenant", "pole-11e"),
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_DEADLINE,
        check=False,
    )
    assert result.returncode == 2
    assert "cannot reach NATS at nats://127.0.0.1:1" in result.stderr
