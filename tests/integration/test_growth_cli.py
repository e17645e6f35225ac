"""Data that grows, through the CLI: a dataset registered from a glob of monthly files gains a
month with `dataset update`; the projection of an agreement that follows it is extended with
that month only, one that does not follow stays on its version; a swapped file is refused; an
added column is denied until an approved version grants it, a granted column may not disappear;
`ledger audit` replays it all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from custodiet.workspace import Workspace
from tests.catalog_data import (
    TABLES,
    kit_for,
    ledger_entries,
    table_rows,
    workspace_with_people,
    write_agreement,
    write_table,
)
from tests.conftest import run_cli

FOLLOWS, STAYS = "ssa-follows", "ssa-stays"


def _month(data: Path, month: int, seed: int, extra: bool = False, drop: str | None = None) -> Path:
    folder = data / f"month=2024-{month:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    columns = dict(TABLES["payments"])
    rows = table_rows("payments", 60, seed=seed)
    if extra:  # one more column
        columns["memo"] = "VARCHAR"
        rows = [(*r, "x") for r in rows]
    if drop is not None:  # one column fewer
        at = list(columns).index(drop)
        del columns[drop]
        rows = [(*r[:at], *r[at + 1 :]) for r in rows]
    return write_table(folder / "payments.parquet", columns, rows)


def _ssa_rows(*files: Path) -> int:
    listed = ", ".join(f"'{f}'" for f in files)
    con = duckdb.connect()
    sql = f"SELECT count(*) FROM read_parquet([{listed}]) WHERE agency = 'SSA'"
    found = con.execute(sql).fetchone()
    con.close()
    assert found is not None
    return int(found[0])


def _cli(ws: Workspace, *args: str, who: str = "alice") -> Any:
    return run_cli(*args, *kit_for(ws).as_(who), "--workspace", str(ws.root))


def _count(ws: Workspace, agreement: str) -> int:
    result = _cli(ws, "query", "--agreement", agreement, "--format", "json",
                  "SELECT count(*) AS n FROM payments", who="bob")  # fmt: skip
    assert result.status == 0, result.stderr
    return int(json.loads(result.stdout)["rows"][0][0])


@pytest.fixture
def grown(tmp_path: Path) -> tuple[Workspace, Path, list[Path]]:
    ws = workspace_with_people(tmp_path / "ws")
    data = tmp_path / "data"
    first = _month(data, 1, seed=1)
    deaths = write_table(tmp_path / "deaths.parquet", TABLES["deaths"], table_rows("deaths", 60))
    glob = str(data / "month=*" / "payments.parquet")
    assert _cli(ws, "dataset", "add", "payments", glob).status == 0
    assert _cli(ws, "dataset", "add", "deaths", str(deaths)).status == 0
    kit = kit_for(ws)
    follow = "    rows: \"agency = 'SSA'\"\n"
    for agreement, rows in ((FOLLOWS, follow + "    follow: true\n"), (STAYS, follow)):
        path = write_agreement(
            tmp_path / f"{agreement}.yaml",
            **{"id: ssa-deceased-payees": f"id: {agreement}", follow: rows},
        )
        kit.apply(ws, path, by="bob")
        kit.approve_all(ws, agreement, by=("alice", "carol"))
    return ws, data, [first]


def test_update_extends_only_the_following_projection(
    grown: tuple[Workspace, Path, list[Path]],
) -> None:
    ws, data, files = grown
    glob = str(data / "month=*" / "payments.parquet")
    assert _count(ws, FOLLOWS) == _count(ws, STAYS) == _ssa_rows(*files)

    second = _month(data, 2, seed=2)
    result = _cli(ws, "dataset", "update", "payments", glob)
    assert result.status == 0, result.stderr
    assert f"projections extended: {FOLLOWS}" in result.stdout

    assert _count(ws, FOLLOWS) == _ssa_rows(files[0], second) > _ssa_rows(files[0])
    assert _count(ws, STAYS) == _ssa_rows(files[0])
    extension = next(e for e in ledger_entries(ws) if e["action"] == "projection.extend")
    update = next(e for e in ledger_entries(ws) if e["action"] == "dataset.update")
    assert extension["agreement"] == FOLLOWS
    assert (extension["from_version"], extension["to_version"]) == (1, 2)
    assert [f["path"] for f in extension["files"]] == [str(second.resolve())]
    assert extension["files"] == update["files"]
    assert extension["sources"] == {"payments": update["file_sha256"]}

    # a rebuild keeps the agreement that does not follow on the version it was built from
    assert _cli(ws, "agreement", "build", STAYS).status == 0
    assert _count(ws, STAYS) == _ssa_rows(files[0])
    audit = run_cli("ledger", "audit", "--workspace", str(ws.root))
    assert audit.status == 0, audit.stderr

    shown = run_cli("dataset", "show", "payments", "--format", "json", "-w", str(ws.root))
    document = json.loads(shown.stdout)
    assert document["version"] == 2
    assert [f["path"] for f in document["files"]] == [
        str(files[0].resolve()),
        str(second.resolve()),
    ]


def test_a_swapped_file_is_refused(grown: tuple[Workspace, Path, list[Path]]) -> None:
    ws, data, files = grown
    write_table(files[0], TABLES["payments"], table_rows("payments", 60, seed=9))  # swapped
    _month(data, 2, seed=2)
    size = len(ledger_entries(ws))
    result = _cli(ws, "dataset", "update", "payments", str(data))
    assert result.status == 3, result.stderr
    assert "changed since dataset 'payments' registered it" in result.stderr
    refusal = ledger_entries(ws)[size]
    assert (refusal["action"], refusal["code"]) == ("refusal", "CUST704")
    # and a rebuild of either agreement reads no swapped byte
    build = _cli(ws, "agreement", "build", STAYS)
    assert build.status == 1, build.stderr
    assert "changed since it was registered" in build.stderr


def test_a_swapped_death_file_stops_the_match_quality_recompute(
    grown: tuple[Workspace, Path, list[Path]], tmp_path: Path
) -> None:
    """New payments recompute ``death_match`` from every death record: a deaths file whose
    bytes changed since it was registered stops the extension (on the ledger), whatever grew."""
    ws, data, files = grown
    deaths = tmp_path / "deaths.parquet"
    write_table(deaths, TABLES["deaths"], table_rows("deaths", 60, seed=3))  # swapped
    _month(data, 2, seed=2)
    result = _cli(ws, "dataset", "update", "payments", str(data / "month=*" / "payments.parquet"))
    assert result.status == 1, result.stderr
    assert "a file of dataset 'deaths' changed since it was registered" in result.stderr
    failed = [e for e in ledger_entries(ws) if e["action"] == "projection.extend"]
    assert [(e["decision"], e["code"]) for e in failed] == [("failed", "CUST536")]
    assert _count(ws, FOLLOWS) == _ssa_rows(files[0])  # the projection was left as it was


def test_an_added_column_is_denied_until_an_approved_version_grants_it(
    grown: tuple[Workspace, Path, list[Path]], tmp_path: Path
) -> None:
    ws, data, files = grown
    second = _month(data, 2, seed=2, extra=True)
    result = _cli(ws, "dataset", "update", "payments", str(data / "month=*" / "*.parquet"))
    assert result.status == 0, result.stderr
    assert f"projections extended: {FOLLOWS}" in result.stdout
    update = next(e for e in ledger_entries(ws) if e["action"] == "dataset.update")
    assert [c["name"] for c in update["columns_added"]] == ["memo"]
    shown = run_cli("dataset", "show", "payments", "--format", "json", "-w", str(ws.root))
    columns = {c["name"]: c for c in json.loads(shown.stdout)["columns"]}
    assert columns["memo"]["class"] == update["columns_added"][0]["column_class"] == "category"

    # no agreement grants it: the following projection was extended without it
    memo = "SELECT count(memo) AS n FROM payments"
    refused = _cli(ws, "query", "--agreement", FOLLOWS, memo, who="bob")
    assert refused.status == 3, refused.stderr
    assert _count(ws, FOLLOWS) == _ssa_rows(files[0], second)

    # a new version granting it, approved by the custodians: old rows read as no value
    follow = "    rows: \"agency = 'SSA'\"\n"
    path = write_agreement(
        tmp_path / "wider.yaml",
        **{"id: ssa-deceased-payees": f"id: {FOLLOWS}", follow: follow + "    follow: true\n",
           "      amount: allow\n": "      amount: allow\n      memo: allow\n"},
    )  # fmt: skip
    kit = kit_for(ws)
    kit.apply(ws, path, by="bob")
    kit.approve_all(ws, FOLLOWS, by=("alice", "carol"))
    granted = _cli(ws, "query", "--agreement", FOLLOWS, "--format", "json", memo, who="bob")
    assert granted.status == 0, granted.stderr
    assert int(json.loads(granted.stdout)["rows"][0][0]) == _ssa_rows(second)
    audit = run_cli("ledger", "audit", "--workspace", str(ws.root))
    assert audit.status == 0, audit.stderr


def test_a_granted_column_may_not_disappear(grown: tuple[Workspace, Path, list[Path]]) -> None:
    ws, data, files = grown
    glob = str(data / "month=*" / "*.parquet")
    gone = _month(data, 2, seed=2, drop="amount")
    result = _cli(ws, "dataset", "update", "payments", glob)
    assert result.status == 3, result.stderr
    assert "drop or change the type of column 'amount'" in result.stderr
    assert not [e for e in ledger_entries(ws) if e["action"] == "dataset.update"]
    assert ledger_entries(ws)[-1]["code"] == "CUST702"

    gone.unlink()  # a column no active agreement grants may go: the new rows hold no value
    second = _month(data, 2, seed=2, drop="method")
    result = _cli(ws, "dataset", "update", "payments", glob)
    assert result.status == 0, result.stderr
    assert _count(ws, FOLLOWS) == _ssa_rows(files[0], second)
    audit = run_cli("ledger", "audit", "--workspace", str(ws.root))
    assert audit.status == 0, audit.stderr


def test_only_a_custodian_updates_and_nothing_new_is_refused(
    grown: tuple[Workspace, Path, list[Path]],
) -> None:
    ws, data, _ = grown
    glob = str(data / "month=*" / "payments.parquet")
    same = _cli(ws, "dataset", "update", "payments", glob)
    assert same.status == 2, same.stderr
    assert "no file that dataset 'payments' does not already hold" in same.stderr
    _month(data, 2, seed=2)
    reviewer = _cli(ws, "dataset", "update", "payments", glob, who="bob")
    assert reviewer.status == 3, reviewer.stderr
    assert "only custodians update datasets" in reviewer.stderr
    assert ledger_entries(ws)[-1]["code"] == "CUST318"


def test_synthetic_months_arrive_one_update_at_a_time(tmp_path: Path) -> None:
    """`synth --months 2`, the initial load registered, then each month added by an update:
    the following projection holds each month's rows, planted records included, only from the
    update of that month on; the agreement that does not follow keeps the initial load."""
    out = tmp_path / "synth"
    made = run_cli("synth", "--out", str(out), "--people", "1500", "--seed", "5", "--months", "2")
    assert made.status == 0, made.stderr
    ws = workspace_with_people(tmp_path / "ws")
    for table in ("payments", "deaths"):
        assert _cli(ws, "dataset", "add", table, str(out / f"{table}.parquet")).status == 0
    kit = kit_for(ws)
    follow = "    rows: \"agency = 'SSA'\"\n"
    deaths = "  deaths:\n"
    for agreement, grants in (
        (FOLLOWS, {follow: follow + "    follow: true\n", deaths: deaths + "    follow: true\n"}),
        (STAYS, {}),
    ):
        path = write_agreement(
            tmp_path / f"{agreement}.yaml",
            **{"id: ssa-deceased-payees": f"id: {agreement}"},
            **grants,
        )
        kit.apply(ws, path, by="bob")
        kit.approve_all(ws, agreement, by=("alice", "carol"))
    truth = out / "truth.parquet"
    for month, upper in (("2024-11", "AND payment_date < DATE '2024-12-01'"), ("2024-12", "")):
        folder = out / f"month={month}"
        month_rows = (
            f"SELECT count(*) FROM payments WHERE payment_date >= DATE '{month}-01' {upper}"
        )
        planted = _planted(folder / "payments.parquet", truth, month)
        assert planted
        assert _value(ws, FOLLOWS, month_rows) == 0
        for table in ("deaths", "payments"):
            update = _cli(ws, "dataset", "update", table, str(folder / f"{table}.parquet"))
            assert update.status == 0, update.stderr
            assert f"projections extended: {FOLLOWS}" in update.stdout
        assert _value(ws, FOLLOWS, month_rows) == _ssa_rows(folder / "payments.parquet")
        ids = ", ".join(f"'{p}'" for p in planted)
        found = f"SELECT count(*) FROM payments WHERE payment_id IN ({ids})"
        assert _value(ws, FOLLOWS, found) == len(planted)
        assert _value(ws, STAYS, month_rows) == 0
    audit = run_cli("ledger", "audit", "--workspace", str(ws.root))
    assert audit.status == 0, audit.stderr
    extensions = [e for e in ledger_entries(ws) if e["action"] == "projection.extend"]
    assert [(e["dataset"], e["to_version"]) for e in extensions] == [
        ("deaths", 2),
        ("payments", 2),
        ("deaths", 3),
        ("payments", 3),
    ]


def _planted(payments: Path, truth: Path, month: str) -> list[str]:
    """Up to ten planted SSA payments of ``month`` (by truth), all in that month's file."""
    con = duckdb.connect()
    try:
        rows = con.execute(
            f"SELECT t.record_id FROM read_parquet('{truth}') t "
            f"JOIN read_parquet('{payments}') p ON p.payment_id = t.record_id "
            f"WHERE t.month = '{month}' AND p.agency = 'SSA' "
            "GROUP BY t.record_id ORDER BY t.record_id LIMIT 10"
        ).fetchall()
    finally:
        con.close()
    return [str(r[0]) for r in rows]


def _value(ws: Workspace, agreement: str, sql: str) -> int:
    result = _cli(ws, "query", "--agreement", agreement, "--format", "json", sql, who="bob")
    assert result.status == 0, result.stderr
    return int(json.loads(result.stdout)["rows"][0][0])


DP_FOLLOWS = """\
id: dp-follows
purpose: Noisy counts of SSA payments, month after month
reviewer: bob
expires: 2027-06-30
mode: dp
datasets:
  payments:
    follow: true
    max_contributions: 3
    bounds: {amount: [0, 1000]}
    keys: {agency: [SSA, VA]}
    columns:
      payee_tin: pseudonymize
      agency: allow
      amount: allow
limits:
  max_rows: 1000
  epsilon: 1.0
  queries: 3
approvals_required: 2
"""


def _ranks(ws: Workspace, agreement: str) -> list[tuple[str, list[int]]]:
    (database,) = ws.projections_dir.glob(f"{agreement}-v1-*.duckdb")
    con = duckdb.connect(str(database), read_only=True)
    try:
        rows = con.execute(
            "SELECT payee_tin, list(_custodiet_rn ORDER BY _custodiet_rn) FROM payments "
            "WHERE payee_tin IS NOT NULL GROUP BY payee_tin ORDER BY payee_tin"
        ).fetchall()
    finally:
        con.close()
    return [(person, list(ranks)) for person, ranks in rows]


def test_an_extended_dp_projection_ranks_new_rows_after_each_persons_rows(
    grown: tuple[Workspace, Path, list[Path]], tmp_path: Path
) -> None:
    """dp mode's per-person cut keeps rows whose stored rank is at most max_contributions: after
    an extension every person's ranks must still be 1..n with no repeat, or a person with rows
    in both months would count twice as many rows as the bound the noise is sized for."""
    ws, data, _ = grown
    path = tmp_path / "dp-follows.yaml"
    path.write_text(DP_FOLLOWS, encoding="utf-8")
    kit = kit_for(ws)
    kit.apply(ws, path, by="bob")
    kit.approve_all(ws, "dp-follows", by=("alice", "carol"))
    before = dict(_ranks(ws, "dp-follows"))
    # the second month pays the same people again (same seed): every person gains rows
    _month(data, 2, seed=1)
    result = _cli(ws, "dataset", "update", "payments", str(data / "month=*" / "payments.parquet"))
    assert result.status == 0, result.stderr
    after = _ranks(ws, "dp-follows")
    assert after and all(ranks == list(range(1, len(ranks) + 1)) for _, ranks in after)
    grew = [person for person, ranks in after if len(ranks) > len(before.get(person, []))]
    assert len(grew) == len(before) > 0


def test_a_dp_answer_is_not_served_from_the_cache_once_the_data_has_grown(
    grown: tuple[Workspace, Path, list[Path]], tmp_path: Path
) -> None:
    """An identical dp query is answered again for free, but only over the same data: after
    an extension it is a question about other rows, so it is computed and spent again."""
    ws, data, _ = grown
    path = tmp_path / "dp-follows.yaml"
    path.write_text(DP_FOLLOWS, encoding="utf-8")
    kit = kit_for(ws)
    kit.apply(ws, path, by="bob")
    kit.approve_all(ws, "dp-follows", by=("alice", "carol"))
    sql = "SELECT agency, count(*) AS n FROM payments GROUP BY agency"

    def spend() -> tuple[float, bool]:
        result = _cli(ws, "query", "--agreement", "dp-follows", sql, who="bob")
        assert result.status == 0, result.stderr
        entry = [e for e in ledger_entries(ws) if e["action"] == "query"][-1]
        return float(entry["rho_spent"]), bool(entry.get("dp_cached"))

    first, cached = spend()
    assert first > 0 and not cached
    assert spend() == (0, True)  # the same data: the same answer, for free
    _month(data, 2, seed=2)
    result = _cli(ws, "dataset", "update", "payments", str(data / "month=*" / "payments.parquet"))
    assert result.status == 0, result.stderr
    assert spend() == (first, False)
