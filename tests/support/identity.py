"""Helpers for tests that need networks and members: through identity's real
commands over NATS, as the platform operator or a member would."""

from __future__ import annotations

import email
import re
from pathlib import Path
from typing import Any

from services.identity import contract as idc
from services.runtime.bus import Bus
from services.runtime.messages import Actor
from services.runtime.tenancy import RequestContext
from tests.support.env import OPERATOR_TOKEN

PASSWORD = "correct horse battery"
TOKEN = re.compile(r"token=([0-9a-f]{32}\.[A-Za-z0-9_-]+)")


def operator(tenant_id: str | None = None) -> RequestContext:
    return RequestContext(
        tenant_id=tenant_id, actor=Actor(kind="operator"), credential=OPERATOR_TOKEN
    )


def as_member(session: idc.Session) -> RequestContext:
    return RequestContext(
        tenant_id=session.tenant_id,
        actor=Actor(
            kind="member",
            member_id=session.member_id,
            tenant_id=session.tenant_id,
            roles=tuple(session.roles),
        ),
    )


def as_service(tenant_id: str) -> RequestContext:
    return RequestContext(tenant_id=tenant_id, actor=Actor(kind="service"))


def mailed_tokens(mail_dir: Path) -> dict[str, str]:
    """The latest invitation token mailed to each address, from the mail drop."""
    found: dict[str, str] = {}
    for path in sorted(mail_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes())
        for part in message.walk():  # other services' mails may be multipart
            body = part.get_payload(decode=True)
            match = TOKEN.search(body.decode()) if isinstance(body, bytes) else None
            if match:
                found[str(message["To"])] = match.group(1)
                break
    return found


def card(name: str, activity: str = "plumber", **extra: Any) -> idc.CardChanges:
    values: dict[str, Any] = {"display_name": name, "activity_code": activity, **extra}
    for key in ("work", "home"):
        if isinstance(values.get(key), dict):
            values[key] = idc.Place(**values[key])
    return idc.CardChanges(**values)


async def create_network(
    bus: Bus, slug: str, admin_email: str = "admin@example.org", admin_name: str = "Admin"
) -> tuple[idc.Tenant, idc.Session]:
    created = await bus.request(
        idc.CreateTenant(slug=slug, name=f"Network {slug}", admin_email=admin_email), operator()
    )
    assert created.admin_invitation.token
    session = await bus.request(
        idc.AcceptInvitation(
            token=created.admin_invitation.token,
            password=PASSWORD,
            card=card(
                admin_name,
                "management-consultant",
                work={"lat": 48.8575, "lon": 2.3795, "postcode": "75011"},
            ),
        ),
        RequestContext(),
    )
    return created.tenant, session


async def add_member(
    bus: Bus, tenant_id: str, email_address: str, member_card: idc.CardChanges
) -> idc.Session:
    sent = await bus.request(idc.InviteMember(email=email_address), operator(tenant_id))
    assert sent.token
    return await bus.request(
        idc.AcceptInvitation(token=sent.token, password=PASSWORD, card=member_card),
        RequestContext(),
    )
