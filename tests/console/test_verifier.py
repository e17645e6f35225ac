"""The console's in-browser verifier (static/merkle.js, static/note.js), run in Chromium:
against the 196 RFC 6962 / RFC 9162 vectors of transparency-dev/merkle, and against
checkpoints, cosignatures and proofs made by the Python side."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from custodiet.ledger import note
from custodiet.ledger.witness import Witness
from custodiet.ledger.writer import Ledger, open_ledger
from tests.console.browser import module_page
from tests.console.world import chromium
from tests.needs import unavailable

REPO = Path(__file__).resolve().parents[2]
VECTORS = Path(
    os.environ.get("CUSTODIET_MERKLE_VECTORS") or REPO.parent / "shared/testvectors/merkle"
)

RUN_VECTORS = """async (cases) => {
  const m = await import("/console/static/merkle.js");
  const bytes = (t) => m.b64decode(t);
  const out = [];
  for (const c of cases) {
    try {
      if ("leafIdx" in c) {
        const proof = (c.proof || []).map(bytes);
        await m.verifyInclusion(c.leafIdx, c.treeSize, bytes(c.leafHash), proof, bytes(c.root));
      } else {
        const proof = (c.proof || []).map(bytes);
        await m.verifyConsistency(c.size1, c.size2, proof, bytes(c.root1), bytes(c.root2));
      }
      out.push("ok");
    } catch (e) {
      out.push(e.name === "VerificationError" ? "rejected" : `crashed: ${e}`);
    }
  }
  return out;
}"""

VERIFY = """async ({note, vkey, witnesses, entries, proofs, consistency}) => {
  const m = await import("/console/static/merkle.js");
  const n = await import("/console/static/note.js");
  const outcome = async (work) => {
    try { return await work(); } catch (e) { return `rejected: ${e.message}`; }
  };
  const keys = await Promise.all(witnesses.map(n.parseVkey));
  const cp = await outcome(async () => n.verifyCheckpoint(note, await n.parseVkey(vkey), keys));
  if (typeof cp === "string") return { checkpoint: cp };
  const enc = new TextEncoder();
  const inclusion = [];
  for (const p of proofs) {
    inclusion.push(await outcome(async () => {
      await m.verifyInclusion(p.index, p.tree_size, await m.leafHash(enc.encode(entries[p.index])),
        p.proof.map(m.b64decode), cp.root);
      return "ok";
    }));
  }
  const c = consistency;
  const consistent = await outcome(async () => {
    const proof = c.proof.map(m.b64decode);
    await m.verifyConsistency(c.old_size, c.new_size, proof, m.b64decode(c.old_root), cp.root);
    return "ok";
  });
  const signers = cp.signers.map((s) => s.name);
  return { checkpoint: { size: cp.size, signers }, inclusion, consistent };
}"""


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    with chromium() as browser:
        yield module_page(browser)


def test_the_196_merkle_vectors_get_the_verdicts_they_want(page: Any) -> None:
    if not VECTORS.is_dir():
        unavailable(f"Merkle test vectors not found at {VECTORS}", "set CUSTODIET_MERKLE_VECTORS")
    paths = sorted(VECTORS.rglob("*.json"))
    cases = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    assert len(cases) == 196
    verdicts = page.evaluate(RUN_VECTORS, cases)
    wrong = [
        (str(p.relative_to(VECTORS)), v)
        for p, c, v in zip(paths, cases, verdicts, strict=True)
        if v != ("rejected" if c["wantErr"] else "ok")
    ]
    assert wrong == []
    assert verdicts.count("rejected") > 100  # the negative cases really ran


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A log of 337 entries made by custodiet.ledger, its checkpoint cosigned by a witness (who
    saw size 37 before), inclusion proofs across tile boundaries and a consistency proof."""
    tmp = tmp_path_factory.mktemp("log")
    key = tmp / "log.ed25519"
    note.write_private_key(key)
    ledger = open_ledger(
        f"sqlite:///{tmp / 'ledger.db'}", "custodiet.test/console", key, create=True
    )
    witness = Witness.open_or_create(tmp / "witness", "witness.test/w1")
    ledger.append_many([{"actor": "t", "action": "seed", "n": i} for i in range(37)])
    witness.cosign(ledger.checkpoint(), ledger.vkey(), [])
    ledger.append_many([{"actor": "t", "action": "more", "n": i, "s": "é✓"} for i in range(300)])
    try:
        yield _made_by_python(ledger, witness)
    finally:
        ledger.close()


def _made_by_python(ledger: Ledger, witness: Witness) -> dict[str, Any]:
    size = ledger.size()
    proof = ledger.consistency_proof(37, size)
    text = ledger.checkpoint()
    cosigned = note.with_cosignatures(text, [witness.cosign(text, ledger.vkey(), proof.proof)])
    entries = [data.decode("utf-8") for _, data in ledger.entries(0, size)]
    indices = (0, 1, 36, 37, 255, 256, size - 1)
    return {
        "note": cosigned,
        "vkey": ledger.vkey(),
        "witnesses": [witness.vkey],
        "entries": entries,
        "proofs": [ledger.inclusion_proof(i, size).to_json() for i in indices],
        "consistency": proof.to_json(),
    }


def test_python_checkpoints_cosignatures_and_proofs_verify_in_the_browser(
    page: Any, made: dict[str, Any]
) -> None:
    result = page.evaluate(VERIFY, made)
    assert result["checkpoint"] == {
        "size": 337,
        "signers": ["custodiet.test/console", "witness.test/w1"],
    }
    assert result["inclusion"] == ["ok"] * 7
    assert result["consistent"] == "ok"


def test_the_browser_rejects_what_the_python_verifier_rejects(
    page: Any, made: dict[str, Any], tmp_path: Path
) -> None:
    body, _, sigs = made["note"].rpartition("\n\n")
    forged_body = body.replace("\n337\n", "\n338\n")
    tampered_entry = [*made["entries"]]
    tampered_entry[255] = tampered_entry[255].replace('"n":218', '"n":217')
    proofs = [{**p, "proof": list(p["proof"])} for p in made["proofs"]]
    flipped = base64.b64decode(proofs[0]["proof"][0])
    proofs[0]["proof"][0] = base64.b64encode(bytes([flipped[0] ^ 1]) + flipped[1:]).decode()
    other = note.vkey("witness.test/w1", note.write_private_key(tmp_path / "other"), 0x04)
    cases = {
        "forged size": {**made, "note": forged_body + "\n\n" + sigs},
        "unsigned by the witness required": {**made, "witnesses": [other]},
        "entry changed": {**made, "entries": tampered_entry},
        "proof hash flipped": {**made, "proofs": proofs},
    }
    outcomes = {name: page.evaluate(VERIFY, case) for name, case in cases.items()}
    assert outcomes["forged size"]["checkpoint"].startswith("rejected: invalid signature")
    assert outcomes["unsigned by the witness required"]["checkpoint"].startswith("rejected: ")
    assert outcomes["entry changed"]["inclusion"][4].startswith("rejected: inclusion proof")
    assert outcomes["entry changed"]["inclusion"][:4] == ["ok"] * 4
    assert outcomes["proof hash flipped"]["inclusion"][0].startswith("rejected: inclusion proof")
