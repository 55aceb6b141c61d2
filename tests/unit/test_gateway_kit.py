"""gateway.kit: a service's typed errors as members of a mutation's result union."""

from __future__ import annotations

import pytest

from gateway.errors import RuleViolation, ValidationError
from gateway.kit import as_error_type, input_field
from services.runtime import errors as e


def test_a_field_is_named_as_the_api_spells_it() -> None:
    for service, api in (
        ("hub_id", "hubId"),
        ("rsvp_deadline_hours", "rsvpDeadlineHours"),
        ("next_venue.name", "nextVenue.name"),  # was nextVenue.Name (str.title)
        ("cards[0].title", "cards[0].title"),
        ("venue.address", "venue.address"),
        ("entries.member_id", "entries.memberId"),
    ):
        found = as_error_type(e.InvalidInput("bad", field=service))
        assert isinstance(found, ValidationError)
        assert found.field == api


def test_a_rule_violation_names_its_rule() -> None:
    found = as_error_type(e.RuleViolation("no", rule="next_date_required"))
    assert isinstance(found, RuleViolation)
    assert (found.rule, found.code) == ("next_date_required", "rule_violation")


@pytest.mark.parametrize(
    ("field", "fields", "expected"),
    [
        ("changes.bio", {"changes.": ""}, "bio"),
        ("changes.work.postcode", {"changes.": ""}, "work.postcode"),
        ("bio", {"changes.": ""}, "bio"),  # the service's own check, named already
        ("settings.core_days", {"settings.": ""}, "core_days"),
        ("max_visits", {"max_visits": "rules.max_visits"}, "rules.max_visits"),
        ("password", {"password": "new_password"}, "new_password"),
        ("changesbio", {"changes.": ""}, "changesbio"),  # a prefix ends with its dot
    ],
)
def test_a_service_s_field_as_the_input_names_it(
    field: str, fields: dict[str, str], expected: str
) -> None:
    assert input_field(field, fields) == expected
