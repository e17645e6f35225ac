"""Aggregate mode's release, fast when the groups are large: decide suppression from row counts.

Counting distinct persons for every value costs a hash of the person column per value, more
than the query itself. But whether a value has *at least* ``k`` contributing persons needs no
exact count when its group is large: if one person has at most ``B`` rows in the query (the
product of the largest rows-per-person of each dataset, when every join matches persons), then
``r`` contributing rows come from at least ``ceil(r / B)`` persons, so ``r >= (k - 1) * B + 1``
settles it; and ``r < k`` rows cannot come from ``k`` persons, so that settles it the other way
(``r == 0`` settles a non-contributor count as zero). The fast form of the query (``CheckedQuery
.fast``) counts rows; only when some value is not settled does the exact form (``executed``,
distinct persons) run, and its counts decide. Either way ``release`` applies the same rule.

The largest rows-per-person of each table of a projection is computed once, on the reviewer's
engine, and kept beside the projection (``<projection>.persons.json``, custodian side) with the
table's row count; a projection extended since (more rows) has it computed again.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from custodiet.gateway.release import Released, release
from custodiet.gateway.treatments import quote
from custodiet.workspace import Workspace

if TYPE_CHECKING:
    from custodiet.gateway.contributors import HiddenCount
    from custodiet.gateway.execute import Executed
    from custodiet.gateway.policy import Policy
    from custodiet.gateway.projection import ActiveVersion
    from custodiet.gateway.rewrite import CheckedQuery

__all__ = ["release_aggregate", "rows_per_person", "settled"]

_NULLS = "#null"  # rows_per_person also knows how many rows of each table have no person
_ROWS = "#rows"  # ... and how many rows the table had: an extended projection has more


def release_aggregate(
    ws: Workspace,
    active: ActiveVersion,
    policy: Policy,
    checked: CheckedQuery,
    run: Callable[[str], Executed],
) -> Released:
    """Execute and release an aggregate-mode query, exact counts only where they are needed."""
    if checked.fast is not None and all(h.bound_by for h in checked.hidden):
        bounds = rows_per_person(ws, active, policy, checked.tables, run)
        every_row_a_person = all(bounds.get(f"{t}{_NULLS}", 1) == 0 for t in checked.tables)
        use_rows = checked.fast_rows is not None and every_row_a_person
        fast = run(checked.fast_rows if use_rows and checked.fast_rows else checked.fast)
        rows = settled(fast.columns, fast.rows, checked.hidden, bounds, policy.min_group_size)
        if rows is not None:
            return release(
                policy, fast.columns, rows, touched=checked.columns, hidden=checked.hidden
            )
    exact = run(checked.executed)
    return release(
        policy, exact.columns, exact.rows, touched=checked.columns, hidden=checked.hidden
    )


def settled(
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    hidden: Sequence[HiddenCount],
    bounds: Mapping[str, int],
    threshold: int,
) -> list[tuple[Any, ...]] | None:
    """The rows with each hidden row count replaced by a person count that decides the same way
    (0, 1 or ``threshold``), or None when some value cannot be settled from row counts."""
    places = []
    for h in hidden:
        if h.name not in columns or any(t not in bounds for t in h.bound_by):
            return None
        per_person = math.prod(bounds[t] for t in h.bound_by)
        places.append((columns.index(h.name), h.zero_allowed, (threshold - 1) * per_person + 1))
    decided: list[tuple[Any, ...]] = []
    for row in rows:
        values = list(row)
        for at, zero_allowed, enough in places:
            count = int(values[at] or 0)
            if count == 0 and zero_allowed:
                values[at] = 0
            elif count < threshold:
                values[at] = 1 if zero_allowed else 0  # fewer rows than k: fewer persons too
            elif count >= enough:
                values[at] = threshold
            else:
                return None
        decided.append(tuple(values))
    return decided


def rows_per_person(
    ws: Workspace,
    active: ActiveVersion,
    policy: Policy,
    tables: Sequence[str],
    run: Callable[[str], Executed],
) -> dict[str, int]:
    """The largest number of rows one person has in each table of the projection, and (under
    ``<table>#null``) how many rows have no person; computed once per projection, kept beside it."""
    from custodiet.gateway.projection import projection_files

    path = projection_files(ws, active).database.with_suffix(".persons.json")
    try:
        known: dict[str, int] = {
            str(k): int(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()
        }
    except (OSError, ValueError, TypeError, AttributeError):
        known = {}
    cached = [t for t in tables if f"{t}{_NULLS}" in known and policy.tables[t].person_column]
    if cached:  # kept for the projection as this engine reads it? (extensions append rows)
        counts = run("SELECT " + ", ".join(f"(SELECT count(*) FROM {quote(t)})" for t in cached))
        for table, rows in zip(cached, counts.rows[0], strict=True):
            if known.get(f"{table}{_ROWS}") != int(rows):
                known.pop(f"{table}{_NULLS}")
    missing = [t for t in tables if f"{t}{_NULLS}" not in known and policy.tables[t].person_column]
    for table in missing:
        person = quote(policy.tables[table].person_column or "")
        executed = run(
            f"SELECT coalesce(max(n), 1), (SELECT count(*) FROM {quote(table)} "
            f"WHERE {person} IS NULL), (SELECT count(*) FROM {quote(table)}) "
            f"FROM (SELECT count(*) AS n FROM {quote(table)} "
            f"WHERE {person} IS NOT NULL GROUP BY {person})"
        )
        known[table] = max(1, int(executed.rows[0][0]))
        known[f"{table}{_NULLS}"] = int(executed.rows[0][1])
        known[f"{table}{_ROWS}"] = int(executed.rows[0][2])
    if missing:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            temporary.write_text(json.dumps(known), encoding="utf-8")
            temporary.replace(path)
        except OSError:
            temporary.unlink(missing_ok=True)  # recomputed next time: slower, never wrong
    return known
