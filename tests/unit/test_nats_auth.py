"""The bus's credentials and permissions (infra/nats_auth.py): the settings
that name a process's NATS user, the users and permissions generated from the
registry, the embedded server's kept passwords and configuration, and the
block printed for an external server. Over a real server:
tests/integration/test_nats_auth.py."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
from pathlib import Path

import pytest

from infra import nats_auth
from infra.nats_server import nats_server_binary
from services import registry
from services.registry import ServiceSpec
from services.runtime.clock import MovableClock
from services.runtime.settings import ConfigurationError, NatsCredentials, Settings
from services.runtime.stream import rebuild_consumer
from tests.support.env import make_settings

# random: production refuses guessable secrets
SECRETS = {
    "QUARTIER_JWT_SECRET": secrets.token_urlsafe(32),
    "QUARTIER_OPERATOR_TOKEN": secrets.token_urlsafe(32),
}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- settings ------------------------------------------------------------------------


def test_no_nats_user_by_default() -> None:
    assert Settings.from_env(dict(SECRETS)).nats_credentials is None


def test_a_user_and_its_password(tmp_path: Path) -> None:
    s = Settings.from_env({**SECRETS, "QUARTIER_NATS_USER": "hubs", "QUARTIER_NATS_PASSWORD": "pw"})
    assert s.nats_credentials == NatsCredentials("hubs", "pw")
    assert s.nats_credentials.inbox_prefix == "_INBOX.hubs"
    assert "pw" not in repr(s)  # settings may be logged; the password is not shown
    secret = tmp_path / "hubs.password"
    secret.write_text("from-a-file\n")
    s = Settings.from_env(
        {**SECRETS, "QUARTIER_NATS_USER": "hubs", "QUARTIER_NATS_PASSWORD_FILE": str(secret)}
    )
    assert s.nats_credentials == NatsCredentials("hubs", "from-a-file")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"QUARTIER_NATS_USER": "hubs"}, "needs QUARTIER_NATS_PASSWORD"),
        ({"QUARTIER_NATS_PASSWORD": "pw"}, "QUARTIER_NATS_USER must be set"),
        ({"QUARTIER_NATS_USER": "a.b", "QUARTIER_NATS_PASSWORD": "pw"}, "only letters"),
        ({"QUARTIER_NATS_USER": "*", "QUARTIER_NATS_PASSWORD": "pw"}, "only letters"),
        (
            {
                "QUARTIER_NATS_USER": "hubs",
                "QUARTIER_NATS_PASSWORD": "pw",
                "QUARTIER_NATS_PASSWORD_FILE": "/x",
            },
            "not both",
        ),
        (
            {"QUARTIER_NATS_USER": "hubs", "QUARTIER_NATS_PASSWORD_FILE": "/nonexistent/pw"},
            "cannot read",
        ),
    ],
)
def test_malformed_nats_credentials_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env({**SECRETS, **env})


def test_prod_needs_credentials_for_an_external_nats(tmp_path: Path) -> None:
    prod = {**SECRETS, "QUARTIER_ENV": "prod", "QUARTIER_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(prod).nats_credentials is None  # `quartier up` gives its own
    with pytest.raises(ConfigurationError, match="QUARTIER_NATS_USER"):
        Settings.from_env({**prod, "QUARTIER_NATS_URL": "nats://nats.internal:4222"})
    with_user = {
        **prod,
        "QUARTIER_NATS_URL": "nats://nats.internal:4222",
        "QUARTIER_NATS_USER": "gateway",
        "QUARTIER_NATS_PASSWORD": "pw",
    }
    assert Settings.from_env(with_user).nats_credentials == NatsCredentials("gateway", "pw")
    in_url = {**prod, "QUARTIER_NATS_URL": "nats://gateway:pw@a:4222,nats://gateway:pw@b:4222"}
    assert Settings.from_env(in_url).nats_credentials is None
    with pytest.raises(ConfigurationError):  # one server of the list without
        Settings.from_env({**prod, "QUARTIER_NATS_URL": "nats://gateway:pw@a:4222,nats://b:4222"})


# -- users and permissions -------------------------------------------------------------


def test_every_process_has_its_own_user() -> None:
    users = nats_auth.users()
    assert set(users) == {*registry.names(), "gateway", "launcher", "operator"}
    assert "admin" in nats_auth.users(admin=True)
    with pytest.raises(ValueError, match="gateway"):
        nats_auth.users([ServiceSpec("gateway")])


def test_a_service_answers_its_own_subjects_and_asks_only_what_it_needs() -> None:
    hubs = nats_auth.users()["hubs"]
    assert set(hubs.subscribe) == {
        "quartier.cmd.hubs.>",
        "quartier.qry.hubs.>",
        "quartier.ping.hubs",
        "quartier.clock",
        "_INBOX.hubs.>",
    }
    assert hubs.allow_responses
    requests = {s for s in hubs.publish if s.startswith(("quartier.cmd.", "quartier.qry."))}
    assert requests == {
        f"quartier.{kind}.{need}.>" for kind in ("cmd", "qry") for need in ("identity", "events")
    }
    assert [s for s in hubs.publish if s.startswith("quartier.evt.")] == ["quartier.evt.*.hubs.>"]
    identity = nats_auth.users()["identity"]
    assert not [s for s in identity.publish if s.startswith(("quartier.cmd.", "quartier.qry."))]


def test_a_service_uses_only_the_stream_and_its_own_consumers() -> None:
    for spec in registry.SERVICES:
        js = [s for s in nats_auth.users()[spec.name].publish if s.startswith("$JS")]
        for subject in js:
            assert "QUARTIER_EVENTS" in subject, subject
            assert ">" not in subject.split("QUARTIER_EVENTS", 1)[0], subject
        consumers = [s for s in js if ".CONSUMER." in s or s.startswith("$JS.ACK.")]
        named = {s.split("QUARTIER_EVENTS.", 1)[1].split(".", 1)[0] for s in consumers}
        assert named == {*spec.durables, rebuild_consumer(spec.name)}, subject
        # no way to create a consumer without naming it (and its filter)
        assert "$JS.API.CONSUMER.CREATE.QUARTIER_EVENTS" not in js
    hubs = nats_auth.users()["hubs"].publish
    assert (
        "$JS.API.CONSUMER.CREATE.QUARTIER_EVENTS.hubs-directory.quartier.evt.*.identity.>" in hubs
    )


def test_the_gateway_launcher_and_operator_publish_no_event_and_answer_nothing() -> None:
    users = nats_auth.users()
    for name in ("gateway", "launcher", "operator"):
        p = users[name]
        assert not p.allow_responses
        assert p.subscribe == (f"_INBOX.{name}.>",)
        assert not [s for s in p.publish if s.startswith("quartier.evt") or s == ">"]
    operator = users["operator"].publish
    assert "quartier.cmd.identity.CreateTenant" in operator
    assert "quartier.qry.hubs.ListParked" in operator
    assert not [s for s in operator if s.endswith(">") and s.startswith("quartier.")]


@pytest.mark.parametrize("spec", registry.SERVICES, ids=lambda s: s.name)
def test_the_registry_names_every_reaction_a_service_builds(
    spec: ServiceSpec, tmp_path: Path
) -> None:
    """The permissions name each durable consumer: a reaction missing from
    `ServiceSpec.reactions` would be refused its consumer by the bus."""
    host = spec.builder()(make_settings(tmp_path, "nats://127.0.0.1:1"), clock=MovableClock())
    try:
        built = {(c.durable, c.reaction.upstream) for c in host.reactions}
    finally:
        host.offload.shutdown()
        for closer in host.closers:
            closer()
        for app in host.apps:
            app.close()
    assert {durable for durable, _ in built} == set(spec.durables), (
        f"services/registry.py: {spec.name}'s reactions are "
        f"{sorted(d.removeprefix(spec.name + '-') for d, _ in built)}"
    )
    for durable, upstream in built:
        assert upstream in (*spec.needs, spec.name), f"{durable} reads {upstream}, unneeded"


# -- the embedded server's credentials and configuration ------------------------------


def test_passwords_are_generated_once_and_kept_private(tmp_path: Path) -> None:
    config = nats_auth.write_server_config(tmp_path)
    folder = tmp_path / "nats-auth"
    assert config.parent == folder
    assert mode(folder) == 0o700
    assert mode(config) == 0o600
    users = nats_auth.users(admin=True)
    passwords = {}
    for user in users:
        path = nats_auth.password_file(tmp_path, user)
        assert mode(path) == 0o600
        passwords[user] = path.read_text()
        assert len(passwords[user]) >= 40
        assert f'password: "{passwords[user]}"' in config.read_text()
        assert nats_auth.credentials(tmp_path, user) == NatsCredentials(user, passwords[user])
    assert len(set(passwords.values())) == len(users)
    nats_auth.write_server_config(tmp_path)  # the next start keeps them
    assert {u: nats_auth.password_file(tmp_path, u).read_text() for u in users} == passwords
    assert nats_auth.credentials(tmp_path / "elsewhere", "hubs") is None


def test_the_generated_configuration_is_valid(tmp_path: Path) -> None:
    config = nats_auth.write_server_config(tmp_path)
    checked = subprocess.run(
        [nats_server_binary(), "-c", str(config), "-t"], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    assert "sync_interval: always" in config.read_text()  # the base configuration is in


def test_the_external_servers_block_reads_passwords_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nats_auth.main()  # python -m infra.nats_auth
    printed = capsys.readouterr().out
    assert "$QUARTIER_NATS_HUBS_PASSWORD" in printed
    assert '"admin"' not in printed
    config = tmp_path / "external.conf"
    config.write_text("jetstream {}\n" + printed)
    env = {
        **os.environ,
        **{nats_auth.password_variable(user): f"pw-{user}" for user in nats_auth.users()},
    }
    checked = subprocess.run(
        [nats_server_binary(), "-c", str(config), "-t"], capture_output=True, text=True, env=env
    )
    assert checked.returncode == 0, checked.stderr
