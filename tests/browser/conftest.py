"""Fixtures of the browser tests: one `quartier up --demo` system for the
module, Debian's chromium driven by Playwright, a fresh browser context (a
laptop, or a phone) per test. Without chromium on the machine the tests skip
and say so; `.ci/run` installs it, so in CI they run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.system import CHROMIUM_ARGS, LAPTOP, PHONE, DemoSystem, chromium_path

CHROMIUM = chromium_path()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CHROMIUM is not None:
        return
    skip = pytest.mark.skip(
        reason="no chromium on this machine (apt-get install chromium; .ci/run installs it)"
    )
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSystem]:
    """The module's demo system (the tests run in file order and share it).
    While working on the console, `QUARTIER_TEST_CONSOLE_SYSTEM=<data dir>:<port>`
    points the tests at a `quartier up --demo` already running (fresh: the
    tests change its demo network)."""
    existing = os.environ.get("QUARTIER_TEST_CONSOLE_SYSTEM")
    if existing:
        yield DemoSystem.attach(existing)
        return
    system = DemoSystem.start(tmp_path_factory.mktemp("console"))
    yield system
    system.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM is not None
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _context(browser: Any, **options: Any) -> Iterator[Any]:
    context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris", **options)
    context.set_default_timeout(20_000)
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert not errors, f"errors in the page: {errors}"


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page in a fresh context on a laptop-sized screen, in French."""
    yield from _context(browser, viewport=LAPTOP)


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    """A page in a fresh context on a phone-sized screen (touch), in French."""
    yield from _context(browser, viewport=PHONE, is_mobile=True, has_touch=True)
