"""The admin console's files and how the gateway serves them, without a
browser (tests/browser drives them in chromium): every module a module
imports is served; every text key the pages use exists in both languages;
every GraphQL field the console asks for exists in the public schema; the
headers (types, caching, CSP) and 404s."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

import pytest
from graphql import build_schema, parse, validate
from litestar import Litestar
from litestar.testing import TestClient

from gateway.console import ASSETS, CSP, STATIC
from gateway.console import routes as console_routes

SCHEMA = Path(__file__).parents[2] / "gateway" / "schema.graphql"
MODULES = sorted(p for p in ASSETS if p.endswith(".js") and not p.startswith("vendor/"))


def test_every_module_the_console_imports_is_served() -> None:
    assert "index.html" in ASSETS and "app.js" in ASSETS
    index = ASSETS["index.html"].body.decode()
    for ref in re.findall(r'(?:src|href)="/console/([^"]+)"', index):
        assert ref in ASSETS, ref
    for name in MODULES:
        text = ASSETS[name].body.decode()
        for ref in re.findall(r'from "(\.[^"]+)"', text):
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), ref))
            assert target in ASSETS, (name, ref)


def _keys() -> set[str]:
    text = (STATIC / "i18n.js").read_text()
    body = text[text.index("const M = {") : text.index("\n};")]
    keys = set(re.findall(r"^\s+([A-Za-z_]+): \[", body, re.M))
    # every entry has its two languages
    entries = re.findall(
        r"^\s+[A-Za-z_]+: \[\s*(\"[^\"]*\"),\s*(\"[^\"]*\"),?\s*\]", body, re.M | re.S
    )
    assert len(entries) == len(keys)
    return keys


def test_every_text_the_pages_use_exists_in_french_and_english() -> None:
    keys = _keys()
    missing = set()
    for name in MODULES:
        for key in re.findall(r'\btc?\("([A-Za-z_]+)"\)', ASSETS[name].body.decode()):
            if key not in keys:
                missing.add((name, key))
    assert not missing


def test_every_operation_the_console_sends_fits_the_public_schema() -> None:
    schema = build_schema(SCHEMA.read_text())
    checked = 0
    for name in MODULES:
        text = ASSETS[name].body.decode()
        for match in re.finditer(r"`((?:query|mutation) [A-Za-z]+[^`]*)`", text):
            document = match.group(1)
            if "${" in document:
                # templates: fill the ones the console uses with a typical value
                document = (
                    document.replace("${RULE_FIELDS}", "admissionMode")
                    .replace("${ERROR_FIELDS}", "... on Error { message code }")
                    .replace("${AUTH_FIELDS}", "accessToken")
                )
                if "${" in document:
                    continue
            errors = validate(schema, parse(document))
            assert not errors, (name, document[:80], errors)
            checked += 1
    assert checked >= 15


@pytest.fixture
def client() -> TestClient[Litestar]:
    return TestClient(Litestar(route_handlers=console_routes))


def test_the_page_and_its_files_are_served_with_types_caching_and_policy(
    client: TestClient[Litestar],
) -> None:
    with client:
        page = client.get("/console/")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["content-security-policy"] == CSP
        assert page.headers["cache-control"] == "no-cache"
        assert client.get("/console").content == page.content
        etag = page.headers["etag"]
        assert client.get("/console/", headers={"If-None-Match": etag}).status_code == 304
        js = client.get("/console/app.js")
        assert js.headers["content-type"] == "text/javascript; charset=utf-8"
        vendor = [n for n in ASSETS if n.startswith("vendor/") and n.endswith(".js")]
        assert (
            vendor and "immutable" in client.get(f"/console/{vendor[0]}").headers["cache-control"]
        )
        assert client.get("/console/favicon.svg").headers["content-type"] == "image/svg+xml"


@pytest.mark.parametrize(
    "path", ["nope.js", "..%2F__init__.py", "__init__.py", "static/app.js", "pages/"]
)
def test_anything_else_is_not_found(client: TestClient[Litestar], path: str) -> None:
    with client:
        answer = client.get(f"/console/{path}")
    assert answer.status_code == 404
    assert answer.headers["content-security-policy"] == CSP
