"""What of an executed result may leave the gateway, under the agreement's mode.

pseudonymous: at most ``max_rows`` rows (more -> cut, with a ``truncated`` notice).
aggregate:    a row in which any value comes from fewer than ``min_group_size`` distinct
              contributing persons (``contributors.py``) is suppressed (the notice says how many
              rows, never their counts); the hidden person counts are dropped.
The result is identified on the ledger only by its row count and the SHA-256 of its canonical JSON.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import rfc8785

from custodiet.agreements.model import Mode
from custodiet.gateway.contributors import HiddenCount
from custodiet.gateway.policy import ColumnKind, Policy

_SAFE_INTEGER = 2**53 - 1


@dataclass(frozen=True)
class Released:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    notices: tuple[str, ...]
    truncated: bool
    sha256: str


def json_value(value: Any) -> Any:
    """A JSON-representable form of one engine value (dates ISO, decimals exact strings)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if abs(value) <= _SAFE_INTEGER else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.time | dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.timedelta | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    return str(value)


_FIXED_BYTES: dict[type, int] = {
    type(None): 1,
    bool: 1,
    int: 8,
    float: 8,
    decimal.Decimal: 16,
    dt.date: 8,
    dt.time: 8,
    dt.datetime: 8,
    dt.timedelta: 16,
    uuid.UUID: 16,
}


_NULL = type(None)


def rows_bytes(rows: Sequence[Sequence[Any]]) -> int:
    """What ``rows`` count against a query's ``max_result_bytes``: 8 per value slot, plus each
    value's size: a string or blob its length, a number, date or time 8 (16 for decimals,
    intervals and UUIDs), NULL 1, a list or struct its members'. Counted as rows are fetched,
    column by column (the common columns, all strings or all of fixed width, at C speed)."""
    total = 0
    for column in zip(*rows, strict=True):
        kinds = set(map(type, column))
        nulls = column.count(None) if _NULL in kinds else 0
        kinds.discard(_NULL)
        kind = next(iter(kinds)) if len(kinds) == 1 else None
        total += 8 * len(column) + nulls
        if kind is str:
            total += sum(map(len, filter(None, column)))
        elif kind in _FIXED_BYTES:
            total += _FIXED_BYTES[kind] * (len(column) - nulls)
        elif kinds:
            total += sum(value_bytes(value) for value in column if value is not None)
    return total


def value_bytes(value: Any) -> int:
    """One value's size for ``rows_bytes``."""
    size = _FIXED_BYTES.get(type(value))
    if size is not None:
        return size
    if isinstance(value, str | bytes | bytearray):
        return len(value)
    if isinstance(value, memoryview):
        return value.nbytes
    if isinstance(value, list | tuple):
        return 8 + sum(value_bytes(v) for v in value)
    if isinstance(value, dict):
        return 8 + sum(value_bytes(k) + value_bytes(v) for k, v in value.items())
    return 16


def result_sha256(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """SHA-256 (hex) of the RFC 8785 canonical JSON ``{"columns": [...], "rows": [[...], ...]}``."""
    document: Any = {"columns": list(columns), "rows": [[json_value(v) for v in r] for r in rows]}
    return hashlib.sha256(rfc8785.dumps(document)).hexdigest()


def release(
    policy: Policy,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    touched: Sequence[str],
    hidden: Sequence[HiddenCount] = (),
) -> Released:
    """Apply the mode's release rules to an executed result."""
    notices: list[str] = []
    kept_columns = tuple(columns)
    kept = list(rows)
    if policy.mode is Mode.AGGREGATE:
        kept_columns, kept, suppressed = _suppress_small_groups(
            kept_columns, kept, hidden, policy.min_group_size
        )
        if suppressed:
            notices.append(
                f"{suppressed} group(s) suppressed: a value came from fewer than "
                f"{policy.min_group_size} distinct persons"
            )
    truncated = len(kept) > policy.max_rows
    if truncated:
        kept = kept[: policy.max_rows]
        notices.append(f"truncated: only the first {policy.max_rows} rows are released")
    notices.extend(_treatment_notices(policy, touched))
    return Released(
        kept_columns, kept, tuple(notices), truncated, result_sha256(kept_columns, kept)
    )


def _suppress_small_groups(
    columns: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    hidden: Sequence[HiddenCount],
    threshold: int,
) -> tuple[tuple[str, ...], list[tuple[Any, ...]], int]:
    checks = [(columns.index(h.name), h.zero_allowed) for h in hidden if h.name in columns]
    if not checks or len(checks) != len(hidden):
        # Nothing counts persons, so no group can be shown to be large enough.
        visible = tuple(c for c in columns if c not in {h.name for h in hidden})
        return visible, [], len(rows)
    dropped = {at for at, _ in checks}
    keep = [i for i in range(len(columns)) if i not in dropped]

    def large_enough(row: tuple[Any, ...]) -> bool:
        for at, zero_allowed in checks:
            persons = row[at] or 0
            if persons < threshold and not (zero_allowed and persons == 0):
                return False
        return True

    released = [tuple(row[i] for i in keep) for row in rows if large_enough(row)]
    return tuple(columns[i] for i in keep), released, len(rows) - len(released)


def _treatment_notices(policy: Policy, touched: Sequence[str]) -> list[str]:
    by_kind: dict[ColumnKind, list[str]] = {}
    for qualified in sorted(touched):
        table, _, name = qualified.partition(".")
        view = policy.tables.get(table)
        column = view.columns.get(name) if view else None
        if column is not None and column.kind is not ColumnKind.VALUE:
            by_kind.setdefault(column.kind, []).append(qualified)
    labels = {
        ColumnKind.TOKEN: "columns pseudonymized (keyed tokens)",
        ColumnKind.GENERALIZED: "columns generalized",
        ColumnKind.MASKED: "columns masked",
    }
    return [
        f"{label}: {', '.join(by_kind[kind])}" for kind, label in labels.items() if kind in by_kind
    ]
