"""Referrals' rules added around the ledger, without NATS: a need's checks
and its release at the window's edge, the ranking of matches, the need mail
in both languages, former members in the directory (an in-memory SQLite
read model), and the ledger read model's totals equal to a replay of its
events for any sequence of slips and thanks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from services.referrals.application import Referrals
from services.referrals.domain import Need, Referral, Thanks, rank_matches
from services.referrals.mail import NeedLetter, compose
from services.referrals.views import directory, ledger
from services.runtime.errors import InvalidInput, RuleViolation

TENANT = str(uuid4())
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PROSPECT = {"name": "Boulangerie Martin"}


# -- needs ----------------------------------------------------------------------------------


def test_a_need_is_released_from_the_end_of_its_window_on() -> None:
    need = Need.new(TENANT, "p", ["plumber"], "", "", None, ["m"], 7, NOW)
    assert need.window_ends_at == NOW + timedelta(days=7)
    with pytest.raises(RuleViolation) as early:
        need.release("p", need.window_ends_at - timedelta(microseconds=1))
    assert early.value.rule == "ask_the_network_first"
    assert need.status == "open"
    need.release("p", need.window_ends_at)
    assert need.status == "released"
    # a window of 0 days (a tenant setting): free at once
    at_once = Need.new(TENANT, "p", [], "boilers", "", None, [], 0, NOW)
    at_once.release("p", NOW)
    assert at_once.status == "released"


def test_a_need_is_checked_before_anyone_is_asked() -> None:
    codes, words, description = Need.checked(
        ["plumber", "plumber", "baker"],
        "  urgent\n leak ",
        "a  leak\r\n\n\n\nin the kitchen",
        None,
        NOW,
    )
    assert codes == ["plumber", "baker"]  # repeats dropped, order kept
    assert words == "urgent leak"  # one line
    assert description == "a leak\n\nin the kitchen"
    assert Need.checked([], "x", "", NOW.date(), NOW)[1] == "x"  # a deadline today is fine
    for codes, words, description, deadline, field in (
        ([], "", "", None, "activity_codes"),  # nothing asked
        ([], "\u200b", "", None, "activity_codes"),  # nothing visible
        (["x"] * 11, "", "", None, "activity_codes"),
        ([" "], "", "", None, "activity_codes"),
        (["c" * 61], "", "", None, "activity_codes"),
        ([], "w" * 201, "", None, "words"),
        ([], "ok", "d" * 2001, None, "description"),
        ([], "ok", "", NOW.date() - timedelta(days=1), "deadline"),
        ([], "bad\x00", "", None, "words"),
    ):
        with pytest.raises(InvalidInput) as info:
            Need.checked(codes, words, description, deadline, NOW)
        assert info.value.field == field


def test_matches_are_ranked_by_what_matched() -> None:
    hits = [(2, ["bruno", "alice"]), (1, ["alice", "chloe"]), (1, ["david", "alice"])]
    assert rank_matches(hits, 10) == ["alice", "bruno", "chloe", "david"]
    assert rank_matches(hits, 2) == ["alice", "bruno"]
    assert rank_matches([], 5) == []
    # the poster is never one of their own matches
    need = Need.new(TENANT, "p", ["plumber"], "", "", None, ["p", "m", "m"], 7, NOW)
    assert need.matches == ["m"]


# -- amounts as their currency writes them ---------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "currency", "answered"),
    [("1200.5000", "EUR", "1200.50"), ("5000.0000", "JPY", "5000"), ("1.2340", "TND", "1.234")],
)
def test_amounts_are_answered_with_their_currencys_decimals(
    stored: str, currency: str, answered: str
) -> None:
    money = ledger.money(Decimal(stored), currency)
    assert money is not None and str(money.amount) == answered


# -- the need mail --------------------------------------------------------------------------


def letter(locale: str) -> NeedLetter:
    return NeedLetter(
        network_name="Pôle 11e",
        locale=locale,
        sender="Quartier <no-reply@quartier.example>",
        to_address="alice@pole.example",
        to_name="Alice",
        poster_name="David",
        message_id="m-1@quartier.example",
        date=NOW,
        activity_codes=["plumber"],
        words="boilers",
        description="Our boiler broke down",
        deadline=date(2026, 6, 10),
        window_ends_at=NOW + timedelta(days=7),
    )


@pytest.mark.parametrize(
    ("locale", "subject", "phrases"),
    [
        (
            "fr",
            "David demande d'abord au réseau : boilers",
            ["Bonjour Alice", "Échéance : mercredi 10 juin 2026", "Je peux aider", "8 juin 2026"],
        ),
        (
            "en",
            "David asks the network first: boilers",
            ["Hello Alice", "Deadline: Wednesday 10 June 2026", "I can help", "8 June 2026"],
        ),
    ],
)
def test_the_need_mail_in_the_networks_language(
    locale: str, subject: str, phrases: list[str]
) -> None:
    message = compose(letter(locale))
    assert message["Subject"] == subject
    assert message["Content-Language"] == locale
    assert message["X-Quartier-Kind"] == "referrals-need"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"] == "<m-1@quartier.example>"
    assert str(message["To"]) == "Alice <alice@pole.example>"
    body = message.get_content()
    for phrase in [*phrases, "Our boiler broke down", "plumber"]:
        assert phrase in body
    assert "\n\n\n" not in body


def test_a_need_mail_without_words_or_deadline() -> None:
    bare = letter("en")
    message = compose(
        NeedLetter(**{**bare.__dict__, "words": "", "deadline": None, "description": ""})
    )
    assert message["Subject"] == "David asks the network first: plumber"
    body = message.get_content()
    assert "Deadline" not in body and "Looking for" not in body and "\n\n\n" not in body


# -- former members (the directory, in-memory) ----------------------------------------------


@pytest.fixture
def conn() -> Iterator[sa.Connection]:
    engine = sa.create_engine("sqlite://")
    directory.metadata.create_all(engine)
    ledger.metadata.create_all(engine)
    with engine.begin() as connection:
        yield connection


def test_a_member_who_left_every_hub_is_a_former_member(conn: sa.Connection) -> None:
    for m in ("founder", "ann", "ben", "new"):
        directory.member_joined(conn, TENANT, m, [])
    directory.hub_created(conn, TENANT, "h1", "founder")
    directory.hub_created(conn, TENANT, "h2", "founder")
    directory.join_hub(conn, TENANT, "h1", "ann")
    directory.join_hub(conn, TENANT, "h2", "ann")
    directory.join_hub(conn, TENANT, "h1", "ben")
    directory.leave_hub(conn, TENANT, "h1", "ann")
    assert not directory.is_former(conn, TENANT, "ann")  # still in h2
    directory.leave_hub(conn, TENANT, "h2", "ann")
    directory.leave_hub(conn, TENANT, "h1", "ben")
    assert directory.formers_among(conn, TENANT, ["ann", "ben", "new", "founder"]) == {
        "ann",
        "ben",
    }
    assert directory.active_among(conn, TENANT, ["new", "ann", "founder", "nobody"]) == [
        "new",  # never in a hub: a member still
        "founder",
    ]
    directory.join_hub(conn, TENANT, "h1", "ben")  # back
    assert not directory.is_former(conn, TENANT, "ben")
    assert not directory.is_former(conn, "another-tenant", "ann")


# -- the ledger's totals are a replay of its events -------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["slip-won", "slip-lost", "slip-declined", "thanks"]),
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from(["a", "b", "c"]),
            st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000000000"), places=2),
            st.sampled_from(["EUR", "USD", "JPY"]),
        ),
        max_size=20,
    )
)
def test_the_ledger_read_models_totals_equal_a_replay_of_its_events(
    moves: list[tuple[str, str, str, Decimal, str]],
) -> None:
    """Whatever the sequence of slips and thanks, the totals the reports read
    (the ledger read model, projected event by event) equal the sums of the
    events' values replayed from the log, per member, direction and currency."""
    app = Referrals(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    for kind, giver, receiver, amount, currency in moves:
        if giver == receiver:
            continue
        if currency == "JPY":
            amount = amount.to_integral_value() or Decimal(1)
        if kind == "thanks":
            app.save(Thanks.new(TENANT, giver, receiver, (amount, currency), "business", NOW))
            continue
        r = Referral.new(TENANT, giver, receiver, "x", 3, NOW, prospect=PROSPECT)
        app.save(r)
        steps = {
            "slip-declined": [("declined", "not my trade")],
            "slip-lost": [("accepted", None), ("contacted", None), ("lost", None)],
            "slip-won": [("accepted", None), ("contacted", None)],
        }[kind]
        for step, reason in steps:
            app.update(
                TENANT,
                str(r.id),
                Referral,
                lambda x, s=step, by=receiver, why=reason: x.move(s, by, NOW, why),
            )
        if kind == "slip-won":
            app.win(TENANT, str(r.id), receiver, (amount, currency), NOW)
    engine = sa.create_engine("sqlite://")
    ledger.metadata.create_all(engine)
    replayed: dict[tuple[str, str, str], Decimal] = {}
    with engine.begin() as conn:
        for n in app.notifications_after(0, 10_000):
            e = app.mapper.to_domain_event(n)
            ledger.apply(conn, e)
            if isinstance(e, Thanks.Recorded):
                for side, member in (("given", e.giver_id), ("received", e.receiver_id)):
                    key = (member, side, e.currency)
                    replayed[key] = replayed.get(key, Decimal(0)) + Decimal(e.amount)
        reported: dict[tuple[str, str, str], Decimal] = {}
        for member in ("a", "b", "c"):
            results = ledger.results(
                conn, TENANT, "member", member, [member], NOW, NOW, attended=0, missions=0
            )
            for side, amounts in (
                ("given", results.value_given),
                ("received", results.value_received),
            ):
                for money in amounts.items:
                    reported[(member, side, money.currency)] = money.amount
        network = ledger.results(conn, TENANT, "tenant", TENANT, None, NOW, NOW, 0, 0)
    assert reported == replayed
    by_currency: dict[str, Decimal] = {}
    for (_, side, currency), amount in replayed.items():
        if side == "given":
            by_currency[currency] = by_currency.get(currency, Decimal(0)) + amount
    assert {m.currency: m.amount for m in network.value_given.items} == by_currency
    won = sum(1 for kind, g, r, *_ in moves if kind == "slip-won" and g != r)
    assert network.referrals_won == won
