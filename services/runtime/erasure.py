"""The reaction of a service holding personal data to a member's erasure
(identity's `MemberErased`; docs/erasure.md), built the same way in each:

1. `subjects(conn, tenant_id, member_id)`: the key subjects to destroy (the
   member, and what was sealed under keys of its own that goes with them:
   the visitors they brought, the prospects of the slips they gave), and
   `needles(...)`: the words (addresses, names) by which the mail drop's
   files about those people are found, both read before anything is erased;
2. `release(tenant_id, member_id)` (optional): what the member held that
   other members depend on is handed on (a hub's facilitator role and
   roster places, a meetup's seat): done through the service's own
   commands, each a no-op when there is nothing left to hand on, so a
   redelivered event changes nothing; before the keys go, so that what it
   seals about the member is shredded with the rest;
3. those mail-drop files are deleted, and so are the kept replies of
   idempotent commands (`services/runtime/idempotency.py`) that quote those
   words; the keys are destroyed (`forget`); each is safe to do again;
4. `scrub(conn, tenant_id, member_id)` blanks the read models' copies, in
   one transaction with the reaction's tracking position (a redelivered
   event changes nothing); the SQLite WAL is then checkpointed, so no page
   image of the old rows stays behind.

An event whose payload names another tenant than the one it was published
in is ignored (logged): a reaction acts in the event's own tenant only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from eventsourcing.persistence import Tracking

from services.runtime.eventstore import ServiceApplication
from services.runtime.host import ServiceHost
from services.runtime.idempotency import replies
from services.runtime.logging import get_logger
from services.runtime.personal import checkpoint, clear_mail_drop
from services.runtime.reactions import Reaction, decode_data
from services.runtime.stream import CloudEvent
from services.runtime.views import TrackedTables

log = get_logger("quartier.erasure")

Lookup = Callable[[sa.Connection, str, str], list[str]]
Scrub = Callable[[sa.Connection, str, str], None]
Release = Callable[[str, str], None]


def erasure_reaction(
    host: ServiceHost,
    app: ServiceApplication,
    event_type: type[Any],
    *,
    subjects: Lookup,
    needles: Lookup,
    scrub: Scrub,
    release: Release | None = None,
    name: str = "erasure",
) -> Reaction:
    """`event_type`: identity's `MemberErased` (a contract type the service
    imports; the runtime imports no service)."""
    type_name = event_type.type_name()
    tables = host.add_tables(TrackedTables(name, sa.MetaData()))

    async def handle(event: CloudEvent, tracking: Tracking) -> None:
        if event.type != type_name:
            return
        data = decode_data(event, event_type)
        tenant_id, member_id = data.tenant_id, data.member_id
        if tenant_id != event.tenant:
            log.warning("erasure.tenant_mismatch", member_id=member_id)
            return

        def erase() -> None:
            with host.engine.connect() as conn:
                found = subjects(conn, tenant_id, member_id)
                words = needles(conn, tenant_id, member_id)
            if release is not None:  # first: what it writes about them is shredded too
                release(tenant_id, member_id)
            mails = clear_mail_drop(host.settings.mail_dir, words)
            clear_replies(host.engine, words)
            keys = app.forget(tenant_id, [member_id, *found])
            tables.apply(host.engine, tracking, lambda conn: scrub(conn, tenant_id, member_id))
            checkpoint(host.engine)
            log.info("erasure.done", keys=keys, mails_deleted=mails, member_id=member_id)

        await host.offload(erase)

    return Reaction(name=name, upstream="identity", handle=handle)


def clear_replies(engine: sa.Engine, needles: list[str]) -> int:
    """Delete the kept idempotent replies (a retry cache of a day) quoting
    any of `needles`: a reply may echo what the command wrote (a slip's
    prospect, a card). Returns how many; none if the service keeps none."""
    wanted = [n.encode() for n in needles if n and len(n) >= 3]
    if not wanted or not sa.inspect(engine).has_table(replies.name):
        return 0
    with engine.connect() as conn:
        keys = [
            row.key
            for row in conn.execute(sa.select(replies.c.key, replies.c.reply))
            if row.reply is not None and any(w in bytes(row.reply) for w in wanted)
        ]
    if keys:
        with engine.begin() as conn:
            conn.execute(replies.delete().where(replies.c.key.in_(keys)))
    return len(keys)
