"""Test settings: the test environment on a given NATS server and store."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from services.runtime.settings import Settings

POSTGRES_URL = os.environ.get("QUARTIER_TEST_POSTGRES_URL") or None
JWT_SECRET = "test-secret-" + "x" * 40
OPERATOR_TOKEN = "test-operator-token-0123456789"
# Each service's PostgreSQL pool holds max(2, QUARTIER_WORKERS) connections
# (and as many more under load): a system of 6 services on 4 workers opens
# about 45. On pytest-xdist workers (`make test TEST_WORKERS=2`) two systems
# run at once, against the server's max_connections of 100 (shared with
# `quartier up` runs of test_faults.py and test_launcher.py): 2 workers a
# service (about 35 connections a system) keep them under it.
WORKERS = "2" if os.environ.get("PYTEST_XDIST_WORKER") else "4"


def make_settings(
    data_dir: Path, nats_url: str, database_url: str | None = None, **extra: str
) -> Settings:
    env = {
        "QUARTIER_ENV": "test",
        "QUARTIER_DATA_DIR": str(data_dir),
        "QUARTIER_NATS_URL": nats_url,
        "QUARTIER_JWT_SECRET": JWT_SECRET,
        "QUARTIER_OPERATOR_TOKEN": OPERATOR_TOKEN,
        "QUARTIER_RELAY_POLL_INTERVAL": "0.2",
        # a stop waits for each reaction's idle pull: the services of a test
        # stop in about this time rather than a second
        "QUARTIER_REACTION_FETCH_WAIT": "0.2",
        "QUARTIER_WORKERS": WORKERS,
        # the gateway's budgets have their own tests (test_gateway_limits.py);
        # elsewhere a test's requests are its own, not an abuse
        "QUARTIER_MEMBER_RATE_LIMIT": "1200",
        "QUARTIER_COST_LIMIT": "1000000000",
        "QUARTIER_MEMBER_COST_LIMIT": "1000000000",
        **extra,
    }
    if database_url:
        env["QUARTIER_DATABASE_URL"] = database_url
        env["QUARTIER_DB_SCHEMA_PREFIX"] = f"t{uuid.uuid4().hex[:10]}_"
    return Settings.from_env(env)


def drop_schemas(settings: Settings) -> None:
    if not settings.database_url or not settings.db_schema_prefix:
        return
    import psycopg

    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '20s'")
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
            (settings.db_schema_prefix + "%",),
        ).fetchall()
        for (name,) in rows:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
