"""Hub and network reports reveal no one member's figures to members who are
not admins (services/referrals/views/reports.py): only the hub's members see
its report; windows widen to whole completed months; a figure that sums
fewer than three members in some month is withheld. Several shapes of the
differencing attack: a narrow window, a month of one contributor, two
months minus one, the network's total, the current month; admins see exact
figures. Real NATS, identity, hubs and referrals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.hubs import contract as hc
from services.referrals import contract as c
from services.referrals.views.reports import coarse_window, month_start, next_month
from services.runtime.bus import Bus
from services.runtime.clock import MovableClock
from services.runtime.errors import Forbidden, InvalidInput, NotFound
from services.runtime.host import ServiceHost
from tests.integration.test_referrals_service import _active, network
from tests.support.identity import add_member, as_member, card, create_network
from tests.support.waiting import eventually

OPEN = hc.Rules(admission_mode="open", non_competition=False)
PEOPLE = {
    "alice": ("plumber", "leaks"),
    "bruno": ("baker", "bread"),
    "chloe": ("lawyer", "law"),
    "david": ("plumber", "pipes"),
}


def eur(amount: str) -> c.Money:
    return c.Money(amount=Decimal(amount))


def total(amounts: c.Amounts) -> Decimal:
    return sum((m.amount for m in amounts.items), Decimal(0))


async def test_hub_and_network_reports_reveal_no_single_members_value(
    referrals: ServiceHost, client_bus: Bus, clock: MovableClock
) -> None:
    bus = client_bus
    net = await network(bus, referrals, "pole-reports", PEOPLE, rules=OPEN)
    hub = net.hub.hub_id
    # eve is a member of the network, not of the hub
    eve = await add_member(bus, net.tenant.tenant_id, "eve@pole-reports.example", card("Eve"))
    await eventually(lambda: _active(referrals, net.tenant.tenant_id, eve.member_id))

    async def thank(receiver: str, giver: str, amount: str) -> None:
        await bus.request(
            c.RecordThanks(giver_id=net.id(giver), value=eur(amount), about="work", hub_id=hub),
            net.ctx(receiver),
        )

    # month 1: three members bring business (and three receive it)
    clock.advance(next_month(clock.now()) - clock.now() + timedelta(days=2, hours=10))
    first = month_start(clock.now())
    await thank("bruno", "alice", "100")
    await thank("chloe", "bruno", "200")
    await thank("david", "chloe", "300")
    # month 2: one member brings business to one other: a single value
    clock.advance(next_month(clock.now()) - clock.now() + timedelta(days=3))
    second = month_start(clock.now())
    secret = "4321"
    await thank("david", "alice", secret)
    clock.advance(next_month(clock.now()) - clock.now() + timedelta(days=1))
    now_month = month_start(clock.now())

    async def report(who: str, scope: str = "hub", **window: datetime) -> c.Results:
        subject = hub if scope == "hub" else None
        return await bus.request(  # type: ignore[no-any-return]
            c.GetResults(scope=scope, subject_id=subject, **window),  # type: ignore[arg-type]
            net.ctx(who) if who != "eve" else as_member(eve),
        )

    async def settled() -> bool:
        r = await report("admin", since=first)
        return total(r.value_given) == Decimal("100") + 200 + 300 + Decimal(secret)

    await eventually(settled)

    # a month of three contributors: shown to a member, whole
    month1 = await report("chloe", since=first, until=second - timedelta(seconds=1))
    assert month1.withheld == []
    assert total(month1.value_given) == Decimal(600) and total(month1.value_received) == 600
    assert (month1.since, month1.until) == (first, second - timedelta(microseconds=1))

    # a narrow window (one hour of one day) is widened to its whole month
    narrow = await report(
        "chloe",
        since=first + timedelta(days=2, hours=10),
        until=first + timedelta(days=2, hours=11),
    )
    assert (narrow.since, narrow.until) == (month1.since, month1.until)
    assert narrow.value_given == month1.value_given

    # the month of one contributor: its value is withheld, to a member of the hub
    for who in ("chloe", "david", "alice"):  # david received it, alice gave it: still withheld
        lonely = await report(who, since=second, until=now_month - timedelta(seconds=1))
        assert {"value_given", "value_received"} <= set(lonely.withheld)
        assert lonely.value_given.items == [] and lonely.value_received.items == []
        assert secret not in str(lonely)

    # two months minus one: the two months' total is withheld too
    both = await report("chloe", since=first, until=now_month - timedelta(seconds=1))
    assert {"value_given", "value_received"} <= set(both.withheld)
    assert both.value_given.items == []

    # the default window (90 days to now) ends with the last completed month
    default = await report("chloe")
    assert default.until == now_month - timedelta(microseconds=1)
    assert default.value_given.items == []

    # the network's total, to a member (of the hub or not), is coarsened alike
    for who in ("chloe", "eve"):
        whole = await report(who, scope="tenant", since=first)
        assert "value_given" in whole.withheld and whole.value_given.items == []
        assert whole.until == now_month - timedelta(microseconds=1)

    # the current month alone has not ended: refused, naming the field
    for window in (
        {"since": now_month},
        {"since": clock.now() - timedelta(hours=1), "until": clock.now()},
        {"since": clock.now() + timedelta(days=40), "until": clock.now() + timedelta(days=41)},
    ):
        with pytest.raises(InvalidInput) as refused:
            await report("chloe", **window)
        assert refused.value.field == "since"

    # a hub's report is for its members and admins: eve is refused
    with pytest.raises(Forbidden):
        await report("eve", since=first)
    # another network's member: the hub is not found
    _, stranger = await create_network(bus, "pole-reports-x", "x@reports-x.example", "X")
    await eventually(lambda: _active(referrals, stranger.tenant_id, stranger.member_id))
    with pytest.raises(NotFound):
        await bus.request(
            c.GetResults(scope="hub", subject_id=hub, since=first), as_member(stranger)
        )

    # the hub's admin (and the network's) sees exact figures over any window
    exact = await report(
        "admin", since=second + timedelta(days=3), until=second + timedelta(days=3, hours=1)
    )
    assert exact.withheld == [] and total(exact.value_given) == Decimal(secret)
    assert exact.since == second + timedelta(days=3)


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        # within one completed month: the whole month
        ("2026-03-05T10:00", "2026-03-05T11:00", ("2026-03-01", "2026-04-01")),
        # across months: every month touched
        ("2026-01-31T23:00", "2026-02-01T01:00", ("2026-01-01", "2026-03-01")),
        # a month start as the end: that month is not touched
        ("2026-01-10T00:00", "2026-02-01T00:00", ("2026-01-01", "2026-02-01")),
        # up to now: ends with the last completed month
        ("2026-04-02T00:00", "2026-05-20T00:00", ("2026-04-01", "2026-05-01")),
        # the current month only, or the future: nothing
        ("2026-05-02T00:00", "2026-05-20T00:00", None),
        ("2026-07-01T00:00", "2026-07-20T00:00", None),
    ],
)
def test_windows_widen_to_completed_months(
    since: str, until: str, expected: tuple[str, str] | None
) -> None:
    def at(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    now = at("2026-05-20T12:00")
    window = coarse_window(at(since), at(until), now)
    if expected is None:
        assert window is None
    else:
        assert window is not None
        assert (window.since, window.until) == (
            at(expected[0]),
            at(expected[1]) - timedelta(microseconds=1),
        )
