"""Hostile agreement files are input errors naming FILE:LINE, never tracebacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from custodiet.agreements.load import load_with_marks
from custodiet.errors import InputError

GOOD = """id: a
purpose: p
reviewer: rae
expires: 2030-01-01
datasets:
  payments:
    columns:
      amount: allow
"""


def _load(tmp_path: Path, text: str) -> InputError:
    path = tmp_path / "a.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_with_marks(path)
    assert caught.value.exit_status == 2
    return caught.value


def test_impossible_date_names_its_line_and_field(tmp_path: Path) -> None:
    error = _load(tmp_path, GOOD.replace("2030-01-01", "2030-13-45"))
    assert error.message.startswith(f"{tmp_path / 'a.yaml'}:4: expires:")


def test_deep_nesting_is_an_input_error(tmp_path: Path) -> None:
    error = _load(tmp_path, "id: x\npurpose: " + "[" * 10_000)
    assert "nested too deeply" in error.message


def test_moderate_nesting_beyond_the_limit_is_refused(tmp_path: Path) -> None:
    error = _load(tmp_path, GOOD + "limits: " + "[" * 40 + "]" * 40 + "\n")
    assert "nested too deeply" in error.message


def test_python_tags_are_refused_not_constructed(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    error = _load(tmp_path, f'id: !!python/object/apply:os.system ["touch {marker}"]\n')
    assert "YAML tags" in error.message and ":1:" in error.message
    assert not marker.exists()


def test_a_clean_file_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(GOOD, encoding="utf-8")
    agreement, marks = load_with_marks(path)
    assert agreement.id == "a" and marks.line(("datasets", "payments")) == 6
