"""The error tree: stable codes, each documented, each class with the contract's exit status."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from custodiet.errors import (
    CustodietError,
    InputError,
    RefusedError,
    SystemFailure,
    TamperedError,
)

ROOT = Path(__file__).resolve().parents[2]
CODE = re.compile(r"""["'](CUST\d{3})["']""")


def _codes_in_source() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "src" / "custodiet").rglob("*.py"):
        found.update(CODE.findall(path.read_text(encoding="utf-8")))
    for cls in (CustodietError, InputError, RefusedError, SystemFailure, TamperedError):
        found.add(cls.default_code)
    return found


def _documented_codes() -> set[str]:
    text = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    return set(re.findall(r"^#+ .*?(CUST\d{3})", text, flags=re.MULTILINE))


def test_every_code_in_the_source_is_documented() -> None:
    missing = _codes_in_source() - _documented_codes()
    assert not missing, f"document these in docs/errors.md: {sorted(missing)}"


def test_no_documented_code_is_stale() -> None:
    stale = _documented_codes() - _codes_in_source()
    assert not stale, f"docs/errors.md documents codes nothing raises: {sorted(stale)}"


@pytest.mark.parametrize(
    ("cls", "status"),
    [(InputError, 2), (RefusedError, 3), (SystemFailure, 1), (TamperedError, 1)],
)
def test_exit_status_follows_the_contract(cls: type[CustodietError], status: int) -> None:
    assert cls.exit_status == status


def test_refusal_renders_rule_excerpt_and_hint_in_order() -> None:
    err = RefusedError("column 'p.x' is denied", hint="use y", excerpt="SELECT x\n       ~")
    lines = err.render().splitlines()
    assert lines[0] == "refused: column 'p.x' is denied"
    assert lines[1:3] == ["SELECT x", "       ~"]
    assert lines[3] == "hint: use y"
