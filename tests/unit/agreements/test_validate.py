from __future__ import annotations

from pathlib import Path

import pytest

from custodiet.agreements.load import load_with_marks
from custodiet.agreements.validate import validate_agreement
from custodiet.errors import InputError
from tests.catalog_data import AGREEMENT_YAML, canonical_catalog, write_agreement

CATALOG = canonical_catalog()


def line_of(needle: str) -> int:
    """The line of the example agreement that holds ``needle`` (1-based)."""
    lines = AGREEMENT_YAML.splitlines()
    return next(n for n, text in enumerate(lines, 1) if needle in text)


def validation_error(tmp_path: Path, **replace: str) -> InputError:
    agreement, marks = load_with_marks(write_agreement(tmp_path / "a.yaml", **replace))
    with pytest.raises(InputError) as caught:
        validate_agreement(agreement, CATALOG, marks)
    return caught.value


def test_accepts_the_contract_example(tmp_path: Path) -> None:
    agreement, marks = load_with_marks(write_agreement(tmp_path / "a.yaml"))
    validate_agreement(agreement, CATALOG, marks)  # raises on any problem


def test_unknown_dataset_names_its_line(tmp_path: Path) -> None:
    error = validation_error(tmp_path, **{"  deaths:": "  obituaries:"})
    line = line_of("  deaths:")
    assert f":{line}: datasets.obituaries: unknown dataset 'obituaries'" in error.message
    assert error.code == "CUST244"


def test_unknown_column_names_its_line(tmp_path: Path) -> None:
    error = validation_error(tmp_path, **{"amount: allow": "amt: allow"})
    line = line_of("amount: allow")
    assert f":{line}: datasets.payments.columns.amt: unknown column 'amt'" in error.message
    assert error.code == "CUST245"


@pytest.mark.parametrize(
    "replace",
    [
        {"payee_name: deny": "payee_name: allow"},
        {"payee_tin: pseudonymize": "payee_tin: generalize:year"},
        {"ssn: pseudonymize": "ssn: allow"},
    ],
    ids=["name-allowed", "tin-generalized", "ssn-allowed"],
)
def test_identifiers_only_pseudonymize_mask_or_deny(
    tmp_path: Path, replace: dict[str, str]
) -> None:
    error = validation_error(tmp_path, **replace)
    assert "weaker than an identifier column allows" in error.message
    assert error.code == "CUST246"


def test_quasi_identifier_needs_generalize_or_deny(tmp_path: Path) -> None:
    error = validation_error(tmp_path, **{"date_of_birth: generalize:year": "date_of_birth: allow"})
    assert "datasets.deaths.columns.date_of_birth: allow is weaker than a quasi-identifier" in (
        error.message
    )


def test_quasi_identifier_allowed_when_the_agreement_says_so(tmp_path: Path) -> None:
    path = write_agreement(
        tmp_path / "a.yaml",
        **{
            "date_of_birth: generalize:year": "date_of_birth: allow",
            "  deaths:\n": "  deaths:\n    allow_quasi_identifiers: true\n",
        },
    )
    agreement, marks = load_with_marks(path)
    validate_agreement(agreement, CATALOG, marks)
    assert agreement.datasets["deaths"].allow_quasi_identifiers


def test_pseudonymize_is_for_identifiers_only(tmp_path: Path) -> None:
    error = validation_error(tmp_path, **{"amount: allow": "amount: pseudonymize"})
    assert "pseudonymize applies to identifier and record-key columns only" in error.message


def test_record_keys_may_be_pseudonymized(tmp_path: Path) -> None:
    path = write_agreement(tmp_path / "a.yaml", **{"payment_id: allow": "payment_id: pseudonymize"})
    agreement, marks = load_with_marks(path)
    validate_agreement(agreement, CATALOG, marks)


@pytest.mark.parametrize(
    ("replace", "needs"),
    [
        ({"date_of_death: allow": "date_of_death: generalize:zip3"}, "a ZIP code"),
        ({"amount: allow": "amount: generalize:month"}, "a date"),
        ({"date_of_birth: generalize:year": "date_of_birth: generalize:state"}, "an address"),
    ],
)
def test_generalization_must_fit_the_column_type(
    tmp_path: Path, replace: dict[str, str], needs: str
) -> None:
    error = validation_error(tmp_path, **replace)
    assert f"needs {needs}" in error.message
    assert error.code == "CUST247"


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ("agency IN (SELECT agency FROM deaths)", "Subquery is not allowed"),
        ("read_csv('/etc/passwd') IS NOT NULL", "function 'read_csv' is not allowed"),
        ("random() < 0.5", "is not allowed"),
        ("date_of_death > DATE '2020-01-01'", "unknown column 'date_of_death'"),
        ("deaths.ssn = payee_tin", "may not qualify columns"),
        ("amount + 1", "must be a boolean condition"),
        ("agency = 'SSA'; DROP TABLE x", "exactly one expression"),
        ("agency = = 'SSA'", "not valid SQL"),
        ("agency = 'SSA", "not valid SQL"),
        ("payee_tin = '123456789'", "does not release in the clear"),
        ("payee_name LIKE 'Smith%'", "does not release in the clear"),
        ("payment_id = 'P0000001'", "does not release in the clear"),
        ("method = 'ACH'", "does not release in the clear"),
        ("count(*) > 1", "is not allowed in a row filter"),
        ("agency IN (SELECT agency FROM payments)", "is not allowed in a row filter"),
    ],
)
def test_row_filter_is_a_boolean_over_own_columns(tmp_path: Path, rows: str, problem: str) -> None:
    error = validation_error(tmp_path, **{"agency = 'SSA'": rows})
    assert f":{line_of('rows:')}: datasets.payments.rows:" in error.message
    assert problem in error.message
    assert error.code == "CUST248"


@pytest.mark.parametrize(
    "rows",
    [
        "agency = 'SSA' AND amount > 100",
        "NOT (agency = 'VA') OR year(payment_date) BETWEEN 2020 AND 2024",
        "lower(agency) LIKE 'ss%' AND payment_date >= DATE '2024-01-01'",
        "agency IN ('SSA', 'VA') AND TRY_CAST(amount AS INTEGER) > 0",
        "agency = 'SSA' -- a trailing comment is dropped, never spliced",
    ],
)
def test_accepts_allow_listed_row_filters(tmp_path: Path, rows: str) -> None:
    path = write_agreement(tmp_path / "a.yaml", **{"agency = 'SSA'": rows})
    agreement, marks = load_with_marks(path)
    validate_agreement(agreement, CATALOG, marks)
    assert agreement.datasets["payments"].rows == rows


ROWS = "    rows: \"agency = 'SSA'\""


@pytest.mark.parametrize(
    ("replace", "field", "needle"),
    [
        (
            {"  min_group_size: 11": "  min_group_size: 11\n  epsilon: 1.0"},
            "limits.epsilon",
            "epsilon:",
        ),
        ({"  min_group_size: 11": "  min_group_size: 11\n  rho: 0.1"}, "limits.rho", "rho:"),
        (
            {ROWS: ROWS + "\n    max_contributions: 3"},
            "datasets.payments.max_contributions",
            "max_contributions:",
        ),
        (
            {ROWS: ROWS + "\n    bounds: {amount: [0, 9]}"},
            "datasets.payments.bounds",
            "bounds:",
        ),
    ],
    ids=["epsilon", "rho", "max-contributions", "bounds"],
)
def test_dp_fields_outside_mode_dp_are_errors_naming_their_line(
    tmp_path: Path, replace: dict[str, str], field: str, needle: str
) -> None:
    error = validation_error(tmp_path, **replace)
    text = (tmp_path / "a.yaml").read_text().splitlines()
    line = next(n for n, t in enumerate(text, 1) if t.strip().startswith(needle))
    assert f"a.yaml:{line}: {field}: " in error.message
    assert "applies only with mode: dp" in error.message
    assert error.code == "CUST270"


def test_dp_mode_needs_one_budget_and_refuses_min_group_size(tmp_path: Path) -> None:
    error = validation_error(tmp_path, **{"mode: pseudonymous": "mode: dp"})
    assert "min_group_size applies only with mode: aggregate" in error.message
    error = validation_error(
        tmp_path, **{"mode: pseudonymous": "mode: dp", "  min_group_size: 11\n": ""}
    )
    assert "exactly one budget" in error.message and error.code == "CUST270"


def test_dp_bounds_must_name_an_allowed_numeric_column(tmp_path: Path) -> None:
    error = validation_error(
        tmp_path,
        **{
            "mode: pseudonymous": "mode: dp",
            "  min_group_size: 11": "  epsilon: 1.0",
            ROWS: ROWS + "\n    bounds: {payee_tin: [0, 9]}",
        },
    )
    assert "bounds name 'payee_tin'" in error.message and error.code == "CUST271"


def test_a_dp_agreement_validates(tmp_path: Path) -> None:
    path = write_agreement(
        tmp_path / "a.yaml",
        **{
            "mode: pseudonymous": "mode: dp",
            "  min_group_size: 11": "  epsilon: 1.0\n  queries: 5",
            ROWS: ROWS + "\n    max_contributions: 3\n"
            "    bounds: {amount: [0, 5000]}\n    keys: {agency: [SSA]}",
        },
    )
    agreement, marks = load_with_marks(path)
    validate_agreement(agreement, CATALOG, marks)


DP_LIMITS = {"mode: pseudonymous": "mode: dp", "  min_group_size: 11": "  rho: 1.0"}


def test_key_selection_needs_an_explicit_delta(tmp_path: Path) -> None:
    error = validation_error(tmp_path, **DP_LIMITS, **{ROWS: ROWS + "\n    select_keys: [agency]"})
    assert error.code == "CUST272"
    line = line_of("limits:") + 1  # one line was added above it
    assert f":{line}: limits: limits.delta is required" in error.message
    assert "datasets.payments.select_keys" in error.message


def test_key_selection_with_a_delta_validates(tmp_path: Path) -> None:
    path = write_agreement(
        tmp_path / "a.yaml",
        **{
            "mode: pseudonymous": "mode: dp",
            "  min_group_size: 11": "  rho: 1.0\n  delta: 1.0e-6",
            ROWS: ROWS + "\n    select_keys: [agency]",
        },
    )
    agreement, marks = load_with_marks(path)
    validate_agreement(agreement, CATALOG, marks)
    assert agreement.datasets["payments"].select_keys == ["agency"]


@pytest.mark.parametrize(
    ("grant", "fragment"),
    [
        ("select_keys: [payee_tin]", "select_keys name 'payee_tin'"),
        ("select_keys: [nope]", "select_keys name 'nope'"),
        ("keys: {agency: [SSA]}\n    select_keys: [agency]", "declared key set"),
    ],
)
def test_key_selection_names_allowed_undeclared_columns(
    tmp_path: Path, grant: str, fragment: str
) -> None:
    error = validation_error(
        tmp_path,
        **{
            "mode: pseudonymous": "mode: dp",
            "  min_group_size: 11": "  rho: 1.0\n  delta: 1.0e-6",
            ROWS: ROWS + f"\n    {grant}",
        },
    )
    assert error.code == "CUST271" and fragment in error.message
    assert "datasets.payments.select_keys.0" in error.message


def test_select_keys_outside_dp_mode_is_refused(tmp_path: Path) -> None:
    error = validation_error(tmp_path, **{ROWS: ROWS + "\n    select_keys: [agency]"})
    assert error.code == "CUST270" and "select_keys applies only with mode: dp" in error.message
