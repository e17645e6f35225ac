"""What every showing command prints, as programs and people read it: one JSON document with the
documented keys on stdout, CSV and Parquet files that keep their ledger link, capped tables,
and global options before the subcommand. One small workspace, built through the CLI."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CliResult, run_cli
from tests.gateway_data import agreement_document, write_canonical
from tests.kit import Kit

AGREEMENT = "ssa-deceased"


@dataclass(frozen=True)
class Built:
    root: Path
    ws: Path
    kit: Kit
    reid_request: int

    def run(self, *args: str, columns: int | None = None) -> CliResult:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODIET_")}
        env["CUSTODIET_WORKSPACE"] = str(self.ws)
        if columns is not None:
            env["COLUMNS"] = str(columns)
        return run_cli(*args, cwd=self.root, env=env)

    def ok(self, *args: str, columns: int | None = None) -> CliResult:
        result = self.run(*args, columns=columns)
        assert result.status == 0, (args, result.stderr)
        assert "Traceback" not in result.stderr
        return result

    def json(self, *args: str) -> Any:
        result = self.ok(*args)
        return json.loads(result.stdout)  # exactly one document: json.loads refuses trailing text


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("output")
    kit = Kit(root)
    ws = root / "ws"
    first = Built(root, ws, kit, -1)
    first.ok("init", str(ws), "--custodian", f"ana={kit.pub_file('ana')}",
             "--custodian", f"ben={kit.pub_file('ben')}")  # fmt: skip
    first.ok("principal", "add", "rev", "--role", "reviewer",
             "--pubkey", str(kit.pub_file("rev")), *kit.as_("ana"))  # fmt: skip
    for name, path in write_canonical(root / "data", people=120).items():
        first.ok("dataset", "add", name, str(path), *kit.as_("ana"))
    document = agreement_document(AGREEMENT)
    document["datasets"]["payments"]["columns"]["agency"] = "allow"  # paid_after_death reads it
    (root / "agreement.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    first.ok("agreement", "apply", str(root / "agreement.yaml"), *kit.as_("rev"))
    sha = first.json("agreement", "show", AGREEMENT, "--format", "json")["sha256"]
    for custodian in ("ana", "ben"):
        first.ok("agreement", "approve", AGREEMENT, "--version", "1", "--sha256", sha,
                 *kit.as_(custodian))  # fmt: skip
    report = first.json("screen", "run", "paid_after_death", "--agreement", AGREEMENT,
                        *kit.as_("rev"), "--format", "json")  # fmt: skip
    first.ok("reid", "request", "--agreement", AGREEMENT, "--case", report["cases"][0]["payee"],
             "--reason", "confirm before referral", *kit.as_("rev"))  # fmt: skip
    request = first.json("reid", "list", "--format", "json")[0]
    for custodian in ("ana", "ben"):
        first.ok("reid", "approve", str(request["id"]), "--sha256", request["sha256"],
                 *kit.as_(custodian))  # fmt: skip
    return Built(root, ws, kit, request["id"])


def _keys(document: dict[str, Any], *keys: str) -> None:
    assert set(keys) <= set(document), sorted(set(keys) - set(document))


def test_listing_commands_print_one_json_list_with_the_documented_keys(built: Built) -> None:
    principals = built.json("principal", "list", "--format", "json")
    assert {p["name"] for p in principals} == {"ana", "ben", "rev"}
    _keys(principals[0], "name", "role", "pubkey", "fingerprint")
    datasets = built.json("dataset", "list", "--format", "json")
    assert [d["name"] for d in datasets] == ["deaths", "payments"]
    _keys(datasets[0], "name", "format", "rows", "columns", "path", "sha256")
    assert isinstance(datasets[1]["rows"], int) and datasets[1]["rows"] == 360
    agreements = built.json("agreement", "list", "--format", "json")
    _keys(agreements[0], "id", "version", "sha256", "status", "approvals", "approvals_required")
    screens = built.json("screen", "list", "--format", "json")
    assert "paid_after_death" in {s["name"] for s in screens}
    _keys(screens[0], "name", "rule", "needs")
    assert built.json("reid", "list", "--format", "json") == []  # approved: no longer pending


def test_showing_commands_print_one_json_document_with_the_documented_keys(built: Built) -> None:
    dataset = built.json("dataset", "show", "payments", "--format", "json")
    _keys(dataset, "name", "format", "rows", "path", "sha256", "columns")
    _keys(dataset["columns"][0], "name", "type", "class", "identifier_kind")
    agreement = built.json("agreement", "show", AGREEMENT, "--format", "json")
    _keys(agreement, "id", "version", "sha256", "status", "document", "changes")
    release = built.json("reid", "show", str(built.reid_request), *built.kit.as_("rev"),
                         "--format", "json")  # fmt: skip
    _keys(release, "request", "fields", "records", "records_sha256", "ledger_index")
    assert {r["dataset"] for r in release["records"]} == {"deaths", "payments"}


def test_screen_run_json_has_numbers_for_amounts(built: Built) -> None:
    report = built.json("screen", "run", "--agreement", AGREEMENT, "paid_after_death",
                        *built.kit.as_("rev"), "--format", "json")  # fmt: skip
    _keys(report, "agreement", "agreement_version", "cases", "summary", "total", "refused")
    _keys(report["cases"][0], "record_id", "patterns", "payee", "amount_at_risk", "evidence")
    assert isinstance(report["cases"][0]["amount_at_risk"], float)
    assert isinstance(report["total"]["amount_at_risk"], float)


def test_query_json_has_column_types_and_numbers_as_numbers(built: Built) -> None:
    sql = (
        "SELECT program, count(*) AS n, sum(amount) AS dollars, min(payment_date) AS first "
        "FROM payments GROUP BY program ORDER BY program"
    )
    document = built.json("query", "--agreement", AGREEMENT, *built.kit.as_("rev"),
                          "--format", "json", sql)  # fmt: skip
    assert list(document) == ["columns", "types", "rows", "ledger_index", "notices"]
    assert document["columns"] == ["program", "n", "dollars", "first"]
    assert document["types"] == ["string", "integer", "decimal", "date"]
    program, n, dollars, first = document["rows"][0]
    assert (type(program), type(n), type(dollars), type(first)) == (str, int, float, str)
    assert isinstance(document["ledger_index"], int)


def test_global_options_work_before_the_subcommand(built: Built) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODIET_")}
    before = run_cli("-w", str(built.ws), "--format", "json", "principal", "list", env=env)
    after = run_cli("principal", "list", "-w", str(built.ws), "--format", "json", env=env)
    assert before.status == after.status == 0, before.stderr + after.stderr
    assert json.loads(before.stdout) == json.loads(after.stdout)
    key = str(built.kit.key_file("rev"))
    signed = run_cli("--key", key, "-w", str(built.ws), "query", "--agreement", AGREEMENT,
                     "--as", "rev", "--format", "json", "SELECT count(*) AS n FROM payments",
                     env=env)  # fmt: skip
    assert signed.status == 0, signed.stderr
    assert json.loads(signed.stdout)["rows"] == [[324]]  # the agreement's rows: agency = 'SSA'
    # the command's own option wins over the global one
    table = run_cli("--format", "json", "-w", str(built.ws), "principal", "list",
                    "--format", "table", env=env)  # fmt: skip
    assert table.status == 0 and "fingerprint" in table.stdout and not table.stdout.startswith("[")


def test_a_format_a_command_cannot_show_is_a_usage_error(built: Built) -> None:
    result = built.run("--format", "csv", "principal", "list")
    assert result.status == 2 and "--format" in result.stderr
    result = built.run("query", "--agreement", AGREEMENT, *built.kit.as_("rev"),
                       "--format", "parquet", "SELECT 1 AS one")  # fmt: skip
    assert result.status == 2 and "--out" in result.stderr


def test_version_prints_the_package_version() -> None:
    from importlib.metadata import version

    result = run_cli("--version")
    assert result.status == 0
    assert result.stdout == f"custodiet {version('custodiet')}\n"


@pytest.mark.parametrize(("name", "fmt"), [("rows.csv", None), ("rows.json", "json"),
                                            ("rows.parquet", "parquet")])  # fmt: skip
def test_query_out_file_keeps_its_ledger_link(built: Built, name: str, fmt: str | None) -> None:
    out = built.root / name
    extra = ["--format", fmt] if fmt else []
    result = built.ok("query", "--agreement", AGREEMENT, *built.kit.as_("rev"), "--out",
                      str(out), *extra, "SELECT payee_tin, amount FROM payments")  # fmt: skip
    link = json.loads((built.root / f"{name}.receipt.json").read_text(encoding="utf-8"))
    assert {"ledger_index", "notices"} <= set(link)
    assert f"ledger entry {link['ledger_index']}" in result.stderr
    assert result.stdout == ""
    if name.endswith(".csv"):
        lines = out.read_text(encoding="utf-8").splitlines()
        assert lines[0] == "payee_tin,amount" and len(lines) == 325
    elif name.endswith(".parquet"):
        import pyarrow.parquet as pq

        assert pq.read_table(out).num_rows == 324


def test_query_table_is_capped_right_aligned_and_grouped(built: Built) -> None:
    result = built.ok("query", "--agreement", AGREEMENT, *built.kit.as_("rev"),
                      "--limit-display", "5", "SELECT payment_id, amount * 100 AS cents, "
                      "1 AS a_long_column_name FROM payments ORDER BY payment_id",
                      columns=80)  # fmt: skip
    body = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert len(body) == 5
    assert "50,000.00" in result.stdout  # 500.00 * 100, grouped
    ones = [line.split("│")[3] for line in body]
    assert all(cell == " " * (len(cell) - 2) + "1 " for cell in ones)  # right-aligned
    assert "showing 5 of 324 rows" in result.stderr and "--format csv" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("principal", "list"),
        ("dataset", "list"),
        ("dataset", "show", "payments"),
        ("agreement", "list"),
        ("screen", "run", "paid_after_death", "--agreement", AGREEMENT),
    ],
    ids=" ".join,
)
def test_tables_keep_whole_headers_at_80_columns(built: Built, args: tuple[str, ...]) -> None:
    extra = built.kit.as_("rev") if args[0] == "screen" else []
    result = built.ok(*args, *extra, columns=80)
    headers = [line for line in result.stdout.splitlines() if line.startswith("┃")]
    assert headers, result.stdout
    for line in headers:
        assert "…" not in line, line
    table = [line for line in result.stdout.splitlines() if line[:1] in "┏┃┡│├└"]
    assert max(len(line) for line in table) <= 80


def test_screen_run_shows_one_line_per_case_unless_wide(built: Built) -> None:
    args = ("screen", "run", "paid_after_death", "--agreement", AGREEMENT, *built.kit.as_("rev"))
    narrow = built.ok(*args, "--show", "4", columns=80)
    rows = [line for line in narrow.stdout.split("Cases")[1].splitlines() if line.startswith("│")]
    assert len(rows) == 4, narrow.stdout
    assert "--wide" in narrow.stderr
    wide = built.ok(*args, "--show", "4", "--wide", columns=80)
    rows = [line for line in wide.stdout.split("Cases")[1].splitlines() if line.startswith("│")]
    assert len(rows) > 4
    assert "months after death" in wide.stdout


def test_screen_run_cases_come_flat_as_csv_and_parquet_with_their_ledger_entries(
    built: Built,
) -> None:
    args = ("screen", "run", "paid_after_death", "--agreement", AGREEMENT, *built.kit.as_("rev"))
    report = built.json(*args, "--format", "json")
    flat = built.ok(*args, "--format", "csv").stdout.splitlines()
    header = flat[0].split(",")
    assert header[:5] == ["record_table", "record_id", "pattern", "payee", "amount_at_risk"]
    assert "date_of_death" in header  # the evidence, in columns
    assert len(flat) - 1 == sum(len(case["patterns"]) for case in report["cases"])
    out = built.root / "cases.parquet"
    built.ok(*args, "--format", "parquet", "--out", str(out))
    import pyarrow.parquet as pq

    assert pq.read_table(out).num_rows == len(flat) - 1
    link = json.loads((built.root / "cases.parquet.receipt.json").read_text(encoding="utf-8"))
    assert set(link["screens"]) == {"paid_after_death"}
    assert link["ledger_index"] > link["screens"]["paid_after_death"]  # the run's own outcome
    refused = built.run(*args, "--format", "parquet")
    assert refused.status == 2 and "--out" in refused.stderr
