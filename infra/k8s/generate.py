"""Kubernetes manifests for Quartier, generated from `services/registry.py`
and `infra/nats_auth.py`, so that a new service or NATS user is deployed
without editing YAML by hand (`python -m infra.k8s.generate` rewrites the
files; `tests/unit/test_k8s_manifests.py` fails when they are not current).

What it writes into this folder (docs/deployment.md says how to apply them):

* `quartier.yaml`: for the gateway and each registered service a Deployment
  (two replicas, probes, resources, no root, a read-only file system), a
  Service, a PodDisruptionBudget and a HorizontalPodAutoscaler; a ConfigMap
  of the settings they share. Secrets are referenced, never written:
  `quartier-secrets` (`jwt-secret`, `operator-token`, `smtp-url`),
  `quartier-nats` (one password per NATS user, keyed by user) and the
  application secret CloudNativePG creates for the database,
  `quartier-db-app` (`uri`).
* `postgres.yaml`: a CloudNativePG `Cluster` (three instances).
* `nats-values.yaml`: values for the official NATS Helm chart (nats-io/k8s,
  chart 1.x): three nodes, JetStream on persistent volumes with
  `sync_interval: always` (docs/reliability.md), and the users and
  permissions of infra/nats_auth.py, their passwords read from
  `quartier-nats`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from infra import nats_auth
from services import registry

HERE = Path(__file__).parent
IMAGE = "quartier:0.1.0"  # set the real one with kustomize `images:` or by editing
NAMESPACE_NOTE = "apply into one namespace (kubectl -n <ns>); names are relative to it"
NATS_RELEASE = "nats"  # `helm install nats nats/nats -f infra/k8s/nats-values.yaml`
NATS_NODES = 3
NATS_URL = ",".join(
    f"nats://{NATS_RELEASE}-{i}.{NATS_RELEASE}-headless:4222" for i in range(NATS_NODES)
)
METRICS_PORT = 9100  # QUARTIER_METRICS_PORT: a service serves on this + 1 + its index
HTTP_PORT = 8000
SECRETS = "quartier-secrets"
NATS_SECRET = "quartier-nats"
DB_CLUSTER = "quartier-db"
DB_SECRET = f"{DB_CLUSTER}-app"  # made by CloudNativePG: keys username, password, uri, …
PASSWORDS_DIR = "/var/run/secrets/quartier/nats"
LABEL = "app.kubernetes.io/name"
PART_OF = {"app.kubernetes.io/part-of": "quartier"}


def _labels(name: str) -> dict[str, str]:
    return {LABEL: name, **PART_OF}


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _container(name: str, user: str, module: str, port: int, probe_path: str) -> dict[str, Any]:
    """One process: the shared settings, its NATS user, secrets by reference."""
    return {
        "name": name,
        "image": IMAGE,
        "command": ["python", "-m", module],
        "envFrom": [{"configMapRef": {"name": "quartier-settings"}}],
        "env": [
            {"name": "QUARTIER_NATS_USER", "value": user},
            {"name": "QUARTIER_NATS_PASSWORD_FILE", "value": f"{PASSWORDS_DIR}/{user}"},
            _secret_env("QUARTIER_DATABASE_URL", DB_SECRET, "uri"),
            _secret_env("QUARTIER_JWT_SECRET", SECRETS, "jwt-secret"),
            _secret_env("QUARTIER_OPERATOR_TOKEN", SECRETS, "operator-token"),
            _secret_env("QUARTIER_SMTP_URL", SECRETS, "smtp-url"),
        ],
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "startupProbe": {
            "httpGet": {"path": probe_path, "port": "http"},
            "periodSeconds": 2,
            "failureThreshold": 60,  # waits for NATS and PostgreSQL up to 2 minutes
        },
        "livenessProbe": {
            "httpGet": {
                "path": "/health/live" if module == "gateway" else probe_path,
                "port": "http",
            },
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            "httpGet": {"path": probe_path, "port": "http"},
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": 2,
        },
        "resources": {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"memory": "512Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "nats-password", "mountPath": PASSWORDS_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 -- an emptyDir of its own
        ],
    }


def _deployment(name: str, user: str, module: str, port: int, probe_path: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": _labels(name)},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {LABEL: name}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {"labels": _labels(name)},
                "spec": {
                    # the service host stops serving, lets requests in flight
                    # finish (QUARTIER_REQUEST_TIMEOUT), hands over leadership
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": {LABEL: name}},
                        }
                    ],
                    "containers": [_container(name, user, module, port, probe_path)],
                    "volumes": [
                        {
                            "name": "nats-password",
                            "secret": {
                                "secretName": NATS_SECRET,
                                "items": [{"key": user, "path": user}],
                                "defaultMode": 0o400,
                            },
                        },
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def _service(name: str, port: int, target: int, port_name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": _labels(name)},
        "spec": {
            "selector": {LABEL: name},
            "ports": [{"name": port_name, "port": port, "targetPort": target, "protocol": "TCP"}],
        },
    }


def _pdb(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "labels": _labels(name)},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {LABEL: name}}},
    }


def _hpa(name: str, most: int) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "labels": _labels(name)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 2,
            "maxReplicas": most,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
    }


def settings_map() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "quartier-settings", "labels": _labels("quartier")},
        "data": {
            "QUARTIER_ENV": "prod",
            "QUARTIER_NATS_URL": NATS_URL,
            "QUARTIER_STREAM_REPLICAS": str(NATS_NODES),
            "QUARTIER_HTTP_HOST": "0.0.0.0",  # noqa: S104 -- inside the pod
            "QUARTIER_HTTP_PORT": str(HTTP_PORT),
            "QUARTIER_METRICS_PORT": str(METRICS_PORT),
            "QUARTIER_PUBLIC_URL": "https://quartier.example.org",
            "QUARTIER_DATA_DIR": "/tmp/quartier",  # noqa: S108 -- unused with PostgreSQL and SMTP
            "QUARTIER_LOG_FORMAT": "json",
            "QUARTIER_WORKERS": "8",
            "QUARTIER_REQUEST_TIMEOUT": "10",
        },
    }


def quartier_manifests() -> list[dict[str, Any]]:
    """The gateway's and each service's objects, in a stable order."""
    found: list[dict[str, Any]] = [settings_map()]
    found += [
        _deployment("gateway", nats_auth.GATEWAY, "gateway", HTTP_PORT, "/health/ready"),
        _service("gateway", 80, HTTP_PORT, "http"),
        _pdb("gateway"),
        _hpa("gateway", 10),
    ]
    for index, spec in enumerate(registry.SERVICES):
        name = f"quartier-{spec.name}"
        port = METRICS_PORT + 1 + index  # Settings.metrics_port_of
        # a service answers over NATS; its HTTP port serves /metrics, which
        # says the process is alive (docs/deployment.md, "Probes")
        found += [
            _deployment(name, spec.name, spec.module, port, "/metrics"),
            _service(name, port, port, "metrics"),
            _pdb(name),
            _hpa(name, 6),
        ]
    return found


def postgres_cluster() -> dict[str, Any]:
    return {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": DB_CLUSTER, "labels": _labels(DB_CLUSTER)},
        "spec": {
            "instances": 3,
            "imageName": "ghcr.io/cloudnative-pg/postgresql:16",
            "primaryUpdateStrategy": "unsupervised",
            "storage": {"size": "50Gi"},
            "walStorage": {"size": "20Gi"},
            "postgresql": {
                "parameters": {
                    # (gateway excluded) replicas x services x QUARTIER_WORKERS
                    # pools plus the leader locks: docs/deployment.md, capacity
                    "max_connections": "400",
                    "shared_buffers": "1GB",
                }
            },
            "bootstrap": {"initdb": {"database": "quartier", "owner": "quartier"}},
            "resources": {
                "requests": {"cpu": "1", "memory": "4Gi"},
                "limits": {"memory": "4Gi"},
            },
            "monitoring": {"enablePodMonitor": False},
        },
    }


def nats_values() -> dict[str, Any]:
    users = nats_auth.users()
    return {
        "config": {
            "cluster": {"enabled": True, "replicas": NATS_NODES},
            "jetstream": {
                "enabled": True,
                "fileStore": {"enabled": True, "pvc": {"enabled": True, "size": "20Gi"}},
                # fsync before acknowledging (docs/reliability.md)
                "merge": {"sync_interval": "always"},
            },
            "merge": {
                "max_payload": "<< 1MB >>",
                "authorization": {
                    "users": [
                        {
                            "user": user,
                            "password": f"<< ${nats_auth.password_variable(user)} >>",
                            "permissions": {
                                "publish": {"allow": list(p.publish)},
                                "subscribe": {"allow": list(p.subscribe)},
                                **({"allow_responses": True} if p.allow_responses else {}),
                            },
                        }
                        for user, p in users.items()
                    ]
                },
            },
        },
        "container": {
            "env": {
                nats_auth.password_variable(user): {
                    "valueFrom": {"secretKeyRef": {"name": NATS_SECRET, "key": user}}
                }
                for user in users
            },
            "merge": {
                "resources": {
                    "requests": {"cpu": "500m", "memory": "1Gi"},
                    "limits": {"memory": "2Gi"},
                }
            },
        },
        "podDisruptionBudget": {"enabled": True},
    }


HEADER = (
    "# Generated by `python -m infra.k8s.generate` from services/registry.py and\n"
    "# infra/nats_auth.py: edit those (or the generator), not this file.\n"
)


def _dump_all(documents: list[dict[str, Any]]) -> str:
    return HEADER + yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False)


def files() -> dict[str, str]:
    """Each file's name in this folder and its content."""
    return {
        "quartier.yaml": _dump_all(quartier_manifests()),
        "postgres.yaml": _dump_all([postgres_cluster()]),
        "nats-values.yaml": HEADER
        + yaml.safe_dump(nats_values(), sort_keys=False, default_flow_style=False),
    }


def main() -> None:
    for name, text in files().items():
        (HERE / name).write_text(text)
        sys.stdout.write(f"wrote infra/k8s/{name}\n")


if __name__ == "__main__":
    main()
