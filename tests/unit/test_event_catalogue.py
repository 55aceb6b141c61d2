"""docs/events.md is generated from the contracts and must not drift."""

from __future__ import annotations

from pathlib import Path

from infra.catalogue import CONTRACTS, events_of, render

CATALOGUE = Path(__file__).parents[2] / "docs" / "events.md"


def test_the_catalogue_matches_the_contracts() -> None:
    assert CATALOGUE.read_text() == render(), (
        "docs/events.md is out of date with the contracts: run `make schema`"
    )


def test_every_public_event_is_catalogued_with_its_versioned_type() -> None:
    text = CATALOGUE.read_text()
    names = [cls for module in CONTRACTS for cls in events_of(module)]
    assert len(names) >= 20
    for cls in names:
        assert f"`{cls.type_name()}`" in text
        assert cls.type_name().endswith(f".v{cls.event_version}")
        assert cls.type_name().count(".") == 3 and " " not in cls.type_name()
