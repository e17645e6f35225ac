from __future__ import annotations

from pathlib import Path

import pytest

from custodiet.agreements.load import load_agreement
from custodiet.agreements.model import Mode, Treatment
from custodiet.errors import InputError
from tests.catalog_data import AGREEMENT_YAML, write_agreement


def load_error(path: Path) -> InputError:
    with pytest.raises(InputError) as caught:
        load_agreement(path)
    assert caught.value.exit_status == 2
    return caught.value


def line_of(path: Path, needle: str) -> int:
    lines = path.read_text().splitlines()
    return next(n for n, text in enumerate(lines, 1) if needle in text)


def test_loads_the_contract_example(tmp_path: Path) -> None:
    agreement = load_agreement(write_agreement(tmp_path / "a.yaml"))
    assert agreement.id == "ssa-deceased-payees"
    assert agreement.mode is Mode.PSEUDONYMOUS
    rule = agreement.datasets["deaths"].columns["date_of_birth"]
    assert (rule.treatment, rule.level) == (Treatment.GENERALIZE, "year")
    assert agreement.datasets["payments"].rows == "agency = 'SSA'"


def test_unknown_treatment_names_file_line_and_field(tmp_path: Path) -> None:
    path = write_agreement(
        tmp_path / "a.yaml", **{"payee_tin: pseudonymize": "payee_tin: pseudonymise"}
    )
    error = load_error(path)
    expected = f"{path}:{line_of(path, 'pseudonymise')}: datasets.payments.columns.payee_tin:"
    assert error.message.startswith(expected)
    assert "unknown treatment 'pseudonymise'" in error.message
    assert error.code == "CUST243"


def test_unknown_generalization_level_is_named(tmp_path: Path) -> None:
    path = write_agreement(tmp_path / "a.yaml", **{"generalize:year": "generalize:week"})
    error = load_error(path)
    assert f":{line_of(path, 'generalize:week')}: datasets.deaths.columns.date_of_birth:" in (
        error.message
    )


def test_out_of_range_limit_names_its_line(tmp_path: Path) -> None:
    path = write_agreement(tmp_path / "a.yaml", **{"max_rows: 10000": "max_rows: 0"})
    error = load_error(path)
    assert error.message.startswith(f"{path}:{line_of(path, 'max_rows')}: limits.max_rows:")


def test_misspelled_field_names_its_line(tmp_path: Path) -> None:
    path = write_agreement(tmp_path / "a.yaml", **{"approvals_required": "approvals_needed"})
    error = load_error(path)
    assert f"{path}:{line_of(path, 'approvals_needed')}: approvals_needed:" in error.message


def test_missing_field_points_at_its_parent(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(AGREEMENT_YAML.format(expires="2027-06-30").replace("reviewer: bob\n", ""))
    error = load_error(path)
    assert f"{path}:1: reviewer: Field required" in error.message


def test_yaml_syntax_error_names_its_line(tmp_path: Path) -> None:
    path = write_agreement(tmp_path / "a.yaml", **{"  deaths:\n": "  deaths: [\n"})
    error = load_error(path)
    assert error.message.startswith(f"{path}:")
    assert error.code == "CUST241"


def test_document_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("- just\n- a list\n")
    assert load_error(path).code == "CUST242"


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    assert load_error(tmp_path / "nope.yaml").code == "CUST240"


def test_repeated_key_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write_agreement(
        tmp_path / "a.yaml", **{"payee_name: deny\n": "payee_name: deny\n      payee_name: allow\n"}
    )
    error = load_error(path)
    line = line_of(path, "payee_name: allow")
    assert error.message == f"{path}:{line}: datasets.payments.columns.payee_name: repeated key"


def test_yaml_aliases_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    text = AGREEMENT_YAML.format(expires="2027-06-30")
    text = text.replace("purpose: Find", "purpose: &p Find").replace(
        "reviewer: bob", "reviewer: *p"
    )
    path.write_text(text)
    assert "aliases are not allowed" in load_error(path).message
