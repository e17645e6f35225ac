"""The denied-column rule resolves names through scopes: a derived table's or CTE's output that
only shares a denied column's name is not refused; a real or ambiguous reference still is."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custodiet.agreements.model import Mode
from custodiet.catalog.classes import ColumnClass
from custodiet.errors import RefusedError
from custodiet.gateway.check import check_query
from custodiet.gateway.parse import parse_statement
from custodiet.gateway.policy import ColumnKind, ColumnView, Policy, TableView
from tests.unit.gateway.checker_policy import DEATHS_DENIED, PAYMENTS_DENIED, sample_policy

DENIED_DOB = "column 'deaths.date_of_birth' is denied"
JOINED = "FROM beneficiaries b LEFT JOIN deaths d ON b.ssn = d.ssn"


def _view(name: str, columns: dict[str, str], denied: set[str]) -> TableView:
    return TableView(
        name=name,
        columns={
            c: ColumnView(c, ColumnKind.VALUE, ColumnClass.CATEGORY, sql_type)
            for c, sql_type in columns.items()
        },
        person_column="ssn",
        denied=frozenset(denied),
    )


# beneficiaries.date_of_birth is granted; deaths.date_of_birth (same name) is denied.
POLICY = Policy(
    agreement_id="dob-split",
    version=1,
    mode=Mode.PSEUDONYMOUS,
    tables={
        "beneficiaries": _view(
            "beneficiaries", {"ssn": "VARCHAR", "date_of_birth": "DATE", "amount": "DOUBLE"}, set()
        ),
        "deaths": _view(
            "deaths", {"ssn": "VARCHAR", "date_of_death": "DATE"}, {"date_of_birth", "last_name"}
        ),
    },
    max_rows=100,
    min_group_size=11,
)

SAME_NAME_OUTPUTS = {
    "derived table": (
        f"SELECT a.date_of_birth FROM (SELECT b.date_of_birth AS date_of_birth {JOINED}) a"
    ),
    "derived table, unqualified outer": (
        f"SELECT date_of_birth FROM (SELECT b.date_of_birth {JOINED}) a"
    ),
    "derived table, ordered by the output": (
        f"SELECT a.date_of_birth AS date_of_birth FROM (SELECT b.date_of_birth {JOINED}) a "
        "ORDER BY date_of_birth"
    ),
    "cte": (
        f"WITH a AS (SELECT b.date_of_birth AS date_of_birth {JOINED}) "
        "SELECT a.date_of_birth FROM a"
    ),
    "cte joined back to deaths": (
        f"WITH a AS (SELECT b.ssn, b.date_of_birth {JOINED}) "
        "SELECT a.date_of_birth FROM a JOIN deaths d ON a.ssn = d.ssn"
    ),
    "union branch": (
        "SELECT u.date_of_birth FROM (SELECT b.date_of_birth FROM beneficiaries b "
        f"UNION ALL SELECT b.date_of_birth {JOINED}) u"
    ),
    "star of the granted side": f"SELECT s.date_of_birth FROM (SELECT b.* {JOINED}) s",
    "cte named like the dataset": (
        "WITH deaths AS (SELECT b.ssn, b.date_of_birth FROM beneficiaries b) "
        "SELECT date_of_birth FROM deaths"
    ),
    "correlated subquery reading the outer side": (
        "SELECT b.ssn FROM beneficiaries b WHERE EXISTS "
        "(SELECT 1 FROM deaths d WHERE d.ssn = b.ssn AND b.date_of_birth < d.date_of_death)"
    ),
}


@pytest.mark.parametrize("sql", SAME_NAME_OUTPUTS.values(), ids=SAME_NAME_OUTPUTS.keys())
def test_an_output_sharing_a_denied_name_is_not_the_denied_column(sql: str) -> None:
    checked = check_query(sql, POLICY)
    assert "beneficiaries.date_of_birth" in checked.columns
    assert not {c for c in checked.columns if c.startswith("deaths.date_of_birth")}
    assert parse_statement(checked.executed).named_selects[0] in {"date_of_birth", "ssn"}


REALLY_DENIED = {
    "qualified by the denied table's alias": f"SELECT d.date_of_birth {JOINED}",
    "in the derived table itself": (
        f"SELECT a.date_of_birth FROM (SELECT d.date_of_birth AS date_of_birth {JOINED}) a"
    ),
    "renamed in a cte": (
        f"WITH a AS (SELECT d.date_of_birth AS born {JOINED}) SELECT a.born FROM a"
    ),
    "through the denied side's star": f"SELECT s.date_of_birth FROM (SELECT d.* {JOINED}) s",
    "in a later union branch": (
        f"SELECT b.date_of_birth FROM beneficiaries b UNION ALL SELECT d.date_of_birth {JOINED}"
    ),
    "through a cte's star over the dataset it shadows": (
        "WITH deaths AS (SELECT * FROM deaths) SELECT date_of_birth FROM deaths"
    ),
    "inside a correlated subquery": (
        "SELECT b.ssn FROM beneficiaries b WHERE EXISTS "
        "(SELECT 1 FROM deaths d WHERE d.ssn = b.ssn AND date_of_birth IS NOT NULL)"
    ),
}


@pytest.mark.parametrize("sql", REALLY_DENIED.values(), ids=REALLY_DENIED.keys())
def test_a_reference_that_reads_the_denied_column_is_refused_naming_it(sql: str) -> None:
    with pytest.raises(RefusedError) as caught:
        check_query(sql, POLICY)
    assert caught.value.rule.startswith(DENIED_DOB)
    assert caught.value.code == "CUST341"


AMBIGUOUS = {
    "unqualified over both tables": f"SELECT date_of_birth {JOINED}",
    "unqualified over a derived table and the denied table": (
        "SELECT date_of_birth FROM (SELECT b.ssn, b.date_of_birth FROM beneficiaries b) a "
        "JOIN deaths d ON a.ssn = d.ssn"
    ),
    "through a star over both tables": f"SELECT s.date_of_birth FROM (SELECT * {JOINED}) s",
}


@pytest.mark.parametrize("sql", AMBIGUOUS.values(), ids=AMBIGUOUS.keys())
def test_an_ambiguous_reference_to_a_denied_name_is_refused(sql: str) -> None:
    with pytest.raises(RefusedError) as caught:
        check_query(sql, POLICY)
    assert caught.value.rule.startswith(DENIED_DOB)


def test_an_unresolvable_qualifier_is_taken_for_any_dataset_in_the_query_denying_the_name() -> None:
    with pytest.raises(RefusedError) as caught:
        check_query(f"SELECT x.last_name {JOINED}", POLICY)
    assert caught.value.rule.startswith("column 'deaths.last_name' is denied")


def test_an_unresolvable_name_no_dataset_in_the_query_denies_is_not_resolved() -> None:
    with pytest.raises(RefusedError) as caught:
        check_query("SELECT x.last_name FROM beneficiaries b", POLICY)
    assert "does not resolve" in caught.value.rule


SAMPLE = sample_policy()
DENIED_NAMES = PAYMENTS_DENIED | DEATHS_DENIED
OTHER = {"payments": ("deaths", "payee_tin", "ssn"), "deaths": ("payments", "ssn", "payee_tin")}
WRAPPERS = {
    "derived": "SELECT w.{name} FROM ({inner}) w",
    "cte": "WITH w AS ({inner}) SELECT {name} FROM w",
    "cte named like the dataset": "WITH {table} AS ({inner}) SELECT {name} FROM {table}",
    "union": "SELECT u.{name} FROM ({inner} UNION ALL {inner}) u",
}


@st.composite
def renamed_granted_column(draw: st.DrawFn) -> str:
    """A granted column renamed to a denied name inside a subquery, CTE or union, read outside."""
    table = draw(st.sampled_from(sorted(OTHER)))
    granted = draw(st.sampled_from(sorted(SAMPLE.tables[table].columns)))
    name = draw(st.sampled_from(sorted(DENIED_NAMES)))
    inner = f"SELECT x.{granted} AS {name} FROM {table} x"
    if draw(st.booleans()):
        other, key, other_key = OTHER[table]
        inner += f" JOIN {other} o ON x.{key} = o.{other_key}"
    wrapper = draw(st.sampled_from(sorted(WRAPPERS.values())))
    return wrapper.format(inner=inner, name=name, table=table)


@settings(max_examples=60, deadline=None)
@given(sql=renamed_granted_column())
def test_a_granted_column_renamed_to_a_denied_name_is_accepted_and_reads_granted_only(
    sql: str,
) -> None:
    checked = check_query(sql, SAMPLE)
    for column in checked.columns:
        table, name = column.split(".")
        assert name in SAMPLE.tables[table].columns
