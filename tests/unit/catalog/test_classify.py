from __future__ import annotations

import random

import pytest

from custodiet.catalog.classes import ColumnClass
from custodiet.catalog.classify import ColumnStats, classify_column, identifier_kind_from_values
from tests.catalog_data import valid_ein, valid_routing, valid_ssn

RNG = random.Random(3)
SSNS = [valid_ssn(RNG) for _ in range(200)]
ROUTINGS = [valid_routing(RNG) for _ in range(200)]
EINS = [valid_ein(RNG) for _ in range(200)]
FREE_TEXT = [f"note number {i}" for i in range(200)]


def strings(sample: list[str]) -> ColumnStats:
    return ColumnStats(sample, distinct=len(set(sample)), non_null=len(sample))


NO_STATS = ColumnStats((), distinct=0, non_null=0)


@pytest.mark.parametrize(
    ("sample", "kind"),
    [(SSNS, "ssn"), (ROUTINGS, "routing"), (EINS, "ein"), (FREE_TEXT, None)],
    ids=["ssn", "routing", "ein", "free-text"],
)
def test_identifies_kind_from_validated_values(sample: list[str], kind: str | None) -> None:
    assert identifier_kind_from_values(sample) == kind


def test_ssns_with_dashes_validate_as_ssns() -> None:
    dashed = [f"{s[:3]}-{s[3:5]}-{s[5:]}" for s in SSNS]
    assert identifier_kind_from_values(dashed) == "ssn"


def test_mostly_invalid_values_are_not_an_identifier() -> None:
    sample = SSNS[:100] + [f"000{i:06d}" for i in range(100)]  # area 000 is never issued
    assert identifier_kind_from_values(sample) is None


@pytest.mark.parametrize(
    ("name", "sample", "kind"),
    [("ref_code", SSNS, "ssn"), ("bank_code", ROUTINGS, "routing"), ("party", EINS, "ein")],
)
def test_values_reveal_identifier_behind_an_unhelpful_name(
    name: str, sample: list[str], kind: str
) -> None:
    info = classify_column(name, "VARCHAR", strings(sample))
    assert (info.column_class, info.identifier_kind) == (ColumnClass.IDENTIFIER, kind)


def test_values_override_a_category_looking_name() -> None:
    info = classify_column("program", "VARCHAR", strings(SSNS))
    assert info.column_class is ColumnClass.IDENTIFIER


def test_identifier_name_keeps_its_kind_whatever_the_values() -> None:
    info = classify_column("account_number", "VARCHAR", strings(SSNS))
    assert info.identifier_kind == "account"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("ssn", "ssn"), ("payee_tin", "tin"), ("employer_ein", "ein"),
        ("routing_number", "routing"), ("account_number", "account"), ("first_name", "name"),
        ("surname", "name"), ("payee_name", "name"), ("name", "name"),
    ],
)  # fmt: skip
def test_classifies_identifier_names(name: str, kind: str) -> None:
    info = classify_column(name, "VARCHAR", strings(FREE_TEXT))
    assert (info.column_class, info.identifier_kind) == (ColumnClass.IDENTIFIER, kind)


@pytest.mark.parametrize(
    ("name", "sql_type", "expected"),
    [
        ("date_of_birth", "DATE", ColumnClass.QUASI_IDENTIFIER),
        ("dob", "DATE", ColumnClass.QUASI_IDENTIFIER),
        ("zip", "VARCHAR", ColumnClass.QUASI_IDENTIFIER),
        ("address", "VARCHAR", ColumnClass.QUASI_IDENTIFIER),
        ("payment_id", "VARCHAR", ColumnClass.KEY),
        ("amount", "DOUBLE", ColumnClass.AMOUNT),
        ("monthly_benefit", "DOUBLE", ColumnClass.AMOUNT),
        ("total", "DECIMAL(12,2)", ColumnClass.AMOUNT),
        ("payment_date", "DATE", ColumnClass.DATE),
        ("updated", "TIMESTAMP", ColumnClass.DATE),
        ("score", "DOUBLE", ColumnClass.SENSITIVE),
    ],
)
def test_classifies_by_name_then_type(name: str, sql_type: str, expected: ColumnClass) -> None:
    info = classify_column(name, sql_type, NO_STATS)
    assert info.column_class is expected
    assert info.identifier_kind is None


def test_low_cardinality_string_is_a_category() -> None:
    sample = ["SSA", "IRS", "VA"] * 30
    assert classify_column("agency", "VARCHAR", strings(sample)).column_class is (
        ColumnClass.CATEGORY
    )


def test_low_cardinality_integer_is_a_category() -> None:
    stats = ColumnStats((), distinct=3, non_null=90)
    assert classify_column("tax_year", "INTEGER", stats).column_class is ColumnClass.CATEGORY


def test_unknown_high_cardinality_text_is_sensitive_by_default() -> None:
    assert classify_column("remarks", "VARCHAR", strings(FREE_TEXT)).column_class is (
        ColumnClass.SENSITIVE
    )
