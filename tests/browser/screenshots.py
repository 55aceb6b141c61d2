"""Screenshots of the console's main pages for the docs (docs/console/*.png,
shown in the README): `python -m tests.browser.screenshots [OUT_DIR]`.

Starts its own `quartier up --demo` on a fresh data dir and a free port,
signs in as the demo's admin in Debian's chromium, and takes each page on a
laptop-sized screen, and on a phone-sized one the referral ledger (a card
per slip) and the attendance at the table (the services' clock moved to
the next lunch, as a facilitator would find it). Stops the system when
done."""

from __future__ import annotations

import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tests.browser.system import CHROMIUM_ARGS, LAPTOP, PHONE, DemoSystem, chromium_path, sign_in

OUT = Path("docs/console")
# each page, and what shows that its data is there (a page asks in turns:
# the hubs first, then the chosen hub's)
PAGES = {
    "members": "article.member",
    "admissions": "article.nomination",
    "hubs": "ol.history li",
    "roster": "ol.roster li",
    "meetups": "ul.meetups li",
    "results": "table.lights-table tbody tr",
    "data": "#era-h",
}


def _settle(page: Any, shown: str = "main h1") -> None:
    from playwright.sync_api import expect

    page.locator("main h1").wait_for()
    page.locator(shown).first.wait_for()
    expect(page.locator("[aria-busy=true]")).to_have_count(0)


def take(out: Path = OUT) -> list[Path]:
    from playwright.sync_api import sync_playwright

    chromium = chromium_path()
    if chromium is None:
        raise SystemExit("no chromium: apt-get install chromium")
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="quartier-shots-") as root:
        demo = DemoSystem.start(Path(root))
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                laptop = browser.new_context(
                    locale="fr-FR", timezone_id="Europe/Paris", viewport=LAPTOP
                ).new_page()
                laptop.goto(demo.console_url)
                laptop.locator("#tenant").fill("pole-11e")
                laptop.locator("#tenant").press("Tab")  # the network's name and language
                laptop.locator(".network-name").wait_for()
                written.append(out / "sign-in.png")
                laptop.screenshot(path=written[-1])
                sign_in(laptop, demo.base_url)
                for name, shown in PAGES.items():
                    laptop.locator(f"nav a[href='#/{name}']").click()
                    _settle(laptop, shown)
                    written.append(out / f"{name}.png")
                    laptop.screenshot(path=written[-1], full_page=True)

                lunch = _next_lunch(demo)
                demo.move_clock_to(datetime.fromisoformat(lunch) + timedelta(minutes=10))
                phone = browser.new_context(
                    locale="fr-FR",
                    timezone_id="Europe/Paris",
                    viewport=PHONE,
                    is_mobile=True,
                    has_touch=True,
                ).new_page()
                phone.clock.set_system_time(
                    demo.clock()
                )  # the console judges by the browser's clock
                sign_in(phone, demo.base_url)
                # the referral ledger on a phone: one card per slip
                phone.locator("nav a[href='#/results']").click()
                _settle(phone, "table.ledger tbody tr")
                phone.locator("#ledger-h").scroll_into_view_if_needed()
                written.append(out / "ledger-phone.png")
                phone.screenshot(path=written[-1])
                phone.locator("nav a[href='#/meetups']").click()
                phone.get_by_role("link", name="Déjeuner du jeudi").click()
                phone.get_by_role("button", name="Enregistrer les présences").wait_for()
                phone.locator("#att-h").scroll_into_view_if_needed()
                written.append(out / "attendance-phone.png")
                phone.screenshot(path=written[-1])
                browser.close()
        finally:
            demo.stop()
    return written


def _next_lunch(demo: DemoSystem) -> str:
    hubs = demo.graphql(
        "{ hubs { name meetups(first: 5) { edges { node { title startsAt } } } } }", demo.token()
    )["hubs"]
    starts: list[str] = [
        e["node"]["startsAt"]
        for h in hubs
        for e in h["meetups"]["edges"]
        if e["node"]["title"] == "Déjeuner du jeudi"
    ]
    return starts[0]


if __name__ == "__main__":
    for path in take(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT):
        print(path)
