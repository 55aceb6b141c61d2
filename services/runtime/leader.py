"""One active holder for a service's singletons (outbox relay, reactions,
schedulers) when several replicas run: the others stand by and take over when
the holder goes away.

* SQLite (one machine): an exclusive `flock` on a file in the data dir; the
  kernel releases it when the process dies.
* PostgreSQL: a session-level advisory lock held on a dedicated connection;
  the server releases it when that connection drops.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from services.runtime.logging import get_logger
from services.runtime.store import ConnInfo
from services.runtime.wakeup import sleep_unless

if TYPE_CHECKING:
    import psycopg  # imported where used: SQLite deployments never load it

log = get_logger("quartier.leader")


class LeaderLock(Protocol):
    def try_acquire(self) -> bool: ...
    def still_held(self) -> bool: ...
    def release(self) -> None: ...


class FileLeaderLock:
    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def still_held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class PostgresLeaderLock:
    def __init__(self, conninfo: ConnInfo, name: str):
        self.conninfo = conninfo
        self.key = zlib.crc32(name.encode())
        self._conn: psycopg.Connection[Any] | None = None

    def try_acquire(self) -> bool:
        import psycopg

        try:
            # TCP keepalives: a half-open connection must not keep the lock
            # (and the leadership) for hours after its holder is gone.
            conn = psycopg.connect(
                **self.conninfo,
                autocommit=True,
                connect_timeout=5,
                keepalives=1,
                keepalives_idle=5,
                keepalives_interval=2,
                keepalives_count=3,
                tcp_user_timeout=10_000,
            )
        except psycopg.OperationalError as e:
            log.warning("leader.connect_failed", error=str(e))
            return False
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        if row and row[0]:
            self._conn = conn
            return True
        conn.close()
        return False

    def still_held(self) -> bool:
        if self._conn is None:
            return False
        try:
            self._conn.execute("SELECT 1")
        except Exception:
            self._conn = None
            return False
        return True

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
                self._conn.close()
            except Exception:
                log.debug("leader.release_failed")
            self._conn = None


async def hold_leadership(lock: LeaderLock, stopping: asyncio.Event, retry: float = 1.0) -> bool:
    """Wait until `lock` is acquired (True) or `stopping` is set (False)."""
    loop = asyncio.get_running_loop()
    while not stopping.is_set():
        if await loop.run_in_executor(None, lock.try_acquire):
            return True
        await sleep_unless(stopping, retry)
    return False
