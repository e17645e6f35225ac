"""verify.py against the 196 RFC 6962 / RFC 9162 vectors of transparency-dev/merkle."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from custodiet.ledger.verify import VerificationError, verify_consistency, verify_inclusion
from tests.needs import unavailable

REPO = Path(__file__).resolve().parents[3]
VECTORS = Path(
    os.environ.get("CUSTODIET_MERKLE_VECTORS") or REPO.parent / "shared/testvectors/merkle"
)
EXPECTED_CASES = 196


def _cases() -> list[Path]:
    return sorted(VECTORS.rglob("*.json")) if VECTORS.is_dir() else []


def _require_vectors() -> None:
    if not VECTORS.is_dir():
        unavailable(f"Merkle test vectors not found at {VECTORS}", "set CUSTODIET_MERKLE_VECTORS")


def _hashes(values: list[str] | None) -> list[bytes]:
    return [base64.b64decode(v) for v in values or []]


def _check(case: dict[str, Any]) -> None:
    if "leafIdx" in case:
        verify_inclusion(
            case["leafIdx"],
            case["treeSize"],
            base64.b64decode(case["leafHash"]),
            _hashes(case["proof"]),
            base64.b64decode(case["root"]),
        )
    else:
        verify_consistency(
            case["size1"],
            case["size2"],
            _hashes(case["proof"]),
            base64.b64decode(case["root1"]),
            base64.b64decode(case["root2"]),
        )


def test_all_196_vectors_are_present() -> None:
    _require_vectors()
    assert len(_cases()) == EXPECTED_CASES


@pytest.mark.parametrize(
    "path", _cases() or [None], ids=lambda p: str(p and p.relative_to(VECTORS))
)
def test_vector_verdict_matches(path: Path | None) -> None:
    _require_vectors()
    assert path is not None
    case = json.loads(path.read_text(encoding="utf-8"))
    if case["wantErr"]:
        with pytest.raises(VerificationError):
            _check(case)
    else:
        _check(case)
