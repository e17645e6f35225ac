"""mode dp: noisy person-level aggregates, a hard budget read from the ledger, the answer cache."""

from __future__ import annotations

import decimal
import json
import statistics
from typing import Any

import pytest

from custodiet.errors import RefusedError
from custodiet.gateway.budget import epsilon_of, rho_of, spent
from custodiet.gateway.dp import gaussian
from tests.conftest import run_cli
from tests.gateway_data import agreement_document, make_world, run_query

DP = "dp-review"
BY_PROGRAM = "SELECT program, count(*) AS n, sum(amount) AS total FROM payments GROUP BY program"


def dp_document(agreement_id: str = DP, queries: int = 3, **limits: Any) -> dict[str, Any]:
    document = agreement_document(agreement_id, mode="dp")
    payments = document["datasets"]["payments"]
    payments["max_contributions"] = 3
    payments["bounds"] = {"amount": [0, 1000]}
    payments["keys"] = {"program": ["RSI", "SSDI", "SSI"]}
    document["limits"] = {
        "max_rows": 1000,
        "epsilon": 1.0,
        "queries": queries,
        "timeout_seconds": 10,
        **limits,
    }
    return document


@pytest.fixture
def world(tmp_path):
    return make_world(tmp_path, people=60, agreements=(dp_document(),))


def entries(ws) -> list[dict[str, Any]]:
    ledger = ws.ledger()
    try:
        return [json.loads(data) for _, data in ledger.entries()]
    finally:
        ledger.close()


def test_releases_every_declared_key_with_integer_and_fixed_point_values(world) -> None:
    result = run_query(world.ws, DP, "rev", BY_PROGRAM)
    assert result.columns == ("program", "n", "total")
    assert [row[0] for row in result.rows] == ["RSI", "SSDI", "SSI"]
    for _, n, total in result.rows:
        assert isinstance(n, int)
        assert isinstance(total, decimal.Decimal) and total == total.quantize(
            decimal.Decimal("0.01")
        )
    assert any("95% interval" in notice and "n:" in notice for notice in result.notices)
    entry = entries(world.ws)[-1]
    assert entry["index"] == result.ledger_index and entry["action"] == "query"
    assert entry["rho_spent"] == pytest.approx(rho_of(1.0, 1e-6) / 3)
    assert entry["epsilon_spent"] == pytest.approx(epsilon_of(entry["rho_spent"], 1e-6))


def test_the_same_query_is_answered_from_the_cache_without_spending(world) -> None:
    first = run_query(world.ws, DP, "rev", BY_PROGRAM)
    again = run_query(world.ws, DP, "rev", BY_PROGRAM)
    assert again.rows == first.rows
    assert entries(world.ws)[-1]["rho_spent"] == 0 and entries(world.ws)[-1]["dp_cached"]
    assert spent(entries(world.ws), DP) == pytest.approx(rho_of(1.0, 1e-6) / 3)


def test_a_missing_cache_means_the_query_spends_again(world) -> None:
    run_query(world.ws, DP, "rev", BY_PROGRAM)
    for path in (world.ws.root / "dp-cache").iterdir():
        path.unlink()
    run_query(world.ws, DP, "rev", BY_PROGRAM)
    assert spent(entries(world.ws), DP) == pytest.approx(2 * rho_of(1.0, 1e-6) / 3)


def test_a_cache_entry_not_on_the_ledger_is_not_trusted(world) -> None:
    run_query(world.ws, DP, "rev", BY_PROGRAM)
    (path,) = (world.ws.root / "dp-cache").iterdir()
    document = json.loads(path.read_text())
    document["rows"][0][1] = 999_999  # a forged answer (digest recomputed) is not on the ledger
    from custodiet.gateway.release import result_sha256

    document["sha256"] = result_sha256(document["columns"], document["rows"])
    path.write_text(json.dumps(document))
    result = run_query(world.ws, DP, "rev", BY_PROGRAM)
    assert result.rows[0][1] != 999_999 and entries(world.ws)[-1]["rho_spent"] > 0


def test_dry_run_shows_the_cost_and_spends_nothing(world) -> None:
    result = run_query(world.ws, DP, "rev", BY_PROGRAM, dry_run=True)
    assert result.rows == [] and "spends rho" in result.notices[0]
    assert spent(entries(world.ws), DP) == 0
    assert entries(world.ws)[-1]["dry_run"] is True


def test_budget_exhaustion_is_refused_and_on_the_ledger(world) -> None:
    for program in ("RSI", "SSDI", "SSI"):
        run_query(
            world.ws, DP, "rev", f"SELECT count(*) AS n FROM payments WHERE program = '{program}'"
        )
    with pytest.raises(RefusedError) as caught:
        run_query(world.ws, DP, "rev", "SELECT count(*) AS n FROM payments")
    assert caught.value.code == "CUST380" and "privacy budget" in caught.value.rule
    entry = entries(world.ws)[-1]
    assert entry["action"] == "refusal" and entry["reason"] == caught.value.rule
    # an exact repeat of an answered query still comes back, for free
    again = run_query(
        world.ws, DP, "rev", "SELECT count(*) AS n FROM payments WHERE program = 'SSI'"
    )
    assert again.rows and entries(world.ws)[-1]["rho_spent"] == 0


def test_the_dataset_cap_holds_across_agreements(tmp_path) -> None:
    world = make_world(
        tmp_path, people=30, agreements=(dp_document("dp-a", 1), dp_document("dp-b", 1))
    )
    manifest = json.loads(world.ws.manifest_path.read_text())
    manifest["dp_dataset_rho_cap"] = rho_of(1.0, 1e-6) * 1.5
    world.ws.manifest_path.write_text(json.dumps(manifest))
    run_query(world.ws, "dp-a", "rev", "SELECT count(*) AS n FROM payments")
    with pytest.raises(RefusedError) as caught:
        run_query(world.ws, "dp-b", "rev", "SELECT count(*) AS n FROM payments")
    assert caught.value.code == "CUST381" and "dataset 'payments'" in caught.value.rule


@pytest.mark.parametrize(
    ("sql", "code", "fragment"),
    [
        ("SELECT count(*) AS n FROM payments p CROSS JOIN deaths d", "CUST383", "match persons"),
        (
            "SELECT count(*) AS n FROM payments p JOIN deaths d ON 1 = 1",
            "CUST383",
            "match persons",
        ),
        (
            "SELECT count(*) AS n FROM payments p JOIN deaths d ON p.amount = p.amount",
            "CUST383",
            "match persons",
        ),
        (
            "SELECT payment_date, count(*) AS n FROM payments GROUP BY payment_date",
            "CUST382",
            "key set",
        ),
        ("SELECT sum(year(payment_date)) AS s FROM payments", "CUST382", "declared bounds"),
        ("SELECT sum(DISTINCT amount) AS n FROM payments", "CUST382", "count(DISTINCT x)"),
        ("SELECT avg(DISTINCT amount) AS n FROM payments", "CUST382", "count(DISTINCT x)"),
        ("SELECT count(*) AS n FROM payments LIMIT 1", "CUST382", "LIMIT"),
        ("SELECT count(*) + 1 AS n FROM payments", "CUST382", "one count, sum or avg"),
    ],
)
def test_shapes_dp_cannot_bound_are_refused(world, sql: str, code: str, fragment: str) -> None:
    with pytest.raises(RefusedError) as caught:
        run_query(world.ws, DP, "rev", sql)
    assert caught.value.code == code and fragment in caught.value.rule
    assert spent(entries(world.ws), DP) == 0


def test_a_join_on_persons_is_bounded_per_person_after_the_join(world) -> None:
    result = run_query(
        world.ws,
        DP,
        "rev",
        "SELECT count(*) AS n FROM payments p JOIN deaths d ON p.payee_tin = d.ssn",
    )
    assert len(result.rows) == 1 and isinstance(result.rows[0][0], int)
    assert any("limited to 1" in notice for notice in result.notices)  # deaths: 1 row a person


def test_differencing_one_person_out_recovers_nothing_beyond_the_noise() -> None:
    """The total with and without one person, asked many times over: guessing the person's
    presence from the difference is barely better than a coin (each answer is rho-zCDP)."""
    rho, sensitivity, trials = 0.05, 3, 2000
    present = [trial % 2 == 0 for trial in range(trials)]
    with_person, scale = gaussian([1000 + (3 if p else 0) for p in present], sensitivity, rho)
    without, _ = gaussian([1000] * trials, sensitivity, rho)
    differences = [a - b for a, b in zip(with_person, without, strict=True)]
    right = sum((d > 1.5) == p for d, p in zip(differences, present, strict=True))
    assert abs(statistics.pstdev(differences) - scale * 2**0.5) < scale * 0.15
    assert right / trials < 0.62  # Gaussian tails: the best test reaches about 0.55 here


def test_noise_is_integer_and_centred() -> None:
    values, scale = gaussian([0] * 4000, 1, 0.5)
    assert all(isinstance(v, int) for v in values)
    assert abs(statistics.fmean(values)) < 0.1 and scale == 1.0


def test_spent_sums_rho_of_query_entries_of_one_agreement() -> None:
    ledger = [
        {"action": "query", "agreement": "a", "rho_spent": 0.25, "datasets": ["payments"]},
        {"action": "query", "agreement": "a", "rho_spent": 0, "dp_cached": True},
        {"action": "refusal", "agreement": "a", "rho_spent": 9},
        {"action": "query", "agreement": "b", "rho_spent": 0.5},
        {"action": "query", "agreement": "a", "rho_spent": 0.125},
    ]
    assert spent(ledger, "a") == 0.375 and spent(ledger, "b") == 0.5 and spent([], "a") == 0


def test_cli_dry_run_and_exhaustion(world) -> None:
    base = ["query", "--workspace", str(world.ws.root), "--agreement", DP, *world.kit.as_("rev")]
    dry = run_cli(*base, "--dry-run", "--format", "json", "SELECT count(*) AS n FROM payments")
    assert dry.status == 0, dry.stderr
    assert "spends rho" in json.loads(dry.stdout)["notices"][0]
    assert spent(entries(world.ws), DP) == 0
    for program in ("RSI", "SSDI", "SSI"):
        ok = run_cli(*base, f"SELECT count(*) AS n FROM payments WHERE program = '{program}'")
        assert ok.status == 0, ok.stderr
    refused = run_cli(*base, "SELECT count(*) AS n FROM payments")
    assert refused.status == 3
    assert refused.stderr.startswith("refused: the privacy budget of agreement 'dp-review'")
    assert entries(world.ws)[-1]["action"] == "refusal"


@pytest.mark.parametrize("keep", [2, 3])
def test_each_person_counts_at_most_max_contributions_rows(tmp_path, keep: int) -> None:
    """Each person has 3 payments: kept whole at 3 (no cut needed), cut to 2 otherwise."""
    document = dp_document()
    document["datasets"]["payments"]["max_contributions"] = keep
    document["limits"] = {"rho": 100.0, "queries": 3, "max_rows": 1000, "timeout_seconds": 10}
    world = make_world(tmp_path, people=40, agreements=(document,))
    manifest = json.loads(world.ws.manifest_path.read_text())
    manifest["dp_dataset_rho_cap"] = 1000.0
    world.ws.manifest_path.write_text(json.dumps(manifest))
    result = run_query(
        world.ws, DP, "rev", "SELECT program, count(*) AS n FROM payments GROUP BY program"
    )
    ssa = [i for i in range(40) if i % 10 != 9]
    expected = {
        p: keep * sum(1 for i in ssa if ("RSI", "SSDI", "SSI")[i % 3] == p)
        for p in ("RSI", "SSDI", "SSI")
    }
    for program, n in result.rows:
        assert abs(n - expected[program]) <= 2  # noise scale about 0.25 at this budget


def test_two_concurrent_queries_cannot_both_spend_the_last_share(tmp_path) -> None:
    """The budget allows one query; four processes ask at once: exactly one is answered."""
    import subprocess
    import sys

    world = make_world(tmp_path, people=60, agreements=(dp_document(queries=1),))
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from custodiet.errors import RefusedError\n"
        "from custodiet.workspace import Workspace\n"
        "from tests.gateway_data import run_query\n"
        "try:\n"
        "    run_query(Workspace(Path(sys.argv[1])), sys.argv[2], 'rev', sys.argv[3])\n"
        "except RefusedError as exc:\n"
        "    print(exc.code)\n"
        "else:\n"
        "    print('answered')\n"
    )
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(world.ws.root), DP,
             f"SELECT count(*) AS n FROM payments WHERE amount > {floor}"],
            stdout=subprocess.PIPE, text=True,
        )
        for floor in range(4)
    ]  # fmt: skip
    outcomes = sorted(proc.communicate(timeout=300)[0].strip() for proc in racers)
    assert outcomes == ["CUST380", "CUST380", "CUST380", "answered"]
    spends = [e.get("rho_spent", 0) for e in entries(world.ws) if e["action"] == "query"]
    assert sum(1 for rho in spends if rho) == 1
