"""The gateway's limits before anything is spent (docs/security.md, "The
gateway"): the bounded pass over a document (gateway.costs), the budgets
(gateway.budgets), the size limits (gateway.limits), the client address
behind proxies, and the settings that configure them.

Work is counted, never timed: the pass reports the selections it visited,
and each refusal must have visited no more than the document holds."""

from __future__ import annotations

import asyncio
import secrets
from types import SimpleNamespace
from typing import Any

import pytest
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    Visitor,
    parse,
    visit,
)

from gateway.app import oversized_headers
from gateway.budgets import Budgets, Limits, Refused, client_address
from gateway.costs import (
    CREDENTIAL_FIELDS,
    LIST_SIZE,
    MAX_ALIASES,
    MAX_COST,
    MAX_DEPTH,
    MAX_FIELDS,
    Verdict,
    analyse,
)
from gateway.limits import (
    MAX_HEADER_VALUE,
    MAX_TEXT,
    MAX_VARIABLE_VALUES,
    MAX_VARIABLES_TEXT,
    TooLarge,
    check_variables,
)
from gateway.schema import build_schema
from infra import launcher
from services.runtime.settings import ConfigurationError, Settings
from services.runtime.views import MAX_PAGE

SCHEMA = build_schema()._schema
LOGIN = 'login(input: {tenant: "t", email: "a@b.example", password: "p"}) { __typename }'


def selections(document: DocumentNode) -> int:
    """The selections written in a document (fields, spreads, inline fragments)."""

    class Count(Visitor):
        found = 0

        def enter(self, node: Any, *_: Any) -> None:
            if isinstance(node, FieldNode | FragmentSpreadNode | InlineFragmentNode):
                Count.found += 1

    visit(document, Count())
    return Count.found


def verdict(
    query: str, variables: dict[str, Any] | None = None, name: str | None = None
) -> Verdict:
    """The pass over `query`, checked to have visited each written selection
    at most twice (once per page context): linear in the document."""
    document = parse(query)
    found = analyse(SCHEMA, document, name, variables)
    assert found.steps <= 2 * selections(document) + 1, (found.steps, selections(document))
    return found


def refused(query: str, variables: dict[str, Any] | None = None) -> str:
    found = verdict(query, variables)
    assert found.refused is not None, found
    return found.refused.limit


# -- documents that expand: refused in steps proportional to their size --------------


def doubling(n: int, spread: str = "...F{next} ...F{next}", on: str = "Query") -> str:
    """`query { ...F0 } fragment F0 on Query { ...F1 ...F1 } … F<n> { __typename }`:
    2^n fields once expanded."""
    fragments = " ".join(
        f"fragment F{i} on {on} {{ {spread.format(next=i + 1)} }}" for i in range(n)
    )
    return f"query {{ ...F0 }} {fragments} fragment F{n} on {on} {{ __typename }}"


@pytest.mark.parametrize("n", [10, 22, 30, 60, 200])
def test_the_fragment_bomb_is_refused_in_linear_work(n: int) -> None:
    assert refused(doubling(n)) == "fields"


@pytest.mark.parametrize(
    "spread",
    [
        "...F{next} ...F{next} ...F{next}",  # three times
        "a: __typename ...F{next} ...F{next}",  # aliases
        "... on Query {{ ...F{next} }} ... {{ ...F{next} }}",  # inline fragments
        "me {{ id }} ...F{next} ...F{next}",
    ],
)
def test_every_shape_of_spread_repetition_is_refused(spread: str) -> None:
    assert refused(doubling(40, spread)) in {"fields", "aliases"}


def test_repetition_through_unions_and_interfaces_is_refused() -> None:
    # node(id:) returns the Node interface; fragments on its implementations
    fragments = " ".join(
        f"fragment M{i} on Member {{ ... on Node {{ ...M{i + 1} }} ...M{i + 1} }}"
        for i in range(30)
    )
    query = f'{{ node(id: "x") {{ ...M0 }} }} {fragments} fragment M30 on Member {{ id }}'
    assert refused(query) == "fields"


def test_wide_repetition_without_fragments_is_refused() -> None:
    assert refused("{ " + "__typename " * (MAX_FIELDS + 1) + "}") == "fields"
    assert refused("{ me { " + "displayName " * (MAX_FIELDS + 1) + "} }") == "fields"
    assert verdict("{ " + "__typename " * MAX_FIELDS + "}").refused is None


def test_an_unused_fragment_bomb_is_refused_too() -> None:
    query = doubling(40).replace("query { ...F0 }", "query { __typename }")
    assert refused(query) == "fields"


@pytest.mark.parametrize(
    "query",
    [
        "query { ...A } fragment A on Query { ...A }",
        "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
        "query { __typename } fragment A on Query { ... { ...B } } fragment B on Query { ...A }",
        "query { me { ...C } } fragment C on Member { work { __typename } ...C }",
    ],
)
def test_fragment_cycles_are_refused_not_followed(query: str) -> None:
    assert refused(query) == "cycle"


def test_unknown_fragments_are_left_to_the_specification() -> None:
    assert verdict("{ hubs { ...Nope members { totalCount } } }").refused is None


# -- depth -----------------------------------------------------------------------


def nested(levels: int) -> str:
    inner = "x"
    for _ in range(levels):
        inner = f"x {{ {inner} }}"
    return "{ " + inner + " }"


def test_depth_counts_from_the_root_field_at_zero() -> None:
    assert verdict(nested(MAX_DEPTH)).refused is None
    assert refused(nested(MAX_DEPTH + 1)) == "depth"
    assert refused(nested(150)) == "depth"  # the parser refuses deeper nesting itself


def test_depth_through_fragments_is_counted_once_per_fragment() -> None:
    # each fragment adds one level: depth n with n fragments
    n = MAX_DEPTH + 3
    fragments = " ".join(f"fragment D{i} on Query {{ x {{ ...D{i + 1} }} }}" for i in range(n))
    query = f"{{ ...D0 }} {fragments} fragment D{n} on Query {{ x }}"
    assert refused(query) == "depth"


# -- aliases ------------------------------------------------------------------------


def aliased(n: int) -> str:
    return "{ " + " ".join(f"a{i}: __typename" for i in range(n)) + " }"


def test_aliases_are_counted_with_fragments_expanded() -> None:
    assert verdict(aliased(MAX_ALIASES)).refused is None
    assert refused(aliased(MAX_ALIASES + 1)) == "aliases"
    # 6 aliases, spread 4 times: 24
    query = "{ ...A ...B } fragment A on Query { ...C ...C } fragment B on Query { ...C ...C } "
    query += "fragment C on Query { " + " ".join(f"c{i}: __typename" for i in range(6)) + " }"
    assert refused(query) == "aliases"


# -- cost: fields times page sizes -----------------------------------------------------


def test_cost_multiplies_by_page_sizes() -> None:
    found = verdict("{ members(first: 50) { edges { node { id displayName } } } }")
    # members 1 + 50 * (edges 1 + node 1 + 2 scalars)
    assert found.figures.cost == 1 + 50 * 4
    default = verdict("{ members { edges { node { id displayName } } } }")
    assert default.figures.cost == 1 + 20 * 4  # the schema's default page
    variable = verdict("query($n: Int!) { members(first: $n) { edges { node { id } } } }", {"n": 7})
    assert variable.figures.cost == 1 + 7 * 3
    unknown = verdict("query($n: Int!) { members(first: $n) { edges { node { id } } } }")
    assert unknown.figures.cost == 1 + MAX_PAGE * 3  # not given: the largest page
    oversized = verdict("{ members(first: 100000) { edges { node { id } } } }")
    assert oversized.figures.cost == 1 + MAX_PAGE * 3  # the field refuses it anyway


def test_unpaginated_lists_count_for_list_size() -> None:
    found = verdict("{ hubs { id coAdmins { id } } }")
    assert found.figures.cost == 1 + LIST_SIZE * (1 + 1 + LIST_SIZE * 1)


def test_nested_pages_past_the_cost_limit_are_refused() -> None:
    query = (
        "{ hubs { meetups(first: 50) { edges { node { id"
        " rsvps { member { id displayName } } } } } } }"
    )
    assert refused(query) == "cost"
    # the same through fragments
    query = (
        "{ hubs { ...H } } fragment H on Hub { meetups(first: 50) { ...C } }"
        " fragment C on MeetupConnection { edges { node { id rsvps { member { ...M } } } } }"
        " fragment M on Member { id displayName }"
    )
    assert refused(query) == "cost"
    assert verdict("{ hubs { meetups(first: 5) { edges { node { id } } } } }").refused is None
    assert MAX_COST >= 1 + LIST_SIZE * (1 + 50 * 4)


def test_the_operation_named_is_the_one_charged() -> None:
    query = "query Small { me { id } } query Big { members(first: 50) { edges { node { id } } } }"
    assert verdict(query, name="Small").figures.cost == 2
    assert verdict(query, name="Big").figures.cost == 1 + 50 * 3
    assert verdict(query).figures.cost == 1 + 50 * 3  # not named: the costliest


# -- at most one credential operation a request --------------------------------------


@pytest.mark.parametrize(
    "mutation",
    [
        f"mutation {{ a: {LOGIN} b: {LOGIN} }}",
        "mutation { " + " ".join(f"a{i}: {LOGIN}" for i in range(20)) + " }",
        f"mutation {{ ...L ...L }} fragment L on Mutation {{ {LOGIN} }}",
        f"mutation {{ ... on Mutation {{ a: {LOGIN} }} ... {{ b: {LOGIN} }} }}",
        f'mutation {{ {LOGIN} refreshSession(input: {{refreshToken: "r"}}) {{ __typename }} }}',
        'mutation { changePassword(input: {currentPassword: "a", newPassword: "b"})'
        ' { __typename } b: changePassword(input: {currentPassword: "c", newPassword: "d"})'
        " { __typename } }",
        'mutation { a: acceptInvitation(input: {token: "t", password: "p", card: {}})'
        ' { __typename } b: logout(input: {refreshToken: "r"}) { __typename } }',
    ],
)
def test_more_than_one_credential_operation_is_refused(mutation: str) -> None:
    assert refused(mutation) == "credentials"


def test_one_credential_operation_is_allowed() -> None:
    assert verdict(f"mutation {{ {LOGIN} }}").refused is None
    assert verdict(f"mutation {{ ...L }} fragment L on Mutation {{ {LOGIN} }}").refused is None
    # a query field of the same name is no credential operation
    assert verdict("{ login: __typename again: __typename }").refused is None


# -- budgets ---------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def budgets(**limits: Any) -> tuple[Budgets, Clock]:
    clock = Clock()
    return Budgets(Limits(**limits), clock), clock


def test_a_members_flood_stops_at_their_own_bucket_and_the_admin_is_served() -> None:
    # a request bucket holds a minute's worth: 20 of a member, 100 of the network
    found, _ = budgets(tenant_requests=100, member_requests=20)
    for _ in range(20):
        found.request("member:t:flood", "t")
    for _ in range(500):
        with pytest.raises(Refused):
            found.request("member:t:flood", "t")
    # the network's bucket lost only the 20 served: 80 left for the others
    for member in ("admin", "a", "b", "c"):
        for _ in range(20):
            found.request(f"member:t:{member}", "t")
    with pytest.raises(Refused):
        found.request("member:t:d", "t")


def test_the_networks_bucket_bounds_its_members_together() -> None:
    found, _ = budgets(tenant_requests=6, member_requests=4)
    for member in ("a", "b", "c"):
        for _ in range(2):
            found.request(f"member:t:{member}", "t")
    with pytest.raises(Refused):
        found.request("member:t:d", "t")
    found.request("member:other:d", "other")  # another network: its own bucket


def test_retry_after_says_when_the_bucket_has_enough() -> None:
    # a member's cost bucket holds twenty seconds' worth: 10 a second, 200 at most
    found, clock = budgets(member_cost=600, tenant_cost=6000)
    found.cost("member:t:a", "t", 200)
    with pytest.raises(Refused) as refusal:
        found.cost("member:t:a", "t", 50)
    assert refusal.value.retry_after == 5
    clock.now += 5
    found.cost("member:t:a", "t", 50)
    # costlier than a whole bucket: asked as the whole bucket, never forever
    clock.now += 20
    found.cost("member:t:a", "t", 10**9)


def test_a_caller_refused_for_cost_is_refused_at_the_door_until_retry_after() -> None:
    found, clock = budgets(member_cost=600, tenant_cost=60_000)
    found.cost("member:t:a", "t", 200)  # the whole bucket (twenty seconds' worth)
    with pytest.raises(Refused):
        found.cost("member:t:a", "t", 100)
    for _ in range(3):  # cheap requests too: it did not wait
        with pytest.raises(Refused) as refusal:
            found.request("member:t:a", "t")
        assert refusal.value.retry_after == 10
    found.request("member:t:b", "t")  # the others are served
    clock.now += 10
    found.request("member:t:a", "t")


def test_anonymous_callers_are_bucketed_by_address() -> None:
    found, _ = budgets(member_requests=2)
    for _ in range(2):
        found.request("address:10.0.0.1", None)
    with pytest.raises(Refused):
        found.request("address:10.0.0.1", None)
    found.request("address:10.0.0.2", None)


def test_a_networks_turns_are_limited_and_others_are_not_queued_behind() -> None:
    async def scenario() -> list[str]:
        found, _ = budgets(tenant_concurrency=2, queue_timeout=5.0)
        order: list[str] = []
        release = asyncio.Event()

        async def run(tenant: str, name: str) -> None:
            async with found.turn(tenant):
                order.append(name)
                if tenant == "busy":
                    await release.wait()

        busy = [asyncio.create_task(run("busy", f"busy{i}")) for i in range(5)]
        await asyncio.sleep(0)
        await run("quiet", "quiet")  # served while 3 of busy's wait their turn
        release.set()
        await asyncio.gather(*busy)
        return order

    order = asyncio.run(scenario())
    assert order[:3] == ["busy0", "busy1", "quiet"]
    assert sorted(order[3:]) == ["busy2", "busy3", "busy4"]


def test_a_turn_not_given_in_time_is_refused() -> None:
    async def scenario() -> None:
        found, _ = budgets(tenant_concurrency=1, queue_timeout=0.01)
        async with found.turn("t"):
            with pytest.raises(Refused):
                async with found.turn("t"):
                    pass

    asyncio.run(scenario())


# -- the client's address -----------------------------------------------------------


PROXIES = frozenset({"10.0.0.0/8", "::1/128"})


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("203.0.113.9", "198.51.100.1", frozenset(), "203.0.113.9"),  # none trusted
        ("203.0.113.9", "198.51.100.1", PROXIES, "203.0.113.9"),  # peer not a proxy
        ("10.1.2.3", "198.51.100.1", PROXIES, "198.51.100.1"),
        ("10.1.2.3", "6.6.6.6, 198.51.100.1", PROXIES, "198.51.100.1"),  # spoofed left part
        ("10.1.2.3", "198.51.100.1, 10.9.9.9", PROXIES, "198.51.100.1"),  # two proxies
        ("::1", "2001:db8::5", PROXIES, "2001:db8::/64"),  # an IPv6 client by its /64
        ("2001:db8:0:1:aaaa::1", None, frozenset(), "2001:db8:0:1::/64"),
        ("::ffff:203.0.113.9", None, frozenset(), "::ffff:203.0.113.9"),  # IPv4, mapped
        ("10.1.2.3", "not-an-address", PROXIES, "10.1.2.3"),
        ("10.1.2.3", None, PROXIES, "10.1.2.3"),
        ("10.1.2.3", "10.4.4.4", PROXIES, "10.4.4.4"),  # all proxies: the first
    ],
)
def test_x_forwarded_for_counts_only_from_trusted_proxies(
    peer: str, forwarded: str | None, trusted: frozenset[str], expected: str
) -> None:
    assert client_address(peer, forwarded, trusted) == expected


def test_addresses_rotated_within_one_ipv6_subnet_share_their_budget() -> None:
    rotated = {client_address(f"2001:db8:0:1::{i:x}", None, frozenset()) for i in range(1, 200)}
    assert rotated == {"2001:db8:0:1::/64"}
    assert client_address("2001:db8:0:2::1", None, frozenset()) not in rotated


def test_trusted_proxies_and_budgets_are_settings() -> None:
    settings = Settings.from_env(
        {
            "QUARTIER_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7,::1",
            "QUARTIER_MEMBER_RATE_LIMIT": "30",
            "QUARTIER_COST_LIMIT": "1000",
            "QUARTIER_JWT_SECRET": secrets.token_urlsafe(32),
            "QUARTIER_OPERATOR_TOKEN": secrets.token_urlsafe(32),
        }
    )
    assert settings.trusted_proxies == {"10.0.0.0/8", "192.168.1.7/32", "::1/128"}
    assert (settings.member_rate_limit_per_minute, settings.cost_limit_per_minute) == (30, 1000)
    assert settings.jwt_secret not in repr(settings)
    assert settings.operator_token not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TRUSTED_PROXIES", "everyone"),
        ("TRUSTED_PROXIES", "10.0.0.0/99"),
        ("MEMBER_RATE_LIMIT", "0"),
        ("COST_LIMIT", "-5"),
        ("TENANT_CONCURRENCY", "many"),
    ],
)
def test_bad_limit_settings_are_refused(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=f"QUARTIER_{name}"):
        Settings.from_env(
            {
                f"QUARTIER_{name}": value,
                "QUARTIER_JWT_SECRET": secrets.token_urlsafe(32),
                "QUARTIER_OPERATOR_TOKEN": secrets.token_urlsafe(32),
            }
        )


# -- sizes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "path"),
    [
        ({"input": {"bio": "x" * (MAX_TEXT + 1)}}, "input.bio"),
        ({"input": {"bio": "x" * 2_000_000}}, "input.bio"),
        ({"input": {"card": {"links": ["a", "b" * (MAX_TEXT + 1)]}}}, "input.card.links.1"),
        ({"password": "p" * (MAX_TEXT + 1)}, "password"),
    ],
)
def test_a_string_past_the_text_limit_is_named(variables: dict[str, Any], path: str) -> None:
    with pytest.raises(TooLarge) as too_large:
        check_variables(variables)
    assert too_large.value.path == path
    assert path in too_large.value.message
    assert "x" * 20 not in too_large.value.message  # the value is not quoted


def test_the_variables_as_a_whole_are_bounded() -> None:
    many_strings = {f"v{i}": "x" * MAX_TEXT for i in range(MAX_VARIABLES_TEXT // MAX_TEXT + 1)}
    with pytest.raises(TooLarge, match="characters of text"):
        check_variables(many_strings)
    with pytest.raises(TooLarge, match="values"):
        check_variables({"ids": list(range(MAX_VARIABLE_VALUES + 1))})
    deep: Any = "x"
    for _ in range(5000):
        deep = [deep]
    check_variables({"deep": deep})  # iterative: no recursion error
    check_variables({"input": {"bio": "x" * MAX_TEXT, "n": 1, "ok": True, "none": None}})


def test_oversized_headers_are_named() -> None:
    assert oversized_headers([(b"authorization", b"Bearer " + b"x" * MAX_HEADER_VALUE)]) == (
        f"the authorization header is larger than {MAX_HEADER_VALUE} bytes"
    )
    many = [(f"x-h{i}".encode(), b"v" * 1000) for i in range(20)]
    assert "headers are larger" in (oversized_headers(many) or "")
    assert oversized_headers([(b"authorization", b"Bearer abc.def.ghi")]) is None


# -- the production banner ---------------------------------------------------------------


def test_the_production_banner_never_prints_the_operator_token(
    capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    token = secrets.token_urlsafe(32)
    for env, shown in (("prod", False), ("dev", True)):
        settings = Settings(
            env=env,
            operator_token=token,
            data_dir=tmp_path,
            mail_dir=tmp_path,
            nats_url="nats://x",
        )
        fake = SimpleNamespace(
            settings=settings,
            gateway_ports=lambda: [8000],
            nats_url="nats://x",
            demo=False,
        )
        launcher._banner(fake)  # type: ignore[arg-type]
        out = capsys.readouterr().out
        assert (token in out) is shown


def test_every_credential_field_is_a_mutation_of_the_schema() -> None:
    """A misspelt name would let that operation be repeated by aliases."""
    mutation = build_schema()._schema.mutation_type
    assert mutation is not None
    assert set(mutation.fields) >= CREDENTIAL_FIELDS
