"""Store factory: where a service keeps its events and its read models.

* `QUARTIER_DATABASE_URL` unset: SQLite files under the data dir, one file per
  eventsourcing application (`<app>.db`: the library does not prefix table
  names, so two applications must never share a file) and one per service for
  read models (`<service>-views.db`).
* A PostgreSQL URL: one schema per service (`identity`, `hubs`, ...) holding
  that service's events, tracking and read models.

`QUARTIER_DB_SCHEMA_PREFIX` prefixes schema names (tests use it to isolate runs).
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from services.runtime.errors import Unavailable
from services.runtime.i18n import t
from services.runtime.settings import Settings

_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class ConnInfo(TypedDict):
    """psycopg's connection keywords, as `Store.conninfo()` gives them."""

    dbname: str
    host: str
    port: int
    user: str
    password: str | None


@dataclass(frozen=True)
class Store:
    service: str
    data_dir: Path
    database_url: str | None = None
    pool_size: int = 8
    schema_prefix: str = ""
    aggregate_cache_size: int = 5000
    busy_timeout: int = 30
    """Seconds a SQLite writer waits for another's lock before "database is
    locked" (then Unavailable); PostgreSQL's lock_timeout is 10 s."""

    @classmethod
    def for_service(cls, service: str, settings: Settings) -> Store:
        return cls(
            service=service,
            data_dir=Path(settings.data_dir),
            database_url=settings.database_url,
            pool_size=max(2, settings.workers),
            schema_prefix=settings.db_schema_prefix,
        )

    @property
    def is_postgres(self) -> bool:
        return bool(self.database_url) and self._url().get_backend_name().startswith("postgres")

    @property
    def schema(self) -> str:
        name = f"{self.schema_prefix}{self.service}"
        if not _SCHEMA.match(name):
            raise ValueError(f"invalid schema name {name!r}")
        return name

    def _url(self) -> URL:
        assert self.database_url
        return make_url(self.database_url)

    # -- event store (the eventsourcing library's own recorders) ---------------

    def application_env(self, app_name: str) -> dict[str, str]:
        # The library's aggregate cache: a command reads the cached aggregate and
        # only the events recorded since ("fast-forward"), not its whole history.
        # Safe with several replicas: fast-forwarding reads what others wrote.
        common = {"AGGREGATE_CACHE_MAXSIZE": str(self.aggregate_cache_size)}
        return common | self._persistence_env(app_name)

    def _persistence_env(self, app_name: str) -> dict[str, str]:
        if not self.is_postgres:
            if self.database_url:
                raise ValueError("QUARTIER_DATABASE_URL must be a postgresql:// URL (or unset)")
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(self.data_dir / f"{app_name.lower()}.db"),
                "SQLITE_LOCK_TIMEOUT": str(self.busy_timeout),
            }
        url = self._url()
        self.create_schema()
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": url.database or "postgres",
            "POSTGRES_HOST": url.host or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": url.username or "postgres",
            "POSTGRES_PASSWORD": url.password or "",
            "POSTGRES_SCHEMA": self.schema,
            "POSTGRES_POOL_SIZE": str(self.pool_size),
            "POSTGRES_MAX_OVERFLOW": str(self.pool_size),
            "POSTGRES_LOCK_TIMEOUT": "10",
        }

    # -- read models (SQLAlchemy) ---------------------------------------------

    def views_engine(self) -> Engine:
        if not self.is_postgres:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path = self.data_dir / f"{self.service}-views.db"
            engine = sa.create_engine(
                f"sqlite:///{path}",
                connect_args={"timeout": self.busy_timeout, "check_same_thread": False},
                pool_size=self.pool_size,
                max_overflow=self.pool_size,
            )
            sa.event.listen(engine, "connect", _sqlite_pragmas)
            sa.event.listen(engine, "begin", _sqlite_begin)
        else:
            self.create_schema()
            url = self._url().set(drivername="postgresql+psycopg")
            engine = sa.create_engine(
                url,
                connect_args={"options": f"-csearch_path={self.schema}"},
                pool_size=self.pool_size,
                max_overflow=self.pool_size,
                pool_pre_ping=True,
            )
        sa.event.listen(engine, "handle_error", _typed_store_errors)
        return engine

    def conninfo(self) -> ConnInfo:
        """psycopg connection arguments for the PostgreSQL URL."""
        url = self._url()
        return {
            "dbname": url.database or "postgres",
            "host": url.host or "127.0.0.1",
            "port": url.port or 5432,
            "user": url.username or "postgres",
            "password": url.password or None,
        }

    def create_schema(self) -> None:
        import psycopg

        with psycopg.connect(**self.conninfo(), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')


def is_busy(error: BaseException) -> bool:
    """Whether a driver error means "busy or unreachable, try again": SQLite's
    locked/busy (its other OperationalErrors, e.g. a missing table, are bugs),
    PostgreSQL's OperationalError (connection lost, lock or statement timeout,
    server shutting down; psycopg reports bad SQL as ProgrammingError)."""
    if isinstance(error, sqlite3.OperationalError):
        text = str(error).lower()
        return "locked" in text or "busy" in text
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)


def _typed_store_errors(context: sa.engine.ExceptionContext) -> None:
    """A read model's database busy beyond its timeout ("database is locked"),
    a lock or statement timeout, a dropped connection: Unavailable (the
    caller may try again), not an internal error. The cause stays chained;
    `parking.is_transient` counts Unavailable as transient, so projections
    retry rather than park."""
    if is_busy(context.original_exception) or isinstance(
        context.sqlalchemy_exception, sa.exc.InterfaceError
    ):
        raise Unavailable(t("the store is busy or unreachable; try again")) from (
            context.sqlalchemy_exception
        )


def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    # Read models can be rebuilt from the events: WAL with synchronous=NORMAL
    # keeps them consistent (never corrupt) at a fraction of the fsync cost.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    # Deleted and overwritten rows are zeroed, not left in free pages: an
    # erasure scrubs personal data from read models (docs/erasure.md).
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    # pysqlite's own transaction handling is off (isolation_level=None above);
    # a writer asks for `write_lock=True` and takes the lock at BEGIN, so that
    # two projectors never both read a tracking position and write after it.
    if conn.get_execution_options().get("write_lock"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")
