"""Each screen on hand-made data, through the gateway: the rule, its boundaries and its decoy."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import duckdb
import pytest

from custodiet.agreements.screening import ScreenSettings
from custodiet.gateway.match_quality import EMPTY_DEATH_MATCH
from custodiet.screens import SCREENS
from custodiet.screens.model import Case, Report
from tests.unit.screens.tinydata import EXPECTED, MATCH, scenario
from tests.unit.screens.world import World, build_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    built = build_world(tmp_path_factory.mktemp("screens"))
    built.grant("all-screens")
    return built


@pytest.fixture(scope="module")
def report(world: World) -> Report:
    return world.run_screens("all-screens", "rev")


def flagged(report: Report, pattern: str) -> set[str]:
    return {c.record_id for c in report.cases if pattern in c.patterns}


def case(report: Report, record_id: str) -> Case:
    return next(c for c in report.cases if c.record_id == record_id)


def evidence(report: Report, record_id: str, pattern: str) -> dict[str, object]:
    found = case(report, record_id).findings
    return dict(next(f.evidence for f in found if f.pattern == pattern))


@pytest.mark.parametrize("pattern", sorted(EXPECTED))
def test_screen_flags_exactly_the_records_its_rule_names(report: Report, pattern: str) -> None:
    assert flagged(report, pattern) == EXPECTED[pattern]


def test_paid_after_death_spares_the_month_of_death_and_its_decoys(report: Report) -> None:
    found = flagged(report, "paid_after_death")
    assert {"P101", "P102"}.isdisjoint(found)  # before and in the month of death
    assert {"P121", "P131"}.isdisjoint(found)  # died on the 2nd / 1st, paid on the 3rd
    assert "P141" not in found and "P142" in found  # died on the 31st, paid on the 1st next
    assert "P151" not in found  # a vendor's EIN with a dead person's nine digits
    assert evidence(report, "P103", "paid_after_death")["months_after_death"] == 1
    assert evidence(report, "P104", "paid_after_death")["months_after_death"] == 2


def test_duplicate_payment_flags_later_copies_and_names_the_original(report: Report) -> None:
    found = flagged(report, "duplicate_payment")
    assert "P201" not in found  # the first copy is proper
    assert {"P211", "P212", "P213", "P214"}.isdisjoint(found)  # other date / program, originals
    assert evidence(report, "P203", "duplicate_payment")["original_payment_id"] == "P201"
    assert evidence(report, "P203", "duplicate_payment")["copies"] == 3


def test_shared_account_needs_more_than_three_payees(report: Report) -> None:
    found = flagged(report, "shared_account")
    assert {"P310", "P311", "P312", "R311"}.isdisjoint(found)  # exactly three payees
    assert {"P320", "P321"}.isdisjoint(found)  # a couple
    assert not {f"P33{n}" for n in range(5)} & found  # checks: no account at all
    assert evidence(report, "R301", "shared_account")["payees_on_account"] == 4


def test_excluded_payee_counts_both_ends_of_the_exclusion(report: Report) -> None:
    found = flagged(report, "excluded_payee")
    assert "P401" not in found  # the day before the exclusion starts
    assert "P412" not in found  # the day after it ended (decoy)
    open_ended = evidence(report, "P403", "excluded_payee")
    assert open_ended["exclusion_source"] == "SAM" and open_ended["exclusion_end"] is None
    assert evidence(report, "P411", "excluded_payee")["exclusion_source"] == "LEIE"


def test_implausible_age_starts_on_the_115th_birthday_and_skips_the_dead(report: Report) -> None:
    found = flagged(report, "implausible_age")
    assert "P501" not in found  # the day before the 115th birthday
    assert "P503" not in found  # the rule is about SSA benefits; a VA payment is not one
    assert "P511" not in found  # 109: old, plausible
    assert "P521" not in found  # 124 but dead: a death record exists
    assert evidence(report, "P502", "implausible_age")["age_on_payment_date"] == 115


def test_refund_to_deceased_allows_the_final_return(report: Report) -> None:
    found = flagged(report, "refund_to_deceased")
    assert "R602" not in found  # tax year of the death
    assert "R611" not in found  # died on January 1st of the tax year
    assert evidence(report, "R601", "refund_to_deceased")["tax_year"] == 2024


def test_cases_merge_every_pattern_of_a_record(report: Report) -> None:
    both = case(report, "P105")
    assert both.patterns == ("duplicate_payment", "paid_after_death")
    assert both.amount_at_risk == Decimal("1200.00")
    all_ids = [c.record_id for c in report.cases]
    assert len(all_ids) == len(set(all_ids))


def test_summary_counts_cases_and_dollars_per_screen_and_once_in_total(report: Report) -> None:
    amounts = {c.record_id: c.amount_at_risk for c in report.cases}
    by_screen = {s.screen: s for s in report.summaries}
    assert list(by_screen) == list(SCREENS)
    for name, ids in EXPECTED.items():
        assert by_screen[name].cases == len(ids)
        assert by_screen[name].amount_at_risk == sum(amounts[i] for i in ids)
        assert not by_screen[name].truncated
    assert report.total_cases == len(set().union(*EXPECTED.values()))
    assert report.total_amount_at_risk == sum(amounts.values())


def test_payees_are_tokens_never_identifiers(report: Report) -> None:
    raw = {str(row["payee_tin"]) for row in scenario().payments}
    raw |= {str(row["tin"]) for row in scenario().tax_refunds}
    payees = {c.payee for c in report.cases}
    assert payees and not payees & raw
    assert all(len(p) == 12 for p in payees)


def test_every_screen_query_is_on_the_ledger(world: World, report: Report) -> None:
    entries = world.ledger_entries()
    for summary in report.summaries:
        entry = entries[summary.ledger_index]
        assert entry["action"] == "query"
        assert entry["actor"] == "rev"
        assert entry["sql"] == SCREENS[summary.screen].sql_for(ScreenSettings())


@pytest.fixture(scope="module")
def raw(world: World) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    con.execute(f"CREATE VIEW death_match AS {EMPTY_DEATH_MATCH}")
    for name, dataset in world.datasets.items():
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{dataset.path}')")
    yield con
    con.close()


@pytest.mark.parametrize("name", list(SCREENS))
def test_same_records_through_the_gateway_as_on_raw_data(
    report: Report, raw: duckdb.DuckDBPyConnection, name: str
) -> None:
    on_raw = {row[1] for row in raw.execute(SCREENS[name].sql_for(ScreenSettings())).fetchall()}
    assert on_raw == flagged(report, name)


def test_other_agency_after_death_has_its_own_calendar(report: Report) -> None:
    found = flagged(report, "other_agency_after_death")
    assert "P701" not in found  # OPM paid on the day of death
    assert "P151" not in found  # an EIN with a dead person's nine digits is not that person
    assert not found & {"P103", "P104", "P142"}  # SSA benefits are paid_after_death's
    assert evidence(report, "P702", "other_agency_after_death")["days_after_death"] == 1
    assert evidence(report, "P702", "other_agency_after_death")["agency"] == "OPM"


def test_amount_outlier_flags_the_spike_not_the_raise_nor_a_short_history(report: Report) -> None:
    found = flagged(report, "amount_outlier")
    assert not found & {f"P81{n}" for n in range(7)}  # a 3% raise on a steady benefit
    assert "P824" not in found  # 9000 after only four payments: too few to judge
    spike = evidence(report, "P806", "amount_outlier")
    assert spike["usual_amount"] == Decimal("1200") and spike["payments_in_program"] == 7
    assert spike["robust_z"] == pytest.approx(24.16)  # ln(10) / ln(1.1)


def test_death_screens_report_the_match_category_computed_by_the_custodian(report: Report) -> None:
    reported = {
        c.record_id: f.evidence["match"]
        for c in report.cases
        for f in c.findings
        if SCREENS[f.pattern].reports_match
    }
    assert reported == MATCH
    assert set(MATCH.values()) == {"exact", "ssn_name", "ssn_dob", "ssn_only"}
