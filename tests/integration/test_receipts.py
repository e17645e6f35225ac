"""A file written with --out carries its own proof: FILE.receipt.json, checked by `custodiet
verify-result` with nothing but the file, the receipt and the log's key. Every attack on the
file, the receipt's proof, its checkpoint, its entry or its key is caught (exit 1); a malformed
receipt is a usage error naming the field (exit 2). Through the CLI, on one small workspace."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodiet.errors import InputError
from custodiet.ledger.verify import ED25519_TYPE, key_id
from tests.conftest import CliResult, run_cli
from tests.gateway_data import agreement_document, write_canonical
from tests.kit import Kit

AGREEMENT = "ssa-deceased"
SQL = "SELECT payee_tin, amount, payment_date FROM payments ORDER BY payment_id"


@dataclass(frozen=True)
class World:
    root: Path
    ws: Path
    kit: Kit
    vkey: Path

    def run(self, *args: str, workspace: bool = True, cwd: Path | None = None) -> CliResult:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODIET_")}
        if workspace:
            env["CUSTODIET_WORKSPACE"] = str(self.ws)
        result = run_cli(*args, cwd=cwd or self.root, env=env)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def ok(self, *args: str) -> CliResult:
        result = self.run(*args)
        assert result.status == 0, (args, result.stderr)
        return result

    def query_out(self, out: Path, *extra: str, sql: str = SQL) -> Path:
        self.ok("query", "--agreement", AGREEMENT, *self.kit.as_("rev"), "--out", str(out),
                *extra, sql)  # fmt: skip
        return out

    def verify(self, out: Path, *extra: str, workspace: bool = False) -> CliResult:
        """verify-result as an outsider: no workspace, the log's key given with --vkey."""
        return self.run("verify-result", str(out), "--vkey", str(self.vkey), *extra,
                        workspace=workspace, cwd=self.root / "outsider")  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("receipts")
    (root / "outsider").mkdir()
    kit = Kit(root)
    ws = root / "ws"
    first = World(root, ws, kit, root / "log.vkey")
    first.ok("init", str(ws), "--custodian", f"ana={kit.pub_file('ana')}",
             "--custodian", f"ben={kit.pub_file('ben')}")  # fmt: skip
    first.ok("principal", "add", "rev", "--role", "reviewer",
             "--pubkey", str(kit.pub_file("rev")), *kit.as_("ana"))  # fmt: skip
    for name, path in write_canonical(root / "data", people=80).items():
        first.ok("dataset", "add", name, str(path), *kit.as_("ana"))
    document = agreement_document(AGREEMENT)
    document["datasets"]["payments"]["columns"]["agency"] = "allow"  # paid_after_death reads it
    (root / "agreement.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    first.ok("agreement", "apply", str(root / "agreement.yaml"), *kit.as_("rev"))
    sha = json.loads(first.ok("agreement", "show", AGREEMENT, "--format", "json").stdout)["sha256"]
    for custodian in ("ana", "ben"):
        first.ok("agreement", "approve", AGREEMENT, "--version", "1", "--sha256", sha,
                 *kit.as_(custodian))  # fmt: skip
    first.vkey.write_text(first.ok("ledger", "key").stdout, encoding="utf-8")
    return first


def _receipt(out: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        out.with_name(out.name + ".receipt.json").read_text(encoding="utf-8")
    )
    return document


def _write_receipt(out: Path, document: dict[str, Any]) -> Path:
    path = out.with_name(out.name + ".edited.json")
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _entry(receipt: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = json.loads(base64.b64decode(receipt["entry"]))
    return entry


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("rows.csv", None), ("rows.json", None), ("rows.parquet", None), ("rows.out", "parquet")],
)
def test_a_result_file_verifies_from_its_receipt_alone(
    world: World, name: str, fmt: str | None
) -> None:
    out = world.query_out(world.root / name, *(["--format", fmt] if fmt else []))
    receipt = _receipt(out)
    entry = _entry(receipt)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    kind = fmt or name.rsplit(".", 1)[1]
    assert entry["action"] == "query" and entry["index"] == receipt["ledger_index"]
    assert (entry["output_format"], entry["output_sha256"]) == (kind, digest)
    assert receipt["file"] == {"name": name, "format": kind, "sha256": digest}
    assert receipt["vkey"] == world.vkey.read_text(encoding="utf-8").strip()
    assert receipt["proof"]["index"] == receipt["ledger_index"]
    # the entry on the log is byte for byte the receipt's
    logged = world.ok("ledger", "entries", "--from", str(receipt["ledger_index"]),
                      "--to", str(receipt["ledger_index"])).stdout  # fmt: skip
    assert logged.encode().rstrip(b"\n") == base64.b64decode(receipt["entry"])
    done = world.verify(out)
    assert done.status == 0, done.stderr
    assert done.stdout.startswith(f"VERIFIED {out}: sha256 {digest}")
    assert f"ledger entry {receipt['ledger_index']}" in done.stdout
    assert "(from --vkey)" in done.stdout  # says which key it trusted
    if kind == "json":
        document = json.loads(out.read_text(encoding="utf-8"))
        assert set(document) == {"columns", "types", "rows", "notices"}
        assert len(document["rows"]) == entry["rows_returned"] > 0
    if kind == "parquet":
        import pyarrow.parquet as pq

        assert pq.read_table(out).num_rows == entry["rows_returned"]


def test_the_workspace_key_is_trusted_by_default_and_an_outsider_must_name_one(
    world: World,
) -> None:
    out = world.query_out(world.root / "default.csv")
    inside = world.run("verify-result", str(out))
    assert inside.status == 0, inside.stderr
    assert f"pinned in workspace {world.ws}" in inside.stdout
    outsider = world.run("verify-result", str(out), workspace=False, cwd=world.root / "outsider")
    assert outsider.status == 2
    assert "no log key to trust" in outsider.stderr and "--vkey" in outsider.stderr
    bad_key = world.verify(out, "--vkey", "not-a-key")
    assert bad_key.status == 2 and "--vkey" in bad_key.stderr


@pytest.mark.parametrize("at", [0, -2])
def test_a_one_byte_change_to_the_file_fails(world: World, at: int) -> None:
    out = world.query_out(world.root / f"changed{at}.csv")
    data = bytearray(out.read_bytes())
    data[at] ^= 0x01
    out.write_bytes(bytes(data))
    done = world.verify(out)
    assert done.status == 1
    assert f"NOT VERIFIED {out}" in done.stderr and "released" in done.stderr
    assert done.stdout == ""


def test_a_file_with_another_results_receipt_fails(world: World) -> None:
    first = world.query_out(world.root / "first.csv")
    second = world.query_out(world.root / "second.csv", sql="SELECT count(*) AS n FROM payments")
    other = str(second.with_name(second.name + ".receipt.json"))
    done = world.verify(first, "--receipt", other)
    assert done.status == 1 and "NOT VERIFIED" in done.stderr
    assert f"ledger entry {_receipt(second)['ledger_index']} released" in done.stderr


def test_an_edited_file_with_its_digest_edited_in_the_receipt_entry_fails(world: World) -> None:
    """The attack that matters: change the file AND the digest in the receipt's entry (and its
    leaf hash in the proof document): the entry is then not the one the log holds."""
    out = world.query_out(world.root / "forged.csv")
    out.write_bytes(out.read_bytes() + b"extra,row\n")
    receipt = _receipt(out)
    entry = base64.b64decode(receipt["entry"])
    old = _entry(receipt)["output_sha256"].encode()
    new = hashlib.sha256(out.read_bytes()).hexdigest().encode()
    receipt["entry"] = base64.b64encode(entry.replace(old, new)).decode()
    receipt["file"]["sha256"] = new.decode()
    done = world.verify(out, "--receipt", str(_write_receipt(out, receipt)))
    assert done.status == 1 and "is not included in the checkpoint" in done.stderr


def test_an_edited_proof_fails(world: World) -> None:
    out = world.query_out(world.root / "proof.csv")
    receipt = _receipt(out)
    assert receipt["proof"]["proof"], "a log of several entries has a non-empty proof"
    first = bytearray(base64.b64decode(receipt["proof"]["proof"][0]))
    first[0] ^= 0x80
    receipt["proof"]["proof"][0] = base64.b64encode(bytes(first)).decode()
    done = world.verify(out, "--receipt", str(_write_receipt(out, receipt)))
    assert done.status == 1 and "not included" in done.stderr
    receipt = _receipt(out)
    receipt["proof"]["proof"].pop()
    done = world.verify(out, "--receipt", str(_write_receipt(out, receipt)))
    assert done.status == 1 and "NOT VERIFIED" in done.stderr


def test_an_edited_checkpoint_fails(world: World) -> None:
    out = world.query_out(world.root / "checkpoint.csv")
    receipt = _receipt(out)
    origin, size, root, *rest = receipt["checkpoint"].split("\n")
    root_bytes = bytearray(base64.b64decode(root))
    root_bytes[-1] ^= 0x01
    forged_root = base64.b64encode(bytes(root_bytes)).decode()
    receipt["checkpoint"] = "\n".join([origin, size, forged_root, *rest])
    receipt["proof"]["root_hash"] = forged_root
    done = world.verify(out, "--receipt", str(_write_receipt(out, receipt)))
    assert done.status == 1 and "not signed by the trusted log key" in done.stderr


def test_a_log_forged_under_the_same_origin_with_another_key_fails(world: World) -> None:
    """Whoever rewrites the entry, the proof and signs a new checkpoint with their own key
    (and names that key in the receipt) is not trusted: the key comes from --vkey."""
    out = world.query_out(world.root / "forged_log.csv")
    out.write_bytes(b"payee_tin,amount,payment_date\n")
    receipt = _receipt(out)
    entry = _entry(receipt)
    entry["output_sha256"] = hashlib.sha256(out.read_bytes()).hexdigest()
    data = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
    leaf = hashlib.sha256(b"\x00" + data).digest()
    origin = receipt["origin"]
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw()
    ident = key_id(origin, ED25519_TYPE, public)
    body = f"{origin}\n1\n{base64.b64encode(leaf).decode()}\n"
    signature = base64.b64encode(ident + key.sign(body.encode())).decode()
    forged_vkey = f"{origin}+{ident.hex()}+{base64.b64encode(bytes([1]) + public).decode()}"
    receipt.update(
        ledger_index=entry["index"],
        entry=base64.b64encode(data).decode(),
        checkpoint=f"{body}\n\u2014 {origin} {signature}\n",
        vkey=forged_vkey,
        proof={"index": entry["index"], "tree_size": 1, "leaf_hash": "", "proof": [],
               "root_hash": base64.b64encode(leaf).decode()},
    )  # fmt: skip
    forged = _write_receipt(out, receipt)
    done = world.verify(out, "--receipt", str(forged))
    assert done.status == 1 and "not signed by the trusted log key" in done.stderr
    # and the forger's own key does not make it verify either (index 0 is not the entry's)
    trusting_forger = world.verify(out, "--receipt", str(forged), "--vkey", forged_vkey)
    assert trusting_forger.status == 1, trusting_forger.stdout


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda r: r.pop("proof"), "proof"),
        (lambda r: r.update(ledger_index="7"), "ledger_index"),
        (lambda r: r["proof"].update(index=r["proof"]["index"] + 1), "proof.index"),
        (lambda r: r["proof"]["proof"].append("AAAA"), "proof.proof["),
        (lambda r: r.update(entry="not base64!"), "entry"),
        (lambda r: r.update(receipt="something/else"), "receipt"),
        (lambda r: r.pop("checkpoint"), "checkpoint"),
    ],
)
def test_a_malformed_receipt_is_a_usage_error_naming_the_field(
    world: World, edit: Any, field: str
) -> None:
    out = world.root / "malformed.csv"
    if not out.exists():
        world.query_out(out)
    receipt = _receipt(out)
    edit(receipt)
    done = world.verify(out, "--receipt", str(_write_receipt(out, receipt)))
    assert done.status == 2, done.stderr
    assert f"receipt field '{field}" in done.stderr


def test_an_unreadable_receipt_or_file_is_a_usage_error(world: World) -> None:
    out = world.query_out(world.root / "unreadable.csv")
    broken = out.with_name("broken.json")
    broken.write_bytes(b"\xff\xfe not json")
    done = world.verify(out, "--receipt", str(broken))
    assert done.status == 2 and "'(document)'" in done.stderr
    missing = world.verify(world.root / "missing.csv")
    assert missing.status == 2 and "cannot be read" in missing.stderr


def test_a_screen_run_file_verifies_with_its_run_entry(world: World) -> None:
    out = world.root / "cases.csv"
    world.ok("screen", "run", "paid_after_death", "--agreement", AGREEMENT,
             *world.kit.as_("rev"), "--out", str(out))  # fmt: skip
    receipt = _receipt(out)
    entry = _entry(receipt)
    assert entry["action"] == "screen.run" and entry["output_format"] == "csv"
    assert set(receipt["screens"]) == {"paid_after_death"}
    assert out.read_text(encoding="utf-8").startswith("record_table,record_id,pattern,payee")
    done = world.verify(out)
    assert done.status == 0, done.stderr
    assert "screen.run by rev" in done.stdout
    json_out = world.root / "cases.json"
    world.ok("screen", "run", "paid_after_death", "--agreement", AGREEMENT,
             *world.kit.as_("rev"), "--out", str(json_out))  # fmt: skip
    assert world.verify(json_out).status == 0
    assert "cases" in json.loads(json_out.read_text(encoding="utf-8"))
    out.write_bytes(out.read_bytes().replace(b"\n", b"\r\n", 1))
    assert world.verify(out).status == 1


def test_a_request_for_an_unknown_output_format_is_refused_on_the_ledger(world: World) -> None:
    from custodiet.gateway.service import run_query
    from custodiet.workspace import Workspace

    ws = Workspace(world.ws)
    kit = world.kit
    with pytest.raises(InputError) as raised:
        kit.call(ws, run_query, "rev", "query", agreement=AGREEMENT, sql=SQL, output="xlsx")
    assert raised.value.code == "CUST530"
    last = json.loads(world.ok("ledger", "entries").stdout.splitlines()[-1])
    assert (last["action"], last["code"], last["request"]["args"]["output"]) == (
        "refusal",
        "CUST530",
        "xlsx",
    )


def test_witness_cosignatures_are_checked_when_asked_for(world: World) -> None:
    out = world.query_out(world.root / "witnessed.csv")
    cosigned = world.ok("ledger", "witness", "--dir", str(world.root / "w"), "--name", "ig.test")
    witness = cosigned.stdout.strip().rsplit(" as ", 1)[1]
    missing = world.verify(out, "--witness", witness)
    assert missing.status == 1 and "lacks a valid signature by ig.test" in missing.stderr
    receipt = _receipt(out)
    note = world.ok("ledger", "checkpoint").stdout
    assert note.startswith(receipt["checkpoint"].split("\n\n")[0] + "\n\n")  # same size
    receipt["checkpoint"] = note  # the same checkpoint, now with the witness's cosignature
    edited = str(_write_receipt(out, receipt))
    done = world.verify(out, "--receipt", edited, "--witness", witness)
    assert done.status == 0, done.stderr
    bad = world.verify(out, "--receipt", edited, "--witness", "nope")
    assert bad.status == 2 and "--witness" in bad.stderr
