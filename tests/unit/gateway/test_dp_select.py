"""mode dp: private key selection (OpenDP's Gaussian threshold), count(DISTINCT x), and the
per-person rank stored in the projection, which the reviewer can never name."""

from __future__ import annotations

import json
import math
from typing import Any

import duckdb
import pytest

from custodiet.errors import RefusedError
from custodiet.gateway.budget import epsilon_of, ledger_spends
from custodiet.gateway.dp import select_keys
from custodiet.gateway.policy import ROW_NUMBER_COLUMN
from custodiet.runtime import opened
from tests.conftest import run_cli
from tests.gateway_data import agreement_document, make_world, run_query
from tests.unit.gateway.test_dp import entries

DP = "dp-select"
# People 0..59, three payments each; the agreement keeps SSA payees (i % 10 != 9). Program is
# i % 3, amount 500 + (i % 17) * 10 + k for the k-th payment: of the SSI payees (i % 3 == 2) only
# person 11 has a payment of 610, so below the SSI group holds exactly one person.
ONE_SSI = "SELECT program, count(*) AS n FROM payments WHERE (program <> 'SSI' OR amount = 610)"
SSA = [i for i in range(60) if i % 10 != 9]
PERSONS = {p: sum(1 for i in SSA if i % 3 == k) for k, p in enumerate(("RSI", "SSDI", "SSI"))}


def select_document(*, queries: int = 20, contributions: int = 3, **limits: Any) -> dict[str, Any]:
    document = agreement_document(DP, mode="dp")
    payments = document["datasets"]["payments"]
    payments["max_contributions"] = contributions
    payments["bounds"] = {"amount": [0, 1000]}
    payments["select_keys"] = ["program"]
    document["limits"] = {
        "max_rows": 1000,
        "rho": 100.0,
        "delta": 1e-6,
        "queries": queries,
        "timeout_seconds": 10,
        **limits,
    }
    return document


def world_of(tmp_path, document: dict[str, Any]) -> Any:
    world = make_world(tmp_path, people=60, agreements=(document,))
    manifest = json.loads(world.ws.manifest_path.read_text())
    manifest["dp_dataset_rho_cap"] = 1000.0
    world.ws.manifest_path.write_text(json.dumps(manifest))
    return world


@pytest.fixture
def world(tmp_path):
    return world_of(tmp_path, select_document())


def test_a_group_of_one_person_is_never_released_and_large_groups_always_are(world) -> None:
    for floor in range(8):  # a new literal each time: no answer comes from the cache
        result = run_query(world.ws, DP, "rev", f"{ONE_SSI} AND amount > -{floor} GROUP BY program")
        assert [row[0] for row in result.rows] == ["RSI", "SSDI"]
        for _, n in result.rows:
            assert abs(n - 3 * 18) <= 9  # 18 persons, 3 payments each; noise scale about 1.3
    # through the CLI, as a reviewer runs it
    base = ["query", "--workspace", str(world.ws.root), "--agreement", DP, *world.kit.as_("rev")]
    done = run_cli(*base, "--format", "json", f"{ONE_SSI} GROUP BY program")
    assert done.status == 0, done.stderr
    answer = json.loads(done.stdout)
    assert [row[0] for row in answer["rows"]] == ["RSI", "SSDI"]
    assert any("selected privately" in notice for notice in answer["notices"])


def test_every_group_with_enough_persons_is_released(world) -> None:
    result = run_query(
        world.ws, DP, "rev", "SELECT program, count(*) AS n FROM payments GROUP BY program"
    )
    assert [row[0] for row in result.rows] == ["RSI", "SSDI", "SSI"]


def test_key_selection_spends_rho_and_delta_on_the_ledger(world) -> None:
    result = run_query(world.ws, DP, "rev", f"{ONE_SSI} GROUP BY program")
    entry = entries(world.ws)[-1]
    assert entry["index"] == result.ledger_index and entry["action"] == "query"
    assert entry["rho_spent"] == pytest.approx(100.0 / 20)
    assert entry["delta_spent"] == pytest.approx(1e-6 / 2 / 20)  # half of delta selects keys
    assert entry["epsilon_spent"] == pytest.approx(epsilon_of(5.0, 1e-6 / 2))
    assert entry["dp_delta"] == pytest.approx(1e-6 / 2 + 1e-6 / 2 / 20)
    # a query over declared-free cells only (no GROUP BY) selects nothing and spends no delta
    run_query(world.ws, DP, "rev", "SELECT count(*) AS n FROM payments")
    assert "delta_spent" not in entries(world.ws)[-1]
    # the delta spent is summed from the ledger, incrementally, like rho
    with opened(world.ws) as rt:
        assert ledger_spends(rt).deltas[DP] == pytest.approx(1e-6 / 2 / 20)
        run_query(world.ws, DP, "rev", f"{ONE_SSI} AND amount > 0 GROUP BY program")
        spends = ledger_spends(rt)  # the runtime's cached sums, read on from where they stopped
    assert spends.deltas[DP] == pytest.approx(2 * 1e-6 / 2 / 20)
    assert spends.agreements[DP] == pytest.approx(3 * 100.0 / 20)


def test_budget_exhaustion_still_refuses_with_key_selection(tmp_path) -> None:
    world = world_of(tmp_path, select_document(queries=2))
    for floor in range(2):
        run_query(world.ws, DP, "rev", f"{ONE_SSI} AND amount > -{floor} GROUP BY program")
    with pytest.raises(RefusedError) as caught:
        run_query(world.ws, DP, "rev", f"{ONE_SSI} AND amount > -9 GROUP BY program")
    assert caught.value.code == "CUST380" and "privacy budget" in caught.value.rule
    assert entries(world.ws)[-1]["action"] == "refusal"


def test_a_column_neither_declared_nor_selectable_is_still_refused(world) -> None:
    with pytest.raises(RefusedError) as caught:
        run_query(world.ws, DP, "rev", "SELECT agency, count(*) AS n FROM payments GROUP BY agency")
    assert caught.value.code == "CUST382" and "select_keys" in caught.value.rule


def test_applying_key_selection_without_a_delta_exits_2_naming_the_field(world, tmp_path) -> None:
    import yaml

    document = select_document()
    document["id"] = "dp-no-delta"
    del document["limits"]["delta"]
    path = tmp_path / "no-delta.yaml"
    path.write_text(yaml.safe_dump(document))
    done = run_cli(
        "agreement", "apply", str(path), "--workspace", str(world.ws.root), *world.kit.as_("rev")
    )
    assert done.status == 2 and "limits.delta is required" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_threshold_keeps_one_person_out_across_many_draws() -> None:
    """OpenDP's mechanism: a key of one person passes with probability at most delta (1e-8
    here) per draw, a key of 200 persons essentially always; the spend matches the request."""
    released = {"one": 0, "two": 0, "many": 0}
    for _ in range(2000):
        selection = select_keys({"one": 1, "two": 2, "many": 200}, 3, 0.5, 1e-8)
        for key in selection.kept:
            released[key] += 1
    assert released["one"] == 0 and released["many"] == 2000
    assert selection.threshold > 3 and selection.scale == pytest.approx(math.sqrt(3))


# ---- count(DISTINCT x) -------------------------------------------------------------------------


def distinct_world(tmp_path, contributions: int) -> Any:
    document = select_document(contributions=contributions)
    payments = document["datasets"]["payments"]
    payments["keys"] = {"program": ["RSI", "SSDI", "SSI"]}
    del payments["select_keys"]
    del document["limits"]["delta"]
    return world_of(tmp_path, document)


@pytest.mark.parametrize("keep", [1, 3])
def test_count_distinct_counts_only_each_persons_kept_rows(tmp_path, keep: int) -> None:
    """Every payment id is distinct: with each person cut to ``keep`` rows the distinct count is
    ``keep`` per person, never the uncut 3."""
    world = distinct_world(tmp_path, keep)
    result = run_query(
        world.ws,
        DP,
        "rev",
        "SELECT program, count(DISTINCT payment_id) AS ids, count(DISTINCT payee_tin) AS persons "
        "FROM payments GROUP BY program",
    )
    rho_each = 100.0 / 20 / 2
    for program, ids, persons in result.rows:
        assert abs(ids - keep * PERSONS[program]) <= 9
        assert abs(persons - PERSONS[program]) <= 9
    scales = {n.split(":")[1].strip(): n for n in result.notices if "scale" in n}
    # sensitivity: keep for distinct values, ceil(sqrt(keep)) for distinct persons
    assert f"scale {keep / math.sqrt(2 * rho_each):.4g};" in scales["ids"]
    persons_scale = math.ceil(math.sqrt(keep)) / math.sqrt(2 * rho_each)
    assert f"scale {persons_scale:.4g};" in scales["persons"]


def test_count_distinct_after_a_join_is_cut_per_person(tmp_path) -> None:
    world = distinct_world(tmp_path, 1)
    result = run_query(
        world.ws,
        DP,
        "rev",
        "SELECT count(DISTINCT p.payment_id) AS ids FROM payments p "
        "JOIN deaths d ON p.payee_tin = d.ssn",
    )
    dead = sum(1 for i in SSA if i % 7 == 0)  # one kept row each, not their three payments
    assert abs(result.rows[0][0] - dead) <= 9  # the uncut count is 24


# ---- the stored per-person rank ----------------------------------------------------------------


@pytest.fixture(scope="module")
def ranked_world(tmp_path_factory):
    return distinct_world(tmp_path_factory.mktemp("ranked"), 1)


@pytest.mark.parametrize(
    "sql",
    [
        f"SELECT {ROW_NUMBER_COLUMN} FROM payments",
        f"SELECT count(*) AS n FROM payments WHERE {ROW_NUMBER_COLUMN} <= 1",
        f"SELECT sum(p.{ROW_NUMBER_COLUMN}) AS s FROM payments p",
        f"SELECT count(DISTINCT {ROW_NUMBER_COLUMN}) AS n FROM payments",
        f'SELECT count(*) AS n FROM payments p WHERE p."{ROW_NUMBER_COLUMN.upper()}" <= 1',
        f"SELECT count(*) AS n FROM payments WHERE COLUMNS('{ROW_NUMBER_COLUMN}') <= 1",
        f"SELECT max({ROW_NUMBER_COLUMN}) AS n FROM payments GROUP BY {ROW_NUMBER_COLUMN}",
    ],
)
def test_the_stored_rank_is_never_selectable(ranked_world, sql: str) -> None:
    world = ranked_world
    # the column exists in the projection (the filter the cut uses) ...
    (database,) = (world.ws.root / "projections").glob("*.duckdb")
    con = duckdb.connect(str(database), read_only=True)
    try:
        names = [row[0] for row in con.execute("DESCRIBE payments").fetchall()]
    finally:
        con.close()
    assert ROW_NUMBER_COLUMN in names
    # ... and the checker refuses it exactly as it refuses a column that does not exist
    base = ["query", "--workspace", str(world.ws.root), "--agreement", DP, *world.kit.as_("rev")]
    refused = run_cli(*base, sql)
    assert refused.status == 3 and refused.stderr.startswith("refused:"), refused.stderr
    hidden = entries(world.ws)[-1]
    unknown = run_cli(
        *base,
        sql.replace(ROW_NUMBER_COLUMN, "no_such_column").replace(
            ROW_NUMBER_COLUMN.upper(), "NO_SUCH_COLUMN"
        ),
    )
    assert unknown.status == 3
    assert hidden["action"] == "refusal" and hidden["code"] == entries(world.ws)[-1]["code"]
    assert all(e.get("rho_spent", 0) == 0 for e in entries(world.ws))


def test_a_decimal_sum_is_clamped_and_exact_in_fixed_point(tmp_path) -> None:
    """amount is DECIMAL(12,2), summed in its own type after clamping to [0, 520]: the noisy
    totals sit within the noise of the clamped sums (the unclamped ones are thousands away)."""
    document = select_document(queries=1)
    payments = document["datasets"]["payments"]
    payments.update(bounds={"amount": [0, 520]}, keys={"program": ["RSI", "SSDI", "SSI"]})
    del payments["select_keys"]
    del document["limits"]["delta"]
    world = world_of(tmp_path, document)
    result = run_query(
        world.ws,
        DP,
        "rev",
        "SELECT program, sum(amount) AS total, "
        "sum(amount) FILTER (WHERE payment_date > DATE '2024-01-31') AS later "
        "FROM payments GROUP BY program",
    )
    for program, total, later in result.rows:
        mine = [i for i in SSA if ("RSI", "SSDI", "SSI")[i % 3] == program]
        clamped = [[min(500 + (i % 17) * 10 + k, 520) for k in range(3)] for i in mine]
        raw = sum(500 + (i % 17) * 10 + k for i in mine for k in range(3))
        # scale: 3 rows * 52000 hundredths / sqrt(2 * 50) = 156 dollars
        assert abs(total - sum(sum(row) for row in clamped)) < 800
        assert abs(later - sum(row[1] + row[2] for row in clamped)) < 800
        assert raw - sum(sum(row) for row in clamped) > 2000
