"""Differential privacy (``mode: dp``): person-level noisy aggregates under a hard zCDP budget.

What a dp query may be (checked here, after the aggregate-mode rules of ``check``):

    SELECT <key columns>, count(*) | count(x) | count(DISTINCT x) | sum(x) | avg(x)
           [FILTER (WHERE ...)], ...
    FROM t0 [JOIN t1 ON t0.<person> = t1.<person> [AND ...]] ... [WHERE ...] [GROUP BY <keys>]

* The privacy unit is the person (the dataset's pseudonymized SSN/TIN). Joins must match persons,
  so every joined row belongs to one person; then each person's rows are cut to the smallest
  ``max_contributions`` of the datasets read. On one dataset the cut keeps the person's first
  rows in the order stored at build (``ROW_NUMBER_COLUMN``: a hash of each row's own values), a
  filter applied with the WHERE; after a join it is a window over the joined, filtered rows, in
  no data-dependent order. Rows without a person are dropped.
* ``sum``/``avg`` arguments are clamped to the ``bounds`` declared for the columns they read and
  computed in fixed point (hundredths); a sum over no bounded column is refused.
* ``count(DISTINCT x)``: one person's at most C rows add or remove at most C distinct values over
  all cells, so its sensitivity is a count's; ``count(DISTINCT <person>)`` counts each person once
  per cell (sensitivity ceil(sqrt(C)) over the cells). DISTINCT in sum or avg, or over several
  expressions, is refused.
* GROUP BY on columns with a declared public key set (``keys``): every declared key is released,
  with noise, whether or not it occurs, and no other key is. GROUP BY on a column the grant lists
  in ``select_keys``: a cell is released only if OpenDP's Gaussian threshold mechanism
  (``make_gaussian_threshold``, approximate zCDP) on its count of distinct persons passes; the
  threshold is the smallest whose delta stays within ``limits.delta / 2 / queries``. The released
  cells are then a public set, over which the statistics are noised as for declared keys.
* Each query spends ``rho / queries`` of the agreement (zCDP), split evenly over its noisy
  statistics (an avg is a sum and a count) and, when it selects keys, the selection. Noise is
  OpenDP's discrete Gaussian on integers, with scale sensitivity / sqrt(2 rho_i); outputs are
  integers (counts) or fixed point (sums, avgs).

The spend is refused when the agreement's total or the dataset's cap (``budget``) would be
exceeded; otherwise the ledger entry of the query carries ``rho_spent`` and ``epsilon_spent``
(and ``delta_spent`` when it selected keys). The same canonical query (re-rendered SQL, agreement
version) is answered again from the custodian-side cache without spending, but only if its digest
is on the ledger; a missing or unverifiable cache entry spends again.
"""

from __future__ import annotations

import decimal
import hashlib
import itertools
import json
import math
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from custodiet.agreements.model import Agreement, Mode
from custodiet.errors import RefusedError
from custodiet.gateway.budget import dataset_rho_cap, epsilon_of, ledger_spends, rho_of
from custodiet.gateway.parse import DUCKDB, parse_statement
from custodiet.gateway.policy import ROW_NUMBER_COLUMN
from custodiet.gateway.release import Released, json_value, result_sha256
from custodiet.gateway.suppress import release_aggregate, rows_per_person
from custodiet.workspace import Workspace

if TYPE_CHECKING:
    from custodiet.gateway.execute import Executed
    from custodiet.gateway.policy import Policy
    from custodiet.gateway.projection import ActiveVersion
    from custodiet.gateway.rewrite import CheckedQuery
    from custodiet.runtime import Runtime

__all__ = [
    "DEFAULT_DELTA",
    "DEFAULT_QUERIES",
    "DPPlan",
    "gaussian",
    "plan",
    "release_with_budget",
    "select_keys",
]

DEFAULT_DELTA = 1e-6
DEFAULT_QUERIES = 10
FIXED_POINT = 100  # sums and averages in hundredths
Z95 = 1.959963984540054
_CENT = decimal.Decimal("0.01")


@dataclass(frozen=True)
class Statistic:
    """One noisy vector over the cells: a count (units) or a clamped sum (hundredths)."""

    column: str  # the hidden column of the bounded query
    sensitivity: int  # L2, in integer units, over all cells


@dataclass(frozen=True)
class Output:
    name: str
    kind: str  # "key", "count", "sum", "avg"
    key_index: int = -1
    statistics: tuple[int, ...] = ()  # indexes into DPPlan.statistics (avg: sum, count)


@dataclass(frozen=True)
class DPPlan:
    sql: str  # the bounded query: one row per occurring cell, key columns then statistics
    within_bound: str  # the same without the cut, when no person can have more rows than it keeps
    within_bound_all: str  # and without the person IS NOT NULL test, when no row lacks a person
    tables: tuple[str, ...]  # the datasets read
    keys: tuple[tuple[str, ...] | None, ...]  # declared key values per GROUP BY column (None:
    # selected privately; the bounded query then ends with each cell's count of persons)
    outputs: tuple[Output, ...]
    statistics: tuple[Statistic, ...]
    contributions: int
    rho: float  # this query's spend
    delta: float  # of the (epsilon, delta) reading of rho
    bounds: tuple[tuple[str, float, float], ...]  # (column, low, high) clamped
    selection_delta: float = 0.0  # key selection's delta spend; 0 when every key is declared
    max_rows: int = 10_000  # selected cells released at most (in key order)

    @property
    def selects(self) -> bool:
        return any(declared is None for declared in self.keys)


def selecting(agreement: Agreement) -> bool:
    """Whether some grant lets a dp query select its groups by a noisy threshold."""
    return any(grant.select_keys for grant in agreement.datasets.values())


def budget_of(agreement: Agreement) -> tuple[float, float, int]:
    """(total rho, delta of its (epsilon, delta) reading, queries) of a dp agreement. With key
    selection half of ``limits.delta`` is kept for the thresholds (``selection_budget``)."""
    limits = agreement.limits
    delta = limits.delta or DEFAULT_DELTA
    if selecting(agreement):
        delta /= 2
    total = limits.rho if limits.rho is not None else rho_of(limits.epsilon or 0.0, delta)
    return total, delta, limits.queries or DEFAULT_QUERIES


def selection_budget(agreement: Agreement) -> float:
    """The total delta key selection may spend: half of ``limits.delta`` (0 without it)."""
    delta = agreement.limits.delta
    return delta / 2 if selecting(agreement) and delta else 0.0


def plan(agreement: Agreement, policy: Policy, checked: CheckedQuery) -> DPPlan:
    """The bounded query and its statistics; RefusedError for a shape dp mode cannot bound."""
    if parse_statement(checked.submitted).args.get("limit") is not None:
        raise _shape("LIMIT is not supported in dp mode: every declared key is released")
    tree = parse_statement(checked.executed)
    assert isinstance(tree, exp.Select)
    if tree.args.get("order") is not None:
        raise _shape("ORDER BY is not supported in dp mode: results come sorted by their keys")
    if tree.args.get("distinct") is not None:
        raise _shape("SELECT DISTINCT is not supported in dp mode")
    aliases = _tables(tree, policy)
    first_alias, first_table = next(iter(aliases.items()))
    person = exp.column(policy.tables[first_table].person_column or "", table=first_alias)
    _persons_joined(tree, aliases, policy)
    grants = agreement.datasets
    contributions = min(grants[t].max_contributions or 1 for t in aliases.values())

    group = tree.args.get("group")
    group_columns = list(group.expressions) if group is not None else []
    keys: list[tuple[str, ...] | None] = []
    key_sql: list[str] = []
    for column in group_columns:
        if not isinstance(column, exp.Column) or column.table not in aliases:
            raise _shape("dp mode groups only by dataset columns with a declared key set")
        grant = grants[aliases[column.table]]
        declared = (grant.keys or {}).get(column.name)
        if not declared and column.name not in (grant.select_keys or ()):
            raise _shape(
                f"column '{column.name}' has no declared key set and is not in select_keys, "
                "so its groups cannot be released in dp mode",
                hint=f"declare datasets.{aliases[column.table]}.keys.{column.name}, or list "
                f"it in datasets.{aliases[column.table]}.select_keys, in the agreement",
            )
        keys.append(tuple(declared) if declared else None)
        # Cells outside the declared keys are computed but never released (only declared cells
        # are looked up), so no per-row IN filter is needed; keys compare as text after grouping.
        key_sql.append(column.sql(dialect=DUCKDB))

    # (row expression, L2 sensitivity, its aggregate over a cell's rows: "{}" is the column)
    statistics: list[tuple[str, int, str]] = []
    outputs: list[Output] = []
    clamped: list[tuple[str, float, float]] = []
    for select in tree.expressions:
        name = select.alias_or_name
        value = select.unalias()
        if isinstance(value, exp.Column) and value in group_columns:
            outputs.append(Output(name, "key", key_index=group_columns.index(value)))
            continue
        condition: exp.Expr | None = None
        if isinstance(value, exp.Filter):
            where = value.expression
            condition = where.this if isinstance(where, exp.Where) else where
            value = value.this
        if not isinstance(value, exp.Count | exp.Sum | exp.Avg):
            raise _shape("each output in dp mode is a GROUP BY column or one count, sum or avg")
        argument = value.this
        if isinstance(argument, exp.Distinct):
            statistics.append(_distinct(value, argument, condition, aliases, policy, contributions))
            outputs.append(Output(name, "count", statistics=(len(statistics) - 1,)))
            continue
        if isinstance(value, exp.Count):
            present = None if isinstance(argument, exp.Star) else _not_null(argument)
            statistics.append((_indicator(_both(present, condition)), contributions, "sum({})"))
            outputs.append(Output(name, "count", statistics=(len(statistics) - 1,)))
            continue
        low, high = _bounds(argument, aliases, agreement)
        clamped.extend((c, low, high) for c in _bounded_columns(argument, aliases, agreement))
        exact = _exact_clamp(argument, aliases, policy, low, high)
        if exact is not None:  # clamped in the column's own type, summed exactly
            scaled, aggregate = exact, f"sum({{}}) * {FIXED_POINT}"
        else:
            scaled = (
                f"CAST(round(least(greatest(TRY_CAST({argument.sql(dialect=DUCKDB)} AS DOUBLE),"
                f" {low!r}), {high!r}) * {FIXED_POINT}) AS BIGINT)"
            )
            aggregate = "sum({})"
        if condition is not None:
            scaled = f"CASE WHEN {condition.sql(dialect=DUCKDB)} THEN {scaled} END"
        largest = math.ceil(max(abs(low), abs(high)) * FIXED_POINT)
        statistics.append((scaled, contributions * max(largest, 1), aggregate))
        if isinstance(value, exp.Sum):
            outputs.append(Output(name, "sum", statistics=(len(statistics) - 1,)))
        else:
            statistics.append(
                (_indicator(_both(_not_null(argument), condition)), contributions, "sum({})")
            )
            outputs.append(
                Output(name, "avg", statistics=(len(statistics) - 2, len(statistics) - 1))
            )
    if not statistics:
        raise _shape("a dp query releases at least one count, sum or avg")

    total, delta, queries = budget_of(agreement)
    selects = any(declared is None for declared in keys)
    source = " ".join(
        [tree.args["from_"].sql(dialect=DUCKDB)]
        + [join.sql(dialect=DUCKDB) for join in tree.args.get("joins") or []]
    )
    where = tree.args.get("where")
    filters = [f"{person.sql(dialect=DUCKDB)} IS NOT NULL"]
    if where is not None:
        filters.insert(0, f"({where.this.sql(dialect=DUCKDB)})")
    inner = ", ".join(
        [f"{text} AS _k{i}" for i, text in enumerate(key_sql)]
        + [f"{text} AS _s{i}" for i, (text, _, _) in enumerate(statistics)]
        + ([f"{person.sql(dialect=DUCKDB)} AS _p"] if selects else [])
    )
    groups = [f"_k{i}" for i in range(len(key_sql))]
    outer = ", ".join(
        [f"CAST({g} AS VARCHAR)" for g in groups]
        + [aggregate.format(f"_s{i}") for i, (_, _, aggregate) in enumerate(statistics)]
        + (["count(DISTINCT _p)"] if selects else [])
    )
    grouped = f" GROUP BY {', '.join(groups)}" if groups else ""
    rows = f"{source} WHERE {' AND '.join(filters)}"
    if len(aliases) == 1 and policy.tables[first_table].ranked:
        # one dataset: the cut is the rank stored at build, a filter instead of a window (rows
        # without a person have no rank, so it drops them too)
        rank = exp.column(ROW_NUMBER_COLUMN, table=first_alias).sql(dialect=DUCKDB)
        kept = [*filters[:-1], f"{rank} <= {contributions}"]
        sql = (
            f"WITH _bounded AS (SELECT {inner} {source} WHERE {' AND '.join(kept)}) "
            f"SELECT {outer} FROM _bounded{grouped}"
        )
    else:
        window = f"row_number() OVER (PARTITION BY {person.sql(dialect=DUCKDB)}) AS _rn"
        sql = (
            f"WITH _bounded AS (SELECT {inner}, {window} {rows}) "
            f"SELECT {outer} FROM _bounded WHERE _rn <= {contributions}{grouped}"
        )
    within = f"WITH _bounded AS (SELECT {inner} {rows}) SELECT {outer} FROM _bounded{grouped}"
    everyone = f"{source} WHERE {filters[0]}" if where is not None else source
    within_all = (  # one table: its person column is never NULL in a joined-away row
        f"WITH _bounded AS (SELECT {inner} {everyone}) SELECT {outer} FROM _bounded{grouped}"
        if not tree.args.get("joins")
        else within
    )
    return DPPlan(
        sql=sql,
        within_bound=within,
        within_bound_all=within_all,
        tables=tuple(sorted(set(aliases.values()))),
        keys=tuple(keys),
        outputs=tuple(outputs),
        statistics=tuple(Statistic(f"_s{i}", s) for i, (_, s, _) in enumerate(statistics)),
        contributions=contributions,
        rho=total / queries,
        delta=delta,
        bounds=tuple(sorted(set(clamped))),
        selection_delta=selection_budget(agreement) / queries if selects else 0.0,
        max_rows=policy.max_rows,
    )


_INTEGER_LIMITS = {"TINYINT": 2**7, "SMALLINT": 2**15, "INTEGER": 2**31, "BIGINT": 2**63}


def _exact_clamp(
    argument: exp.Expr, aliases: Mapping[str, str], policy: Policy, low: float, high: float
) -> str | None:
    """A bare integer or decimal column (at most two decimals) clamped in its own type, to the
    bounds rounded inwards to its scale: every value is then a whole number of hundredths within
    the bounds, summed exactly with no per-row conversion (a CASE: DuckDB's least/greatest on
    decimals cost as much as the rest of the query). None for anything else."""
    if not isinstance(argument, exp.Column) or argument.table not in aliases:
        return None
    view = policy.tables[aliases[argument.table]].columns.get(argument.name)
    sql_type = view.sql_type.upper().replace(" ", "") if view is not None else ""
    decimal_type = re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", sql_type)
    if decimal_type is not None and int(decimal_type[2]) <= 2:
        places = int(decimal_type[2])
        limit = decimal.Decimal(10) ** (int(decimal_type[1]) - places)  # |value| stays below
    elif sql_type in _INTEGER_LIMITS:
        places, limit = 0, decimal.Decimal(_INTEGER_LIMITS[sql_type] - 1)
    else:
        return None
    unit = 10**places
    lowest = decimal.Decimal(math.ceil(decimal.Decimal(repr(low)) * unit)) / unit
    highest = decimal.Decimal(math.floor(decimal.Decimal(repr(high)) * unit)) / unit
    if lowest > highest:  # no value of this scale lies within the bounds
        return None
    column = argument.sql(dialect=DUCKDB)
    cases = [  # a bound beyond the type's range never binds, and would not cast
        f"WHEN {column} {op} CAST('{bound:f}' AS {sql_type}) THEN CAST('{bound:f}' AS {sql_type})"
        for op, bound, binds in (("<", lowest, lowest > -limit), (">", highest, highest < limit))
        if binds
    ]
    return f"CASE {' '.join(cases)} ELSE {column} END" if cases else column


def _distinct(
    value: exp.Expr,
    argument: exp.Distinct,
    condition: exp.Expr | None,
    aliases: Mapping[str, str],
    policy: Policy,
    contributions: int,
) -> tuple[str, int, str]:
    """count(DISTINCT x) [FILTER (WHERE c)]: (row expression, L2 sensitivity, aggregate).

    A person keeps at most C rows, so adding or removing them changes the distinct values of all
    cells together by at most C: a count's sensitivity. Counting a person column (a person is
    one value in each of at most C cells) it is ceil(sqrt(C)). Nothing else is bounded here."""
    if not isinstance(value, exp.Count) or len(argument.expressions) != 1:
        raise _shape(
            "DISTINCT is supported in dp mode only as count(DISTINCT x) over one expression"
        )
    (inner,) = argument.expressions
    text = inner.sql(dialect=DUCKDB)
    if condition is not None:
        text = f"CASE WHEN {condition.sql(dialect=DUCKDB)} THEN {text} END"
    persons = (
        isinstance(inner, exp.Column)
        and inner.table in aliases
        and inner.name == policy.tables[aliases[inner.table]].person_column
    )
    sensitivity = math.ceil(math.sqrt(contributions)) if persons else contributions
    return text, sensitivity, "count(DISTINCT {})"


def gaussian(values: Sequence[int], sensitivity: int, rho: float) -> tuple[list[int], float]:
    """OpenDP's discrete Gaussian on each integer, scaled so the vector release is rho-zCDP
    for an L2 sensitivity of ``sensitivity``; returns the noisy values and the scale."""
    import opendp.prelude as dp

    dp.enable_features("contrib")
    scale = sensitivity / math.sqrt(2 * rho)
    measurement = dp.m.make_gaussian(
        dp.vector_domain(dp.atom_domain(T="i64")), dp.l2_distance(T="i64"), scale=scale
    )
    spent = float(measurement.map(sensitivity))  # type: ignore[no-untyped-call]
    if spent > rho * (1 + 1e-9):  # OpenDP's own accounting agrees
        raise RefusedError("the noise could not be calibrated", code="CUST382")
    return list(measurement(list(values))), scale


@dataclass(frozen=True)
class Selection:
    kept: frozenset[str]  # the keys released
    scale: float  # of the Gaussian noise on each key's count of persons
    threshold: int  # a key is kept only if its noisy count reaches it


def select_keys(
    persons: Mapping[str, int], contributions: int, rho: float, delta: float
) -> Selection:
    """OpenDP's Gaussian threshold mechanism on each key's count of distinct persons, one person
    being in at most ``contributions`` keys (once in each): (rho, delta)-approximate zCDP. The
    threshold is the smallest whose delta, by OpenDP's own privacy map, is at most ``delta``."""
    import opendp.prelude as dp

    dp.enable_features("contrib")
    if delta <= 0:
        raise RefusedError("key selection needs a delta > 0", code="CUST382")
    domain = dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T="i64"))
    metric = dp.l02inf_distance(dp.absolute_distance(T="i64"))
    # (keys changed, L2 bound, most in one key): OpenDP bounds L2 by sqrt(l0) * linf itself
    d_in = (contributions, contributions, 1)
    scale = math.sqrt(contributions) / math.sqrt(2 * rho)

    def measurement(threshold: int) -> Any:
        return dp.m.make_gaussian_threshold(domain, metric, scale=scale, threshold=threshold)

    low, high = 1, 1 << 40
    while low < high:
        middle = (low + high) // 2
        if float(measurement(middle).map(d_in)[1]) <= delta:
            high = middle
        else:
            low = middle + 1
    chosen = measurement(low)
    spent_rho, spent_delta = (float(v) for v in chosen.map(d_in))
    if spent_rho > rho * (1 + 1e-9) or spent_delta > delta:  # OpenDP's own accounting agrees
        raise RefusedError("the key selection could not be calibrated", code="CUST382")
    kept = chosen({key: int(count) for key, count in persons.items()})
    return Selection(frozenset(kept), scale, low)


def release_with_budget(
    rt: Runtime,
    active: ActiveVersion,
    policy: Policy,
    checked: CheckedQuery,
    *,
    dry_run: bool,
    run: Callable[[str], Executed],
    plain: Callable[[], Released],
) -> tuple[Released, dict[str, Any]]:
    """The service's hook: the released result and what its ledger entry adds (the spend).

    Modes other than dp spend nothing: aggregate mode releases through ``suppress`` (exact
    person counts only where row counts do not settle a group), pseudonymous mode as usual
    (``plain``); ``dry_run`` executes nothing in any mode and says what the query would cost.
    """
    ws, agreement = rt.ws, active.agreement
    if policy.mode is not Mode.DP:
        if dry_run:
            notice = f"dry run: checked, not executed; mode {policy.mode.value} spends no budget"
            return _released((), [], (notice,)), {"epsilon_spent": 0, "dry_run": True}
        if policy.mode is Mode.AGGREGATE:
            return release_aggregate(ws, active, policy, checked, run), {"epsilon_spent": 0}
        return plain(), {"epsilon_spent": 0}
    query_plan = plan(agreement, policy, checked)
    total, delta, _ = budget_of(agreement)
    spends = ledger_spends(rt)
    used = spends.agreements.get(agreement.id, 0.0)
    used_delta = spends.deltas.get(agreement.id, 0.0)
    cost = _cost_notice(query_plan, used, total)
    # the data the projection holds is part of the key: once a following projection is extended,
    # the same query is a question about other rows and spends again
    basis = rt.state.projections.get(f"{agreement.id}@{active.version}", {})
    cache = _Cache(ws, agreement.id, active.version, checked.executed, basis)
    cached = cache.read()
    if cached is not None and (agreement.id, active.version, checked.executed, cached.sha256) in (
        spends.answers
    ):
        free = {"epsilon_spent": 0, "rho_spent": 0, "dp_cached": True}
        if dry_run:
            notice = "dry run: this exact query was answered before; asking again spends nothing"
            return _released((), [], (notice,)), {**free, "dry_run": True}
        notices = (*cached.notices, "dp: the same answer as before, from the cache: no spend")
        return _released(cached.columns, cached.rows, notices), free
    if dry_run:
        return _released((), [], (f"dry run: {cost}",)), {
            "epsilon_spent": 0,
            "rho_spent": 0,
            "dry_run": True,
        }
    _check_budget(ws, agreement, checked, query_plan, (used, used_delta), total, spends.datasets)
    # Cutting each person to `contributions` rows is the identity when nobody has more rows than
    # that (the product of the largest rows-per-person of the tables read bounds a person's rows
    # after person-matching joins); then the cut, a window over all rows, is skipped.
    per_table = rows_per_person(ws, active, policy, query_plan.tables, run)
    most = math.prod(per_table[t] for t in query_plan.tables)
    if most > query_plan.contributions:
        executed = run(query_plan.sql)
    elif len(query_plan.tables) == 1 and per_table.get(f"{query_plan.tables[0]}#null", 1) == 0:
        executed = run(query_plan.within_bound_all)  # one table, a person on every row
    else:
        executed = run(query_plan.within_bound)
    released = _noisy(query_plan, executed, (f"dp: {cost}",))
    cache.write(released)
    spend: dict[str, Any] = {
        "rho_spent": query_plan.rho,
        "epsilon_spent": epsilon_of(query_plan.rho, delta),
        "dp_delta": delta + query_plan.selection_delta,
    }
    if query_plan.selects:
        spend["delta_spent"] = query_plan.selection_delta
    return released, spend


# ---- the noisy release -------------------------------------------------------------------------


def _noisy(query_plan: DPPlan, executed: Executed, notices: tuple[str, ...]) -> Released:
    width = len(query_plan.keys)
    found = {tuple(row[:width]): row[width:] for row in executed.rows}
    shares = len(query_plan.statistics) + (1 if query_plan.selects else 0)
    rho_each = query_plan.rho / shares
    described = list(notices)
    truncated = False
    if query_plan.selects:
        cells, truncated, notice = _selected(query_plan, found, rho_each)
        described.append(notice)
    else:
        cells = list(itertools.product(*(k or () for k in query_plan.keys)))
    noisy: list[list[int]] = []
    scales: list[float] = []
    for index, statistic in enumerate(query_plan.statistics):
        exact = [int(found[cell][index] or 0) if cell in found else 0 for cell in cells]
        values, scale = gaussian(exact, statistic.sensitivity, rho_each)
        noisy.append(values)
        scales.append(scale)
    rows: list[tuple[Any, ...]] = []
    for c, cell in enumerate(cells):
        row: list[Any] = []
        for output in query_plan.outputs:
            if output.kind == "key":
                row.append(cell[output.key_index])
            elif output.kind == "count":
                row.append(noisy[output.statistics[0]][c])
            elif output.kind == "sum":
                row.append(_fixed(noisy[output.statistics[0]][c]))
            else:
                total, count = (noisy[i][c] for i in output.statistics)
                row.append(_fixed(total / count) if count >= 1 else None)
        rows.append(tuple(row))
    described.append(
        f"dp: each person's rows are limited to {query_plan.contributions}"
        + "".join(f"; {c} clamped to [{lo:g}, {hi:g}]" for c, lo, hi in query_plan.bounds)
    )
    for output in query_plan.outputs:
        if output.kind in ("count", "sum"):
            scale = scales[output.statistics[0]]
            unit = 1 if output.kind == "count" else FIXED_POINT
            described.append(
                f"dp: {output.name}: discrete Gaussian noise, scale {scale / unit:.4g}; "
                f"95% interval: value ± {Z95 * scale / unit:.4g}"
            )
        elif output.kind == "avg":
            s_sum, s_count = (scales[i] for i in output.statistics)
            described.append(
                f"dp: {output.name}: noisy sum (scale {s_sum / FIXED_POINT:.4g}) over noisy "
                f"count (scale {s_count:.4g}); 95% interval about value ± 1.96 * "
                f"sqrt({s_sum / FIXED_POINT:.4g}^2 + (value * {s_count:.4g})^2) / count"
            )
    columns = tuple(output.name for output in query_plan.outputs)
    return _released(columns, rows, tuple(described), truncated=truncated)


def _selected(
    query_plan: DPPlan, found: Mapping[tuple[Any, ...], Sequence[Any]], rho: float
) -> tuple[list[tuple[Any, ...]], bool, str]:
    """The cells key selection releases (in key order, at most ``max_rows``), whether some were
    cut, and the notice saying how they were chosen."""
    persons_at = len(query_plan.statistics)  # the bounded query's last column
    candidates = {
        json.dumps(cell): cell
        for cell in found
        if all(d is None or v in d for v, d in zip(cell, query_plan.keys, strict=True))
    }
    selection = select_keys(
        {key: int(found[cell][persons_at] or 0) for key, cell in candidates.items()},
        query_plan.contributions,
        rho,
        query_plan.selection_delta,
    )
    cells = sorted(
        (candidates[key] for key in selection.kept),
        key=lambda cell: tuple((v is not None, str(v or "")) for v in cell),
    )
    truncated = len(cells) > query_plan.max_rows
    notice = (
        f"dp: groups selected privately: a group is released only if its count of persons, "
        f"with Gaussian noise of scale {selection.scale:.4g}, reaches {selection.threshold} "
        f"(OpenDP threshold mechanism, delta {query_plan.selection_delta:.3g}); groups not "
        "released may still exist"
    )
    if truncated:
        notice += f"; only the first {query_plan.max_rows} groups in key order are shown"
    return cells[: query_plan.max_rows], truncated, notice


def _fixed(hundredths: float) -> decimal.Decimal:
    value = decimal.Decimal(repr(hundredths)) / FIXED_POINT
    return value.quantize(_CENT, rounding=decimal.ROUND_HALF_EVEN)


def _released(
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    notices: tuple[str, ...],
    *,
    truncated: bool = False,
) -> Released:
    return Released(tuple(columns), list(rows), notices, truncated, result_sha256(columns, rows))


# ---- budget ------------------------------------------------------------------------------------


def _cost_notice(query_plan: DPPlan, used: float, total: float) -> str:
    selection = (
        f" and delta {query_plan.selection_delta:.3g} to select its groups"
        if query_plan.selects
        else ""
    )
    return (
        f"this query spends rho {query_plan.rho:.6g} (epsilon "
        f"{epsilon_of(query_plan.rho, query_plan.delta):.4g} at delta {query_plan.delta:g})"
        f"{selection}; the agreement has spent rho {used:.6g} of {total:.6g}"
    )


def _check_budget(
    ws: Workspace,
    agreement: Agreement,
    checked: CheckedQuery,
    query_plan: DPPlan,
    used: tuple[float, float],
    total: float,
    datasets: Mapping[str, float],
) -> None:
    rho_used, delta_used = used
    if rho_used + query_plan.rho > total * (1 + 1e-9):
        raise RefusedError(
            f"the privacy budget of agreement '{agreement.id}' is spent "
            f"(rho {rho_used:.6g} of {total:.6g}; this query needs {query_plan.rho:.6g})",
            hint="an exact repeat of an earlier query is answered again for free; "
            "otherwise a new agreement is needed",
            code="CUST380",
        )
    delta_total = selection_budget(agreement)
    if query_plan.selects and delta_used + query_plan.selection_delta > delta_total * (1 + 1e-9):
        raise RefusedError(
            f"the privacy budget of agreement '{agreement.id}' is spent (key selection's delta "
            f"{delta_used:.3g} of {delta_total:.3g}; this query needs "
            f"{query_plan.selection_delta:.3g})",
            hint="an exact repeat of an earlier query is answered again for free; "
            "otherwise a new agreement is needed",
            code="CUST380",
        )
    cap = dataset_rho_cap(ws)
    for dataset in checked.tables:
        if datasets.get(dataset, 0.0) + query_plan.rho > cap * (1 + 1e-9):
            raise RefusedError(
                f"the privacy budget of dataset '{dataset}' across all agreements is spent "
                f"(rho {datasets.get(dataset, 0.0):.6g} of the workspace cap {cap:.6g})",
                hint="the cap is the workspace's dp_dataset_rho_cap; it does not refresh",
                code="CUST381",
            )


# ---- the custodian-side cache of released answers ----------------------------------------------


@dataclass(frozen=True)
class _Answer:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    notices: tuple[str, ...]
    sha256: str


class _Cache:
    """One file per canonical query over one state of the data:
    ``dp-cache/<sha256(agreement, version, executed sql, the projection's source digests)>``."""

    def __init__(
        self,
        ws: Workspace,
        agreement_id: str,
        version: int,
        executed: str,
        basis: Mapping[str, str],
    ) -> None:
        sources = json.dumps(dict(basis), sort_keys=True)
        text = f"{agreement_id}\n{version}\n{executed}\n{sources}"
        key = hashlib.sha256(text.encode()).hexdigest()
        self.path: Path = ws.root / "dp-cache" / f"{key}.json"

    def read(self) -> _Answer | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            columns = tuple(str(c) for c in data["columns"])
            kinds = [str(k) for k in data["kinds"]]
            rows = [
                tuple(_restore(v, k) for v, k in zip(row, kinds, strict=True))
                for row in data["rows"]
            ]
            answer = _Answer(columns, rows, tuple(str(n) for n in data["notices"]), data["sha256"])
        except (OSError, ValueError, KeyError, TypeError, decimal.InvalidOperation):
            return None  # fail safe: no usable cache entry means the query spends again
        return answer if result_sha256(answer.columns, answer.rows) == answer.sha256 else None

    def write(self, released: Released) -> None:
        kinds = [
            "fixed" if any(isinstance(r[i], decimal.Decimal) for r in released.rows) else "plain"
            for i in range(len(released.columns))
        ]
        document = {
            "columns": list(released.columns),
            "kinds": kinds,
            "rows": [[json_value(v) for v in row] for row in released.rows],
            "notices": list(released.notices),
            "sha256": released.sha256,
        }
        try:
            self.path.parent.mkdir(mode=0o700, exist_ok=True)
            temporary = self.path.with_name(f".{self.path.name}.{secrets.token_hex(6)}.tmp")
            temporary.write_text(json.dumps(document), encoding="utf-8")
            temporary.chmod(0o600)
            temporary.replace(self.path)
        except OSError:
            pass  # no cache: an identical query will spend again, which is safe


def _restore(value: Any, kind: str) -> Any:
    return decimal.Decimal(value) if kind == "fixed" and isinstance(value, str) else value


# ---- shape helpers -----------------------------------------------------------------------------


def _tables(tree: exp.Select, policy: Policy) -> dict[str, str]:
    items = [tree.args["from_"].this, *(join.this for join in tree.args.get("joins") or [])]
    aliases: dict[str, str] = {}
    for item in items:
        if not isinstance(item, exp.Table) or policy.tables.get(item.name) is None:
            raise _shape("dp mode reads datasets only")
        if policy.tables[item.name].person_column is None:
            raise _shape(
                f"dataset '{item.name}' has no pseudonymized person identifier, so "
                "contributions per person cannot be bounded"
            )
        aliases[item.alias_or_name] = item.name
    return aliases


def _persons_joined(tree: exp.Select, aliases: Mapping[str, str], policy: Policy) -> None:
    """Each join matches the joined table's person to an earlier table's person."""
    seen = [next(iter(aliases))]
    for join in tree.args.get("joins") or []:
        alias = join.this.alias_or_name
        on = join.args.get("on")
        conjuncts = list(on.flatten()) if isinstance(on, exp.And) else [on]
        if not any(_person_match(c, alias, seen, aliases, policy) for c in conjuncts):
            raise _shape(
                f"in dp mode a join must match persons ({alias}.<person> = <earlier "
                "table>.<person>), so that every joined row belongs to one person",
                code="CUST383",
            )
        seen.append(alias)


def _person_match(
    node: exp.Expr | None,
    alias: str,
    seen: list[str],
    aliases: Mapping[str, str],
    policy: Policy,
) -> bool:
    if not isinstance(node, exp.EQ):
        return False
    sides = [node.this, node.expression]
    if not all(isinstance(s, exp.Column) and s.table in aliases for s in sides):
        return False
    persons = [s for s in sides if s.name == policy.tables[aliases[s.table]].person_column]
    tables = {s.table for s in persons}
    return len(persons) == 2 and alias in tables and bool(tables & set(seen) - {alias})


def _bounded_columns(
    argument: exp.Expr, aliases: Mapping[str, str], agreement: Agreement
) -> list[str]:
    found = []
    for column in argument.find_all(exp.Column):
        table = aliases.get(column.table)
        if table is not None and column.name in (agreement.datasets[table].bounds or {}):
            found.append(f"{table}.{column.name}")
    return found


def _bounds(
    argument: exp.Expr, aliases: Mapping[str, str], agreement: Agreement
) -> tuple[float, float]:
    bounds = [
        (agreement.datasets[aliases[c.table]].bounds or {})[c.name]
        for c in argument.find_all(exp.Column)
        if c.table in aliases and c.name in (agreement.datasets[aliases[c.table]].bounds or {})
    ]
    if not bounds:
        raise _shape(
            f"sum/avg of {argument.sql(dialect=DUCKDB)} reads no column with declared bounds",
            hint="declare datasets.<name>.bounds.<column>: [low, high] in the agreement",
        )
    return min(low for low, _ in bounds), max(high for _, high in bounds)


def _not_null(argument: exp.Expr) -> exp.Expr:
    return exp.Not(this=exp.Is(this=exp.Paren(this=argument.copy()), expression=exp.Null()))


def _both(first: exp.Expr | None, second: exp.Expr | None) -> exp.Expr | None:
    if first is None or second is None:
        return first or second
    return exp.and_(exp.Paren(this=first.copy()), exp.Paren(this=second.copy()))


def _indicator(condition: exp.Expr | None) -> str:
    if condition is None:
        return "1"
    return f"CASE WHEN {condition.sql(dialect=DUCKDB)} THEN 1 ELSE 0 END"


def _shape(rule: str, *, hint: str | None = None, code: str = "CUST382") -> RefusedError:
    return RefusedError(
        rule,
        hint=hint
        or "dp mode: SELECT <declared keys>, count/sum/avg FROM t [JOIN u ON t.person = "
        "u.person] [WHERE ...] GROUP BY <declared keys>",
        code=code,
    )
