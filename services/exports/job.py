"""The export job (a singleton: only the service's leader runs it), on the
runtime's job loop (`run_rounds`): each round expires the archives whose time
is over (their chunks deleted, the export EXPIRED), then makes the queued
exports one after the other: `network` ones first (members' own exports
queued before them never hold up the admins' and keys'), then oldest first.
It wakes when an export is started on this replica, when the movable clock
moves (tests), and polls every `poll_interval` seconds for exports started
on other replicas.

Making one: claim it (queued → running, so two leaders in a row never make
it twice), check that its requester still may (identity's current roles),
gather the records as the requester (`gather.py`), zip them (`archive.py`),
then in one transaction store the chunks and mark it ready — unless it was
failed meanwhile (a member of the network erased): then nothing is kept.
An export left running by a leader that went away is queued again when the
next leader starts the job.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from services.exports import contract as c
from services.exports import views
from services.exports.archive import ArchiveWriter, Limits, TooLarge
from services.exports.gather import Gatherer
from services.exports.links import LINK_SECONDS
from services.identity import contract as idc
from services.runtime.errors import QuartierError
from services.runtime.host import ServiceHost
from services.runtime.logging import get_logger
from services.runtime.messages import Actor
from services.runtime.tenancy import RequestContext
from services.runtime.views import MAX_PAGE
from services.runtime.wakeup import Wakeup, run_rounds

log = get_logger("quartier.exports")

NETWORK_PER_DAY = 20  # `network` exports a network may start in 24 hours (admins and keys)
OWN_PER_DAY = 3  # `me` exports one member may start in 24 hours
MEMBERS_PER_DAY = 50  # `me` exports a network's members may start in 24 hours, together

ERASED = "a member of the network was erased while it was made: start it again"


@dataclass(frozen=True)
class Options:
    """`keep`: how long a ready archive is kept (at most 24 hours);
    `link_seconds`: how long a download link lives. Exports started in 24
    hours, in separate budgets so that no member can spend what the
    network's admins and API keys need (docs/exports.md, "Limits"):
    `network_per_day`, the network's `network` exports (its admins and keys
    together); `own_per_day`, one member's own (`me`) exports;
    `members_per_day`, the `me` exports of all the network's members
    together (never counted against `network` ones)."""

    limits: Limits = field(default_factory=Limits)
    keep: timedelta = timedelta(hours=24)
    link_seconds: int = LINK_SECONDS
    network_per_day: int = NETWORK_PER_DAY
    own_per_day: int = OWN_PER_DAY
    members_per_day: int = MEMBERS_PER_DAY
    poll_interval: float = 2.0


class Exporter:
    def __init__(self, host: ServiceHost, options: Options):
        self.host = host
        self.options = options
        self.bus = host.bus
        self.clock = host.clock
        self.engine = host.engine
        self.offload = host.offload
        self.made = 0
        self._wake = Wakeup()
        on_move = getattr(self.clock, "on_move", None)
        if on_move is not None:
            on_move(self._wake.set_threadsafe)

    def wake(self) -> None:
        """Look for work now (thread-safe)."""
        self._wake.set_threadsafe()

    async def run(self, stopping: asyncio.Event) -> None:
        await self.offload(self.requeue_orphans)
        await run_rounds(
            "exports",
            stopping,
            self._wake,
            lambda: self.round(stopping),
            lambda: self.offload(self.next_deadline),
            self.clock.now,
            self.options.poll_interval,
        )

    async def round(self, stopping: asyncio.Event) -> None:
        await self.offload(self.expire_due)
        while not stopping.is_set():
            row = await self.offload(self.claim_next)
            if row is None:
                return
            await self.make(row)

    # -- bookkeeping (worker threads) ---------------------------------------------------

    def requeue_orphans(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                views.exports.update()
                .where(views.exports.c.status == "running")
                .values(status="queued", progress=0.0, started_at=None)
            )

    def next_deadline(self) -> datetime | None:
        e = views.exports.c
        with self.engine.connect() as conn:
            if conn.execute(sa.select(e.export_id).where(e.status == "queued").limit(1)).first():
                return self.clock.now()
            found: datetime | None = conn.execute(
                sa.select(sa.func.min(e.expires_at)).where(e.status == "ready")
            ).scalar_one()
            return found

    def expire_due(self) -> int:
        e = views.exports.c
        now = self.clock.now()
        with self.engine.begin() as conn:
            due = (
                conn.execute(
                    sa.select(e.export_id).where((e.status == "ready") & (e.expires_at <= now))
                )
                .scalars()
                .all()
            )
            for export_id in due:
                views.drop_chunks(conn, export_id)
                conn.execute(
                    views.exports.update()
                    .where(e.export_id == export_id)
                    .values(status="expired", chunks=None)
                )
        return len(due)

    def claim_next(self) -> Any:
        e = views.exports.c
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(views.exports)
                .where(e.status == "queued")
                .order_by(sa.case((e.scope == "network", 0), else_=1), e.requested_at, e.export_id)
                .limit(1)
            ).first()
            if row is None:
                return None
            claimed = conn.execute(
                views.exports.update()
                .where((e.export_id == row.export_id) & (e.status == "queued"))
                .values(status="running", started_at=self.clock.now(), progress=0.0)
            ).rowcount
        return views.get_row(self.engine, row.export_id) if claimed else None

    def _set_progress(self, export_id: str, progress: float) -> None:
        e = views.exports.c
        with self.engine.begin() as conn:
            conn.execute(
                views.exports.update()
                .where((e.export_id == export_id) & (e.status == "running"))
                .values(progress=round(min(max(progress, 0.0), 0.99), 4))
            )

    def fail(self, export_id: str, error: str) -> None:
        e = views.exports.c
        with self.engine.begin() as conn:
            conn.execute(
                views.exports.update()
                .where((e.export_id == export_id) & e.status.in_(views.OPEN))
                .values(status="failed", error=error, active_key=None)
            )

    def store(self, export_id: str, tenant_id: str, path: Path) -> bool:
        """Keep the archive in chunks and mark the export ready, in one
        transaction; False (nothing kept) if it is no longer running."""
        e = views.exports.c
        now = self.clock.now()
        size = path.stat().st_size
        with self.engine.begin() as conn:
            count = -(-size // c.CHUNK_BYTES)
            done = conn.execute(
                views.exports.update()
                .where((e.export_id == export_id) & (e.status == "running"))
                .values(
                    status="ready",
                    progress=1.0,
                    ready_at=now,
                    expires_at=now + self.options.keep,
                    size=size,
                    chunks=count,
                    active_key=None,
                )
            ).rowcount
            if not done:
                return False
            with path.open("rb") as archive:
                for n in range(count):
                    conn.execute(
                        views.chunks.insert().values(
                            export_id=export_id,
                            n=n,
                            tenant_id=tenant_id,
                            data=archive.read(c.CHUNK_BYTES),
                        )
                    )
        return True

    # -- making one (the event loop) ------------------------------------------------------

    async def make(self, row: Any) -> None:
        export_id, tenant_id = row.export_id, row.tenant_id
        service = RequestContext(tenant_id=tenant_id, actor=Actor(kind="service"))
        writer = ArchiveWriter(self.options.limits)
        try:
            acting = row.requested_by
            if acting.startswith("key:"):  # an API key: as a tenant admin of the network
                acting = await self._an_admin(service) or ""
            found = await self.bus.request(idc.GetMembers(member_ids=[acting]), service)
            if not found:
                await self.offload(self.fail, export_id, "its requester is no longer a member")
                return
            roles = tuple(found[0].roles)
            if row.scope == "network" and "tenant_admin" not in roles:
                await self.offload(
                    self.fail, export_id, "its requester is no longer a tenant admin"
                )
                return
            network = await self.bus.request(idc.MemberContacts(member_ids=[]), service)
            requester = RequestContext(
                tenant_id=tenant_id,
                actor=Actor(kind="member", member_id=acting, tenant_id=tenant_id, roles=roles),
            )

            async def progress(value: float) -> None:
                await self.offload(self._set_progress, export_id, value)

            started = self.clock.now()
            gatherer = Gatherer(self.bus, requester, writer, progress, started)
            if row.scope == "network":
                await gatherer.network()
            else:
                await gatherer.member()
            about = {
                "export_id": export_id,
                "network": f"{network.name} ({network.slug})",
                "tenant_id": tenant_id,
                "scope": row.scope,
                "requested_by": row.requested_by,
                "requested_at": row.requested_at.isoformat(),
            }
            path = await self.offload(writer.finish, about, started, self.clock.now())
            if await self.offload(self.store, export_id, tenant_id, path):
                self.made += 1
                log.info(
                    "exports.ready", export_id=export_id, scope=row.scope, rows=writer.counts()
                )
            else:
                log.info("exports.discarded", export_id=export_id)
        except TooLarge as error:
            await self.offload(self.fail, export_id, f"too large: {error}")
        except QuartierError as error:
            log.warning("exports.failed", export_id=export_id, code=error.code)
            await self.offload(
                self.fail, export_id, f"a service could not answer ({error.code}): start it again"
            )
        except Exception:
            log.exception("exports.failed", export_id=export_id)
            await self.offload(self.fail, export_id, "an internal error: start it again")
        finally:
            await self.offload(writer.close)

    async def _an_admin(self, service: RequestContext) -> str | None:
        """A tenant admin of the network now (the longest-standing one), for
        an export an API key started: a key is no member, so its export
        reads what the network's admins may read."""
        offset, admins = 0, []
        while True:
            page = await self.bus.request(idc.SearchMembers(offset=offset, limit=MAX_PAGE), service)
            admins += [m for m in page.items if "tenant_admin" in m.roles]
            offset += len(page.items)
            if not page.items or offset >= page.total:
                break
        admins.sort(key=lambda m: (m.joined_at, m.member_id))
        return admins[0].member_id if admins else None

    # -- erasure -----------------------------------------------------------------------------

    def forget_tenant(self, tenant_id: str) -> None:
        """A member of the network was erased: no archive made before may
        remain (it may hold their data). Ready ones expire now; queued and
        running ones fail (a running one keeps nothing: `store`)."""
        e = views.exports.c
        mine = e.tenant_id == tenant_id
        with self.engine.begin() as conn:
            conn.execute(views.chunks.delete().where(views.chunks.c.tenant_id == tenant_id))
            conn.execute(
                views.exports.update()
                .where(mine & (e.status == "ready"))
                .values(status="expired", chunks=None)
            )
            conn.execute(
                views.exports.update()
                .where(mine & e.status.in_(views.OPEN))
                .values(status="failed", error=ERASED, active_key=None)
            )
