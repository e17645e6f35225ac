"""What checking a query costs at the checker's caps (``gateway/bounds.py``).

    .venv/bin/python bench/check_bounds.py [--runs 3]

For each adversarial shape (arithmetic and boolean chains, many columns, joins, subqueries,
CTEs, stars, nested CASE, filtered aggregates) the largest size the caps accept is found by
bisection, then checked ``--runs`` times in each mode (pseudonymous, aggregate) on the test
suite's sample policy; the figure is the median CPU time of one check (CPU, not wall: on a
shared machine the wall clock measures the neighbours). Then the worst inputs within the SQL
length limit (100,000 characters of ``1+1+...``, of ``a.a.a...``, of parentheses) are timed
being refused. Targets: every accepted check under 1 s, every refusal under 50 ms; exit 3 if
one is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from custodiet.agreements.model import Mode
from custodiet.errors import CustodietError
from custodiet.gateway import check
from custodiet.gateway.bounds import MAX_DEPTH
from custodiet.gateway.service import MAX_SQL_CHARS

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the sample policy of the tests
from tests.unit.gateway.checker_policy import sample_policy

CHECK_TARGET = 1.0
REFUSAL_TARGET = 0.05
CAPPED = frozenset({"CUST263", "CUST373", "CUST374"})
D = MAX_DEPTH // 2


def _chain(terms: int, term: str = "p.amount", op: str = "+") -> str:
    return op.join([term] * terms)


SHAPES: dict[str, Callable[[int], str]] = {
    "plus chain": lambda n: f"SELECT {_chain(n)} FROM payments p",
    "many chains": lambda n: (
        "SELECT " + ", ".join(f"({_chain(D)}) AS c{i}" for i in range(n)) + " FROM payments p"
    ),
    "OR of chains": lambda n: (
        "SELECT p.amount FROM payments p WHERE "
        + " OR ".join(f"({_chain(D)}) > {i}" for i in range(n))
    ),
    "columns": lambda n: "SELECT " + ", ".join(["amount"] * n) + " FROM payments",
    "IN list": lambda n: (
        "SELECT amount FROM payments WHERE amount IN (" + ", ".join(str(i) for i in range(n)) + ")"
    ),
    "joins": lambda n: (
        "SELECT * FROM payments p "
        + " ".join(f"JOIN payments p{i} ON p{i}.amount = p.amount" for i in range(n))
    ),
    "scalar subqueries": lambda n: (
        "SELECT "
        + ", ".join(
            f"(SELECT max(amount) FROM payments WHERE amount > {i}) AS s{i}" for i in range(n)
        )
    ),
    "CTE chain": lambda n: (
        "WITH c0 AS (SELECT * FROM payments), "
        + ", ".join(f"c{i} AS (SELECT * FROM c{i - 1})" for i in range(1, n))
        + f" SELECT * FROM c{n - 1}"
    ),
    "star subqueries": lambda n: (
        "SELECT * FROM "
        + ", ".join(f"(SELECT * FROM payments p{i}, deaths d{i}) s{i}" for i in range(n))
    ),
    "nested CASE": lambda n: (
        "SELECT " + "CASE WHEN amount > 1 THEN " * n + "1" + " END" * n + " FROM payments"
    ),
    "filtered sums": lambda n: (
        "SELECT program, "
        + ", ".join(f"sum(amount) FILTER (WHERE amount > {i}) AS s{i}" for i in range(n))
        + " FROM payments GROUP BY program"
    ),
}

REFUSED = {
    "100k chars of 1+1+...": "SELECT " + "+".join(["1"] * ((MAX_SQL_CHARS - 7) // 2)),
    "100k chars of a.a.a...": "SELECT " + ".".join(["a"] * ((MAX_SQL_CHARS - 7) // 2)),
    "100k chars of parentheses": "SELECT " + "(" * ((MAX_SQL_CHARS - 8) // 2) + "1",
}


def _outcome(sql: str, mode: Mode) -> str:
    check._check_once.cache_clear()
    try:
        check.check_query(sql, sample_policy(mode))
    except CustodietError as exc:
        return exc.code
    return "ok"


def _largest(shape: Callable[[int], str]) -> int:
    """The largest n whose SQL the caps accept (in pseudonymous mode)."""

    def fits(n: int) -> bool:
        sql = shape(n)
        return len(sql) <= MAX_SQL_CHARS and _outcome(sql, Mode.PSEUDONYMOUS) not in CAPPED

    low, high = 1, 2
    while fits(high):
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


def _cpu(sql: str, mode: Mode, runs: int) -> tuple[float, str]:
    times, outcome = [], ""
    for _ in range(runs):
        start = time.process_time()
        outcome = _outcome(sql, mode)
        times.append(time.process_time() - start)
    return statistics.median(times), outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    missed = False
    print(f"{'shape':20} {'n':>6} {'chars':>7} {'mode':13} {'cpu s':>7}  outcome")
    for name, shape in SHAPES.items():
        n = _largest(shape)
        sql = shape(n)
        for mode in (Mode.PSEUDONYMOUS, Mode.AGGREGATE):
            seconds, outcome = _cpu(sql, mode, args.runs)
            missed |= seconds >= CHECK_TARGET
            print(f"{name:20} {n:6} {len(sql):7} {mode.value:13} {seconds:7.3f}  {outcome}")
    for name, sql in REFUSED.items():
        seconds, outcome = _cpu(sql, Mode.PSEUDONYMOUS, args.runs)
        missed |= seconds >= REFUSAL_TARGET or outcome not in CAPPED
        print(f"refused: {name:28} {seconds * 1000:7.2f} ms  {outcome}")
    print("targets: " + ("MISSED" if missed else "met"))
    return 3 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
