"""What checking may cost: the pre-scan, the tree caps and the deadline refuse with their codes
(never by timing: each test asserts the code, and what is just inside a cap still passes)."""

from __future__ import annotations

import pytest

from custodiet.agreements.screening import ScreenSettings
from custodiet.errors import CustodietError, InputError, RefusedError
from custodiet.gateway.bounds import (
    MAX_DEPTH,
    MAX_EXPANDED_NODES,
    MAX_NODES,
    MAX_TOKENS,
    Deadline,
    scan,
    tree_within,
)
from custodiet.gateway.check import check_query
from custodiet.gateway.parse import parse_statement
from custodiet.gateway.service import MAX_SQL_CHARS
from custodiet.screens import SCREENS
from tests.unit.gateway.checker_policy import sample_policy

PSEUDO = sample_policy()


def _code(sql: str, deadline: Deadline | None = None) -> str:
    with pytest.raises(CustodietError) as caught:
        check_query(sql, PSEUDO, deadline)
    return caught.value.code


def test_the_longest_arithmetic_chain_within_the_length_limit_is_refused_before_parsing() -> None:
    terms = (MAX_SQL_CHARS - len("SELECT ")) // 2
    sql = "SELECT " + "+".join(["1"] * terms)
    assert len(sql) <= MAX_SQL_CHARS
    with pytest.raises(RefusedError) as caught:
        check_query(sql, PSEUDO)
    assert caught.value.code == "CUST373"
    assert caught.value.message.startswith("refused: the query is too long to check")


def test_tokens_are_counted_outside_strings_and_comments() -> None:
    padding = " ".join(["word"] * (MAX_TOKENS + 10))
    assert check_query(f"SELECT amount FROM payments -- {padding}", PSEUDO).tables == ("payments",)
    assert check_query(f"SELECT '{padding}' AS s FROM payments", PSEUDO).tables == ("payments",)
    scan(f"SELECT '{'(' * (MAX_DEPTH + 10)}'")  # parentheses in a string nest nothing


def test_a_chain_just_inside_the_token_cap_passes_the_scan_and_one_past_it_does_not() -> None:
    # "SELECT" + n terms + (n - 1) operators = 2n tokens
    scan("SELECT " + "+".join(["1"] * (MAX_TOKENS // 2)))
    with pytest.raises(RefusedError) as caught:
        scan("SELECT " + "+".join(["1"] * (MAX_TOKENS // 2 + 1)))
    assert caught.value.code == "CUST373"


def test_a_dotted_chain_counts_its_dots() -> None:
    sql = "SELECT " + ".".join(["a"] * (MAX_SQL_CHARS // 2 - 10))
    assert _code(sql) == "CUST373"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT " + "(" * (MAX_DEPTH + 1) + "amount" + ")" * (MAX_DEPTH + 1) + " FROM payments",
        "SELECT " + "+".join(["amount"] * (MAX_DEPTH + 1)) + " FROM payments",
        "SELECT amount FROM payments WHERE " + " AND ".join(["amount > 1"] * (MAX_DEPTH + 1)),
        "SELECT "
        + "CASE WHEN amount > 1 THEN " * MAX_DEPTH
        + "1"
        + " END" * MAX_DEPTH
        + " FROM payments",
    ],
    ids=["parentheses", "arithmetic chain", "AND chain", "nested CASE"],
)
def test_nesting_past_the_depth_cap_is_bad_input(sql: str) -> None:
    with pytest.raises(InputError) as caught:
        check_query(sql, PSEUDO)
    assert caught.value.code == "CUST263"


def test_a_chain_of_half_the_depth_cap_is_checked() -> None:
    sql = "SELECT " + "+".join(["amount"] * (MAX_DEPTH // 2)) + " FROM payments"
    assert check_query(sql, PSEUDO).columns == ("payments.amount",)


def test_more_nodes_than_the_cap_within_the_token_cap_is_refused() -> None:
    # each ", amount" is two tokens and two nodes (column, name): past the node cap first
    columns = MAX_NODES // 2 + 10
    sql = "SELECT " + ", ".join(["amount"] * columns) + " FROM payments"
    scan(sql)
    assert len(parse_statement(sql).named_selects) == columns
    assert _code(sql) == "CUST374"


def test_a_passed_deadline_refuses_the_check_with_its_own_code() -> None:
    sql = "SELECT program, count(*) AS n FROM payments GROUP BY program"
    assert _code(sql, Deadline(0.0)) == "CUST375"
    assert check_query(sql, PSEUDO, Deadline(60.0)).tables == ("payments",)


def test_every_screen_is_far_inside_the_caps() -> None:
    for screen in SCREENS.values():
        scan(screen.sql_for(ScreenSettings()))
        nodes = sum(1 for _ in parse_statement(screen.sql_for(ScreenSettings())).walk())
        assert nodes * 10 < MAX_NODES, screen.name


def test_stars_that_expand_past_the_expanded_cap_are_refused() -> None:
    tables = 400  # about 2,000 nodes as written, over 10,000 once each * is expanded
    sql = "SELECT * FROM " + ", ".join(f"payments p{i}" for i in range(tables))
    scan(sql)
    tree_within(parse_statement(sql))
    with pytest.raises(RefusedError) as caught:
        check_query(sql, PSEUDO)
    assert caught.value.code == "CUST374"
    assert f"more than {MAX_EXPANDED_NODES:,} syntax nodes once every *" in caught.value.message
