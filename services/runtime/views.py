"""The read-model kit: what every service's `views` needs.

* `UTCDateTime`: a timestamp column that always gives back aware UTC
  datetimes (SQLite keeps none of the zone).
* `keyed_update` / `keyed_upsert`: change the row(s) with these key values.
* Positions: each projection, and each reaction that owns tables, keeps how
  far it has applied an event stream in `views_tracking`, changed in the same
  transaction as its rows.
* `TrackedTables`: tables a reaction owns (facts learnt from another service's
  events), written together with the upstream position, so a redelivered
  event changes nothing.
* `MAX_PAGE` and `check_page`: one page-size limit for every list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from eventsourcing.persistence import Tracking

from services.runtime.errors import InvalidInput
from services.runtime.i18n import t

MAX_PAGE = 50


def check_page(limit: int, offset: int = 0, what: str = "items") -> None:
    """A page has 1 to MAX_PAGE items and starts at a non-negative offset
    (Relay's `first` and `after`, which the errors name)."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(
            t("a page has 1 to {limit} {what}", limit=MAX_PAGE, what=what), field="first"
        )
    if offset < 0:
        raise InvalidInput(t("the cursor is not valid"), field="after")


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """An aware datetime, stored in UTC and read back aware (UTC) on every
    database. A naive datetime is refused: it would be ambiguous."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: give a time zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _where_keys(table: sa.Table, keys: Mapping[str, Any]) -> list[sa.ColumnElement[bool]]:
    return [table.c[name] == value for name, value in keys.items()]


def keyed_update(
    conn: sa.Connection, table: sa.Table, keys: Mapping[str, Any], **values: Any
) -> int:
    """Update the rows whose key columns equal `keys`; returns how many."""
    result = conn.execute(table.update().where(*_where_keys(table, keys)).values(**values))
    return result.rowcount


def keyed_upsert(
    conn: sa.Connection, table: sa.Table, keys: Mapping[str, Any], **values: Any
) -> None:
    """Update the row with these keys, or insert it (the caller holds the
    write lock of its transaction, so there is no race between the two)."""
    if values:
        if keyed_update(conn, table, keys, **values) == 0:
            conn.execute(table.insert().values(**keys, **values))
    elif (
        conn.execute(sa.select(*table.primary_key).where(*_where_keys(table, keys))).first() is None
    ):
        conn.execute(table.insert().values(**keys))


# -- positions -------------------------------------------------------------------

views_tracking = sa.Table(
    "views_tracking",
    sa.MetaData(),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)


def read_position(conn: sa.Connection, key: str) -> int:
    row = conn.execute(
        sa.select(views_tracking.c.position).where(views_tracking.c.name == key).with_for_update()
    ).first()
    return row[0] if row else 0


def write_position(conn: sa.Connection, key: str, old: int, new: int) -> None:
    if old == 0:
        exists = conn.execute(
            sa.select(views_tracking.c.name).where(views_tracking.c.name == key)
        ).first()
        if exists is None:
            conn.execute(views_tracking.insert().values(name=key, position=new))
            return
    conn.execute(views_tracking.update().where(views_tracking.c.name == key).values(position=new))


class TrackedTables:
    """Tables a reaction owns in the service's views database (e.g. hubs'
    directory of members' activities, learnt from identity's events)."""

    def __init__(self, name: str, metadata: sa.MetaData):
        self.name = name
        self.metadata = metadata

    def create(self, engine: sa.Engine) -> None:
        self.metadata.create_all(engine)
        views_tracking.metadata.create_all(engine)

    def apply(
        self, engine: sa.Engine, tracking: Tracking, change: Callable[[sa.Connection], None]
    ) -> bool:
        """Run `change(conn)` and advance this reaction's position to
        `tracking` in one transaction, unless that upstream event was applied
        already. Returns False when it had been.

        While a parked event is retried, its parked row is the guard instead
        (deleted in the same transaction): the position is not moved back."""
        from services.runtime.parking import current_retry

        retry = current_retry()
        if retry is not None:
            with engine.connect().execution_options(write_lock=True) as conn, conn.begin():
                if not retry.lot.is_parked(conn, retry.consumer, retry.position):
                    return False
                change(conn)
                retry.lot.release(conn, retry.consumer, retry.position)
            return True
        key = f"{self.name}<{tracking.application_name}"
        with engine.connect().execution_options(write_lock=True) as conn, conn.begin():
            position = read_position(conn, key)
            if tracking.notification_id <= position:
                return False
            change(conn)
            write_position(conn, key, position, tracking.notification_id)
        return True
