"""parse_statement: one statement in, or an error that points at the place to fix."""

from __future__ import annotations

import pytest
from sqlglot import exp

from custodiet.errors import InputError, RefusedError
from custodiet.gateway.parse import parse_statement, underline


def test_parses_one_select_in_duckdb_dialect() -> None:
    tree = parse_statement("FROM payments SELECT amount;")
    assert isinstance(tree, exp.Select)
    assert tree.sql(dialect="duckdb") == "SELECT amount FROM payments"


def test_syntax_error_names_line_and_column_and_underlines_the_token() -> None:
    with pytest.raises(InputError) as caught:
        parse_statement("SELECT amount\nFROM payments WHERE (")
    error = caught.value
    assert error.code == "CUST260"
    assert error.exit_status == 2
    assert error.message.splitlines() == [
        "SQL syntax error at line 2, column 21",
        "  FROM payments WHERE (",
        "                      ~",
    ]


@pytest.mark.parametrize("operator", ["->", "->>"])
def test_dangling_json_arrow_is_a_located_syntax_error_not_a_crash(operator: str) -> None:
    # the compiled parser (sqlglotc) meets this dead end with a TypeError, not a ParseError
    with pytest.raises(InputError) as caught:
        parse_statement(f"SELECT amount\nFROM payments WHERE amount {operator}")
    assert caught.value.code == "CUST260"
    lines = caught.value.message.splitlines()
    assert lines[0].startswith("SQL syntax error at line 2, column ")
    assert lines[1:] == [
        f"  FROM payments WHERE amount {operator}",
        f"  {' ' * 27}{'~' * len(operator)}",
    ]


def test_unterminated_string_is_bad_input_without_echoing_it() -> None:
    with pytest.raises(InputError) as caught:
        parse_statement("SELECT 'secret-ish")
    assert caught.value.code == "CUST261"
    assert "secret-ish" not in caught.value.render()


@pytest.mark.parametrize("sql", ["", "   ", "-- only a comment", ";"])
def test_empty_sql_is_bad_input(sql: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_statement(sql)
    assert caught.value.code == "CUST262"


def test_second_statement_is_refused_and_underlined() -> None:
    with pytest.raises(RefusedError) as caught:
        parse_statement("SELECT 1; COPY payments TO 'x.csv'")
    assert caught.value.rule == "only one statement per query is allowed"
    assert caught.value.excerpt == (
        "  SELECT 1; COPY payments TO 'x.csv'\n            ~~~~~~~~~~~~~~~~~~~~~~~~"
    )


@pytest.mark.parametrize("statement", ["EXPORT DATABASE '/tmp/d'", "IMPORT DATABASE '/tmp/d'"])
def test_unparseable_statements_are_refused_not_reported_as_typos(statement: str) -> None:
    with pytest.raises(RefusedError) as caught:
        parse_statement(statement)
    keyword = statement.split()[0]
    assert caught.value.rule == f"statement {keyword} is not allowed: only SELECT queries"


def test_underline_falls_back_to_searching_the_name() -> None:
    sql = "SELECT amount\nFROM payments"
    table = exp.Table(this=exp.Identifier(this="payments"))
    assert underline(sql, table) == "  FROM payments\n       ~~~~~~~~"


def test_absurd_nesting_is_bad_input_not_a_crash() -> None:
    with pytest.raises(InputError) as caught:
        parse_statement("SELECT " + "(" * 500 + "1" + ")" * 500)
    assert caught.value.code == "CUST263"
