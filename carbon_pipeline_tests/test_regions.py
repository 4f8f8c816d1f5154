"""Region names: validation, comma-separated lists from settings, and the grid operator of each region."""

from __future__ import annotations

import pytest

from carbon_pipeline.regions import GRID_OPERATORS, grid_operator_for, parse_regions, validate_region


@pytest.mark.parametrize("name", ["CAISO_NORTH", "DE", "NEM_NSW", "KOR"])
def test_valid_regions_pass(name: str) -> None:
    assert validate_region(name) == name


@pytest.mark.parametrize("name", ["", "caiso_north", "PJM-DC", "CAISO_NORTH\n", " DE", "DE;DROP"])
def test_invalid_regions_are_rejected_with_the_value(name: str) -> None:
    with pytest.raises(ValueError, match="Invalid WattTime region") as raised:
        validate_region(name)
    assert repr(name) in str(raised.value)


def test_parse_regions_strips_entries() -> None:
    assert parse_regions(" CAISO_NORTH , PJM_DC,DE ") == ("CAISO_NORTH", "PJM_DC", "DE")


@pytest.mark.parametrize(
    ("csv", "problem"),
    [
        ("", "empty entry"),
        ("CAISO_NORTH,,PJM_DC", "empty entry"),
        ("CAISO_NORTH,", "empty entry"),
        ("CAISO_NORTH,PJM_DC,CAISO_NORTH", "repeats CAISO_NORTH"),
        ("CAISO_NORTH,pjm_dc", "'pjm_dc'"),
    ],
)
def test_parse_regions_rejects_bad_lists(csv: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_regions(csv)


@pytest.mark.parametrize(
    ("region", "operator"),
    [
        ("CAISO_NORTH", "CAISO"),
        ("PJM_DC", "PJM"),
        ("ERCOT_EASTTX", "ERCOT"),
        ("PSCO", "PSCO"),
        ("FR", "RTE"),
        ("UK", "UK"),
    ],
)
def test_grid_operator_lookup(region: str, operator: str) -> None:
    assert grid_operator_for(region) == operator


def test_grid_operator_is_unknown_rather_than_guessed() -> None:
    assert grid_operator_for("CAISO_SOUTH") == "unknown"  # a split would have said CAISO
    assert grid_operator_for("PACX") == "unknown"


def test_every_grid_operator_key_is_a_valid_region() -> None:
    assert all(validate_region(region) == region for region in GRID_OPERATORS)
    assert all(GRID_OPERATORS.values())
