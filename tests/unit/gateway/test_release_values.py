"""Release values against literal expected JSON, digests against hand-written canonical bytes.

Every expected value here is written by hand: nothing is computed by the function under test. The
JSON form of ``json_value(v)`` is compared as text (``json.dumps``), so 105 and "105", 1 and
true, -0.0 and 0 are all different answers.
"""

from __future__ import annotations

import datetime as dt
import decimal
import fractions
import hashlib
import json
import uuid
from typing import Any

import pytest

from custodiet.agreements.model import Mode
from custodiet.catalog.classes import ColumnClass
from custodiet.gateway.contributors import HiddenCount
from custodiet.gateway.policy import ColumnKind, ColumnView, Policy, TableView
from custodiet.gateway.release import json_value, release, result_sha256


class Opaque:
    """A type release.py does not list."""

    def __str__(self) -> str:
        return "opaque<1>"


D = decimal.Decimal
UTC = dt.UTC

VALUES: list[tuple[str, Any, str]] = [
    # integers: exact up to 2^53 - 1 either way, strings beyond
    ("zero", 0, "0"),
    ("105", 105, "105"),
    ("106", 106, "106"),
    ("-106", -106, "-106"),
    ("2^53-1", 9007199254740991, "9007199254740991"),
    ("2^53", 9007199254740992, '"9007199254740992"'),
    ("-(2^53-1)", -9007199254740991, "-9007199254740991"),
    ("-(2^53)", -9007199254740992, '"-9007199254740992"'),
    ("2^70", 1180591620717411303424, '"1180591620717411303424"'),
    # floats: finite as numbers, the rest as strings
    ("float", 10.5, "10.5"),
    ("-0.0", -0.0, "-0.0"),
    ("1e308", 1e308, "1e+308"),
    ("-1e308", -1e308, "-1e+308"),
    ("5e-324", 5e-324, "5e-324"),
    ("nan", float("nan"), '"nan"'),
    ("inf", float("inf"), '"inf"'),
    ("-inf", float("-inf"), '"-inf"'),
    # None and booleans stay themselves
    ("None", None, "null"),
    ("True", True, "true"),
    ("False", False, "false"),
    # strings pass through unchanged (unicode, control characters, look-alikes)
    ("empty string", "", '""'),
    ("unicode", "Zoë ✓ 日本 🙂", '"Zoë ✓ 日本 🙂"'),
    ("controls", "a\nb\tc\x00d\x1f", '"a\\nb\\tc\\u0000d\\u001f"'),
    ("quotes", 'say "hi" \\', '"say \\"hi\\" \\\\"'),
    ("string None", "None", '"None"'),
    ("numeric string", "105", '"105"'),
    # dates and times in ISO 8601
    ("date", dt.date(2024, 2, 29), '"2024-02-29"'),
    ("datetime", dt.datetime(2024, 1, 2, 3, 4, 5), '"2024-01-02T03:04:05"'),
    ("datetime µs", dt.datetime(2024, 1, 2, 3, 4, 5, 678), '"2024-01-02T03:04:05.000678"'),
    ("datetime utc", dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), '"2024-01-02T03:04:05+00:00"'),
    ("time", dt.time(13, 5, 9), '"13:05:09"'),
    ("time µs", dt.time(0, 0, 0, 1), '"00:00:00.000001"'),
    ("timedelta", dt.timedelta(days=1, seconds=3661), '"1 day, 1:01:01"'),
    ("negative timedelta", dt.timedelta(days=-1), '"-1 day, 0:00:00"'),
    ("zero timedelta", dt.timedelta(0), '"0:00:00"'),
    # decimals: exact strings, scale kept
    ("decimal scale", D("12.50"), '"12.50"'),
    ("decimal zero scale", D("0.00"), '"0.00"'),
    ("decimal negative", D("-0.001"), '"-0.001"'),
    ("decimal integer", D("105"), '"105"'),
    (
        "decimal huge",
        D("123456789012345678901234567890.123456789"),
        '"123456789012345678901234567890.123456789"',
    ),
    ("decimal exponent", D("1E+30"), '"1E+30"'),
    ("decimal nan", D("NaN"), '"NaN"'),
    # identifiers and bytes
    (
        "uuid",
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        '"12345678-1234-5678-1234-567812345678"',
    ),
    ("bytes", b"\x00\xff", '"AP8="'),
    ("empty bytes", b"", '""'),
    ("bytearray", bytearray(b"ab"), '"YWI="'),
    ("memoryview", memoryview(b"abc"), '"YWJj"'),
    # containers, nested
    ("list", [1, None, "x"], '[1, null, "x"]'),
    ("tuple", (9007199254740992, True), '["9007199254740992", true]'),
    ("nested list", [[dt.date(2024, 1, 1)], []], '[["2024-01-01"], []]'),
    (
        "dict",
        {"a": D("1.5"), 2: [float("inf"), None], "n": {"t": dt.time(1, 2)}},
        '{"a": "1.5", "2": ["inf", null], "n": {"t": "01:02:00"}}',
    ),
    ("empty dict", {}, "{}"),
    # types not otherwise listed: their str()
    ("fraction", fractions.Fraction(1, 3), '"1/3"'),
    ("complex", complex(1, 2), '"(1+2j)"'),
    ("opaque", Opaque(), '"opaque<1>"'),
]


@pytest.mark.parametrize(("value", "expected"), [v[1:] for v in VALUES], ids=[v[0] for v in VALUES])
def test_json_value_is_the_literal_expected_json(value: Any, expected: str) -> None:
    assert json.dumps(json_value(value), ensure_ascii=False) == expected


def test_json_value_keeps_booleans_and_none_as_json_literals_not_numbers() -> None:
    assert json_value(True) is True
    assert json_value(False) is False
    assert json_value(None) is None


def test_json_value_keeps_negative_zero_a_float() -> None:
    value = json_value(-0.0)
    assert isinstance(value, float) and str(value) == "-0.0"


# ---- result_sha256 against hand-written canonical bytes (RFC 8785) -----------------------------


def _sha256(canonical: str) -> str:
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def test_result_digest_of_literal_canonical_bytes() -> None:
    columns = ("n", "when", "amount", "note")
    rows = [
        (9007199254740992, dt.date(2024, 1, 2), D("1.50"), "é\n\x01"),
        (None, True, -0.0, 105),
        (1e308, float("nan"), b"\x00\xff", [1, {"k": None}]),
    ]
    canonical = (
        '{"columns":["n","when","amount","note"],"rows":['
        '["9007199254740992","2024-01-02","1.50","é\\n\\u0001"],'
        "[null,true,0,105],"
        '[1e+308,"nan","AP8=",[1,{"k":null}]]'
        "]}"
    )
    assert result_sha256(columns, rows) == _sha256(canonical)


def test_result_digest_sorts_object_keys_and_has_no_whitespace() -> None:
    canonical = '{"columns":[],"rows":[]}'
    assert result_sha256((), []) == _sha256(canonical)
    assert result_sha256(("b", "a"), [({"z": 1, "a": 2},)]) == _sha256(
        '{"columns":["b","a"],"rows":[[{"a":2,"z":1}]]}'
    )


def test_result_digest_tells_105_from_the_string_105() -> None:
    as_int = _sha256('{"columns":["x"],"rows":[[105]]}')
    as_string = _sha256('{"columns":["x"],"rows":[["105"]]}')
    assert result_sha256(("x",), [(105,)]) == as_int
    assert result_sha256(("x",), [("105",)]) == as_string
    assert as_int != as_string


# ---- release: the row limit and the digest of what is released ---------------------------------


def _policy(mode: Mode, *, max_rows: int, min_group_size: int = 5) -> Policy:
    columns = {
        "payee_tin": ColumnView("payee_tin", ColumnKind.TOKEN, ColumnClass.IDENTIFIER, "VARCHAR"),
        "program": ColumnView("program", ColumnKind.VALUE, ColumnClass.CATEGORY, "VARCHAR"),
        "birth_year": ColumnView(
            "birth_year", ColumnKind.GENERALIZED, ColumnClass.QUASI_IDENTIFIER, "INTEGER"
        ),
        "zip": ColumnView("zip", ColumnKind.MASKED, ColumnClass.QUASI_IDENTIFIER, "VARCHAR"),
    }
    table = TableView("payments", columns, "payee_tin", frozenset({"payee_name"}))
    return Policy("a1", 1, mode, {"payments": table}, max_rows, min_group_size)


def test_exactly_max_rows_rows_are_released_whole_and_not_truncated() -> None:
    rows = [(1,), (2,), (3,)]
    released = release(_policy(Mode.PSEUDONYMOUS, max_rows=3), ("n",), rows, touched=[], hidden=())
    assert released.truncated is False
    assert released.rows == [(1,), (2,), (3,)]
    assert released.notices == ()
    assert released.sha256 == _sha256('{"columns":["n"],"rows":[[1],[2],[3]]}')


def test_max_rows_plus_one_rows_are_cut_to_max_rows_and_truncated() -> None:
    rows = [(1,), (2,), (3,), (4,)]
    released = release(_policy(Mode.PSEUDONYMOUS, max_rows=3), ("n",), rows, touched=[], hidden=())
    assert released.truncated is True
    assert released.rows == [(1,), (2,), (3,)]
    assert released.notices == ("truncated: only the first 3 rows are released",)
    assert released.sha256 == _sha256('{"columns":["n"],"rows":[[1],[2],[3]]}')


def test_one_row_limit_and_no_rows() -> None:
    one = release(_policy(Mode.PSEUDONYMOUS, max_rows=1), ("n",), [(7,)], touched=[], hidden=())
    assert (one.truncated, one.rows) == (False, [(7,)])
    empty = release(_policy(Mode.PSEUDONYMOUS, max_rows=1), ("n",), [], touched=[], hidden=())
    assert (empty.truncated, empty.rows, empty.notices) == (False, [], ())
    assert empty.sha256 == _sha256('{"columns":["n"],"rows":[]}')


def test_aggregate_groups_at_the_threshold_are_kept_and_below_it_suppressed() -> None:
    rows = [("A", 1, 5), ("B", 2, 4), ("C", 3, None), ("D", 4, 6), ("E", 5, 0)]
    released = release(
        _policy(Mode.AGGREGATE, max_rows=10, min_group_size=5),
        ("program", "n", "_p"),
        rows,
        touched=["payments.program"],
        hidden=(HiddenCount("_p", zero_allowed=False),),
    )
    assert released.columns == ("program", "n")
    assert released.rows == [("A", 1), ("D", 4)]
    assert released.notices == (
        "3 group(s) suppressed: a value came from fewer than 5 distinct persons",
    )
    assert released.truncated is False
    assert released.sha256 == _sha256('{"columns":["program","n"],"rows":[["A",1],["D",4]]}')


def test_aggregate_persons_column_is_dropped_wherever_it_stands() -> None:
    released = release(
        _policy(Mode.AGGREGATE, max_rows=10, min_group_size=2),
        ("_p", "program", "n"),
        [(2, "A", 10), (1, "B", 20)],
        touched=[],
        hidden=(HiddenCount("_p", zero_allowed=False),),
    )
    assert released.columns == ("program", "n")
    assert released.rows == [("A", 10)]
    assert released.notices == (
        "1 group(s) suppressed: a value came from fewer than 2 distinct persons",
    )


def test_aggregate_with_nothing_suppressed_has_no_notice() -> None:
    released = release(
        _policy(Mode.AGGREGATE, max_rows=10, min_group_size=2),
        ("program", "_p"),
        [("A", 2), ("B", 30)],
        touched=[],
        hidden=(HiddenCount("_p", zero_allowed=False),),
    )
    assert released.rows == [("A",), ("B",)]
    assert released.notices == ()


def test_aggregate_persons_column_missing_from_the_result_releases_nothing() -> None:
    released = release(
        _policy(Mode.AGGREGATE, max_rows=10),
        ("program", "n"),
        [("A", 100), ("B", 200)],
        touched=[],
        hidden=(HiddenCount("_p", zero_allowed=False),),
    )
    assert released.columns == ("program", "n")
    assert released.rows == []
    assert released.notices == (
        "2 group(s) suppressed: a value came from fewer than 5 distinct persons",
    )


def test_aggregate_rows_are_suppressed_before_the_row_limit_counts_them() -> None:
    rows = [("A", 9), ("B", 1), ("C", 9), ("D", 1), ("E", 9)]
    released = release(
        _policy(Mode.AGGREGATE, max_rows=3, min_group_size=5),
        ("program", "_p"),
        rows,
        touched=[],
        hidden=(HiddenCount("_p", zero_allowed=False),),
    )
    assert released.rows == [("A",), ("C",), ("E",)]
    assert released.truncated is False
    truncated = release(
        _policy(Mode.AGGREGATE, max_rows=2, min_group_size=5),
        ("program", "_p"),
        rows,
        touched=["payments.payee_tin"],
        hidden=(HiddenCount("_p", zero_allowed=False),),
    )
    assert truncated.rows == [("A",), ("C",)]
    assert truncated.notices == (
        "2 group(s) suppressed: a value came from fewer than 5 distinct persons",
        "truncated: only the first 2 rows are released",
        "columns pseudonymized (keyed tokens): payments.payee_tin",
    )


def test_pseudonymous_mode_never_suppresses_small_groups() -> None:
    released = release(
        _policy(Mode.PSEUDONYMOUS, max_rows=10),
        ("program", "_p"),
        [("A", 1)],
        touched=[],
        hidden=(HiddenCount("_p", zero_allowed=False),),
    )
    assert released.columns == ("program", "_p")
    assert released.rows == [("A", 1)]


def test_treatment_notices_name_each_treated_column_in_a_fixed_order() -> None:
    released = release(
        _policy(Mode.PSEUDONYMOUS, max_rows=10),
        ("a",),
        [],
        touched=[
            "payments.zip",
            "payments.program",
            "payments.birth_year",
            "payments.payee_tin",
            "payments.nonexistent",
            "other.zip",
            "payments",
        ],
        hidden=(),
    )
    assert released.notices == (
        "columns pseudonymized (keyed tokens): payments.payee_tin",
        "columns generalized: payments.birth_year",
        "columns masked: payments.zip",
    )


def test_treatment_notice_lists_several_columns_sorted() -> None:
    policy = _policy(Mode.PSEUDONYMOUS, max_rows=10)
    view = policy.tables["payments"]
    extra = ColumnView("account", ColumnKind.TOKEN, ColumnClass.IDENTIFIER, "VARCHAR")
    table = TableView(
        "payments", {**view.columns, "account": extra}, view.person_column, view.denied
    )
    policy = Policy("a1", 1, Mode.PSEUDONYMOUS, {"payments": table}, 10, 5)
    released = release(
        policy,
        ("a",),
        [],
        touched=["payments.payee_tin", "payments.account"],
        hidden=(),
    )
    assert released.notices == (
        "columns pseudonymized (keyed tokens): payments.account, payments.payee_tin",
    )


def test_a_group_whose_persons_count_is_null_counts_as_zero_persons() -> None:
    released = release(
        _policy(Mode.AGGREGATE, max_rows=10, min_group_size=1),
        ("program", "_p"),
        [("A", None), ("B", 1), ("C", 0)],
        touched=[],
        hidden=(HiddenCount("_p", zero_allowed=False),),
    )
    assert released.rows == [("B",)]
    assert released.notices == (
        "2 group(s) suppressed: a value came from fewer than 1 distinct persons",
    )


def test_a_non_contributor_count_of_zero_is_allowed_but_one_below_the_threshold_is_not() -> None:
    # issue 11: the non-contributors of a value (zero_allowed) may be none at all, never a few
    released = release(
        _policy(Mode.AGGREGATE, max_rows=10, min_group_size=3),
        ("program", "_p", "_q"),
        [("A", 3, 0), ("B", 3, 1), ("C", 3, 2), ("D", 3, 3), ("E", 3, None), ("F", 2, 0)],
        touched=[],
        hidden=(HiddenCount("_p", zero_allowed=False), HiddenCount("_q", zero_allowed=True)),
    )
    assert released.columns == ("program",)
    assert released.rows == [("A",), ("D",), ("E",)]
    assert released.notices == (
        "3 group(s) suppressed: a value came from fewer than 3 distinct persons",
    )


def test_every_hidden_count_must_reach_the_threshold() -> None:
    released = release(
        _policy(Mode.AGGREGATE, max_rows=10, min_group_size=2),
        ("_a", "program", "_b"),
        [(2, "A", 2), (2, "B", 1), (1, "C", 2)],
        touched=[],
        hidden=(HiddenCount("_a", zero_allowed=False), HiddenCount("_b", zero_allowed=False)),
    )
    assert (released.columns, released.rows) == (("program",), [("A",)])


def test_one_hidden_count_missing_from_the_result_releases_nothing() -> None:
    released = release(
        _policy(Mode.AGGREGATE, max_rows=10, min_group_size=2),
        ("program", "_a"),
        [("A", 50), ("B", 60)],
        touched=[],
        hidden=(HiddenCount("_a", zero_allowed=False), HiddenCount("_b", zero_allowed=False)),
    )
    assert (released.columns, released.rows) == (("program",), [])
    assert released.notices == (
        "2 group(s) suppressed: a value came from fewer than 2 distinct persons",
    )
