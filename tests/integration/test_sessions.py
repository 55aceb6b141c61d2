"""Accounts and sessions over identity's real commands (NATS, real stores):
authorisation from current state, sessions ended by a change of roles or
password, sessions listed and revoked by their owner, concurrent refreshes,
sign-in throttling, password reset by e-mail, invitations not duplicated.
Each attack is tried in several shapes (docs/security.md, "Accounts and
sessions")."""

from __future__ import annotations

import asyncio
import email
from pathlib import Path

import pytest

from services.identity import contract as idc
from services.identity.handlers import REFRESH_GRACE, RESET_TTL
from services.identity.outbox import pending_count
from services.runtime.auth import verify_access_token
from services.runtime.bus import Bus
from services.runtime.clock import MovableClock
from services.runtime.errors import (
    Conflict,
    Forbidden,
    InvalidCredentials,
    InvalidInput,
    InvalidToken,
    NotFound,
    RateLimited,
    Unauthenticated,
)
from services.runtime.host import ServiceHost
from services.runtime.messages import Done
from services.runtime.settings import Settings
from services.runtime.tenancy import RequestContext
from tests.support.env import JWT_SECRET
from tests.support.identity import PASSWORD, add_member, card, create_network, operator
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio

NEW_PASSWORD = "a new and long passphrase"
ANON = RequestContext()


def acting(session: idc.Session) -> RequestContext:
    """What the gateway would send for this access token, *before* it asks
    identity for the session's current state: the token's own claims."""
    claims = verify_access_token(JWT_SECRET, session.access_token)
    return RequestContext(tenant_id=claims.tenant_id, actor=claims.actor())


async def login(
    bus: Bus, slug: str, address: str, password: str = PASSWORD, client: str | None = None
) -> idc.Session:
    return await bus.request(
        idc.Login(tenant_slug=slug, email=address, password=password, client_address=client),
        ANON,
    )


async def is_on(bus: Bus, session: idc.Session) -> bool:
    try:
        await bus.request(idc.CurrentSession(), acting(session))
    except Unauthenticated:
        return False
    return True


async def refreshes(bus: Bus, session: idc.Session) -> bool:
    try:
        await bus.request(idc.RefreshSession(refresh_token=session.refresh_token), ANON)
    except InvalidToken:
        return False
    return True


def mails_to(mail_dir: Path, address: str, kind: str) -> list[email.message.Message]:
    found = []
    for path in sorted(mail_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes())
        if str(message["To"]).lower() == address.lower() and message["X-Quartier-Kind"] == kind:
            found.append(message)
    return found


def token_in(message: email.message.Message) -> str:
    body = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    return body.split("token=", 1)[1].split()[0].split("&", 1)[0]  # the link: ?token=…&network=…


# -- authorisation from current state -------------------------------------------


async def test_a_demoted_admin_s_earlier_token_changes_nothing(
    identity: ServiceHost, client_bus: Bus
) -> None:
    tenant, admin = await create_network(client_bus, "pole-demote")
    bea = await add_member(client_bus, tenant.tenant_id, "bea@demote.example", card("Bea"))
    await client_bus.request(idc.SetTenantAdmin(member_id=bea.member_id, admin=True), acting(admin))
    bea_admin = await login(client_bus, "pole-demote", "bea@demote.example")
    assert bea_admin.roles == ["tenant_admin"]
    stale = acting(bea_admin)  # says tenant_admin, signed, unexpired
    await client_bus.request(
        idc.SetTenantAdmin(member_id=bea.member_id, admin=False), acting(admin)
    )
    # every shape of "use the earlier token as an admin" is refused from current state
    attempts = [
        idc.SetTenantAdmin(member_id=bea.member_id, admin=True),  # make herself admin again
        idc.SetTenantAdmin(member_id=admin.member_id, admin=False),  # demote the others
        idc.InviteMember(email="accomplice@demote.example", as_admin=True),
        idc.InviteMember(email="friend@demote.example"),
        idc.SetTenantLocale(locale="en"),
    ]
    for attempt in attempts:
        with pytest.raises(Forbidden):
            await client_bus.request(attempt, stale)
    pending = await client_bus.request(idc.InviteMember(email="x@demote.example"), acting(admin))
    with pytest.raises(Forbidden):
        await client_bus.request(idc.RevokeInvitation(invitation_id=pending.invitation_id), stale)
    # the demotion ended her sessions: the token's session and its refresh token
    assert not await is_on(client_bus, bea_admin)
    assert not await refreshes(client_bus, bea_admin)
    # signed in again, she is a member without the role
    again = await login(client_bus, "pole-demote", "bea@demote.example")
    assert again.roles == []
    state = await client_bus.request(idc.CurrentSession(), acting(again))
    assert state.roles == []
    cards = await client_bus.request(idc.GetMembers(member_ids=[bea.member_id]), acting(admin))
    assert cards[0].roles == []


async def test_a_change_of_roles_ends_every_session_of_that_member_only(
    identity: ServiceHost, client_bus: Bus
) -> None:
    tenant, admin = await create_network(client_bus, "pole-roles")
    carl = await add_member(client_bus, tenant.tenant_id, "carl@roles.example", card("Carl"))
    phone = await login(client_bus, "pole-roles", "carl@roles.example")
    assert await is_on(client_bus, carl) and await is_on(client_bus, phone)
    await client_bus.request(
        idc.SetTenantAdmin(member_id=carl.member_id, admin=True), acting(admin)
    )
    assert not await is_on(client_bus, carl)
    assert not await is_on(client_bus, phone)
    assert not await refreshes(client_bus, phone)
    assert await is_on(client_bus, admin)  # the admin who did it goes on
    promoted = await login(client_bus, "pole-roles", "carl@roles.example")
    state = await client_bus.request(idc.CurrentSession(), acting(promoted))
    assert state.roles == ["tenant_admin"]
    # setting the role a member already has changes nothing and ends nothing
    await client_bus.request(
        idc.SetTenantAdmin(member_id=carl.member_id, admin=True), acting(admin)
    )
    assert await is_on(client_bus, promoted)


async def test_current_session_refuses_what_is_not_a_live_session_of_the_caller(
    identity: ServiceHost, client_bus: Bus
) -> None:
    tenant, admin = await create_network(client_bus, "pole-current")
    other_tenant, other_admin = await create_network(
        client_bus, "pole-other", "admin@other.example"
    )
    ctx = acting(admin)
    no_session = RequestContext(
        tenant_id=ctx.tenant_id,
        actor=type(ctx.actor)(kind="member", member_id=admin.member_id, tenant_id=ctx.tenant_id),
    )
    someone_else = RequestContext(
        tenant_id=ctx.tenant_id,
        actor=type(ctx.actor)(
            kind="member",
            member_id=admin.member_id,
            tenant_id=ctx.tenant_id,
            session_id=acting(other_admin).actor.session_id,
        ),
    )
    elsewhere = RequestContext(
        tenant_id=other_tenant.tenant_id,
        actor=type(ctx.actor)(
            kind="member",
            member_id=admin.member_id,
            tenant_id=other_tenant.tenant_id,
            session_id=ctx.actor.session_id,
        ),
    )
    for bad in (no_session, someone_else, elsewhere, ANON):
        with pytest.raises(Unauthenticated):
            await client_bus.request(idc.CurrentSession(), bad)
    assert (await client_bus.request(idc.CurrentSession(), ctx)).roles == ["tenant_admin"]
    del tenant


# -- password change, sessions listed and revoked --------------------------------


async def test_a_password_change_ends_the_other_sessions(
    identity: ServiceHost, client_bus: Bus
) -> None:
    tenant, admin = await create_network(client_bus, "pole-pw")
    dana = await add_member(client_bus, tenant.tenant_id, "dana@pw.example", card("Dana"))
    laptop = await login(client_bus, "pole-pw", "dana@pw.example")
    thief = await login(client_bus, "pole-pw", "dana@pw.example")
    # a wrong current password changes nothing and ends nothing
    with pytest.raises(InvalidCredentials):
        await client_bus.request(
            idc.ChangePassword(current_password="not the password", new_password=NEW_PASSWORD),
            acting(laptop),
        )
    with pytest.raises(InvalidInput):
        await client_bus.request(
            idc.ChangePassword(current_password=PASSWORD, new_password="short"), acting(laptop)
        )
    assert await is_on(client_bus, thief)
    await client_bus.request(
        idc.ChangePassword(current_password=PASSWORD, new_password=NEW_PASSWORD), acting(laptop)
    )
    assert await is_on(client_bus, laptop)  # the session that changed it goes on
    for ended in (thief, dana):
        assert not await is_on(client_bus, ended)
        assert not await refreshes(client_bus, ended)
    assert await refreshes(client_bus, laptop)
    with pytest.raises(InvalidCredentials):
        await login(client_bus, "pole-pw", "dana@pw.example")
    await login(client_bus, "pole-pw", "dana@pw.example", NEW_PASSWORD)
    assert await is_on(client_bus, admin)  # another member's sessions are not touched


async def test_sessions_are_listed_and_revoked_by_their_owner_only(
    identity: ServiceHost, client_bus: Bus
) -> None:
    tenant, admin = await create_network(client_bus, "pole-list")
    _, other_admin = await create_network(client_bus, "pole-list2", "admin@list2.example")
    eve = await add_member(client_bus, tenant.tenant_id, "eve@list.example", card("Eve"))
    tablet = await login(client_bus, "pole-list", "eve@list.example")
    listed = await client_bus.request(idc.ListSessions(), acting(eve))
    assert len(listed) == 2
    assert [s.current for s in listed].count(True) == 1
    (current,) = [s for s in listed if s.current]
    assert current.session_id == acting(eve).actor.session_id
    tablet_id = acting(tablet).actor.session_id
    assert tablet_id in {s.session_id for s in listed}
    # nobody else may end it: another member, another network's admin, an
    # unknown or malformed id (all answered like a missing one)
    for ctx, session_id in (
        (acting(admin), tablet_id),
        (acting(other_admin), tablet_id),
        (acting(eve), "00000000-0000-4000-8000-000000000000"),
        (acting(eve), "not-an-id"),
    ):
        with pytest.raises(NotFound):
            await client_bus.request(idc.RevokeSession(session_id=session_id or ""), ctx)
    assert await is_on(client_bus, tablet)
    with pytest.raises(Unauthenticated):
        await client_bus.request(idc.RevokeSession(session_id=tablet_id or ""), ANON)
    await client_bus.request(idc.RevokeSession(session_id=tablet_id or ""), acting(eve))
    assert not await is_on(client_bus, tablet)
    assert not await refreshes(client_bus, tablet)
    with pytest.raises(NotFound):  # repeated
        await client_bus.request(idc.RevokeSession(session_id=tablet_id or ""), acting(eve))
    listed = await client_bus.request(idc.ListSessions(), acting(eve))
    assert [s.session_id for s in listed] == [acting(eve).actor.session_id]
    # a member may end their own current session too
    await client_bus.request(
        idc.RevokeSession(session_id=acting(eve).actor.session_id or ""), acting(eve)
    )
    assert not await is_on(client_bus, eve)


# -- refresh: concurrent refreshes and replays -----------------------------------------


async def test_concurrent_refreshes_within_the_grace_keep_the_client_signed_in(
    identity: ServiceHost, client_bus: Bus, clock: MovableClock
) -> None:
    await create_network(client_bus, "pole-grace", "admin@grace.example")
    first = await login(client_bus, "pole-grace", "admin@grace.example")
    token = idc.RefreshSession(refresh_token=first.refresh_token)
    # two tabs refresh the same token at once, and a retry after a lost reply
    a, b = await asyncio.gather(client_bus.request(token, ANON), client_bus.request(token, ANON))
    clock.advance(seconds=REFRESH_GRACE / 2)
    c = await client_bus.request(token, ANON)
    assert len({a.refresh_token, b.refresh_token, c.refresh_token}) == 3
    for each in (a, b, c):  # each tab goes on with its own token, in the same session
        assert acting(each).actor.session_id == acting(first).actor.session_id
        assert await is_on(client_bus, each)
    a2 = await client_bus.request(idc.RefreshSession(refresh_token=a.refresh_token), ANON)
    b2 = await client_bus.request(idc.RefreshSession(refresh_token=b.refresh_token), ANON)
    # after the grace, the first token presented again is a replay: the session ends
    clock.advance(seconds=REFRESH_GRACE)
    with pytest.raises(InvalidToken, match="revoked"):
        await client_bus.request(token, ANON)
    for each in (a2, b2, c):
        assert not await refreshes(client_bus, each)
        assert not await is_on(client_bus, each)


async def test_a_replay_long_after_is_refused_and_ends_the_session(
    identity: ServiceHost, client_bus: Bus, clock: MovableClock
) -> None:
    await create_network(client_bus, "pole-replay", "admin@replay.example")
    first = await login(client_bus, "pole-replay", "admin@replay.example")
    second = await client_bus.request(idc.RefreshSession(refresh_token=first.refresh_token), ANON)
    clock.advance(minutes=5)
    third = await client_bus.request(idc.RefreshSession(refresh_token=second.refresh_token), ANON)
    with pytest.raises(InvalidToken):  # a stolen token replayed later
        await client_bus.request(idc.RefreshSession(refresh_token=first.refresh_token), ANON)
    assert not await refreshes(client_bus, third)
    assert not await is_on(client_bus, third)
    with pytest.raises(InvalidToken):  # a logout with a token of the ended session
        await client_bus.request(idc.Logout(refresh_token=third.refresh_token), ANON)


# -- sign-in throttling ---------------------------------------------------------


async def attempt_kinds(
    bus: Bus, slug: str, addresses: list[str], clients: list[str], password: str
) -> list[str]:
    kinds = []
    for address, client in zip(addresses, clients, strict=True):
        try:
            await login(bus, slug, address, password, client)
            kinds.append("ok")
        except InvalidCredentials:
            kinds.append("wrong")
        except NotFound:
            kinds.append("no network")
        except RateLimited as limited:
            assert limited.retry_after and limited.retry_after > 0
            kinds.append("wait")
    return kinds


async def test_forty_wrong_passwords_then_the_right_one_is_throttled(
    identity: ServiceHost, client_bus: Bus, clock: MovableClock
) -> None:
    await create_network(client_bus, "pole-guess", "admin@guess.example")
    who, where = "admin@guess.example", "203.0.113.7"
    kinds = await attempt_kinds(client_bus, "pole-guess", [who] * 40, [where] * 40, "guess-0000")
    assert kinds[:5] == ["wrong"] * 5
    assert set(kinds[5:]) == {"wait"}  # refused before any password is checked
    with pytest.raises(RateLimited) as limited:
        await login(client_bus, "pole-guess", who, PASSWORD, where)
    # no hard lockout: the member signs in from their own address meanwhile,
    # and from this one once the wait is over
    await login(client_bus, "pole-guess", who, PASSWORD, "198.51.100.2")
    assert limited.value.retry_after is not None
    clock.advance(seconds=limited.value.retry_after)
    await login(client_bus, "pole-guess", who, PASSWORD, where)
    # a success forgets the failures: a typo afterwards costs no wait
    assert await attempt_kinds(client_bus, "pole-guess", [who], [where], "typo-00000") == ["wrong"]
    await login(client_bus, "pole-guess", who, PASSWORD, where)


async def test_guessing_from_many_addresses_or_many_accounts_is_throttled(
    identity: ServiceHost, client_bus: Bus, clock: MovableClock
) -> None:
    tenant, _ = await create_network(client_bus, "pole-spray", "admin@spray.example")
    await add_member(client_bus, tenant.tenant_id, "fred@spray.example", card("Fred"))
    # one account, a new address for each guess (a botnet)
    who = "admin@spray.example"
    clients = [f"198.51.100.{i}" for i in range(30)]
    kinds = await attempt_kinds(client_bus, "pole-spray", [who] * 30, clients, "guess-0000")
    assert kinds == ["wrong"] * 20 + ["wait"] * 10
    with pytest.raises(RateLimited) as limited:
        await login(client_bus, "pole-spray", who, PASSWORD, "192.0.2.99")
    assert limited.value.retry_after is not None and limited.value.retry_after <= 300
    # another account is not slowed down by it
    await login(client_bus, "pole-spray", "fred@spray.example", PASSWORD, "192.0.2.99")
    # one address, a new account (or network) for each guess (password spraying)
    spray = [f"user{i}@spray.example" for i in range(40)]
    kinds = await attempt_kinds(client_bus, "pole-spray", spray, ["192.0.2.1"] * 40, "Summer2026!")
    assert kinds == ["wrong"] * 30 + ["wait"] * 10
    kinds = await attempt_kinds(client_bus, "no-such-net", [who], ["192.0.2.1"], PASSWORD)
    assert kinds == ["wait"]
    clock.advance(seconds=limited.value.retry_after)
    await login(client_bus, "pole-spray", who, PASSWORD, "198.51.100.1")


# -- password reset by e-mail -------------------------------------------------------


async def mails_sent(identity: ServiceHost) -> None:
    """The reset mails asked for so far are done (sent out of the request)."""
    engine = identity.context["engine"]
    await eventually(lambda: pending_count(engine) == 0)


async def test_password_reset_by_mail_is_single_use_and_ends_every_session(
    identity: ServiceHost, client_bus: Bus, settings: Settings
) -> None:
    tenant, admin = await create_network(client_bus, "pole-reset", "admin@reset.example")
    gus = await add_member(client_bus, tenant.tenant_id, "Gus@Reset.example", card("Gus"))
    other = await login(client_bus, "pole-reset", "gus@reset.example")
    # the answer is the same whether the address has an account or not
    for slug, address in (
        ("pole-reset", "GUS@reset.EXAMPLE"),
        ("pole-reset", "nobody@reset.example"),
        ("no-such-net", "gus@reset.example"),
        ("pole-reset", "not an address"),
    ):
        done = await client_bus.request(
            idc.RequestPasswordReset(tenant_slug=slug, email=address), ANON
        )
        assert done == Done()
    await mails_sent(identity)
    (mail,) = mails_to(settings.mail_dir, "Gus@reset.example", "password-reset")
    assert not mails_to(settings.mail_dir, "nobody@reset.example", "password-reset")
    token = token_in(mail)
    with pytest.raises(InvalidInput):  # a bad new password spends nothing
        await client_bus.request(
            idc.ResetPassword(tenant_slug="pole-reset", token=token, new_password="short"), ANON
        )
    await client_bus.request(
        idc.ResetPassword(tenant_slug="pole-reset", token=token, new_password=NEW_PASSWORD), ANON
    )
    for ended in (gus, other):
        assert not await is_on(client_bus, ended)
        assert not await refreshes(client_bus, ended)
    assert await is_on(client_bus, admin)
    with pytest.raises(InvalidCredentials):
        await login(client_bus, "pole-reset", "gus@reset.example")
    await login(client_bus, "pole-reset", "gus@reset.example", NEW_PASSWORD)
    with pytest.raises(InvalidToken, match="already been used"):  # single use
        await client_bus.request(
            idc.ResetPassword(tenant_slug="pole-reset", token=token, new_password=PASSWORD), ANON
        )


async def test_a_reset_link_of_another_network_expired_superseded_or_forged_is_refused(
    identity: ServiceHost, client_bus: Bus, settings: Settings, clock: MovableClock
) -> None:
    tenant, _ = await create_network(client_bus, "pole-links", "admin@links.example")
    await create_network(client_bus, "pole-elsewhere", "admin@elsewhere.example")
    await add_member(client_bus, tenant.tenant_id, "hana@links.example", card("Hana"))

    async def request_link() -> str:
        await client_bus.request(
            idc.RequestPasswordReset(tenant_slug="pole-links", email="hana@links.example"), ANON
        )
        await mails_sent(identity)
        return token_in(mails_to(settings.mail_dir, "hana@links.example", "password-reset")[-1])

    def reset(token: str, slug: str = "pole-links") -> idc.ResetPassword:
        return idc.ResetPassword(tenant_slug=slug, token=token, new_password=NEW_PASSWORD)

    first = await request_link()
    selector, secret = first.split(".", 1)
    hasher = identity.context["app"].hasher
    hashed: list[str] = []
    real_hash = hasher.hash
    hasher.hash = lambda password: hashed.append(password) or real_hash(password)
    for forged in (
        reset(first, "pole-elsewhere"),  # the link of another network
        reset(first, "no-such-net"),
        reset(f"{selector}.{secret[:-2]}xx"),  # a wrong secret
        reset(f"{'0' * 32}.{secret}"),  # an unknown selector
        reset("garbage"),
    ):
        with pytest.raises(InvalidToken):
            await client_bus.request(forged, ANON)
    assert hashed == []  # a refused link costs no password hash
    hasher.hash = real_hash
    second = await request_link()
    await client_bus.request(reset(second), ANON)
    with pytest.raises(InvalidToken, match="changed"):  # the password changed since
        await client_bus.request(reset(first), ANON)
    late = await request_link()
    clock.advance(seconds=RESET_TTL)
    with pytest.raises(InvalidToken, match="expired"):
        await client_bus.request(reset(late), ANON)
    await login(client_bus, "pole-links", "hana@links.example", NEW_PASSWORD)


async def test_reset_mails_are_limited_per_account(
    identity: ServiceHost, client_bus: Bus, settings: Settings
) -> None:
    tenant, _ = await create_network(client_bus, "pole-bomb", "admin@bomb.example")
    await add_member(client_bus, tenant.tenant_id, "ines@bomb.example", card("Ines"))
    for _ in range(6):  # answered alike each time
        done = await client_bus.request(
            idc.RequestPasswordReset(tenant_slug="pole-bomb", email="ines@bomb.example"), ANON
        )
        assert done == Done()
    await mails_sent(identity)
    assert len(mails_to(settings.mail_dir, "ines@bomb.example", "password-reset")) == 3
    # from one address, requests for many accounts end up waiting
    with pytest.raises(RateLimited):
        for i in range(20):
            await client_bus.request(
                idc.RequestPasswordReset(
                    tenant_slug="pole-bomb", email=f"x{i}@bomb.example", client_address="192.0.2.5"
                ),
                ANON,
            )


# -- invitations are not duplicated -----------------------------------------------------


async def test_inviting_an_address_twice_in_any_letter_case_mails_once(
    identity: ServiceHost, client_bus: Bus, settings: Settings, clock: MovableClock
) -> None:
    tenant, admin = await create_network(client_bus, "pole-twice", "admin@twice.example")
    before = await client_bus.request(idc.ListInvitations(status="pending"), acting(admin))
    sent = [
        await client_bus.request(idc.InviteMember(email=address), acting(admin))
        for address in ("Jo@Twice.example", "jo@twice.example", "JO@TWICE.EXAMPLE ")
    ]
    assert len({s.invitation_id for s in sent}) == 1
    assert len(mails_to(settings.mail_dir, "jo@twice.example", "invitation")) == 1
    after = await client_bus.request(idc.ListInvitations(status="pending"), acting(admin))
    assert after.total == before.total + 1
    # the operator's repeated invitation answers the pending one too (no new token)
    again = await client_bus.request(
        idc.InviteMember(email="jo@twice.example"), operator(tenant.tenant_id)
    )
    assert again.invitation_id == sent[0].invitation_id and again.token is None
    # the same address with other roles is a conflict while it is pending
    with pytest.raises(Conflict):
        await client_bus.request(
            idc.InviteMember(email="jo@twice.example", as_admin=True), acting(admin)
        )
    # withdrawn, or expired: a new invitation and a new mail
    await client_bus.request(
        idc.RevokeInvitation(invitation_id=sent[0].invitation_id), acting(admin)
    )
    renewed = await client_bus.request(idc.InviteMember(email="jo@twice.example"), acting(admin))
    assert renewed.invitation_id != sent[0].invitation_id
    clock.advance(seconds=settings.invitation_ttl)
    late = await client_bus.request(idc.InviteMember(email="jo@twice.example"), acting(admin))
    assert late.invitation_id != renewed.invitation_id
    assert len(mails_to(settings.mail_dir, "jo@twice.example", "invitation")) == 3


async def test_concurrent_invitations_of_one_address_make_one(
    identity: ServiceHost, client_bus: Bus, settings: Settings
) -> None:
    _, admin = await create_network(client_bus, "pole-race", "admin@race.example")
    sent = await asyncio.gather(
        *(
            client_bus.request(idc.InviteMember(email=address), acting(admin))
            for address in ("kim@race.example", "Kim@race.example", "kim@RACE.example") * 2
        ),
        return_exceptions=True,
    )
    ids = {s.invitation_id for s in sent if isinstance(s, idc.InvitationSent)}
    assert len(ids) == 1, sent
    assert all(isinstance(s, idc.InvitationSent | Conflict) for s in sent), sent
    assert len(mails_to(settings.mail_dir, "kim@race.example", "invitation")) == 1


async def test_many_members_signing_in_from_one_address_are_not_slowed_down(
    identity: ServiceHost, client_bus: Bus
) -> None:
    """An office or a proxy: the address counts failures, not sign-ins."""
    await create_network(client_bus, "pole-office", "admin@office.example")
    for _ in range(40):
        await login(client_bus, "pole-office", "admin@office.example", client="192.0.2.77")
    kinds = await attempt_kinds(
        client_bus, "pole-office", ["someone@office.example"], ["192.0.2.77"], "guess-0000"
    )
    assert kinds == ["wrong"]
