"""Sessions and credentials: signing in (throttled per account and per
address), refreshing and ending a session, the list of one's sessions,
changing a password and resetting a forgotten one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.errors import Error, InvalidCredentials, InvalidToken
from gateway.identity.members import Member
from gateway.kit import as_error_type, ask, command, require_member, result_union, said
from gateway.nodes import from_global_id, to_global_id
from services.identity import contract as c
from services.runtime import errors as e
from services.runtime.messages import Actor

# -- types ---------------------------------------------------------------------


@strawberry.type(
    description="Signed in: a short-lived access token and a single-use refresh token."
)
class AuthPayload:
    access_token: str
    access_token_expires_at: datetime
    refresh_token: str
    tenant_slug: str
    session: strawberry.Private[c.Session]

    @strawberry.field
    async def member(self, info: Info[Context, Any]) -> Member | None:
        s = self.session
        rctx = info.context.request_context(actor=_member_actor(s), tenant_id=s.tenant_id)
        cards = await ask(info, c.GetMembers(member_ids=[s.member_id]), rctx)
        return Member.from_card(cards[0]) if cards else None

    @classmethod
    def from_session(cls, s: c.Session) -> AuthPayload:
        return cls(
            access_token=s.access_token,
            access_token_expires_at=s.access_expires_at,
            refresh_token=s.refresh_token,
            tenant_slug=s.tenant_slug,
            session=s,
        )


def _member_actor(s: c.Session) -> Actor:
    return Actor(kind="member", member_id=s.member_id, tenant_id=s.tenant_id, roles=tuple(s.roles))


@strawberry.type(
    description="Too many attempts (sign-in, password reset): try again after `retryAfterSeconds`."
)
class TooManyAttempts(Error):
    retry_after_seconds: int


@strawberry.type(description="One of your sign-in sessions (a device or browser).")
class SessionInfo:
    id: strawberry.ID = strawberry.field(description="Give it to `revokeSession`.")
    started_at: datetime
    last_used_at: datetime = strawberry.field(description="The last sign-in or refresh.")
    expires_at: datetime = strawberry.field(description="When its refresh token stops working.")
    current: bool = strawberry.field(description="The session of this request's access token.")

    @classmethod
    def from_contract(cls, s: c.SessionInfo) -> SessionInfo:
        return cls(
            id=to_global_id("Session", s.session_id),
            started_at=s.started_at,
            last_used_at=s.last_used_at,
            expires_at=s.expires_at,
            current=s.current,
        )


@strawberry.type
class SessionRevoked:
    session_id: strawberry.ID


@strawberry.type(description="Answered alike whether or not the address has an account.")
class PasswordResetRequested:
    ok: bool


@strawberry.type(description="The password is changed; every session has ended: sign in.")
class PasswordReset:
    ok: bool


@strawberry.type
class SignedOut:
    ok: bool


@strawberry.type
class PasswordChanged:
    ok: bool


# -- inputs --------------------------------------------------------------------


@strawberry.input
class LoginInput:
    tenant: str = strawberry.field(description="The network's slug, e.g. pole-11e")
    email: str
    password: str


@strawberry.input
class RefreshSessionInput:
    refresh_token: str


@strawberry.input
class ChangePasswordInput:
    current_password: str
    new_password: str


@strawberry.input
class RevokeSessionInput:
    session_id: strawberry.ID


@strawberry.input
class RequestPasswordResetInput:
    tenant: str = strawberry.field(description="The network's slug, e.g. pole-11e")
    email: str


@strawberry.input
class ResetPasswordInput:
    tenant: str = strawberry.field(description="The network's slug, e.g. pole-11e")
    token: str = strawberry.field(description="The token of the reset link's `token=`")
    new_password: str


LoginResult = result_union("LoginResult", AuthPayload, InvalidCredentials, TooManyAttempts)
RefreshSessionResult = result_union("RefreshSessionResult", AuthPayload, InvalidToken)
LogoutResult = result_union("LogoutResult", SignedOut, InvalidToken)
ChangePasswordResult = result_union(
    "ChangePasswordResult", PasswordChanged, InvalidCredentials, TooManyAttempts
)
RevokeSessionResult = result_union("RevokeSessionResult", SessionRevoked)
RequestPasswordResetResult = result_union(
    "RequestPasswordResetResult", PasswordResetRequested, TooManyAttempts
)
ResetPasswordResult = result_union("ResetPasswordResult", PasswordReset, InvalidToken)


def client_address(info: Info[Context, Any]) -> str | None:
    """The address sign-in attempts are throttled by: the connection's peer,
    or the client a trusted proxy names (`QUARTIER_TRUSTED_PROXIES`)."""
    address: str | None = info.context.client_address
    return address


async def attempt(
    info: Info[Context, Any],
    message: Any,
    wrap: Any,
    rctx: Any = None,
    fields: dict[str, str] | None = None,
) -> Any:
    """A credential command: like `command`, and a throttled attempt is a
    `TooManyAttempts` with the seconds to wait."""
    try:
        return wrap(await info.context.ask(message, rctx or info.context.anonymous()))
    except e.RateLimited as error:
        return TooManyAttempts(
            message=said(error), code=error.code, retry_after_seconds=error.retry_after or 1
        )
    except e.QuartierError as error:
        if fields and error.field in fields:
            error.field = fields[error.field]
        return as_error_type(error)


# -- queries and mutations -------------------------------------------------------


@strawberry.type
class Query:
    @strawberry.field(
        description="Your sign-in sessions that are still on, most recently used first (at most 50)."
    )
    async def sessions(self, info: Info[Context, Any]) -> list[SessionInfo]:
        rctx = require_member(info)
        found = await ask(info, c.ListSessions(), rctx)
        return [SessionInfo.from_contract(s) for s in found]


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Sign in to a network with e-mail and password. Attempts are throttled "
        "per account and per address: after a few failures, each waits longer (TooManyAttempts)."
    )
    async def login(self, info: Info[Context, Any], input: LoginInput) -> LoginResult:
        return await attempt(
            info,
            c.Login(
                tenant_slug=input.tenant,
                email=input.email,
                password=input.password,
                client_address=client_address(info),
            ),
            AuthPayload.from_session,
        )

    @strawberry.mutation(
        description="Trade a refresh token for new tokens (each refresh token works once)."
    )
    async def refresh_session(
        self,
        info: Info[Context, Any],
        input: RefreshSessionInput,
    ) -> RefreshSessionResult:
        return await command(
            info,
            lambda: c.RefreshSession(refresh_token=input.refresh_token),
            AuthPayload.from_session,
            caller="anonymous",
        )

    @strawberry.mutation(description="End the session of this refresh token.")
    async def logout(self, info: Info[Context, Any], input: RefreshSessionInput) -> LogoutResult:
        return await command(
            info,
            lambda: c.Logout(refresh_token=input.refresh_token),
            lambda _: SignedOut(ok=True),
            caller="anonymous",
        )

    @strawberry.mutation(
        description="Change your password: your other sessions end, this one goes on."
    )
    async def change_password(
        self,
        info: Info[Context, Any],
        input: ChangePasswordInput,
    ) -> ChangePasswordResult:
        try:
            rctx = info.context.require_member()
        except e.QuartierError as error:
            return as_error_type(error)
        return await attempt(
            info,
            c.ChangePassword(
                current_password=input.current_password, new_password=input.new_password
            ),
            lambda _: PasswordChanged(ok=True),
            rctx,
            fields={"password": "new_password"},
        )

    @strawberry.mutation(description="End one of your sessions (see `sessions`).")
    async def revoke_session(
        self, info: Info[Context, Any], input: RevokeSessionInput
    ) -> RevokeSessionResult:
        return await command(
            info,
            lambda: c.RevokeSession(
                session_id=from_global_id(input.session_id, "Session", field="session_id")
            ),
            lambda _: SessionRevoked(session_id=input.session_id),
        )

    @strawberry.mutation(
        description="Forgot your password: a single-use reset link is mailed to the address if "
        "it has an account in the network. The answer is the same either way."
    )
    async def request_password_reset(
        self, info: Info[Context, Any], input: RequestPasswordResetInput
    ) -> RequestPasswordResetResult:
        return await attempt(
            info,
            c.RequestPasswordReset(
                tenant_slug=input.tenant, email=input.email, client_address=client_address(info)
            ),
            lambda _: PasswordResetRequested(ok=True),
        )

    @strawberry.mutation(
        description="With the token of a reset link: set a new password. Every session ends."
    )
    async def reset_password(
        self, info: Info[Context, Any], input: ResetPasswordInput
    ) -> ResetPasswordResult:
        return await command(
            info,
            lambda: c.ResetPassword(
                tenant_slug=input.tenant, token=input.token, new_password=input.new_password
            ),
            lambda _: PasswordReset(ok=True),
            caller="anonymous",
            fields={"password": "new_password"},
        )
