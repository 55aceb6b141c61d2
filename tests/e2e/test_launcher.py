"""`quartier up --demo` as a user runs it: the real console script in its own
process group, on a fresh data dir and a free port; then the GraphQL API, the
`stream` and `tenant` commands against it; its bus with authentication on
(each process its own NATS user; none for a stranger, and `stream` needs the
operator's); its supervision (kill -9 of a
service, of the gateway, of NATS: each comes back); Ctrl-C; a second `up
--demo` on the same data dir, killed with SIGKILL (its children follow it);
and a system whose hubs service cannot open its database (the launcher gives
up).

One system per scenario (each takes a few seconds to start), shared by the
tests that do not destroy it. The tests run in file order: the shutdown test
stops the first system, the second run starts on its data.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.demo import ADMIN_EMAIL, ADMISSIONS, MEMBERS, PASSWORD, SLUG
from infra.demo_meetups import ATTENDANCE, POLL_VOTES
from infra.nats_server import free_port
from services import registry
from tests.support.waiting import wait_until

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="finds the system's processes through /proc"
)

START_DEADLINE = (
    180.0  # the demo writes five months of history; on two busy workers, 160 s was seen
)
STOP_DEADLINE = 30.0
COMMAND_DEADLINE = 60.0
RESTART_DEADLINE = 60.0  # a crash noticed, the back-off, the new process ready
# identity's public events of the demo network: TenantRegistered, then per
# member an InvitationIssued and a MemberJoined; hubs' follow, the facilitator
# hand-over last.
DEMO_IDENTITY_EVENTS = 1 + 2 * len(MEMBERS)
DEMO_LAST_HUBS_EVENT = "quartier.hubs.FacilitatorChanged.v1"
# the demo's last steps of meetups (the artisans' votes on the date poll) and
# of referrals (a need released): once they are on the stream, so is the rest
# of those services' history (each relay publishes in order)
DEMO_LAST_EVENTS = {
    "quartier.events.DatePollVoted.v1": len(POLL_VOTES),
    "quartier.referrals.NeedReleased.v1": 1,
}


def quartier(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("quartier")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "infra.cli", *args]


def cli_environment(data_dir: Path) -> dict[str, str]:
    """The user's environment without any QUARTIER_* of the test run's own:
    another terminal, which knows the data dir but not the system's port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUARTIER_")}
    env.update(
        QUARTIER_DATA_DIR=str(data_dir),
        QUARTIER_ENV="test",  # cheap argon2
        PYTHONUNBUFFERED="1",
    )
    return env


def environment(data_dir: Path, port: int) -> dict[str, str]:
    """The environment `quartier up` runs in: JSON logs, which the tests read."""
    return {
        **cli_environment(data_dir),
        "QUARTIER_HTTP_PORT": str(port),
        "QUARTIER_LOG_FORMAT": "json",
    }


def port_is_free(port: int) -> bool:
    """Whether a server could listen on the port now (as uvicorn would bind it)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


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
    first_ready_login: dict[str, Any] | None = None  # logging in as soon as ready
    jwt_secret: str = ""  # the data dir's, once running
    nats_passwords: dict[str, str] = field(default_factory=dict)  # idem, per NATS user

    @classmethod
    def start(cls, data_dir: Path, run: str, *args: str, **env: str) -> Launcher:
        port = free_port()
        stdout_path = data_dir.parent / f"{run}.stdout"
        stderr_path = data_dir.parent / f"{run}.stderr"
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            process = subprocess.Popen(
                quartier("up", *(args or ("--demo",))),
                env={**environment(data_dir, port), **env},
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
        return cli_environment(self.data_dir)

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def output(self) -> str:
        err = self.stderr_path.read_text(errors="replace")
        return f"--- stdout\n{self.stdout()}\n--- stderr (end)\n{err[-6000:]}"

    def events(self, event: str | None = None, **fields: Any) -> list[dict[str, Any]]:
        """The launcher's own log lines (JSON), in order, optionally only those
        of one event with the given fields."""
        found = []
        for line in self.stderr_path.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("service") != "launcher":
                continue
            if event is not None and record.get("event") != event:
                continue
            if all(record.get(k) == v for k, v in fields.items()):
                found.append(record)
        return found

    def wait_event(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        """`events(...)` once there is one: the launcher logs what it sees a
        moment after the test may have seen it."""
        found: list[dict[str, Any]] = wait_until(
            lambda: self.events(event, **fields), RESTART_DEADLINE, f"{event} {fields}"
        )
        return found

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/health/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_running(self) -> None:
        """Until /health/ready answers 200 and the banner is out. The first
        time it answers 200, log in as the demo admin at once."""

        def running() -> bool:
            code = self.process.poll()
            if code is not None:
                pytest.fail(f"`quartier up` exited with {code}\n{self.output()}")
            if not self.ready():
                return False
            if self.first_ready_login is None:
                self.first_ready_login = self.login()
            return "Quartier is running" in self.stdout()

        try:
            wait_until(running, START_DEADLINE, "the system running", interval=0.2)
        except AssertionError as e:
            pytest.fail(f"{e}\n{self.output()}")
        self.children = descendants(self.process.pid, process_table())
        self.jwt_secret = (self.data_dir / "jwt-secret").read_text()
        self.nats_passwords = {
            p.stem: p.read_text() for p in (self.data_dir / "nats-auth").glob("*.password")
        }

    def wait_ready(self) -> None:
        try:
            wait_until(self.ready, RESTART_DEADLINE, "/health/ready answering 200")
        except AssertionError as e:
            pytest.fail(f"{e}\n{self.output()}")

    def wait_restarted(self, old: Proc) -> Proc:
        """The launcher's new child running what `old` ran (same command line)."""

        def replaced() -> Proc | None:
            self.children = descendants(self.process.pid, process_table())
            new = [p for p in self.children.values() if p.args == old.args and p.pid != old.pid]
            return new[0] if new else None

        try:
            found: Proc = wait_until(replaced, RESTART_DEADLINE, f"a new {old.args!r}")
        except AssertionError as e:
            pytest.fail(f"{e}\n{self.output()}")
        assert self.process.poll() is None, self.output()
        return found

    def stop(self) -> int:
        """Ctrl-C, as a terminal sends it: SIGINT to the process group."""
        if self.returncode is None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        return self.wait_exit()

    def wait_exit(self, timeout: float = STOP_DEADLINE) -> int:
        """The launcher's exit code; then what is left of what it ran."""
        if self.returncode is None:
            try:
                self.returncode = self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                pytest.fail(f"still running after {timeout:.0f}s\n{self.output()}")
            self.leftovers = still_running(self.children) + [
                p for p in system_processes(self.data_dir).values() if p.pid not in self.children
            ]
        return self.returncode

    def child(self, module: str) -> Proc:
        (found,) = [p for p in self.children.values() if p.args.endswith(f"-m {module}")]
        return found

    def nats(self) -> Proc:
        (found,) = [p for p in self.children.values() if "nats-server" in p.args]
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
        return self.run_with({}, *args)

    def run_with(self, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            quartier(*args),
            env={**self.env, **env},
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
        has at least `size` events of the demo network, and the demo's last
        ones of hubs, meetups and referrals."""

        def complete() -> list[dict[str, Any]] | None:
            events = self.history()
            types = Counter(e["type"] for e in events)
            done = (
                len(events) >= size
                and types[DEMO_LAST_HUBS_EVENT] > 0
                and all(types[t] >= n for t, n in DEMO_LAST_EVENTS.items())
            )
            return events if done else None

        events: list[dict[str, Any]] = wait_until(
            complete, COMMAND_DEADLINE, "the demo history", interval=0.2
        )
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
    path = tmp_path_factory.mktemp("quartier-up").resolve() / "data"
    path.mkdir(mode=0o755)  # as an older launcher left it: open to all
    path.chmod(0o755)
    return path


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
        "services": dict.fromkeys(registry.names(), True),
        "missing": [],
        "parked": {},
    }
    args = [p.args for p in first_run.children.values()]
    assert any("nats-server" in a and str(first_run.data_dir) in a for a in args), args
    for name in registry.names():
        assert first_run.child(f"services.{name}")
    assert first_run.child("gateway")
    running = system_processes(first_run.data_dir)
    assert set(first_run.children) | {first_run.process.pid} == set(running)  # what the end checks
    nats_url = (first_run.data_dir / "nats.url").read_text().strip()
    assert nats_url.startswith("nats://127.0.0.1:")
    assert nats_url in banner
    assert (first_run.data_dir / "public.url").read_text().strip() == first_run.base_url


def test_the_data_directory_and_its_files_are_private(first_run: Launcher) -> None:
    # made 0755 before the start (the fixture): closed again; files made 0600
    assert stat.S_IMODE(first_run.data_dir.stat().st_mode) == 0o700
    made = [p for p in first_run.data_dir.rglob("*") if p.is_file()]
    assert any(p.name == "identity.db" for p in made), made
    open_ones = {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in made}
    assert {p: m for p, m in open_ones.items() if m != "0o600"} == {}


def test_the_demo_tries_no_sign_in_bound_to_fail(first_run: Launcher) -> None:
    # every process logs to the launcher's stderr (lines of processes may
    # interleave: read as text); before the demo is loaded, the gateway is
    # not started: no test's own sign-in
    text = first_run.stderr_path.read_text(errors="replace")
    text = text[: text.index('"launcher.demo_loaded"')]
    assert '"AcceptInvitation"' in text  # identity's lines are there: the demo's members
    assert "invalid_credentials" not in text


def test_ready_means_the_demo_is_loaded(first_run: Launcher) -> None:
    # logged in the moment /health/ready first said 200, before the banner perhaps
    assert first_run.first_ready_login is not None
    assert first_run.first_ready_login["__typename"] == "AuthPayload", first_run.first_ready_login
    # the gateway was started only once the services answered and the demo was in
    order = [
        (e["event"], e.get("process"))
        for e in first_run.events()
        if e["event"] in ("launcher.process_ready", "launcher.demo_loaded")
    ]
    assert order[0] == ("launcher.process_ready", "nats"), order
    services = registry.names()
    n = len(services)
    assert set(order[1 : 1 + n]) == {("launcher.process_ready", s) for s in services}
    assert order[1 + n : 3 + n] == [
        ("launcher.demo_loaded", None),
        ("launcher.process_ready", "gateway"),
    ]
    assert first_run.events("launcher.process_crashed") == []


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


LUNCHES_QUERY = """
{ hubs { id name
         meetups(when: PAST, first: 5) { edges { node {
           localStart state seated waiting
           attendance { status substitute visitorId member { displayName } }
           cards { title doneAt } nextMeetup { localStart } } } }
         datePolls { title slots { localStart yes ifNeedBe no } } } }
"""

REFERRALS_QUERY = """
query($hub: ID!) {
  slips(direction: ALL, first: 50) { edges { node { about status value { amount currency } } } }
  hubEngagement(hubId: $hub) { core { displayName } drifting { displayName } } }
"""


def test_the_demo_has_its_history_through_graphql(first_run: Launcher, admin_token: str) -> None:
    """The README's queries: the Cercle Voltaire's past lunches (closed, the
    next one fixed, attendance, cards), the artisans' poll, the referrals in
    every state with a won value, the hub's core and drifting members."""
    hubs = {h["name"]: h for h in first_run.graphql(LUNCHES_QUERY, token=admin_token)["hubs"]}
    voltaire, artisans = hubs["Cercle Voltaire"], hubs["Club des artisans du 11e"]
    lunches = [e["node"] for e in voltaire["meetups"]["edges"]]
    assert [m["state"] for m in lunches] == ["CLOSED"] * len(ATTENDANCE)
    assert all(m["nextMeetup"] and m["attendance"] and m["cards"] for m in lunches)
    statuses = {a["status"] for m in lunches for a in m["attendance"]}
    assert {"PRESENT", "LATE", "ABSENT", "EXCUSED", "REPLACED", "VISITOR"} <= statuses
    (poll,) = artisans["datePolls"]
    assert sum(s["yes"] + s["ifNeedBe"] + s["no"] for s in poll["slots"]) == 3 * len(poll["slots"])
    data = first_run.graphql(REFERRALS_QUERY, token=admin_token, hub=voltaire["id"])
    slips = [e["node"] for e in data["slips"]["edges"]]
    assert {s["status"] for s in slips} == {
        "GIVEN",
        "ACCEPTED",
        "DECLINED",
        "CONTACTED",
        "WON",
        "LOST",
    }
    values = [(s["value"]["amount"], s["value"]["currency"]) for s in slips if s["value"]]
    assert ("2450.00", "EUR") in values  # the currency's decimals
    engagement = data["hubEngagement"]
    assert "Claire Martin" in [m["displayName"] for m in engagement["core"]]
    assert "Émilie Roux" in [m["displayName"] for m in engagement["drifting"]]


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
    # the history written on the movable clock: past lunches, closed with
    # their attendance, and a referral won with its value
    by_type = Counter(e["type"].split(".")[2] for e in events)
    assert by_type["MeetupClosed"] == len(ATTENDANCE)
    assert by_type["AttendanceRecorded"] >= sum(len(a) for a in ATTENDANCE)
    closed = [e for e in events if e["type"].endswith(".MeetupClosed.v1")]
    assert closed[0]["time"] < closed[-1]["time"] < events[-1]["time"]
    won = [e["data"]["value"] for e in events if e["type"].endswith(".ReferralWon.v1")]
    assert {"amount": "2450.00", "currency": "EUR"} in won
    first_run.demo_events = len(events)
    assert len({e["id"] for e in events}) == len(events)
    text = json.dumps(events, ensure_ascii=False)
    for member in MEMBERS:
        assert member.email not in text
        assert member.card["display_name"] not in text


def test_tenant_create_prints_an_accept_url_on_the_systems_port(first_run: Launcher) -> None:
    assert first_run.port != 8000
    assert "QUARTIER_HTTP_PORT" not in first_run.env  # the CLI learns it from the data dir
    result = first_run.run(
        "tenant", "create", "other-net", "Other", "--admin-email", "a@other.example"
    )
    assert result.returncode == 0, result.stderr
    match = re.search(
        r"(\S+)/accept-invitation\?token=([^&\s]+)&network=other-net\b", result.stdout
    )
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


def test_the_bus_lets_in_only_the_systems_own_processes(first_run: Launcher) -> None:
    """The embedded NATS authenticates every process, each as its own user
    with its own password (infra/nats_auth.py), kept private in the data dir;
    a connection without credentials is refused."""
    folder = first_run.data_dir / "nats-auth"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    config = folder / "nats-server.conf"
    assert f"-c {config}" in first_run.nats().args
    users = {*registry.names(), "gateway", "launcher", "operator", "admin"}
    assert set(first_run.nats_passwords) == users
    for module, user in [*((f"services.{n}", n) for n in registry.names()), ("gateway", "gateway")]:
        env = first_run.child(module).environ
        assert f"QUARTIER_NATS_USER={user}".encode() in env
        assert f"QUARTIER_NATS_PASSWORD_FILE={folder / user}.password".encode() in env
        assert not [v for v in env if v.startswith(b"QUARTIER_NATS_PASSWORD=")]
    nats_url = (first_run.data_dir / "nats.url").read_text().strip()
    assert "@" not in nats_url  # no credentials in the URL the CLI reads
    probe = (
        "import asyncio, nats, sys\n"
        "async def main():\n"
        "    try:\n"
        "        await nats.connect(sys.argv[1], allow_reconnect=False, connect_timeout=5)\n"
        "    except Exception as e:\n"
        "        print(e)\n"
        "asyncio.run(main())\n"
    )
    anonymous = subprocess.run(
        [sys.executable, "-c", probe, nats_url],
        capture_output=True,
        text=True,
        timeout=COMMAND_DEADLINE,
        check=False,
    )
    assert "Authorization Violation" in anonymous.stdout, anonymous


def test_stream_needs_the_operators_nats_credentials_and_token(first_run: Launcher) -> None:
    nats_url = (first_run.data_dir / "nats.url").read_text().strip()
    # QUARTIER_NATS_URL set by hand: the CLI does not send the data dir's
    # credentials there, and has none of its own
    anonymous = first_run.run_with({"QUARTIER_NATS_URL": nats_url}, "stream", "--tenant", SLUG)
    assert anonymous.returncode == 2
    assert "refused the connection (no user)" in anonymous.stderr
    assert anonymous.stdout == ""
    # the operator's NATS user, but not the operator's token
    wrong = first_run.run_with(
        {"QUARTIER_OPERATOR_TOKEN": "not-the-token"}, "stream", "--tenant", SLUG, "--from-start"
    )
    assert wrong.returncode == 2
    assert "forbidden" in wrong.stderr
    assert wrong.stdout == ""
    # a service's NATS user, with the token: not its to read
    folder = first_run.data_dir / "nats-auth"
    as_hubs = first_run.run_with(
        {
            "QUARTIER_NATS_URL": nats_url,
            "QUARTIER_NATS_USER": "hubs",
            "QUARTIER_NATS_PASSWORD_FILE": str(folder / "hubs.password"),
            "QUARTIER_REQUEST_TIMEOUT": "2",
        },
        "stream",
        "--tenant",
        SLUG,
        "--from-start",
    )
    assert as_hubs.returncode == 2, as_hubs
    assert as_hubs.stdout == ""
    # the operator, by name and password, with the token
    as_operator = first_run.run_with(
        {
            "QUARTIER_NATS_URL": nats_url,
            "QUARTIER_NATS_USER": "operator",
            "QUARTIER_NATS_PASSWORD": first_run.nats_passwords["operator"],
        },
        "stream",
        "--tenant",
        SLUG,
        "--from-start",
        "--limit",
        "1",
    )
    assert as_operator.returncode == 0, as_operator.stderr
    assert json.loads(as_operator.stdout)["type"] == "quartier.identity.TenantRegistered.v1"


def test_stream_of_an_unknown_network_exits_2(first_run: Launcher) -> None:
    result = first_run.run("stream", "--tenant", "nope", "--from-start")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "nope" in result.stderr


# -- supervision -----------------------------------------------------------------------


def test_a_killed_service_is_restarted(first_run: Launcher, admin_token: str) -> None:
    old = first_run.child("services.identity")
    os.kill(old.pid, signal.SIGKILL)
    new = first_run.wait_restarted(old)
    first_run.wait_ready()
    assert first_run.login()["__typename"] == "AuthPayload"
    members = first_run.graphql(MEMBERS_QUERY, token=admin_token)["members"]
    assert members["totalCount"] == len(MEMBERS)
    (crash,) = first_run.events("launcher.process_crashed", process="identity")
    assert crash["pid"] == old.pid
    assert crash["signal"] == "SIGKILL"
    assert crash["crashes"] == 1
    assert crash["restart_in_seconds"] == 0.5
    (restart,) = first_run.wait_event("launcher.process_restarted", process="identity")
    assert restart["pid"] == new.pid
    (ready,) = first_run.wait_event("launcher.process_ready", process="identity", pid=new.pid)
    assert ready["restarts"] == 1


def test_a_killed_gateway_is_restarted(first_run: Launcher, admin_token: str) -> None:
    old = first_run.child("gateway")
    os.kill(old.pid, signal.SIGKILL)
    new = first_run.wait_restarted(old)
    first_run.wait_ready()
    members = first_run.graphql(MEMBERS_QUERY, token=admin_token)["members"]
    assert members["totalCount"] == len(MEMBERS)
    (crash,) = first_run.events("launcher.process_crashed", process="gateway")
    assert crash["pid"] == old.pid and crash["signal"] == "SIGKILL"
    assert first_run.wait_event("launcher.process_restarted", process="gateway", pid=new.pid)


def test_a_killed_nats_is_restarted_and_the_services_reconnect(
    first_run: Launcher, admin_token: str
) -> None:
    nats_url = (first_run.data_dir / "nats.url").read_text()
    old = first_run.nats()
    os.kill(old.pid, signal.SIGKILL)
    new = first_run.wait_restarted(old)  # same command line: same port, same data
    assert new.args == old.args
    first_run.wait_ready()  # the gateway is connected again, and every service answers it
    assert (first_run.data_dir / "nats.url").read_text() == nats_url
    members = first_run.graphql(MEMBERS_QUERY, token=admin_token)["members"]
    assert members["totalCount"] == len(MEMBERS)
    # JetStream kept its data on disk, and identity's relay publishes again
    history = first_run.wait_history(DEMO_IDENTITY_EVENTS)
    assert len([e for e in history if e["id"].startswith("identity:")]) == DEMO_IDENTITY_EVENTS
    created = first_run.run(
        "tenant", "create", "after-nats", "After", "--admin-email", "a@after.example"
    )
    assert created.returncode == 0, created.stderr

    def registered() -> bool:
        events = first_run.history("after-nats")
        return [e["type"] for e in events][:1] == ["quartier.identity.TenantRegistered.v1"]

    wait_until(registered, COMMAND_DEADLINE, "the new network's first event on the stream")
    (crash,) = first_run.events("launcher.process_crashed", process="nats")
    assert crash["pid"] == old.pid and crash["signal"] == "SIGKILL"


def test_ctrl_c_stops_every_process_in_order_and_exits_0(first_run: Launcher) -> None:
    first_run.children = descendants(first_run.process.pid, process_table())
    assert len(first_run.children) == 2 + len(registry.names())  # nats, the services, the gateway
    assert first_run.stop() == 0, first_run.output()
    assert first_run.leftovers == [], first_run.leftovers
    assert system_processes(first_run.data_dir) == {}
    err = first_run.stderr_path.read_text()
    assert "Stopped." in err
    stopped = [e["process"] for e in first_run.events("launcher.process_stopped")]
    started = [spec.name for spec in registry.with_needs(registry.names())]
    assert stopped == ["gateway", *reversed(started), "nats"]
    assert first_run.events("launcher.gave_up") == []
    assert not (first_run.data_dir / "nats.url").exists()
    assert not (first_run.data_dir / "public.url").exists()
    assert not first_run.ready()


# -- a second run on the same data dir --------------------------------------------------


@pytest.fixture(scope="module")
def second_run(first_run: Launcher, data_dir: Path) -> Iterator[Launcher]:
    first_run.stop()  # should the shutdown test have been deselected
    launcher = Launcher.start(data_dir, "second")
    try:
        launcher.wait_running()
        yield launcher
    finally:
        launcher.close()


def test_up_demo_again_on_the_same_data_is_idempotent(
    first_run: Launcher, second_run: Launcher, data_dir: Path, admin_token: str
) -> None:
    login = second_run.login()
    assert login["__typename"] == "AuthPayload", login
    members = second_run.graphql(MEMBERS_QUERY, token=login["accessToken"])["members"]
    assert members["totalCount"] == len(MEMBERS)
    emails = [e["node"]["email"] for e in members["edges"]]
    assert sorted(emails) == sorted(m.email for m in MEMBERS)
    admins = [e["node"]["email"] for e in members["edges"] if e["node"]["isTenantAdmin"]]
    assert admins == [ADMIN_EMAIL]
    # the network created in the first run is still there, and no demo event was added
    assert second_run.graphql(TENANT_QUERY, slug="other-net")["tenant"]["name"] == "Other"
    expected = first_run.demo_events or len(second_run.wait_history(DEMO_IDENTITY_EVENTS))
    assert len(second_run.history()) == expected
    # the secrets were kept: a token of the first run is still good
    assert (data_dir / "jwt-secret").read_text() == first_run.jwt_secret
    assert second_run.nats_passwords == first_run.nats_passwords
    assert second_run.graphql(MEMBERS_QUERY, token=admin_token)["members"]["totalCount"]


def test_killing_the_launcher_takes_its_children_with_it(second_run: Launcher) -> None:
    children = descendants(second_run.process.pid, process_table())
    assert len(children) == 2 + len(registry.SERVICES)  # NATS, the services, the gateway
    nats_port = int((second_run.data_dir / "nats.url").read_text().rsplit(":", 1)[1])
    second_run.process.kill()  # SIGKILL: no chance to stop anything itself
    second_run.returncode = second_run.process.wait(timeout=STOP_DEADLINE)

    def all_gone() -> bool:
        return not still_running(children) and not system_processes(second_run.data_dir)

    wait_until(all_gone, STOP_DEADLINE, "every child of the killed launcher gone")
    assert port_is_free(second_run.port)
    assert port_is_free(nats_port)


# -- a process that keeps crashing ---------------------------------------------------


def test_a_process_that_keeps_crashing_makes_the_launcher_give_up(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "hubs.db").mkdir(parents=True)  # hubs cannot open its store: it exits at once
    launcher = Launcher.start(data_dir, "crashing", "--demo", QUARTIER_RESTART_DELAY="0.05")
    try:
        assert launcher.wait_exit(START_DEADLINE) == 1, launcher.output()
        assert launcher.leftovers == [], launcher.leftovers
        assert system_processes(data_dir) == {}
        crashes = launcher.events("launcher.process_crashed", process="hubs")
        assert [c["crashes"] for c in crashes] == [1, 2, 3, 4]
        assert [c["restart_in_seconds"] for c in crashes] == [0.05, 0.1, 0.2, 0.4]
        assert all(c["exit_code"] == 1 for c in crashes)
        (gave_up,) = launcher.events("launcher.gave_up")
        assert gave_up["process"] == "hubs" and gave_up["crashes"] == 5
        assert gave_up["window_seconds"] == 60
        assert len(launcher.events("launcher.process_restarted", process="hubs")) == 4
        # the others ran, and were stopped; the gateway never started (no demo, no banner)
        stopped = [e["process"] for e in launcher.events("launcher.process_stopped")]
        started = [spec.name for spec in registry.with_needs(registry.names())]
        assert stopped == [*(s for s in reversed(started) if s != "hubs"), "nats"]
        assert launcher.events("launcher.process_ready", process="identity")
        assert not launcher.events(process="gateway")
        assert "Quartier is running" not in launcher.stdout()
        assert not (data_dir / "nats.url").exists()
    finally:
        launcher.close()


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
