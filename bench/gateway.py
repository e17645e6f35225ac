"""Gateway benchmark: queries through the gateway vs raw DuckDB, and activation.

    .venv/bin/python bench/gateway.py [--payments 10000000] [--deaths 500000] [--runs 5]

Data (generated with DuckDB SQL in a temp dir): payments over 2M payees, deaths of 500k people,
SSNs written the same way in both files so the raw SQL is the very SQL the reviewer submits.
Each query (a)-(d) runs through ``run_query`` in-process on one long-lived runtime, as a server
holds it (the reviewer's signed request checked by the replay rules, the intent appended, check,
rewrite, execute on the projection, release, durable outcome append) and as the same SQL on raw
DuckDB over the raw Parquet, alternating, after one warm-up each; the figure is
median(gateway) / median(raw). The workspace is governed as the tests govern theirs
(``tests/kit.py``: custodians c1 and c2, reviewer rev, keys derived from the names).
Activation (the custodian-side projection build, ``build_for``) is compared with DuckDB computing
the same HMAC-SHA256 tokens in SQL over the same files (DuckDB has no hmac(); the baseline
composes it from two sha256() calls, the textbook construction, and writes the same tables).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import yaml

from custodiet.agreements.lifecycle import active_agreement
from custodiet.catalog.registry import get_dataset
from custodiet.gateway.projection import build_for, projection_files
from custodiet.gateway.service import QueryResult, run_query
from custodiet.gateway.tokens import agreement_key, read_secret
from custodiet.principals import Role
from custodiet.runtime import Runtime, opened
from custodiet.workspace import Workspace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test kit signs as principals
from tests.kit import Kit

QUERIES = {
    "a_by_program": "SELECT program, count(*) AS n, sum(amount) AS total FROM payments "
    "GROUP BY program ORDER BY program",
    "b_paid_after_death": "SELECT count(*) AS n, sum(p.amount) AS total FROM payments p "
    "JOIN deaths d ON p.payee_tin = d.ssn "
    "WHERE p.payment_date > d.date_of_death "
    "AND date_trunc('month', p.payment_date) = DATE '2024-06-01'",
    "c_duplicates": "SELECT payee_tin, amount, payment_date, count(*) AS n FROM payments "
    "GROUP BY payee_tin, amount, payment_date HAVING count(*) > 1 "
    "ORDER BY n DESC, payee_tin LIMIT 100",
    "d_distinct_payees": "SELECT program, count(DISTINCT payee_tin) AS payees FROM payments "
    "GROUP BY program ORDER BY program",
}
PEOPLE = 2_000_000


def _aba(prefix: int) -> str:
    digits = [int(c) for c in f"{prefix:08d}"]
    total = 3 * (digits[0] + digits[3] + digits[6]) + 7 * (digits[1] + digits[4] + digits[7])
    total += digits[2] + digits[5]
    return f"{prefix:08d}{(10 - total % 10) % 10}"


def generate(directory: Path, payments: int, deaths: int) -> dict[str, Path]:
    ssn = "printf('%03d%02d%04d', 1 + {i} % 665, 1 + ({i} // 665) % 99, 1 + {i} // (665 * 99))"
    routings = ", ".join(f"'{_aba(11000000 + 17 * k)}'" for k in range(50))
    paths = {"payments": directory / "payments.parquet", "deaths": directory / "deaths.parquet"}
    con = duckdb.connect()
    con.execute(
        f"""COPY (
          SELECT 'P' || lpad(CAST(j AS VARCHAR), 9, '0') AS payment_id,
                 {ssn.format(i="i")} AS payee_tin,
                 'Payee ' || CAST(i AS VARCHAR) AS payee_name,
                 'SSA' AS agency,
                 ['RSI', 'SSDI', 'SSI'][1 + i % 3] AS program,
                 CAST(500 + (i % 200) * 5 AS DECIMAL(12,2)) AS amount,
                 CAST(DATE '2023-01-01' + INTERVAL (j % 24) MONTH AS DATE) AS payment_date,
                 [{routings}][1 + i % 50] AS routing_number,
                 lpad(CAST(7000000 + i AS VARCHAR), 10, '0') AS account_number,
                 'ACH' AS method
          FROM (SELECT j, CAST(hash(j) % {PEOPLE} AS BIGINT) AS i FROM range({payments}) t(j))
        ) TO '{paths["payments"]}' (FORMAT parquet)"""
    )
    con.execute(
        f"""COPY (
          SELECT {ssn.format(i="i")} AS ssn, 'F' AS first_name, 'L' AS last_name,
                 CAST(DATE '1930-01-01' + INTERVAL (i % 60) YEAR AS DATE) AS date_of_birth,
                 CAST(DATE '2023-01-01' + INTERVAL (i % 700) DAY AS DATE) AS date_of_death
          FROM (SELECT k * {PEOPLE // deaths} AS i FROM range({deaths}) t(k))
        ) TO '{paths["deaths"]}' (FORMAT parquet)"""
    )
    con.close()
    return paths


AGREEMENT = {
    "id": "bench",
    "purpose": "benchmark",
    "reviewer": "rev",
    "expires": "2099-12-31",
    "mode": "pseudonymous",
    "datasets": {
        "payments": {
            "columns": {
                "payment_id": "allow",
                "payee_tin": "pseudonymize",
                "program": "allow",
                "amount": "allow",
                "payment_date": "allow",
                "routing_number": "pseudonymize",
                "account_number": "pseudonymize",
            }
        },
        "deaths": {"columns": {"ssn": "pseudonymize", "date_of_death": "allow"}},
    },
    "limits": {"max_rows": 10000, "min_group_size": 11, "timeout_seconds": 600},
}


def workspace(root: Path, data: dict[str, Path]) -> Workspace:
    """Custodians c1 and c2 (K = 2), reviewer rev; the datasets registered by c1; the agreement
    proposed by rev and approved by c1 and c2 (the second approval builds its projection)."""
    kit = Kit(root)
    ws = kit.init(root / "ws", custodians=("c1", "c2"), k=2)
    kit.add_principal(ws, "rev", Role.REVIEWER, by=("c1",))
    for name, path in data.items():
        kit.add_dataset(ws, name, path, {}, by=("c1",))
    agreement = root / "bench.yaml"
    agreement.write_text(yaml.safe_dump(AGREEMENT))
    kit.apply(ws, agreement, by="rev")
    kit.approve_all(ws, "bench", by=("c1", "c2"))
    return ws


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def hmac_sql_baseline(ws: Workspace, data: dict[str, Path], target: Path) -> Callable[[], None]:
    """DuckDB computing HMAC-SHA256(key, domain || 0x00 || value) per row, same tables out."""
    key = agreement_key(read_secret(ws.secret_path), "bench", "rev")
    inner = "'\\x" + "\\x".join(f"{b ^ 0x36:02x}" for b in key.ljust(64, b"\0")) + "'::BLOB"
    outer = "'\\x" + "\\x".join(f"{b ^ 0x5C:02x}" for b in key.ljust(64, b"\0")) + "'::BLOB"

    with opened(ws) as rt:
        kinds = {
            (name, column): info.identifier_kind
            for name in data
            for column, info in get_dataset(rt.state, name).columns.items()
        }

    def typed_digits(table: str, column: str) -> str:
        """The normalized value as tokens.py has it: SSNs and EINs typed, other kinds bare."""
        digits = f"regexp_replace({column}, '[^0-9]', '', 'g')"
        kind = kinds[(table, column)]
        if kind in ("ssn", "ein"):
            return f"'{kind}:' || {digits}"
        if kind == "tin":
            ein = f"regexp_full_match({column}, '\\s*[0-9]{{2}}-[0-9]{{7}}\\s*')"
            return f"CASE WHEN {ein} THEN 'ein:' ELSE 'ssn:' END || {digits}"
        return digits

    def token(column: str, domain: str, table: str = "payments") -> str:
        message = f"'{domain}\\x00'::BLOB || CAST({typed_digits(table, column)} AS BLOB)"
        mac = f"unhex(sha256({outer} || unhex(sha256({inner} || {message}))))"
        return f"left(replace(replace(to_base64({mac}), '+', '-'), '/', '_'), 12)"

    def run() -> None:
        target.unlink(missing_ok=True)
        con = duckdb.connect(str(target))
        con.execute(
            "CREATE TABLE payments AS SELECT payment_id, "
            f"{token('payee_tin', 'tin')} AS payee_tin, program, amount, payment_date, "
            f"{token('routing_number', 'routing')} AS routing_number, "
            f"{token('account_number', 'account')} AS account_number "
            f"FROM read_parquet('{data['payments']}')"
        )
        con.execute(
            f"CREATE TABLE deaths AS SELECT {token('ssn', 'tin', 'deaths')} AS ssn, date_of_death "
            f"FROM read_parquet('{data['deaths']}')"
        )
        con.execute("CHECKPOINT")
        con.close()

    return run


def check_baseline_is_the_same_hmac(ws: Workspace, target: Path, projection: Path) -> None:
    con = duckdb.connect(str(projection), read_only=True)
    con.execute(f"ATTACH '{target}' AS base (READ_ONLY)")
    same = con.execute(
        "SELECT (SELECT count(*) FROM (SELECT ssn FROM deaths EXCEPT SELECT ssn FROM base.deaths))"
        " + (SELECT count(*) FROM (SELECT payee_tin FROM payments"
        " EXCEPT SELECT payee_tin FROM base.payments))"
    ).fetchone()
    con.close()
    assert same == (0,), "the SQL baseline does not compute the same tokens"


def activation(rt: Runtime, data: dict[str, Path], runs: int, scratch: Path) -> None:
    """The custodian-side build (re-hash the registered sources, build, record the build)."""
    ws = rt.ws
    active = active_agreement(rt.state, "bench")
    files = projection_files(ws, active)
    baseline = hmac_sql_baseline(ws, data, scratch / "baseline.duckdb")
    ours, theirs = [], []
    for _ in range(runs):
        files.database.unlink(missing_ok=True)
        files.policy.unlink(missing_ok=True)
        ours.append(timed(lambda: build_for(rt, active)))
        theirs.append(timed(baseline))
    check_baseline_is_the_same_hmac(ws, scratch / "baseline.duckdb", files.database)
    report("activation (projection build)", ours, theirs, 1.5)


def data_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every gateway-side bench shares: the data's size and the runs per figure."""
    parser.add_argument("--payments", type=int, default=10_000_000)
    parser.add_argument("--deaths", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=5)


def generated(scratch: Path, payments: int, deaths: int) -> dict[str, Path]:
    """The bench's tables under ``scratch``, with a line saying how long they took."""
    started = time.perf_counter()
    data = generate(scratch, payments, deaths)
    print(
        f"data: {payments:,} payments, {deaths:,} deaths "
        f"({time.perf_counter() - started:.1f} s); {os.cpu_count()} cores",
        flush=True,
    )
    return data


def raw_engine(data: dict[str, Path]) -> duckdb.DuckDBPyConnection:
    """The baseline: plain DuckDB over the same Parquet files, one view per table."""
    raw = duckdb.connect()
    for name, path in data.items():
        raw.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")
    return raw


def signed_query(rt: Runtime, agreement: str, sql: str) -> QueryResult:
    """The reviewer's signed query through the gateway (signature, intent, outcome)."""
    request = Kit().sign(rt, "rev", "query", {"agreement": agreement, "sql": sql})
    return run_query(rt, request)


def queries(rt: Runtime, data: dict[str, Path], runs: int) -> None:
    def gateway(sql: str) -> list[tuple[object, ...]]:
        return signed_query(rt, "bench", sql).rows

    raw = raw_engine(data)
    for name, sql in QUERIES.items():
        gateway_rows = gateway(sql)  # warm-up, and same answer
        raw_rows = raw.execute(sql).fetchall()
        assert len(gateway_rows) == len(raw_rows), name
        ours, theirs = [], []
        for _ in range(runs):
            ours.append(timed(lambda sql=sql: gateway(sql)))
            theirs.append(timed(lambda sql=sql: raw.execute(sql).fetchall()))
        report(name, ours, theirs, 1.15)


def report(name: str, ours: list[float], theirs: list[float], target: float) -> bool:
    """Print the same-run ratio; True when it missed the target."""
    mine, base = statistics.median(ours), statistics.median(theirs)
    ratio = mine / base
    print(
        f"{name:34s} gateway {mine:7.3f} s  raw {base:7.3f} s"
        f"  ratio {ratio:5.2f}x  target <= {target}x  {'OK' if ratio <= target else 'MISSED'}",
        flush=True,
    )
    return ratio > target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data_arguments(parser)
    parser.add_argument("--activation-runs", type=int, default=3)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="custodiet-bench-"))
    try:
        data = generated(scratch, args.payments, args.deaths)
        ws = workspace(scratch, data)
        with opened(ws) as rt:
            activation(rt, data, args.activation_runs, scratch)
            queries(rt, data, args.runs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
