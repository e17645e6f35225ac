"""The committed tamper corpus: one case per attack, each caught by the standalone verifier."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from custodiet.ledger.verify import main

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "tamper"
CASES = sorted(p.parent for p in CORPUS.glob("*/case.json"))
ATTACKS = {
    "modified-entry",
    "dropped-entry",
    "reordered-entries",
    "duplicated-entry",
    "truncated-tail",
    "wrong-root",
    "size-plus-one",
    "signature-by-another-key",
    "cosignature-by-unknown-witness",
    "malformed-signature-line",
    "proof-wrong-length",
    "hash-not-32-bytes",
}


def test_corpus_holds_one_case_per_attack() -> None:
    assert {case.name for case in CASES} >= ATTACKS


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_verifier_verdict_on_corpus_case(case: Path, monkeypatch, capsys) -> None:
    spec = json.loads((case / "case.json").read_text(encoding="utf-8"))
    monkeypatch.chdir(case)
    status = main(spec["args"])
    out, err = capsys.readouterr()
    if case.name.startswith("valid"):
        assert status == 0 and "verified" in out, err
    else:
        assert status == 1 and err.startswith("NOT VERIFIED") and spec["expect"] in err, err
