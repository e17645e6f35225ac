from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json

from custodiet.agreements.model import Mode
from custodiet.catalog.classes import ColumnClass
from custodiet.gateway.contributors import HiddenCount
from custodiet.gateway.policy import ColumnKind, ColumnView, Policy, TableView
from custodiet.gateway.release import json_value, release, result_sha256, rows_bytes


def _policy(mode: Mode, *, max_rows: int = 3, min_group_size: int = 5) -> Policy:
    columns = {
        "payee_tin": ColumnView("payee_tin", ColumnKind.TOKEN, ColumnClass.IDENTIFIER, "VARCHAR"),
        "program": ColumnView("program", ColumnKind.VALUE, ColumnClass.CATEGORY, "VARCHAR"),
        "birth_year": ColumnView(
            "birth_year", ColumnKind.GENERALIZED, ColumnClass.QUASI_IDENTIFIER, "DATE"
        ),
    }
    table = TableView("payments", columns, "payee_tin", frozenset({"payee_name"}))
    return Policy("a1", 1, mode, {"payments": table}, max_rows, min_group_size)


def test_pseudonymous_results_are_cut_at_max_rows_with_a_truncated_notice() -> None:
    rows = [(f"t{i}", "SSI") for i in range(4)]  # the checker's LIMIT is max_rows + 1
    released = release(
        _policy(Mode.PSEUDONYMOUS),
        ("payee_tin", "program"),
        rows,
        touched=["payments.payee_tin"],
    )
    assert released.truncated and released.rows == rows[:3]
    assert "truncated: only the first 3 rows are released" in released.notices


def test_results_within_the_limit_are_not_truncated() -> None:
    rows = [("t1", "SSI")]
    released = release(_policy(Mode.PSEUDONYMOUS), ("payee_tin", "program"), rows, touched=[])
    assert not released.truncated and released.rows == rows and released.notices == ()


def test_aggregate_groups_below_the_threshold_are_suppressed_without_their_counts() -> None:
    rows = [("RSI", 100, 12), ("SSDI", 7, 4), ("SSI", 30, 5), ("XX", 999, 1)]
    released = release(
        _policy(Mode.AGGREGATE, max_rows=10),
        ("program", "n", "_persons"),
        rows,
        touched=["payments.program"],
        hidden=(HiddenCount("_persons", zero_allowed=False),),
    )
    assert released.columns == ("program", "n")
    assert released.rows == [("RSI", 100), ("SSI", 30)]
    assert released.notices == (
        "2 group(s) suppressed: a value came from fewer than 5 distinct persons",
    )
    assert not any("7" in n or "999" in n or "4" in n for n in released.notices)


def test_aggregate_without_a_persons_column_releases_nothing() -> None:
    released = release(_policy(Mode.AGGREGATE), ("n",), [(1000,)], touched=[])
    assert released.rows == [] and released.notices[0].startswith("1 group(s) suppressed")


def test_notices_name_pseudonymized_and_generalized_columns_touched() -> None:
    released = release(
        _policy(Mode.PSEUDONYMOUS),
        ("a",),
        [],
        touched=["payments.program", "payments.payee_tin", "payments.birth_year"],
    )
    assert released.notices == (
        "columns pseudonymized (keyed tokens): payments.payee_tin",
        "columns generalized: payments.birth_year",
    )


def test_result_digest_is_sha256_of_canonical_json_of_columns_and_rows() -> None:
    columns = ("b", "a")
    rows = [(decimal.Decimal("12.50"), dt.date(2024, 1, 2))]
    expected = hashlib.sha256(
        json.dumps(
            {"columns": ["b", "a"], "rows": [["12.50", "2024-01-02"]]},
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
    ).hexdigest()
    assert result_sha256(columns, rows) == expected
    assert result_sha256(columns, rows) != result_sha256(
        columns, [(decimal.Decimal("12.51"), dt.date(2024, 1, 2))]
    )
    released = release(_policy(Mode.PSEUDONYMOUS), columns, rows, touched=[])
    assert released.sha256 == expected


def test_json_values_are_exact_and_json_safe() -> None:
    assert json_value(decimal.Decimal("0.10")) == "0.10"
    assert json_value(2**70) == str(2**70)
    assert json_value(float("nan")) == "nan"
    assert json_value(b"\x00\x01") == "AAE="
    assert json_value(dt.datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02T03:04:05"
    assert json_value([1, {"k": dt.date(2024, 1, 1)}]) == [1, {"k": "2024-01-01"}]


def test_rows_bytes_counts_strings_by_length_and_fixed_types_by_width() -> None:
    when = dt.date(2024, 1, 1)
    row = ("abcd", 7, 1.5, decimal.Decimal("2.50"), when, None, [1, "xy"], {"k": "v"})
    # 8 per value, then 4 + 8 + 8 + 16 + 8 + 1 + (8 + 8 + 2) + (8 + 1 + 1)
    assert rows_bytes([row]) == 8 * len(row) + 4 + 8 + 8 + 16 + 8 + 1 + 18 + 10
    assert rows_bytes([row, row]) == 2 * rows_bytes([row])
