"""A refusal comes back in the language the request asks for
(`Accept-Language`, docs/api.md "Errors"): the runtime's and the gateway's
own refusals here; each service's test file checks some of its own."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import System, open_network

pytestmark = [pytest.mark.asyncio, pytest.mark.shared_system]

PROFILE = (
    "mutation($input: ProfileCardInput!) { updateProfileCard(input: $input) {"
    " __typename ... on Error { code message } ... on ValidationError { field } } }"
)


async def post(system: System, query: str, token: str | None, language: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if language is not None:
        headers["Accept-Language"] = language
    response = await system.client.post(
        "/graphql", json={"query": query[0], "variables": query[1]}, headers=headers
    )
    return response.json()


@pytest.mark.parametrize(
    ("language", "said"),
    [
        ("fr", "« bio » contient un caractère interdit (U+0000)"),
        ("fr-FR,fr;q=0.9,en;q=0.8", "« bio » contient un caractère interdit (U+0000)"),
        ("en", "bio contains a character that is not allowed (U+0000)"),
        ("de", "bio contains a character that is not allowed (U+0000)"),
        (None, "bio contains a character that is not allowed (U+0000)"),
    ],
)
async def test_the_text_policy_refuses_in_the_language_asked_for(
    system: System, language: str | None, said: str
) -> None:
    net = await open_network(system, "langues")
    answer = await post(
        system, (PROFILE, {"input": {"bio": "a\u0000b"}}), net.admin.access, language
    )
    result = answer["data"]["updateProfileCard"]
    # the code and the field a client decides on stay the same in every language
    assert result == {
        "__typename": "ValidationError",
        "code": "invalid_input",
        "message": said,
        "field": "bio",
    }


async def test_top_level_errors_are_said_in_french_too(system: System) -> None:
    net = await open_network(system, "langues-haut")
    page = await post(
        system, ("{ members(first: 0) { totalCount } }", None), net.admin.access, "fr"
    )
    assert page["errors"][0]["message"] == "first doit être compris entre 1 et 50"
    assert page["errors"][0]["extensions"]["code"] == "INVALID_INPUT"

    forged = await post(system, ("{ me { id } }", None), "not-a-token", "fr")
    assert forged["errors"][0]["message"] == "le jeton d'accès n'est pas valide"

    english = await post(system, ("{ me { id } }", None), "not-a-token", None)
    assert english["errors"][0]["message"] == "the access token is invalid"


async def test_the_http_api_refuses_in_the_language_asked_for(system: System) -> None:
    """/v1 answers its refusals in the request's language too."""
    net = await open_network(system, "langues-v1")
    bearer = {"Authorization": f"Bearer {net.admin.access}"}
    french = await system.client.get(
        "/v1/events", params={"types": "nope"}, headers={**bearer, "Accept-Language": "fr"}
    )
    english = await system.client.get("/v1/events", params={"types": "nope"}, headers=bearer)
    assert french.status_code == english.status_code == 400
    assert french.json()["error"]["code"] == english.json()["error"]["code"] == "invalid_input"
    assert french.json()["error"]["message"].startswith(
        "types : 'nope' n'est pas un préfixe de types d'événements"
    )
    assert english.json()["error"]["message"].startswith(
        "types: 'nope' is not a prefix of event types"
    )


async def test_the_gateways_limits_refuse_in_the_language_asked_for(system: System) -> None:
    """A variable past the text limit: said before anything runs, in French too."""
    net = await open_network(system, "langues-limites")
    query = (PROFILE, {"input": {"bio": "x" * 20_001}})
    french = await post(system, query, net.admin.access, "fr")
    english = await post(system, query, net.admin.access, None)
    assert french["errors"][0]["extensions"] == english["errors"][0]["extensions"]
    assert french["errors"][0]["message"] == (
        "la variable `input.bio` est trop longue : au plus 20000 caractères"
    )
    assert english["errors"][0]["message"] == (
        "the variable `input.bio` is too long: at most 20000 characters"
    )
