"""Contribution counting beyond the released outputs: aggregates in ORDER BY are counted too, the
bound on one person's rows (``HiddenCount.bound_by``) is claimed only when every join matches
persons, and a value whose contributors cannot be established is refused with its hint.

``bound_by`` lets ``suppress.py`` settle a group from row counts alone (pigeonhole): claimed for a
join that does not match persons, it would let one person's many rows pass for many persons.
"""

from __future__ import annotations

import pytest

from custodiet.agreements.model import Mode
from custodiet.errors import RefusedError
from custodiet.gateway.check import check_query
from custodiet.gateway.contributors import HIDDEN_PREFIX
from tests.unit.gateway.checker_policy import sample_policy

AGG = sample_policy(Mode.AGGREGATE)
GROUPED = "GROUP BY p.program"
BOTH = ("deaths", "payments")


def bounds(sql: str) -> set[tuple[str, ...]]:
    return {h.bound_by for h in check_query(sql, AGG).hidden}


def test_an_aggregate_that_only_orders_the_groups_has_its_contributors_counted() -> None:
    # the order of the groups by sum(amount) is released, so its contributors are counted
    checked = check_query(
        "SELECT program, count(*) AS n FROM payments GROUP BY program ORDER BY sum(amount)", AGG
    )
    assert [(h.name, h.zero_allowed) for h in checked.hidden] == [
        (f"{HIDDEN_PREFIX}persons_0", False),
        (f"{HIDDEN_PREFIX}persons_1", False),
        (f"{HIDDEN_PREFIX}others_2", True),
    ]
    assert "CASE WHEN payments.amount <> 0" in checked.executed


def test_one_dataset_bounds_its_own_persons_rows() -> None:
    assert bounds("SELECT program, count(*) AS n FROM payments GROUP BY program") == {("payments",)}


@pytest.mark.parametrize(
    "on",
    [
        "p.payee_tin = d.ssn",
        "d.ssn = p.payee_tin",
        "p.payee_tin = d.ssn AND d.date_of_birth > 1950",
        "d.date_of_birth > 1950 AND p.payee_tin = d.ssn",
    ],
)
def test_a_join_matching_persons_is_bounded_by_both_datasets(on: str) -> None:
    sql = f"SELECT p.program, count(*) AS n FROM payments p JOIN deaths d ON {on} {GROUPED}"
    assert bounds(sql) == {BOTH}


@pytest.mark.parametrize(
    "join",
    [
        "CROSS JOIN deaths d",
        "JOIN deaths d ON d.date_of_birth = 1950",
        "JOIN deaths d ON p.payment_date = d.date_of_death",
        "JOIN deaths d ON d.date_of_birth > 1950",
        "JOIN deaths d ON d.ssn = d.ssn",
    ],
)
def test_a_join_that_does_not_match_persons_claims_no_bound(join: str) -> None:
    assert bounds(f"SELECT p.program, count(*) AS n FROM payments p {join} {GROUPED}") == {()}


def test_each_join_must_match_persons_with_a_table_joined_before_it() -> None:
    chained = (
        "SELECT p.program, count(*) AS n FROM payments p JOIN deaths d ON p.payee_tin = d.ssn "
        f"JOIN deaths d2 ON d2.ssn = d.ssn {GROUPED}"
    )
    assert bounds(chained) == {("deaths", "deaths", "payments")}
    # the third join's ON links the first two again, never the table it joins
    unlinked = (
        "SELECT p.program, count(*) AS n FROM payments p JOIN deaths d ON p.payee_tin = d.ssn "
        f"JOIN deaths d2 ON p.payee_tin = d.ssn {GROUPED}"
    )
    assert bounds(unlinked) == {()}


def test_an_aggregate_whose_contributors_cannot_be_established_is_refused_with_its_hint() -> None:
    with pytest.raises(RefusedError) as caught:
        check_query(
            "SELECT program, sum(DISTINCT amount, amount) AS n FROM payments GROUP BY 1", AGG
        )
    error = caught.value
    assert (error.code, error.rule) == (
        "CUST347",
        "the persons contributing to aggregate sum cannot be established in aggregate mode",
    )
    assert error.hint == (
        "aggregate mode: SELECT <groups>, count/sum/avg FROM <datasets> [JOIN ...] "
        "GROUP BY <groups>"
    )
