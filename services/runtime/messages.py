"""The published language's building blocks: commands, queries, replies,
public events, and the envelope every request travels in.

Each service's `contract.py` subclasses these. A request's subject is derived
from its class: `quartier.cmd.<service>.<ClassName>` or
`quartier.qry.<service>.<ClassName>`; each class names its reply type as its
type parameter (`class GetHub(HubsQuery[Hub])`), which `Bus.request` returns.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Generic, Literal, TypeVar, dataclass_transform, get_args

import msgspec

ActorKind = Literal["member", "operator", "anonymous", "service"]


@dataclass_transform(frozen_default=True, field_specifiers=(msgspec.field,))
class Message(msgspec.Struct, kw_only=True, frozen=True):
    """Base of every contract struct. Its subclasses are frozen too, as msgspec
    makes them: `dataclass_transform` tells type checkers so."""


R = TypeVar("R")


class Request(Message, Generic[R]):
    service: ClassVar[str] = ""
    request_kind: ClassVar[str] = ""
    idempotent: ClassVar[bool] = (
        False  # honours an idempotency key (services/runtime/idempotency.py)
    )

    @classmethod
    def subject(cls) -> str:
        return f"quartier.{cls.request_kind}.{cls.service}.{cls.__name__}"

    @classmethod
    def reply_type(cls) -> Any:
        """The reply type: the type parameter given where the class is defined
        (`class GetHub(HubsQuery[Hub])` answers a `Hub`)."""
        for klass in cls.__mro__:
            for base in klass.__dict__.get("__orig_bases__", ()):
                args = get_args(base)
                if args and not isinstance(args[0], TypeVar):
                    return args[0]
        raise TypeError(f"{cls.__name__} does not name its reply type")


class Command(Request[R]):
    """Changes something; imperative name."""

    request_kind: ClassVar[str] = "cmd"


class Query(Request[R]):
    """Changes nothing."""

    request_kind: ClassVar[str] = "qry"


class Done(Message):
    """Reply of a command that has nothing else to say."""


class PublicEvent(Message):
    """A fact published on the tenant's stream: ids and non-personal facts only.

    Its CloudEvents type is `quartier.<service>.<ClassName>.v<version>`.
    """

    service: ClassVar[str] = ""
    event_version: ClassVar[int] = 1  # not `version`: events may have such a field
    tenant_id: str

    @classmethod
    def type_name(cls) -> str:
        return f"quartier.{cls.service}.{cls.__name__}.v{cls.event_version}"


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    """Who acts. Filled by the gateway from a verified token, never from input."""

    kind: ActorKind = "anonymous"
    member_id: str | None = None
    tenant_id: str | None = None
    roles: tuple[str, ...] = ()
    # a member's session (the access token's `sid`); the gateway resolves
    # `roles` from the session's current state, never from the token
    session_id: str | None = None
    # a tenant API key's id (docs/api-keys.md): the gateway acts for a key
    # as its network's `service` actor, after checking the key's scope
    key_id: str | None = None

    @property
    def is_tenant_admin(self) -> bool:
        return self.kind == "member" and "tenant_admin" in self.roles


ANONYMOUS = Actor()


class Envelope(msgspec.Struct, kw_only=True):
    tenant_id: str | None
    actor: Actor
    correlation_id: str
    body: msgspec.Raw
    credential: str | None = None  # the operator token, only on operator requests
    idempotency_key: str | None = None  # a client's key: a retry gets the first outcome


class ErrorInfo(msgspec.Struct, kw_only=True):
    code: str
    message: str
    field: str | None = None
    rule: str | None = None
    retry_after: int | None = None  # seconds (RateLimited)
    translations: dict[str, str] | None = None  # the message in other languages: {"fr": …}


NIL = msgspec.Raw(b"\xc0")  # msgpack's nil


class Reply(msgspec.Struct, kw_only=True):
    ok: msgspec.Raw = NIL
    error: ErrorInfo | None = None


def given_fields(struct: msgspec.Struct) -> dict[str, Any]:
    """The fields of a partial-update struct that were given (not UNSET)."""
    return {
        name: value
        for name in struct.__struct_fields__
        if (value := getattr(struct, name)) is not msgspec.UNSET
    }


def new_correlation_id() -> str:
    return uuid.uuid4().hex


encoder = msgspec.msgpack.Encoder()
envelope_decoder = msgspec.msgpack.Decoder(Envelope)
reply_decoder = msgspec.msgpack.Decoder(Reply)
