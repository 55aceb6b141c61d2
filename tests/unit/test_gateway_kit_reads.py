"""gateway.kit's pure helpers for the usual reads: an input's global id
decoded (or refused, naming the field), an id that carries its context, and
a partial update's field left out."""

from __future__ import annotations

import uuid

import msgspec
import pytest
import strawberry

from gateway.kit import given, id_with_context, optional_raw_id, raw_id
from gateway.nodes import to_global_id
from services.runtime import errors as e

HUB = str(uuid.uuid4())
SERIES = str(uuid.uuid4())


def test_an_input_id_of_the_expected_type_gives_its_uuid() -> None:
    assert raw_id(to_global_id("Hub", HUB), "Hub", "hub_id") == HUB
    assert optional_raw_id(to_global_id("Hub", HUB), "Hub", "hub_id") == HUB
    assert optional_raw_id(None, "Hub", "hub_id") is None


@pytest.mark.parametrize("value", ["garbage", "", to_global_id("Meetup", HUB)])
def test_a_malformed_or_foreign_input_id_is_refused_naming_its_field(value: str) -> None:
    for decode in (raw_id, optional_raw_id):
        with pytest.raises(e.InvalidInput) as refused:
            decode(value, "Hub", "hub_id")
        assert refused.value.field == "hub_id"


def test_an_id_with_context_gives_both_uuids() -> None:
    assert id_with_context(f"{SERIES}:{HUB}") == (SERIES, HUB)
    assert id_with_context(SERIES) is None  # issued without its context
    assert id_with_context(f"{SERIES}:not-a-uuid") is None
    assert id_with_context(f"not-a-uuid:{HUB}") is None


def test_a_partial_update_field_left_out_or_null_is_unset() -> None:
    assert given(strawberry.UNSET) is msgspec.UNSET
    assert given(None) is msgspec.UNSET
    assert given(0) == 0
    assert given("") == ""
