"""A `ValidationError.field` names the field as the client sent it in the
mutation's input, also when the service's command wraps the input's fields
in one of its own (`UpdateProfileCard.changes`, `SetEngagementSettings.settings`,
`ChangeRules.changes` for the input's `rules`): `bio`, not `changes.bio`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import System, mutate, open_network

pytestmark = [pytest.mark.asyncio, pytest.mark.shared_system]

ERR = "... on Error { __typename code } ... on ValidationError { field }"


async def refused_field(system: System, query: str, variables: dict[str, Any], token: str) -> Any:
    answer = await system.gql(query, variables, token)
    assert "errors" not in answer, answer
    [result] = answer["data"].values()
    assert result["__typename"] == "ValidationError", result
    return result["field"]


PROFILE = f"mutation($input: ProfileCardInput!) {{ updateProfileCard(input: $input) {{ {ERR} }} }}"
SETTINGS = (
    "mutation($input: EngagementSettingsInput!) {"
    f" setEngagementSettings(input: $input) {{ {ERR} }} }}"
)
RULES = f"mutation($input: ChangeHubRulesInput!) {{ changeHubRules(input: $input) {{ {ERR} }} }}"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"bio": "a\u0000b"}, "bio"),  # a forbidden character
        ({"offers": "o\u0007"}, "offers"),
        ({"links": ["https://example.org/\u0000"]}, "links"),
    ],
    ids=["nul-bio", "bell-offers", "nul-link"],
)
async def test_a_profile_card_s_field_is_named_as_sent(
    system: System, changes: dict[str, Any], field: str
) -> None:
    net = await open_network(system, "field-names")
    assert await refused_field(system, PROFILE, {"input": changes}, net.admin.access) == field


async def test_a_long_text_written_in_the_document_is_named_as_sent(system: System) -> None:
    """(In variables the gateway refuses it first, naming `input.bio`.)"""
    net = await open_network(system, "field-names-long")
    inline = (
        'mutation { updateProfileCard(input: {bio: "' + "x" * 25_000 + '"}) {' + f" {ERR} }} }}"
    )
    assert await refused_field(system, inline, {}, net.admin.access) == "bio"


async def test_nested_inputs_of_other_mutations(system: System) -> None:
    net = await open_network(system, "field-names-nested")
    admin = net.admin.access
    settings_field = await refused_field(system, SETTINGS, {"input": {"coreDays": -1}}, admin)
    assert not settings_field.startswith("settings"), settings_field
    assert settings_field == "coreDays", settings_field
    hub = await mutate(
        system,
        "createHub",
        {
            "name": "Cercle Voltaire",
            "kind": "NEIGHBOURHOOD",
            "area": {"centre": {"lat": 48.8575, "lon": 2.3795}, "radiusKm": 1.5},
        },
        admin,
    )
    rules = {"hubId": hub["hub"]["id"], "rules": {"maxVisits": -1}}
    rules_field = await refused_field(system, RULES, {"input": rules}, admin)
    assert rules_field == "rules.maxVisits", rules_field
