"""Personal data in an immutable history: crypto-shredding.

Events are never changed, so a person's data in them is stored encrypted
with a key of their own (AES-256-GCM), kept in a key table of the service's
own database; erasure destroys the key and the data becomes unreadable
everywhere it was written (events, snapshots, copies of the store, backups
made after the key was dropped).

* A domain module declares which fields of which events (and which
  attributes of which aggregates, for snapshots) are personal, and whose they
  are: `personal(Member.Joined, email=OWNER, card=OWNER)` seals `email` and
  `card` under the key of the event's aggregate id; a subject may also name
  another field of the event (`personal(EmailIndex.Registered,
  email="member_id")`) or be a function of the event's fields.
* `PersonalMapper` (every `ServiceApplication` uses it) seals those fields on
  the way into the store and opens them on the way out, so aggregates and
  projections read plain values, as before. A field whose key has been
  destroyed reads as its *blank*: "" for a text, [] for a list, a dict of
  blanks for a dict, None otherwise (`erased` tells whether a value is blank).
* Keys are made on first use; `Keyring.forget` destroys them. On SQLite
  the key table is deleted with `secure_delete` on and the WAL checkpointed
  (truncated), so no page image of the key survives in the file or its WAL.

A value stored before its field was declared personal stays as it was
(readable, and not erasable by shredding): see docs/erasure.md.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.utils import get_topic, resolve_topic

OWNER = "originator_id"
"""A subject: the id of the aggregate whose event it is."""

KEY = "__key__"
"""In `each(...)` over a dict: a subject that is the item's key in the dict
(`personal_state(Hub, members=each(activity_code=KEY))`: the member id)."""

SEALED = "__sealed__"
"""The key of a sealed value's envelope (a dict) in the stored JSON."""

KEY_CACHE_SECONDS = 30.0
"""How long a process keeps a key it has read (and the fact that a key is
gone). Another replica that destroyed a key is heard at most this late; the
replica that destroys it forgets it at once."""

Subject = str | Callable[[Mapping[str, Any]], str | None]


@dataclasses.dataclass(frozen=True)
class Each:
    """In snapshots: a container (dict values, or list items) of dataclasses
    whose `fields` are personal, each subject read from the item itself."""

    fields: Mapping[str, Subject | Each]


def each(**fields: Subject | Each) -> Each:
    """`personal_state(Hub, nominations=each(note="sponsor_id",
    objections=each(reason="objector_id")))`."""
    return Each(fields)


_EVENT_FIELDS: dict[type[Any], dict[str, Subject]] = {}
_STATE_FIELDS: dict[type[Any], dict[str, Subject | Each]] = {}


def personal(event_class: type[Any], **fields: Subject) -> None:
    """Declare `fields` of `event_class` personal, each sealed under the key
    of its subject (OWNER, the name of another field, or a function of the
    event's fields returning the subject, or None for "not personal here")."""
    _EVENT_FIELDS.setdefault(event_class, {}).update(fields)


def personal_state(aggregate_class: type[Any], **fields: Subject | Each) -> None:
    """Declare attributes of `aggregate_class` personal in its snapshots."""
    _STATE_FIELDS.setdefault(aggregate_class, {}).update(fields)


def blank(value: Any, nested: bool = False) -> Any:
    """What a personal value reads as once erased: the same shape, no content."""
    if isinstance(value, str):
        return ""
    if isinstance(value, list | tuple):
        return []
    if isinstance(value, dict) and not nested:
        return {k: blank(v, nested=True) for k, v in value.items()}
    return None


def erased(value: Any) -> bool:
    """Whether `value` is a blank (an erased value, or an empty one)."""
    if isinstance(value, dict):
        return all(erased(v) for v in value.values())
    return value in ("", None) or value == []


# -- keys ------------------------------------------------------------------------


key_metadata = sa.MetaData()
personal_keys = sa.Table(
    "personal_keys",
    key_metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("subject", sa.String(80), primary_key=True),
    sa.Column("key", sa.LargeBinary(32), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


class Keyring:
    """The keys of one application's people, by (tenant, subject)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], tuple[bytes | None, float]] = {}
        self._lock = threading.Lock()

    # storage, overridden by the SQL keyring
    def _read(self, tenant_id: str, subject: str) -> bytes | None:
        raise NotImplementedError

    def _create(self, tenant_id: str, subject: str, key: bytes) -> bytes:
        raise NotImplementedError

    def _delete(self, tenant_id: str, subjects: list[str]) -> int:
        raise NotImplementedError

    def key(self, tenant_id: str, subject: str, create: bool) -> bytes | None:
        """The subject's key; with `create`, made if there is none yet."""
        now = time.monotonic()
        cached = self._cache.get((tenant_id, subject))
        if cached is not None and cached[1] > now and (cached[0] is not None or not create):
            return cached[0]
        key = self._read(tenant_id, subject)
        if key is None and create:
            key = self._create(tenant_id, subject, AESGCM.generate_key(bit_length=256))
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[(tenant_id, subject)] = (key, now + KEY_CACHE_SECONDS)
        return key

    def forget(self, tenant_id: str, subjects: Iterable[str]) -> int:
        """Destroy the subjects' keys (those that exist): their sealed values
        read as blanks from now on. Returns how many keys were destroyed."""
        wanted = sorted({str(s) for s in subjects})
        if not wanted:
            return 0
        count = self._delete(tenant_id, wanted)
        with self._lock:
            for subject in wanted:
                self._cache[(tenant_id, subject)] = (None, time.monotonic() + KEY_CACHE_SECONDS)
        return count


class MemoryKeyring(Keyring):
    """Keys in memory: for applications without a database (unit tests)."""

    def __init__(self) -> None:
        super().__init__()
        self._keys: dict[tuple[str, str], bytes] = {}

    def _read(self, tenant_id: str, subject: str) -> bytes | None:
        return self._keys.get((tenant_id, subject))

    def _create(self, tenant_id: str, subject: str, key: bytes) -> bytes:
        return self._keys.setdefault((tenant_id, subject), key)

    def _delete(self, tenant_id: str, subjects: list[str]) -> int:
        return sum(self._keys.pop((tenant_id, s), None) is not None for s in subjects)


class SQLKeyring(Keyring):
    """Keys in the `personal_keys` table of an application's own database."""

    def __init__(self, engine: sa.Engine) -> None:
        super().__init__()
        self.engine = engine
        key_metadata.create_all(engine, checkfirst=True)

    def _read(self, tenant_id: str, subject: str) -> bytes | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(personal_keys.c.key).where(
                    personal_keys.c.tenant_id == tenant_id, personal_keys.c.subject == subject
                )
            ).first()
        return bytes(row[0]) if row is not None else None

    def _create(self, tenant_id: str, subject: str, key: bytes) -> bytes:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    personal_keys.insert().values(
                        tenant_id=tenant_id, subject=subject, key=key, created_at=datetime.now(UTC)
                    )
                )
            return key
        except sa.exc.IntegrityError:  # another writer made it first: use theirs
            found = self._read(tenant_id, subject)
            assert found is not None
            return found

    def _delete(self, tenant_id: str, subjects: list[str]) -> int:
        with self.engine.begin() as conn:
            count = conn.execute(
                personal_keys.delete().where(
                    personal_keys.c.tenant_id == tenant_id, personal_keys.c.subject.in_(subjects)
                )
            ).rowcount
        checkpoint(self.engine)
        return count


def checkpoint(engine: sa.Engine, attempts: int = 20) -> bool:
    """SQLite: copy the WAL into the database file and truncate it, so that
    the page images of deleted or overwritten rows kept in the WAL are gone
    (the connection's `secure_delete` zeroes them in the file). A reader
    holding an old snapshot makes it busy: tried again briefly. True when the
    WAL was emptied; a no-op elsewhere (PostgreSQL: see docs/erasure.md)."""
    if engine.dialect.name != "sqlite":
        return True
    for attempt in range(attempts):
        with engine.connect() as conn:
            busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()
        if busy is None or busy[0] == 0:
            return True
        time.sleep(0.01 * (attempt + 1))
    return False


def secure_delete(dbapi_conn: sqlite3.Connection, _record: object = None) -> None:
    """SQLite: overwrite deleted content with zeros (a connection setting)."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


def keyring_for(env: Mapping[str, str]) -> Keyring:
    """The keyring of an application with these persistence settings: a
    table in its SQLite file or its PostgreSQL schema; in memory otherwise."""
    module = env.get("PERSISTENCE_MODULE", "")
    if module == "eventsourcing.sqlite" and env.get("SQLITE_DBNAME", ":memory:") != ":memory:":
        engine = sa.create_engine(
            f"sqlite:///{env['SQLITE_DBNAME']}",
            connect_args={"timeout": float(env.get("SQLITE_LOCK_TIMEOUT", "30"))},
            poolclass=sa.pool.NullPool,
        )
        sa.event.listen(engine, "connect", secure_delete)
        return SQLKeyring(engine)
    if module == "eventsourcing.postgres":
        url = sa.engine.URL.create(
            "postgresql+psycopg",
            username=env.get("POSTGRES_USER"),
            password=env.get("POSTGRES_PASSWORD") or None,
            host=env.get("POSTGRES_HOST"),
            port=int(env.get("POSTGRES_PORT", "5432")),
            database=env.get("POSTGRES_DBNAME"),
        )
        schema = env.get("POSTGRES_SCHEMA") or "public"
        engine = sa.create_engine(
            url,
            connect_args={"options": f"-csearch_path={schema}"},
            pool_size=1,  # keys are read once per person and cached
            max_overflow=1,
            pool_pre_ping=True,
        )
        return SQLKeyring(engine)
    return MemoryKeyring()


# -- the mail drop (development and tests) ---------------------------------------------------------------


def clear_mail_drop(mail_dir: Path, needles: list[str]) -> int:
    """Delete the mail-drop files (`*.eml`) addressed to, or mentioning, any
    of `needles` (an address, a name), headers and decoded bodies compared
    ignoring case. Returns how many were deleted. (With SMTP, sent mail is
    out of reach: docs/erasure.md.)"""
    wanted = [n.lower() for n in needles if n and len(n) >= 3]
    if not wanted or not mail_dir.is_dir():
        return 0
    count = 0
    for path in mail_dir.glob("*.eml"):
        try:
            text = mail_text(path.read_bytes()).lower()
        except OSError:
            continue
        if any(n in text for n in wanted):
            path.unlink(missing_ok=True)
            count += 1
    return count


def mail_text(raw: bytes) -> str:
    """A mail's headers and decoded text parts, for searching."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    parts = [str(k) + ": " + str(v) for k, v in message.items()]
    for part in message.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                charset = part.get_content_charset() or "utf-8"
                try:
                    parts.append(payload.decode(charset, "replace"))
                except LookupError:
                    parts.append(payload.decode("utf-8", "replace"))
    return "\n".join(parts) + "\n" + raw.decode("utf-8", "replace")


# -- sealing ---------------------------------------------------------------------


def _aad(tenant_id: str, subject: str) -> bytes:
    return f"{tenant_id}\x1f{subject}".encode()


class Sealer:
    def __init__(self, keyring: Keyring, transcoder: Transcoder) -> None:
        self.keyring = keyring
        self.transcoder = transcoder

    def seal(self, tenant_id: str, subject: str, value: Any) -> dict[str, Any]:
        key = self.keyring.key(tenant_id, subject, create=True)
        assert key is not None
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, self.transcoder.encode(value), _aad(tenant_id, subject))
        return {
            SEALED: subject,
            "t": tenant_id,
            "c": base64.b64encode(nonce + sealed).decode(),
            "e": blank(value),
        }

    def open(self, envelope: Mapping[str, Any]) -> Any:
        tenant_id, subject = str(envelope["t"]), str(envelope[SEALED])
        key = self.keyring.key(tenant_id, subject, create=False)
        if key is None:
            return envelope["e"]
        raw = base64.b64decode(envelope["c"])
        try:
            plain = AESGCM(key).decrypt(raw[:12], raw[12:], _aad(tenant_id, subject))
        except InvalidTag:  # a key made again after it was destroyed: still erased
            return envelope["e"]
        return self.transcoder.decode(plain)

    def seal_fields(
        self,
        state: dict[str, Any],
        fields: Mapping[str, Subject | Each],
        context: Mapping[str, Any],
    ) -> None:
        tenant_id = context.get("tenant_id")
        if not tenant_id:
            return
        for name, spec in fields.items():
            value = state.get(name)
            if value is None or is_sealed(value):
                continue
            if isinstance(spec, Each):
                state[name] = self._seal_each(str(tenant_id), value, spec)
                continue
            subject = _subject(spec, context)
            if subject:
                state[name] = self.seal(str(tenant_id), subject, value)

    def _seal_each(self, tenant_id: str, container: Any, spec: Each) -> Any:
        def seal_item(item: Any, key: Any = None) -> Any:
            if not dataclasses.is_dataclass(item) or isinstance(item, type):
                return item
            values = {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}
            self.seal_fields(values, spec.fields, {**values, "tenant_id": tenant_id, KEY: key})
            copy = object.__new__(type(item))  # no __init__: no checks on envelopes
            for key, value in values.items():
                object.__setattr__(copy, key, value)
            return copy

        if isinstance(container, dict):
            return {k: seal_item(v, k) for k, v in container.items()}
        if isinstance(container, list | tuple):
            return type(container)(seal_item(v) for v in container)
        return container

    def open_fields(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            if is_sealed(value):
                state[name] = self.open(value)

    def open_deep(self, value: Any) -> Any:
        """Open sealed values anywhere inside (snapshots' nested state)."""
        if is_sealed(value):
            return self.open(value)
        if isinstance(value, dict):
            for key, item in value.items():
                value[key] = self.open_deep(item)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                value[index] = self.open_deep(item)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            for f in dataclasses.fields(value):
                item = getattr(value, f.name)
                opened = self.open_deep(item)
                if opened is not item:
                    object.__setattr__(value, f.name, opened)
        return value


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and SEALED in value


def _subject(spec: Subject, context: Mapping[str, Any]) -> str | None:
    found = spec(context) if callable(spec) else context.get(spec)
    if found is None or found == "":
        return None
    return str(found)


class PersonalMapper(Mapper[UUID]):
    """The library's mapper, sealing the declared personal fields of events
    and snapshots (see the module's doc)."""

    keyring: Keyring

    @classmethod
    def wrapping(cls, inner: Mapper[UUID], keyring: Keyring) -> PersonalMapper:
        mapper = cls(inner.transcoder, compressor=inner.compressor, cipher=inner.cipher)
        mapper.keyring = keyring
        mapper.sealer = Sealer(keyring, inner.transcoder)
        return mapper

    sealer: Sealer

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        cls = type(domain_event)
        fields = _EVENT_FIELDS.get(cls)
        state_fields = None
        if isinstance(domain_event, Snapshot):
            state_fields = _STATE_FIELDS.get(resolve_topic(domain_event.topic))
        if not fields and not state_fields:
            return super().to_stored_event(domain_event)
        event_state = dict(vars(domain_event))
        if fields:
            self.sealer.seal_fields(event_state, fields, event_state)
        if state_fields:
            state = dict(event_state["state"])
            context = {**state, OWNER: event_state[OWNER]}
            self.sealer.seal_fields(state, state_fields, context)
            event_state["state"] = state
        originator_id = event_state.pop("originator_id")
        originator_version = event_state.pop("originator_version")
        class_version = getattr(cls, "class_version", 1)
        if class_version > 1:
            event_state["class_version"] = class_version
        stored_state = self.transcoder.encode(event_state)
        if self.compressor:
            stored_state = self.compressor.compress(stored_state)
        if self.cipher:
            stored_state = self.cipher.encrypt(stored_state)
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=get_topic(cls),
            state=stored_state,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        domain_event = super().to_domain_event(stored_event)
        state = vars(domain_event)
        self.sealer.open_fields(state)
        if isinstance(domain_event, Snapshot) and isinstance(state.get("state"), dict):
            self.sealer.open_deep(state["state"])
        return domain_event
