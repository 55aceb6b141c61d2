"""infra/k8s/: current with the registry, and valid offline — the built-in
kinds against the Kubernetes API schemas that `kubernetes-validate` ships
(strict: an unknown field fails), the CloudNativePG Cluster and the NATS
chart's values against the subset of their schemas that we use (neither
schema ships with a package that installs offline: the CRD comes from the
operator's release and the chart from its repository, and `helm` is a
binary download)."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from infra import nats_auth
from infra.k8s import generate
from services import registry

K8S = Path(generate.__file__).parent
VERSION = "1.30.0"  # the oldest Kubernetes the manifests are meant for (docs/deployment.md)


Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def _parsed(name: str) -> tuple[dict[str, Any], ...]:
    return tuple(d for d in yaml.load_all((K8S / name).read_text(), Loader=Loader) if d)


def documents(name: str) -> list[dict[str, Any]]:
    """The file's objects (a fresh copy: a test may change them)."""
    return copy.deepcopy(list(_parsed(name)))


def test_the_files_are_current() -> None:
    """`python -m infra.k8s.generate` after a change of the registry or of
    the NATS users."""
    for name, text in generate.files().items():
        assert (K8S / name).read_text() == text, f"infra/k8s/{name} is stale: regenerate it"


def test_every_builtin_object_validates_strictly() -> None:
    for document in _parsed("quartier.yaml"):
        kubernetes_validate.validate(document, VERSION, strict=True)


def test_validation_catches_a_mistake() -> None:
    deployment = next(d for d in documents("quartier.yaml") if d["kind"] == "Deployment")
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSION, strict=True)
    deployment["spec"]["replicas"] = 2
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSION, strict=True)


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _parsed("quartier.yaml") if d["kind"] == kind}


def test_the_gateway_and_every_service_are_deployed_whole() -> None:
    names = {"gateway", *(f"quartier-{s}" for s in registry.names())}
    for kind in ("Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"):
        assert set(by_kind(kind)) == names, kind
    for name, deployment in by_kind("Deployment").items():
        spec = deployment["spec"]
        assert spec["replicas"] >= 2, name
        (container,) = spec["template"]["spec"]["containers"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["port"] == "http", (name, probe)
        assert container["resources"]["requests"] and container["resources"]["limits"], name
        assert container["securityContext"]["runAsNonRoot"] is True
        module = container["command"][-1]
        user = "gateway" if module == "gateway" else module.removeprefix("services.")
        env = {e["name"]: e for e in container["env"]}
        assert env["QUARTIER_NATS_USER"]["value"] == user
        # secrets by reference only: no literal secret value anywhere
        for key in ("DATABASE_URL", "JWT_SECRET", "OPERATOR_TOKEN", "SMTP_URL"):
            assert "secretKeyRef" in env[f"QUARTIER_{key}"]["valueFrom"], (name, key)
        (password,) = [v for v in spec["template"]["spec"]["volumes"] if "secret" in v]
        assert password["secret"]["items"] == [{"key": user, "path": user}]
        assert by_kind("PodDisruptionBudget")[name]["spec"]["minAvailable"] == 1
        assert by_kind("HorizontalPodAutoscaler")[name]["spec"]["minReplicas"] >= 2
    gateway = by_kind("Deployment")["gateway"]["spec"]["template"]["spec"]["containers"][0]
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/health/live"


def test_the_shared_settings_are_a_cluster_and_production() -> None:
    (settings,) = by_kind("ConfigMap").values()
    data = settings["data"]
    assert data["QUARTIER_ENV"] == "prod"
    assert len(data["QUARTIER_NATS_URL"].split(",")) == 3
    assert data["QUARTIER_STREAM_REPLICAS"] == "3"
    from services.runtime.settings import nats_servers

    assert len(nats_servers(data["QUARTIER_NATS_URL"])) == 3  # as the processes will read it


# The subset of CloudNativePG's Cluster (postgresql.cnpg.io/v1, operator 1.24)
# that the manifest uses, with the CRD's types; anything else fails.
CNPG_CLUSTER = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "postgresql.cnpg.io/v1"},
        "kind": {"const": "Cluster"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "labels": {"type": "object"}},
        },
        "spec": {
            "type": "object",
            "required": ["instances", "storage", "bootstrap"],
            "additionalProperties": False,
            "properties": {
                "instances": {"type": "integer", "minimum": 3},
                "imageName": {"type": "string"},
                "primaryUpdateStrategy": {"enum": ["unsupervised", "supervised"]},
                "storage": {
                    "type": "object",
                    "required": ["size"],
                    "properties": {"size": {"type": "string"}},
                    "additionalProperties": False,
                },
                "walStorage": {
                    "type": "object",
                    "properties": {"size": {"type": "string"}},
                    "additionalProperties": False,
                },
                "postgresql": {
                    "type": "object",
                    "properties": {
                        "parameters": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        }
                    },
                    "additionalProperties": False,
                },
                "bootstrap": {
                    "type": "object",
                    "properties": {
                        "initdb": {
                            "type": "object",
                            "required": ["database", "owner"],
                            "properties": {
                                "database": {"type": "string"},
                                "owner": {"type": "string"},
                            },
                            "additionalProperties": False,
                        }
                    },
                    "additionalProperties": False,
                },
                "resources": {"type": "object"},
                "monitoring": {
                    "type": "object",
                    "properties": {"enablePodMonitor": {"type": "boolean"}},
                    "additionalProperties": False,
                },
            },
        },
    },
}


def test_the_postgres_cluster_validates() -> None:
    (cluster,) = documents("postgres.yaml")
    jsonschema.validate(cluster, CNPG_CLUSTER)
    # its application secret is the one the processes read
    assert f"{cluster['metadata']['name']}-app" == generate.DB_SECRET
    typo = {**cluster, "spec": {**cluster["spec"], "instance": 3}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(typo, CNPG_CLUSTER)


def test_the_nats_values_make_a_durable_cluster_with_quartiers_users() -> None:
    (values,) = documents("nats-values.yaml")
    config = values["config"]
    assert config["cluster"] == {"enabled": True, "replicas": 3}
    assert config["jetstream"]["enabled"] is True
    assert config["jetstream"]["fileStore"]["pvc"]["enabled"] is True
    assert config["jetstream"]["merge"]["sync_interval"] == "always"  # docs/reliability.md
    users = nats_auth.users()
    configured = {u["user"]: u for u in config["merge"]["authorization"]["users"]}
    assert set(configured) == set(users)
    env = values["container"]["env"]
    for user, permissions in users.items():
        entry = configured[user]
        variable = nats_auth.password_variable(user)
        assert entry["password"] == f"<< ${variable} >>"  # unquoted: the server reads its env
        assert entry["permissions"]["publish"]["allow"] == list(permissions.publish)
        assert entry["permissions"]["subscribe"]["allow"] == list(permissions.subscribe)
        assert env[variable]["valueFrom"]["secretKeyRef"] == {
            "name": generate.NATS_SECRET,
            "key": user,
        }
