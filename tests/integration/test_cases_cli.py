"""Monitoring and cases end to end through the CLI, on one small workspace: a monitor run
reports each case once (a second run, and a run under a new agreement version, report none);
only the agreement's reviewer can adjudicate, along the allowed moves (refusals are on the
ledger); the case table is derived from the ledger (deleted, it is rebuilt identical; a run
file changed since its entry is refused); the monthly report equals a brute-force sum."""

from __future__ import annotations

import csv
import io
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from custodiet.workspace import Workspace
from tests.conftest import CliResult, run_cli
from tests.gateway_data import agreement_document, write_canonical
from tests.kit import Kit

AGREEMENT = "ssa-deceased"


@dataclass(frozen=True)
class World:
    root: Path
    ws: Path
    kit: Kit

    def run(self, *args: str) -> CliResult:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODIET_")}
        env["CUSTODIET_WORKSPACE"] = str(self.ws)
        result = run_cli(*args, cwd=self.root, env=env)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def ok(self, *args: str) -> CliResult:
        result = self.run(*args)
        assert result.status == 0, (args, result.stderr)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--format", "json").stdout)

    def entries(self) -> list[dict[str, Any]]:
        ledger = Workspace(self.ws).ledger()
        try:
            return [json.loads(data) for _, data in ledger.entries(0, ledger.size())]
        finally:
            ledger.close()

    def approve(self, version: int) -> None:
        sha = self.json("agreement", "show", AGREEMENT)["sha256"]
        for custodian in ("ana", "ben"):
            self.ok("agreement", "approve", AGREEMENT, "--version", str(version),
                    "--sha256", sha, *self.kit.as_(custodian))  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("cases")
    kit = Kit(root)
    w = World(root, root / "ws", kit)
    w.ok("init", str(w.ws), "--custodian", f"ana={kit.pub_file('ana')}",
         "--custodian", f"ben={kit.pub_file('ben')}")  # fmt: skip
    for name in ("rev", "rev2"):
        w.ok("principal", "add", name, "--role", "reviewer",
             "--pubkey", str(kit.pub_file(name)), *kit.as_("ana"))  # fmt: skip
    for name, path in write_canonical(root / "data", people=80).items():
        w.ok("dataset", "add", name, str(path), *kit.as_("ana"))
    document = agreement_document(AGREEMENT)
    (root / "agreement.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    w.ok("agreement", "apply", str(root / "agreement.yaml"), *kit.as_("rev"))
    w.approve(1)
    return w


def _states(world: World) -> dict[str, str]:
    return {
        c["id"]: c["state"]
        for c in world.json("case", "list", "--agreement", AGREEMENT, *world.kit.as_("rev"))
    }


def test_monitoring_and_adjudication_end_to_end(world: World) -> None:
    rev = world.kit.as_("rev")
    # 1. the first run opens every case; the ledger names them by id, never by a value
    first = world.json("monitor", "--agreement", AGREEMENT, *rev)
    ids = [c["id"] for c in first["cases"]]
    assert len(ids) >= 3 and len(set(ids)) == len(ids)
    assert {c["screen"] for c in first["cases"]} >= {"paid_after_death"}
    entry = world.entries()[first["ledger_index"]]
    assert entry["action"] == "monitor" and entry["scope"] == "full"
    assert sorted(i for i, _ in entry["new_cases"]) == sorted(ids)
    for case in first["cases"]:
        assert case["record_id"] not in json.dumps(entry)
        assert case["month"] and case["program"] in ("RSI", "SSDI", "SSI")

    # 2. nothing changed: no screen runs, nothing is new, and the run is on the ledger
    second = world.json("monitor", "--agreement", AGREEMENT, *rev)
    assert second["cases"] == [] and second["screens"] == []
    assert second["unchanged_since"] == first["ledger_index"]
    assert world.entries()[second["ledger_index"]]["scope"] == "unchanged"

    # 3. a new agreement version: every screen runs again, and the stable ids find nothing new
    document = agreement_document(AGREEMENT, purpose="Find SSA payments after death, v2")
    (world.root / "v2.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    world.ok("agreement", "apply", str(world.root / "v2.yaml"), *rev)
    world.approve(2)
    third = world.json("monitor", "--agreement", AGREEMENT, *rev)
    assert third["cases"] == [] and third["unchanged_since"] is None
    assert "paid_after_death" in third["screens"]
    assert set(_states(world)) == set(ids) and set(_states(world).values()) == {"open"}

    # 4. the reviewer adjudicates along the allowed moves
    a, b, c, d = ids[:4]
    world.ok("case", "set", a, "--state", "confirmed", *rev)
    world.ok("case", "set", b, "--state", "not_improper", "--note", "decoy", *rev)
    world.ok("case", "set", a, "--state", "recovered", "--amount", "120.50", *rev)
    world.ok("case", "set", c[:12], "--state", "confirmed", *rev)  # a prefix names it

    # 5. refused, each on the ledger with its rule's code
    refusals = [
        (["case", "set", d, "--state", "confirmed", *world.kit.as_("rev2")], "CUST742"),
        (["case", "set", d, "--state", "confirmed", *world.kit.as_("ana")], "CUST742"),
        (["case", "set", b, "--state", "recovered", "--amount", "5", *rev], "CUST743"),
        (["case", "set", a, "--state", "confirmed", *rev], "CUST743"),
        (["case", "set", c, "--state", "recovered", *rev], "CUST744"),
        (["case", "set", c, "--state", "recovered", "--amount", "-3", *rev], "CUST744"),
        (["case", "set", "f" * 64, "--state", "confirmed", *rev], "CUST741"),
        (["case", "set", d, "--state", "confirmed", "--note", "n" * 501, *rev], "CUST745"),
    ]
    for args, code in refusals:
        before = world.entries()
        result = world.run(*args)
        assert result.status == 3, (args, result.stderr)
        after = world.entries()
        assert len(after) == len(before) + 1
        assert after[-1]["action"] == "refusal" and after[-1]["code"] == code, after[-1]
        assert after[-1]["attempted"] == "case.set"
    expected = dict.fromkeys(ids, "open") | {a: "recovered", b: "not_improper", c: "confirmed"}
    assert _states(world) == expected

    # 6. history from the ledger
    shown = world.json("case", "show", a[:10], *rev)
    assert world.run("case", "show", a[:7], *rev).status == 2  # a prefix is 8 digits at least
    assert shown == world.json("case", "show", a, "--agreement", AGREEMENT, *rev)
    assert [s["state"] for s in shown["history"]] == ["open", "confirmed", "recovered"]
    assert shown["recovered"] == "120.50" and shown["history"][-1]["amount"] == "120.50"
    assert shown["history"][0]["index"] == first["ledger_index"]
    filtered = world.json(
        "case", "list", "--agreement", AGREEMENT, *world.kit.as_("rev"), "--state", "confirmed"
    )
    assert [x["id"] for x in filtered] == [c]

    # 7. the case table is derived: deleted, it is rebuilt with the same cases
    table = world.ws / "cases" / AGREEMENT / "cases.json"
    listed = world.ok(
        "case", "list", "--agreement", AGREEMENT, *world.kit.as_("rev"), "--format", "json"
    ).stdout
    saved = table.read_bytes()
    table.unlink()
    assert (
        world.ok(
            "case", "list", "--agreement", AGREEMENT, *world.kit.as_("rev"), "--format", "json"
        ).stdout
        == listed
    )
    assert json.loads(table.read_bytes())["cases"] == json.loads(saved)["cases"]

    # 8. a run file changed since its entry recorded it is refused (exit 1), not trusted
    run_file = world.ws / "cases" / AGREEMENT / f"run-{entry['intent']}.json"
    original = run_file.read_bytes()
    run_file.write_bytes(original.replace(b'"amount":"', b'"amount":"9'))
    table.unlink()
    result = world.run("case", "list", "--agreement", AGREEMENT, *world.kit.as_("rev"))
    assert result.status == 1 and "monitor run" in result.stderr
    run_file.write_bytes(original)

    # 9. the monthly report equals a brute-force sum over the listed cases
    cases = json.loads(listed)
    month = world.entries()[-1]["time"][:7]
    brute: dict[tuple[str, str, str, str], list[Decimal]] = defaultdict(
        lambda: [Decimal(0), Decimal(0), Decimal(0)]
    )
    for case in cases:
        row = brute[(case["screen"], case["program"], case["state"], case["month"])]
        row[0] += 1
        row[1] += Decimal(case["amount"])
        row[2] += Decimal(case["recovered"] or 0)
    out = world.root / "report.csv"
    world.ok(
        "report",
        "--agreement",
        AGREEMENT,
        *world.kit.as_("rev"),
        "--month",
        month,
        "--out",
        str(out),
    )
    got = {
        (r["screen"], r["program"], r["state"], r["payment_month"]): [
            Decimal(r["cases"]),
            Decimal(r["amount_at_risk"]),
            Decimal(r["recovered"]),
        ]
        for r in csv.DictReader(io.StringIO(out.read_text(encoding="utf-8")))
    }
    assert got == dict(brute)
    assert sum(v[2] for v in got.values()) == Decimal("120.50")
    html = world.root / "report.html"
    world.ok(
        "report",
        "--agreement",
        AGREEMENT,
        *world.kit.as_("rev"),
        "--month",
        month,
        "--out",
        str(html),
    )
    text = html.read_text(encoding="utf-8")
    assert text.count("<svg") == 5 and "<script" not in text and "src=" not in text
    empty = world.root / "before.csv"
    world.ok(
        "report",
        "--agreement",
        AGREEMENT,
        *world.kit.as_("rev"),
        "--month",
        "2020-01",
        "--out",
        str(empty),
    )
    assert empty.read_text(encoding="utf-8").count("\n") == 1  # the header only
    bad = world.run(
        "report",
        "--agreement",
        AGREEMENT,
        *world.kit.as_("rev"),
        "--month",
        "2024-13",
        "--out",
        str(out),
    )
    assert bad.status == 2 and "CUST749" not in bad.stdout and "YYYY-MM" in bad.stderr


def test_monitor_out_file_verifies_from_its_receipt(world: World) -> None:
    out = world.root / "new.csv"
    world.ok("monitor", "--agreement", AGREEMENT, *world.kit.as_("rev"), "--out", str(out))
    assert out.read_text(encoding="utf-8").startswith("case_id,screen,")
    vkey = world.root / "log.vkey"
    vkey.write_text(world.ok("ledger", "key").stdout, encoding="utf-8")
    assert world.run("verify-result", str(out), "--vkey", str(vkey)).status == 0
    out.write_text(out.read_text(encoding="utf-8") + "x\n", encoding="utf-8")
    assert world.run("verify-result", str(out), "--vkey", str(vkey)).status == 1


def test_case_reads_are_signed_checked_and_on_the_ledger(world: World) -> None:
    """Case facts are released data of one agreement: its reviewer, a custodian and an overseer
    read them, each read is a `case.read` entry (counts and a digest, no value); another
    reviewer, a wrong key and a case no run opened are refused on the ledger; the audit passes."""
    kit = world.kit
    world.ok("principal", "add", "otto", "--role", "overseer",
             "--pubkey", str(kit.pub_file("otto")), *kit.as_("ana"))  # fmt: skip
    world.ok("monitor", "--agreement", AGREEMENT, *kit.as_("rev"))
    listed = world.json("case", "list", "--agreement", AGREEMENT, *kit.as_("rev"))
    assert listed
    entry = world.entries()[-1]
    assert entry["action"] == "case.read" and entry["actor"] == "rev"
    assert entry["agreement"] == AGREEMENT and entry["cases"] == len(listed)
    assert entry["report_rows"] == 0 and len(entry["released_sha256"]) == 64
    text = json.dumps(entry)
    for case in listed:
        assert case["payee"] not in text and case["record_id"] not in text
    for reader in ("ana", "otto"):  # a custodian and an overseer read the same cases
        assert world.json("case", "list", "--agreement", AGREEMENT, *kit.as_(reader)) == listed
        assert world.entries()[-1]["actor"] == reader
    first = listed[0]["id"]
    shown = world.json("case", "show", first[:12], *kit.as_("otto"))
    assert shown == listed[0] and world.entries()[-1]["case"] == first

    wrong_key = ["--as", "rev", "--key", str(kit.key_file("rev2"))]
    attacks = [
        (["case", "list", "--agreement", AGREEMENT, *kit.as_("rev2")], "CUST760"),
        (["case", "show", first, *kit.as_("rev2")], "CUST760"),
        (
            [
                "report",
                "--agreement",
                AGREEMENT,
                "--month",
                "2024-01",
                "--out",
                str(world.root / "stolen.csv"),
                *kit.as_("rev2"),
            ],
            "CUST760",
        ),
        (["case", "list", "--agreement", AGREEMENT, *wrong_key], "CUST502"),
        (["case", "list", "--agreement", "nope", *kit.as_("rev")], "CUST317"),
        (["case", "show", "f" * 64, *kit.as_("rev")], "CUST761"),
    ]
    for args, code in attacks:
        before = len(world.entries())
        result = world.run(*args, "--format", "json") if args[0] == "case" else world.run(*args)
        assert result.status == 3, (args, result.stderr)
        assert listed[0]["payee"] not in result.stdout + result.stderr
        after = world.entries()
        assert len(after) == before + 1
        assert after[-1]["action"] == "refusal" and after[-1]["code"] == code, after[-1]
        assert after[-1]["attempted"] == "case.read"
    assert not (world.root / "stolen.csv").exists()
    assert world.run("ledger", "audit").status == 0


@pytest.mark.parametrize("kind", ["csv", "json", "parquet"])
def test_case_list_out_file_verifies_from_its_receipt_with_its_filters_on_the_ledger(
    world: World, kind: str
) -> None:
    """`case list --out` writes the file the gateway rendered and recorded on the `case.read`
    entry, with the filters in the signed request: the receipt verifies under the log's key
    alone, one changed byte does not, and the file holds exactly what stdout prints."""
    import base64
    import hashlib

    rev = world.kit.as_("rev")
    world.ok("monitor", "--agreement", AGREEMENT, *rev)
    everything = world.json("case", "list", "--agreement", AGREEMENT, *rev)
    screen = everything[0]["screen"]
    chosen = [c for c in everything if c["state"] == "open" and c["screen"] == screen]
    assert chosen and len(chosen) < len(everything)
    filters = ("--state", "open", "--screen", screen)
    out = world.root / f"listed.{kind}"
    world.ok("case", "list", "--agreement", AGREEMENT, *rev, *filters, "--out", str(out))
    receipt = json.loads(out.with_name(out.name + ".receipt.json").read_text(encoding="utf-8"))
    entry = json.loads(base64.b64decode(receipt["entry"]))
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert entry == world.entries()[-1] and entry["action"] == "case.read"
    assert entry["request"]["args"] == {
        "agreement": AGREEMENT, "state": "open", "screen": screen, "output": kind,
    }  # fmt: skip
    assert (entry["output_format"], entry["output_sha256"]) == (kind, digest)
    assert entry["cases"] == len(chosen) and receipt["file"]["sha256"] == digest
    if kind == "parquet":
        import pyarrow.parquet as pq

        assert pq.read_table(out).column("case_id").to_pylist() == [c["id"] for c in chosen]
    else:  # byte for byte what the same list prints on stdout
        printed = world.ok("case", "list", "--agreement", AGREEMENT, *rev, *filters,
                           "--format", kind).stdout  # fmt: skip
        assert out.read_bytes() == printed.encode("utf-8")
    vkey = world.root / "log.vkey"
    vkey.write_text(world.ok("ledger", "key").stdout, encoding="utf-8")
    done = world.run("verify-result", str(out), "--vkey", str(vkey))
    assert done.status == 0, done.stderr
    assert f"sha256 {digest}" in done.stdout and "case.read by rev" in done.stdout
    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0x01
    out.write_bytes(bytes(data))
    changed = world.run("verify-result", str(out), "--vkey", str(vkey))
    assert changed.status == 1 and "NOT VERIFIED" in changed.stderr
    assert world.run("ledger", "audit").status == 0


def test_case_read_filters_and_output_are_checked_before_anything_is_released(
    world: World,
) -> None:
    """The match filter is on the signed request (exit 2 for an unknown category, nothing
    recorded); a request whose state, screen or output is malformed is refused on the ledger
    (CUST762) by the same rule the audit replays; no file is written for a refused read."""
    from custodiet.cases.read import read_cases
    from custodiet.errors import CustodietError, InputError

    rev = world.kit.as_("rev")
    out = world.root / "matched.json"
    world.ok("case", "list", "--agreement", AGREEMENT, *rev, "--match", "ssn_name,exact",
             "--out", str(out))  # fmt: skip
    entry = world.entries()[-1]
    assert entry["request"]["args"]["match"] == ["exact", "ssn_name"]
    matched = json.loads(out.read_text(encoding="utf-8"))
    assert entry["cases"] == len(matched)
    assert all(c["evidence"].get("match") in ("exact", "ssn_name") for c in matched)
    ws = Workspace(world.ws)
    before = len(world.entries())
    for match in (["close"], "exact", []):
        with pytest.raises(InputError) as raised:
            world.kit.call(ws, read_cases, "rev", "case.read", agreement=AGREEMENT, match=match)
        assert raised.value.code == "CUST720" and len(world.entries()) == before
    for bad in ({"state": "closed"}, {"screen": ""}, {"screen": 3}, {"output": "xlsx"}):
        with pytest.raises(CustodietError) as refused:
            world.kit.call(ws, read_cases, "rev", "case.read", agreement=AGREEMENT, **bad)
        assert refused.value.code == "CUST762", bad
        last = world.entries()[-1]
        assert last["action"] == "refusal" and last["code"] == "CUST762", bad
        assert last["request"]["args"] == {"agreement": AGREEMENT, **bad}
    assert world.run("ledger", "audit").status == 0
