"""Sessions, reset links and invitation slots as pure aggregates: the grace
for concurrent refreshes and its edges, the bound on live tokens, sessions
recorded before several live tokens were kept, reset links voided by any
password change, and the backoff of the throttle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from services.identity.domain import (
    MAX_LIVE,
    InvitationSlot,
    PasswordReset,
    RefreshFamily,
    fingerprint,
    hash_secret,
    slot_key,
)
from services.identity.throttle import LOGIN_ACCOUNT, LOGIN_PAIR, Policy, key
from services.runtime.errors import InvalidToken

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
TENANT = "00000000-0000-4000-8000-00000000000a"


def family() -> RefreshFamily:
    return RefreshFamily(
        tenant_id=TENANT,
        member_id=uuid4(),
        token_hash=hash_secret("t0"),
        expires_at=NOW + timedelta(days=30),
    )


def test_a_token_presented_again_within_the_grace_gets_a_token_of_its_own() -> None:
    f = family()
    f.rotate("t0", hash_secret("a"), NOW, grace=10)
    f.rotate("t0", hash_secret("b"), NOW + timedelta(seconds=9), grace=10)
    assert not f.revoked
    assert f.is_live("a") and f.is_live("b") and not f.is_live("t0")
    f.rotate("a", hash_secret("a2"), NOW + timedelta(seconds=20), grace=10)
    f.rotate("b", hash_secret("b2"), NOW + timedelta(seconds=20), grace=10)
    assert f.is_live("a2") and f.is_live("b2")


def test_the_grace_is_counted_from_the_first_use_and_ends_exactly() -> None:
    f = family()
    f.rotate("t0", hash_secret("a"), NOW, grace=10)
    f.rotate("t0", hash_secret("b"), NOW + timedelta(seconds=5), grace=10)
    f.rotate("t0", hash_secret("c"), NOW + timedelta(seconds=10), grace=10)  # not "< 10 s"
    assert f.revoked
    with pytest.raises(InvalidToken, match="signed out"):
        f.rotate("a", hash_secret("x"), NOW + timedelta(seconds=11), grace=10)


def test_without_a_grace_any_replay_revokes() -> None:
    f = family()
    f.rotate("t0", hash_secret("a"), NOW)
    f.rotate("t0", hash_secret("b"), NOW)
    assert f.revoked


def test_a_session_keeps_a_bounded_number_of_live_tokens() -> None:
    f = family()
    f.rotate("t0", hash_secret("first"), NOW, grace=10)
    for i in range(MAX_LIVE + 3):
        f.rotate("t0", hash_secret(f"c{i}"), NOW + timedelta(seconds=1), grace=10)
    assert len(f.live) == MAX_LIVE
    assert not f.is_live("first")  # the oldest went
    # ... as spent: replays in the grace (a thief's) cannot push the
    # legitimate client's token out unnoticed; presented, it revokes
    f.rotate("first", hash_secret("x"), NOW + timedelta(seconds=30), grace=10)
    assert f.revoked


def test_a_session_recorded_before_live_tokens_were_kept_still_rotates() -> None:
    f = family()
    del f.live, f.spent_at  # the state a session of an earlier version rebuilds to
    f._rotated(new_hash=hash_secret("a"))  # an earlier version's Rotated event
    assert f.is_live("a") and not f.is_live("t0")
    f.rotate("a", hash_secret("b"), NOW)
    assert f.is_live("b")
    f.rotate("t0", hash_secret("x"), NOW, grace=10)  # spent, with no first-use time
    assert f.revoked


def test_revoking_twice_records_once() -> None:
    f = family()
    assert f.revoke("signed out") is True
    assert f.revoke("password changed") is False
    assert f.revoked_reason == "signed out"


def reset(password_hash: str = "hash-1", ttl: int = 3600) -> PasswordReset:
    return PasswordReset(
        tenant_id=TENANT,
        member_id=uuid4(),
        token_hash=hash_secret("s"),
        password_fingerprint=fingerprint(password_hash),
        expires_at=NOW + timedelta(seconds=ttl),
    )


def test_a_reset_link_is_single_use_expiring_and_void_after_a_password_change() -> None:
    r = reset()
    r.check("s", "hash-1", NOW)
    with pytest.raises(InvalidToken, match="not valid"):
        r.check("wrong", "hash-1", NOW)
    with pytest.raises(InvalidToken, match="expired"):
        r.check("s", "hash-1", NOW + timedelta(hours=1))
    with pytest.raises(InvalidToken, match="changed"):
        r.check("s", "hash-2", NOW)
    r.use()
    with pytest.raises(InvalidToken, match="already"):
        r.check("s", "hash-1", NOW)


def test_an_invitation_slot_is_one_per_address_ignoring_case() -> None:
    assert slot_key(TENANT, "Lea@Example.org") == slot_key(TENANT, "lea@example.ORG")
    assert slot_key(TENANT, "lea@example.org") != slot_key(str(uuid4()), "lea@example.org")
    first, second = uuid4(), uuid4()
    slot = InvitationSlot(tenant_id=TENANT, email="lea@example.org", invitation_id=first)
    assert slot.id == slot_key(TENANT, "LEA@example.org")
    slot.point_to(second)
    assert slot.invitation_id == second


def test_the_backoff_doubles_from_the_free_attempts_up_to_its_cap() -> None:
    policy = Policy("p", free=3, base=1, cap=10, forget=60)
    assert [policy.wait(n) for n in range(1, 9)] == [0, 0, 1, 2, 4, 8, 10, 10]
    assert policy.wait(10_000) == 10  # no overflow however long an attack goes on
    assert LOGIN_ACCOUNT.cap < LOGIN_PAIR.cap  # the longest an attacker can make a member wait


def test_throttle_keys_are_hashes_of_their_parts() -> None:
    k = key(LOGIN_PAIR, "pole", "lea@example.org", "192.0.2.1")
    assert len(k) == 64 and "lea" not in k
    assert k != key(LOGIN_ACCOUNT, "pole", "lea@example.org", "192.0.2.1")
    assert k != key(LOGIN_PAIR, "pole", "lea@example.org", "192.0.2.2")
