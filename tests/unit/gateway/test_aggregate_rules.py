"""Aggregate mode through the public check_query: what it refuses (each with its code and rule),
what it accepts, and which dataset's persons are counted.

Each refusal here is one the aggregate rules alone make: dropping the rule (or the entry in its
forbidden list) turns the refusal into an acceptance, another rule's refusal, or a crash.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from custodiet.agreements.model import Mode
from custodiet.catalog.classes import ColumnClass
from custodiet.errors import RefusedError
from custodiet.gateway.check import CheckedQuery, check_query
from custodiet.gateway.contributors import HIDDEN_PREFIX
from custodiet.gateway.policy import ColumnKind, ColumnView, Policy
from tests.unit.gateway.checker_policy import sample_policy

AGG = sample_policy(Mode.AGGREGATE)
PSEUDO = sample_policy(Mode.PSEUDONYMOUS)
HINT = "aggregate mode: SELECT <groups>, count/sum/avg FROM ... GROUP BY <groups>"


def counted(checked: CheckedQuery) -> list[tuple[str, str, bool]]:
    """(hidden output, dataset whose persons it counts, zero allowed) of each hidden count."""
    return [(h.name, h.table, h.zero_allowed) for h in checked.hidden]


# The group's own persons of payments: count(*) contributes every row (issue 11).
GROUP_OF_PAYMENTS = [(f"{HIDDEN_PREFIX}persons_0", "payments", False)]


def refusal(sql: str, policy: Policy = AGG) -> RefusedError:
    with pytest.raises(RefusedError) as caught:
        check_query(sql, policy)
    return caught.value


# Each is accepted in pseudonymous mode, so the refusal is the aggregate rule's own.
SINGLE_LEVEL = {
    "CTEs (WITH)": "WITH x AS (SELECT program FROM payments) "
    "SELECT x.program, count(*) AS n FROM x GROUP BY x.program",
    "subqueries": "SELECT s.program, count(*) AS n FROM (SELECT program FROM payments) AS s "
    "GROUP BY s.program",
    "UNION": "SELECT program FROM payments UNION SELECT agency FROM payments",
    "INTERSECT": "SELECT program FROM payments INTERSECT SELECT agency FROM payments",
    "EXCEPT": "SELECT program FROM payments EXCEPT SELECT agency FROM payments",
    "window functions": "SELECT program, sum(amount) OVER (PARTITION BY program) AS s "
    "FROM payments",
    "HAVING": "SELECT program, count(*) AS n FROM payments GROUP BY program HAVING count(*) > 20",
    "QUALIFY": "SELECT program, count(*) AS n FROM payments GROUP BY program QUALIFY n > 20",
    "EXISTS": "SELECT p.program, count(*) AS n FROM payments p "
    "WHERE EXISTS (SELECT 1 FROM deaths d WHERE d.ssn = p.payee_tin) GROUP BY p.program",
    "VALUES": "SELECT v.x, count(*) AS n FROM (VALUES ('a'), ('b')) AS v(x) GROUP BY v.x",
}


@pytest.mark.parametrize("label", sorted(SINGLE_LEVEL))
def test_nested_or_marginal_syntax_is_refused_in_aggregate_mode(label: str) -> None:
    sql = SINGLE_LEVEL[label]
    error = refusal(sql)
    assert error.code == "CUST344"
    assert error.rule == f"{label} not allowed in aggregate mode"
    assert error.hint == HINT
    assert error.excerpt is not None and "~" in error.excerpt


# ROLLUP, CUBE and GROUPING SETS are not on the allow-list at all (CUST335 in every mode), so the
# aggregate rules' entries for them are a second line that no query reaches.
MARGINS = {
    "ROLLUP": "SELECT program, agency, count(*) AS n FROM payments "
    "GROUP BY ROLLUP (program, agency)",
    "CUBE": "SELECT program, agency, count(*) AS n FROM payments GROUP BY CUBE (program, agency)",
    "GROUPING SETS": "SELECT program, agency, count(*) AS n FROM payments "
    "GROUP BY GROUPING SETS ((program), (agency))",
}


@pytest.mark.parametrize("label", sorted(MARGINS))
@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
def test_group_margins_are_refused_in_every_mode(label: str, mode: Mode) -> None:
    assert refusal(MARGINS[label], sample_policy(mode)).code == "CUST335"


@pytest.mark.parametrize("label", sorted(set(SINGLE_LEVEL) - {"VALUES"}))
def test_the_same_queries_pass_in_pseudonymous_mode(label: str) -> None:
    assert check_query(SINGLE_LEVEL[label], PSEUDO).hidden == ()


def test_intersect_is_refused_not_a_crash() -> None:
    error = refusal("SELECT agency FROM payments INTERSECT SELECT program FROM payments")
    assert (error.code, error.rule) == ("CUST344", "INTERSECT not allowed in aggregate mode")


def test_distinct_on_is_refused_in_aggregate_mode() -> None:
    error = refusal(
        "SELECT DISTINCT ON (payments.agency) payments.program AS prog, count(*) AS n "
        "FROM payments GROUP BY payments.program"
    )
    assert (error.code, error.rule) == ("CUST344", "DISTINCT ON not allowed in aggregate mode")


def test_plain_distinct_is_accepted_in_aggregate_mode() -> None:
    checked = check_query("SELECT DISTINCT program, count(*) AS n FROM payments GROUP BY 1", AGG)
    assert counted(checked) == GROUP_OF_PAYMENTS


def test_group_by_all_is_refused_in_aggregate_mode() -> None:
    error = refusal("SELECT program, count(*) AS n FROM payments GROUP BY ALL")
    assert (error.code, error.rule) == ("CUST344", "GROUP BY ALL not allowed in aggregate mode")


MIXED_OUTPUTS = {
    "column plus aggregate": "SELECT program, amount + count(*) AS x FROM payments "
    "GROUP BY program",
    "aggregate plus column": "SELECT program, count(*) * amount AS x FROM payments "
    "GROUP BY program",
    "bare ungrouped column": "SELECT program, agency, count(*) AS n FROM payments GROUP BY program",
    "function of an ungrouped column": "SELECT program, lower(agency) AS a, count(*) AS n "
    "FROM payments GROUP BY program",
}


@pytest.mark.parametrize("case", sorted(MIXED_OUTPUTS))
def test_output_mixing_an_ungrouped_column_with_an_aggregate_is_refused(case: str) -> None:
    error = refusal(MIXED_OUTPUTS[case])
    assert error.code == "CUST344"
    assert error.rule == "each output must be an aggregate or a GROUP BY expression"
    assert error.excerpt is not None


def test_grouped_constant_output_without_an_aggregate_is_refused() -> None:
    error = refusal("SELECT program, 1 AS one FROM payments GROUP BY program")
    assert error.rule == "each output must be an aggregate or a GROUP BY expression"


def test_ungrouped_non_aggregate_query_is_refused() -> None:
    error = refusal("SELECT program FROM payments")
    assert (error.code, error.rule) == (
        "CUST344",
        "only aggregate queries are allowed in aggregate mode",
    )


@pytest.mark.parametrize("function", ["bool_and", "bool_or", "min", "max"])
def test_aggregates_that_release_one_value_are_refused_in_aggregate_mode(function: str) -> None:
    arg = "amount > 0" if function.startswith("bool") else "amount"
    error = refusal(f"SELECT program, {function}({arg}) AS v FROM payments GROUP BY program")
    assert error.code == "CUST336"
    assert error.rule == f"function '{function}' is not allowed in aggregate mode"
    assert check_query(
        f"SELECT program, {function}({arg}) AS v FROM payments GROUP BY program", PSEUDO
    )


@pytest.mark.parametrize(
    "name", ["_custodiet_persons_0", "_custodiet_others_1", "_custodiet_x", "_CUSTODIET_persons"]
)
def test_the_hidden_output_names_are_reserved(name: str) -> None:
    error = refusal(f"SELECT program, count(*) AS {name} FROM payments GROUP BY program")
    assert (error.code, error.rule) == (
        "CUST344",
        f"the output name '{name.lower()}' is reserved (names starting with '_custodiet_' are the "
        "gateway's)",
    )
    assert check_query(
        f"SELECT program, count(*) AS custodiet_{name} FROM payments GROUP BY 1", AGG
    )


@pytest.mark.parametrize(
    ("column", "described"),
    [
        ("payee_tin", "column 'payee_tin' (token, identifier)"),
        ("payment_id", "column 'payment_id' (value, key)"),
        ("routing_number", "column 'routing_number' (token, identifier)"),
    ],
)
def test_group_by_an_identifying_column_is_refused(column: str, described: str) -> None:
    error = refusal(f"SELECT {column}, count(*) AS n FROM payments GROUP BY {column}")
    assert error.code == "CUST344"
    assert error.rule == f"GROUP BY on {described} is not allowed in aggregate mode"


def test_group_by_a_category_or_date_is_accepted() -> None:
    checked = check_query(
        "SELECT program, payment_date, count(*) AS n FROM payments GROUP BY program, payment_date",
        AGG,
    )
    assert checked.aggregate and counted(checked) == GROUP_OF_PAYMENTS


IDENTIFIER_MISUSE = {
    "summed": "SELECT program, sum(length(payee_tin)) AS s FROM payments GROUP BY program",
    "filtered": "SELECT program, count(*) AS n FROM payments WHERE payee_tin = 'x' "
    "GROUP BY program",
    "compared in WHERE": "SELECT p.program, count(*) AS n FROM payments p, deaths d "
    "WHERE p.payee_tin = d.ssn GROUP BY p.program",
    "joined on a literal": "SELECT p.program, count(*) AS n FROM payments p JOIN deaths d "
    "ON p.payee_tin = 'x' GROUP BY p.program",
    "key in a min-free aggregate": "SELECT program, count(*) AS n FROM payments "
    "WHERE payment_id > 'p' GROUP BY program",
}


@pytest.mark.parametrize("case", sorted(IDENTIFIER_MISUSE))
def test_identifying_columns_may_only_be_counted_or_joined_on(case: str) -> None:
    error = refusal(IDENTIFIER_MISUSE[case])
    assert error.code == "CUST344"
    assert error.rule.endswith("may only be counted or joined on in aggregate mode")
    assert error.rule.startswith(("column 'payee_tin' (token, identifier)", "column 'payment_id'"))


IDENTIFIER_USES = {
    "counted": "SELECT program, count(payee_tin) AS n FROM payments GROUP BY program",
    "counted distinct": "SELECT program, count(DISTINCT payee_tin) AS n FROM payments "
    "GROUP BY program",
    "join key": "SELECT p.program, count(*) AS n FROM payments p JOIN deaths d "
    "ON p.payee_tin = d.ssn GROUP BY p.program",
}


@pytest.mark.parametrize("case", sorted(IDENTIFIER_USES))
def test_counting_or_joining_on_an_identifier_is_accepted(case: str) -> None:
    checked = check_query(IDENTIFIER_USES[case], AGG)
    assert ("payments", False) in {(table, zero) for _, table, zero in counted(checked)}
    assert "payments.payee_tin" in checked.columns


def test_a_query_over_datasets_without_persons_is_refused() -> None:
    error = refusal(
        "SELECT program, count(*) AS n FROM payments GROUP BY program",
        sample_policy(Mode.AGGREGATE, with_persons=False),
    )
    assert error.code == "CUST343"
    assert error.rule == (
        "dataset 'payments' identifies persons by no pseudonymized identifier, so the persons "
        "contributing to a value cannot be counted"
    )
    assert error.hint == (
        "pseudonymize the dataset's person identifier in the agreement, or leave the dataset "
        "out of the query"
    )


def test_a_query_over_no_dataset_is_refused() -> None:
    error = refusal("SELECT count(*) AS n")
    assert error.code == "CUST343"
    assert error.rule == (
        "no dataset in the query identifies persons, so group sizes cannot be checked"
    )
    assert error.hint == "include a dataset with a pseudonymized identifier"


def _payments_without_persons() -> Policy:
    tables = dict(AGG.tables)
    tables["payments"] = replace(tables["payments"], person_column=None)
    return replace(AGG, tables=tables)


def test_persons_are_counted_in_every_dataset_of_a_join() -> None:
    # issue 11: counted in every dataset that feeds the value, by each one's privacy unit (the
    # old rule counted only the first dataset that identified persons)
    for sql, first, second in (
        (
            "SELECT d.date_of_death, count(*) AS n FROM deaths d JOIN payments p "
            "ON p.payee_tin = d.ssn GROUP BY d.date_of_death",
            ("d.ssn", "deaths"),
            ("p.payee_tin", "payments"),
        ),
        (
            "SELECT p.program, count(*) AS n FROM payments p JOIN deaths d "
            "ON p.payee_tin = d.ssn GROUP BY p.program",
            ("p.payee_tin", "payments"),
            ("d.ssn", "deaths"),
        ),
    ):
        checked = check_query(sql, AGG)
        assert f"COUNT(DISTINCT {first[0]}) AS {HIDDEN_PREFIX}persons_0" in checked.executed
        assert f"COUNT(DISTINCT {second[0]}) AS {HIDDEN_PREFIX}persons_1" in checked.executed
        assert counted(checked) == [
            (f"{HIDDEN_PREFIX}persons_0", first[1], False),
            (f"{HIDDEN_PREFIX}persons_1", second[1], False),
        ]
        assert {"deaths.ssn", "payments.payee_tin"} <= set(checked.columns)


def test_a_join_with_a_dataset_without_persons_is_refused() -> None:
    # issue 11: the persons of a dataset without a privacy unit cannot be counted, so the query
    # is refused rather than counted from the other table (which lent it its persons before)
    error = refusal(
        "SELECT p.program, count(*) AS n FROM payments p JOIN deaths d ON p.payee_tin = d.ssn "
        "GROUP BY p.program",
        _payments_without_persons(),
    )
    assert error.code == "CUST343"
    assert error.rule.startswith("dataset 'payments' identifies persons by no pseudonymized")


def test_accepted_aggregate_query_counts_persons_per_group() -> None:
    checked = check_query(
        "SELECT program, count(*) AS n, sum(amount) AS total, avg(amount) AS mean "
        "FROM payments GROUP BY program",
        AGG,
    )
    assert checked.aggregate
    assert counted(checked) == [
        (f"{HIDDEN_PREFIX}persons_0", "payments", False),
        (f"{HIDDEN_PREFIX}persons_1", "payments", False),
        (f"{HIDDEN_PREFIX}others_2", "payments", True),
    ]
    # count(*): every row of the group; sum and avg (one condition): a non-zero amount
    assert checked.executed == (
        "SELECT payments.program AS program, COUNT(*) AS n, SUM(payments.amount) AS total, "
        "AVG(payments.amount) AS mean, "
        f"COUNT(DISTINCT payments.payee_tin) AS {HIDDEN_PREFIX}persons_0, "
        "COUNT(DISTINCT CASE WHEN payments.amount <> 0 "
        f"THEN payments.payee_tin END) AS {HIDDEN_PREFIX}persons_1, "
        "COUNT(DISTINCT CASE WHEN NOT COALESCE((payments.amount <> 0), FALSE) "
        f"THEN payments.payee_tin END) AS {HIDDEN_PREFIX}others_2 "
        "FROM payments AS payments GROUP BY payments.program LIMIT 101"
    )
    assert checked.columns == ("payments.amount", "payments.payee_tin", "payments.program")


def test_an_ungrouped_total_is_an_aggregate_query() -> None:
    checked = check_query("SELECT count(*) AS n FROM payments", AGG)
    assert checked.aggregate and counted(checked) == GROUP_OF_PAYMENTS


@pytest.mark.parametrize(
    ("sql", "aggregate"),
    [
        ("SELECT amount FROM payments", False),
        ("SELECT count(*) AS n FROM payments", True),
        ("SELECT program FROM payments GROUP BY program", True),
        ("SELECT sum(amount) OVER () AS s FROM payments", False),
        ("SELECT program, sum(amount) OVER () AS s FROM payments GROUP BY program", True),
        ("SELECT 1 + count(*) AS n FROM payments", True),
        ("SELECT program FROM payments UNION SELECT agency FROM payments", False),
        ("SELECT count(*) AS n FROM payments UNION SELECT 1", True),
    ],
)
def test_pseudonymous_checks_report_whether_the_query_aggregates(sql: str, aggregate: bool) -> None:
    assert check_query(sql, PSEUDO).aggregate is aggregate


def _with_payments_column(name: str, kind: ColumnKind, column_class: ColumnClass) -> Policy:
    tables = dict(AGG.tables)
    view = tables["payments"]
    columns = {**view.columns, name: ColumnView(name, kind, column_class, "VARCHAR")}
    tables["payments"] = replace(view, columns=columns)
    return replace(AGG, tables=tables)


@pytest.mark.parametrize(
    ("kind", "column_class"),
    [
        (ColumnKind.VALUE, ColumnClass.IDENTIFIER),
        (ColumnKind.VALUE, ColumnClass.KEY),
        (ColumnKind.TOKEN, ColumnClass.CATEGORY),
        (ColumnKind.MASKED, ColumnClass.IDENTIFIER),
    ],
)
def test_identifiers_keys_and_tokens_are_identifying_whatever_their_other_half(
    kind: ColumnKind, column_class: ColumnClass
) -> None:
    policy = _with_payments_column("extra", kind, column_class)
    described = f"column 'extra' ({kind.value}, {column_class.value})"
    grouped = refusal("SELECT extra, count(*) AS n FROM payments GROUP BY extra", policy)
    assert grouped.rule == f"GROUP BY on {described} is not allowed in aggregate mode"
    summed = refusal(
        "SELECT program, sum(length(extra)) AS s FROM payments GROUP BY program", policy
    )
    assert summed.rule == f"{described} may only be counted or joined on in aggregate mode"
    assert check_query("SELECT program, count(extra) AS n FROM payments GROUP BY program", policy)


@pytest.mark.parametrize(
    ("kind", "column_class"),
    [
        (ColumnKind.VALUE, ColumnClass.CATEGORY),
        (ColumnKind.GENERALIZED, ColumnClass.QUASI_IDENTIFIER),
        (ColumnKind.MASKED, ColumnClass.CATEGORY),
    ],
)
def test_other_columns_may_be_grouped(kind: ColumnKind, column_class: ColumnClass) -> None:
    policy = _with_payments_column("extra", kind, column_class)
    checked = check_query("SELECT extra, count(*) AS n FROM payments GROUP BY extra", policy)
    assert counted(checked) == GROUP_OF_PAYMENTS
