"""Agreement documents as the ledger holds them: canonical JSON, hashed, and read back."""

from __future__ import annotations

import functools
from typing import Any

from custodiet.agreements.model import Agreement
from custodiet.ledger.replay import sha256_hex


def agreement_document(agreement: Agreement) -> dict[str, Any]:
    """The validated agreement as plain JSON: the fields its author set (defaults are not
    written, so validating the document again sets exactly the same fields), treatments written
    as in the YAML, and numbers that are not whole (epsilon, bounds) as decimal text, so its
    canonical form is exact."""
    doc: dict[str, Any] = agreement.model_dump(mode="json", exclude_unset=True)
    for name, grant in agreement.datasets.items():
        doc["datasets"][name]["columns"] = {c: str(rule) for c, rule in grant.columns.items()}
    cleaned: dict[str, Any] = _no_floats(doc)
    return cleaned


def _no_floats(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {k: _no_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_floats(v) for v in value]
    return value


def agreement_sha256(agreement: Agreement) -> str:
    """SHA-256 (hex) of the RFC 8785 canonical JSON of the validated agreement document."""
    return sha256_hex(agreement_document(agreement))


@functools.lru_cache(maxsize=256)
def _parsed(sha256: str, document: str) -> Agreement:
    import json

    return Agreement.model_validate(json.loads(document))


def agreement_from_document(sha256: str, document: dict[str, Any]) -> Agreement:
    """The Agreement a stored document describes (parsed once per version)."""
    import json

    return _parsed(sha256, json.dumps(document, sort_keys=True))
