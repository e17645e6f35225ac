"""Issue 8's attacks, end to end through the CLI: each is refused (exit 3 and a `refused:` line
naming the rule, or the documented exit status), releases no data, and leaves its entry on the
ledger (a ``refusal`` carrying what was attempted, the stable code and the signed request).

One workspace is shared by the module (custodians ana and ben, K = 2; reviewers rae and rob; an
overseer ola; the canonical payments/deaths data). Attacks that leave the ledger unauditable on
purpose (a forged entry) or change files (a swapped source, a deleted projection) work on their
own copy of it, so every other test can still require `ledger audit` to pass.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from custodiet.agreements.lifecycle import AgreementSummary, show_agreement
from custodiet.catalog.registry import add_dataset
from custodiet.errors import RefusedError
from custodiet.gateway.service import run_query
from custodiet.identity import SignedRequest
from custodiet.ledger.replay import State, audit_entries
from custodiet.principals import add_principal
from custodiet.runtime import Runtime, opened
from custodiet.workspace import Workspace
from tests.conftest import CliResult, run_cli
from tests.gateway_data import agreement_document, write_canonical
from tests.kit import Kit, public_key

# an SSN as the data holds it: 123-45-6789 (deaths) or 123456789 (payments)
SSN_SHAPED = re.compile(r"(?<![\w-])\d{3}-?\d{2}-?\d{4}(?![\w-])")


@dataclass(frozen=True)
class World:
    kit: Kit
    ws: Workspace
    root: Path
    data: dict[str, Path]

    def cli(self, *args: str, as_: str | None = None, key_of: str | None = None) -> CliResult:
        """``custodiet ARGS -w WS``, acting as ``as_`` with ``key_of``'s key (default: theirs)."""
        who: list[str] = []
        if as_ is not None:
            who = ["--as", as_, "--key", str(self.kit.key_file(key_of or as_))]
        return run_cli(*args, *who, "--workspace", str(self.ws.root))

    def act(
        self, service: Callable[[Runtime, SignedRequest], Any], signer: str, action: str,
        **args: Any,
    ) -> Any:  # fmt: skip
        """Run one signed action in-process (setup; the attacks themselves go through the CLI)."""
        with opened(self.ws) as rt:
            return service(rt, self.kit.sign(rt, signer, action, args))

    def agreement_file(self, name: str, document: dict[str, Any]) -> Path:
        path = self.root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        return path

    def propose(self, document: dict[str, Any], by: str) -> tuple[int, str]:
        """Propose ``document`` as ``by`` (in-process); its version and sha256."""
        done = self.kit.apply(self.ws, self.agreement_file(document["id"], document), by)
        return done.version, done.sha256

    def activate(self, document: dict[str, Any]) -> None:
        """The reviewer proposes, both custodians approve: active, projection built."""
        self.propose(document, document["reviewer"])
        self.kit.approve_all(self.ws, document["id"])

    def entries(self) -> list[dict[str, Any]]:
        ledger = self.ws.ledger()
        try:
            return [json.loads(data) for _, data in ledger.entries()]
        finally:
            ledger.close()

    def size(self) -> int:
        ledger = self.ws.ledger()
        try:
            return ledger.size()
        finally:
            ledger.close()

    def since(self, size: int) -> list[dict[str, Any]]:
        return self.entries()[size:]

    def state(self) -> State:
        """The state the gateway acts on (read in-process: cheaper than a CLI start)."""
        with opened(self.ws) as rt:
            return rt.state

    def show(self, agreement_id: str) -> AgreementSummary:
        return show_agreement(self.state(), agreement_id)


def document(agreement_id: str, reviewer: str, **changes: Any) -> dict[str, Any]:
    doc = agreement_document(agreement_id, reviewer=reviewer, **changes)
    doc["limits"] = {**doc["limits"], "timeout_seconds": 300}
    return doc


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("governance")
    kit = Kit(root)
    ws = kit.init(root / "ws")
    world = World(kit, ws, root, write_canonical(root / "data", people=200))
    for name, role in (("rae", "reviewer"), ("rob", "reviewer"), ("ola", "overseer")):
        world.act(add_principal, "ana", "principal.add", name=name, role=role,
                  pubkey=public_key(name))  # fmt: skip
    for name, path in world.data.items():
        world.act(add_dataset, "ana", "dataset.add", name=name, path=str(path), classify={})
    world.activate(document("rae-a", "rae"))
    return world


def refusal_of(
    world: World, size: int, *, attempted: str, code: str, actor: str | None = None
) -> dict[str, Any]:
    """The one refusal entry appended since ``size``, with its request and signature."""
    refusals = [e for e in world.since(size) if e["action"] == "refusal"]
    assert len(refusals) == 1, refusals
    entry = refusals[0]
    assert (entry["attempted"], entry["code"], entry["decision"]) == (attempted, code, "refused")
    assert entry["request"]["action"] == attempted
    assert isinstance(entry["signature"], str) and entry["signature"]
    if actor is not None:
        assert entry["actor"] == actor == entry["request"]["principal"]
    return entry


def assert_refused(result: CliResult, rule: str) -> None:
    assert result.status == 3, (result.stdout, result.stderr)
    assert result.stderr.startswith("refused: "), result.stderr
    assert rule in result.stderr.splitlines()[0], result.stderr
    assert result.stdout == ""


def assert_replays(world: World) -> None:
    """The ledger replays cleanly (in-process; `ledger audit` itself runs where it matters)."""
    _, result = audit_entries(world.entries())
    assert result.violation is None, result


def assert_audit_passes(world: World) -> CliResult:
    result = world.cli("ledger", "audit")
    assert result.status == 0, result.stderr + result.stdout
    assert "authorized:" in result.stdout
    return result


# --- `--as NAME` with someone else's key ---------------------------------------------------------


def test_a_reviewer_signing_as_a_custodian_approves_nothing(world: World) -> None:
    version, sha = world.propose(document("rae-own", "rae"), by="rae")
    size = world.size()
    result = world.cli("agreement", "approve", "rae-own", "--version", str(version),
                       "--sha256", sha, as_="ana", key_of="rae")  # fmt: skip
    assert_refused(result, "the signature does not verify under the key registered for 'ana'")
    entry = refusal_of(world, size, attempted="agreement.approve", code="CUST502", actor="ana")
    assert entry["request"]["args"] == {"agreement": "rae-own", "sha256": sha, "version": version}
    # with her own key, as herself: a reviewer approves nothing
    size = world.size()
    result = world.cli("agreement", "approve", "rae-own", "--version", str(version),
                       "--sha256", sha, as_="rae")  # fmt: skip
    assert_refused(result, "is the reviewer of agreement 'rae-own' and may not approve it")
    refusal_of(world, size, attempted="agreement.approve", code="CUST319", actor="rae")
    shown = world.show("rae-own")
    assert (shown.status, shown.approvals) == ("pending", ())
    size = world.size()
    result = world.cli("query", "SELECT payee_tin FROM payments", "--agreement", "rae-own",
                       as_="rae")  # fmt: skip
    assert_refused(result, "agreement 'rae-own' is not approved (0 of 2 approvals)")
    refusal_of(world, size, attempted="query", code="CUST313", actor="rae")
    assert not SSN_SHAPED.search(result.stdout)


def test_a_reviewer_signing_as_custodians_cannot_release_her_own_reidentification(
    world: World,
) -> None:
    from custodiet.reid import request_reid

    token = world.kit.query(world.ws, "rae-a", "SELECT payee_tin FROM payments LIMIT 1").rows[0][0]
    filed = world.act(request_reid, "rae", "reid.request", agreement="rae-a", tokens=[token],
                      fields=["name", "tin"], reason="suspected payment after death")  # fmt: skip
    size = world.size()
    result = world.cli("reid", "approve", str(filed.id), "--sha256", filed.sha256, as_="ben",
                       key_of="rae")  # fmt: skip
    assert_refused(result, "the signature does not verify under the key registered for 'ben'")
    entry = refusal_of(world, size, attempted="reid.approve", code="CUST502", actor="ben")
    assert entry["request"]["args"] == {"request": filed.id, "sha256": filed.sha256}
    size = world.size()
    result = world.cli("reid", "approve", str(filed.id), "--sha256", filed.sha256, as_="rae")
    assert_refused(result, f"principal 'rae' requested re-identification request {filed.id}")
    refusal_of(world, size, attempted="reid.approve", code="CUST413", actor="rae")
    size = world.size()
    result = world.cli("reid", "show", str(filed.id), "--format", "json", as_="rae")
    assert_refused(result, f"re-identification request {filed.id} is not approved (0 of 2")
    refusal_of(world, size, attempted="reid.show", code="CUST416", actor="rae")
    assert not SSN_SHAPED.search(result.stdout + result.stderr)
    assert "Person" not in result.stdout + result.stderr


# --- minting principals and registering data -----------------------------------------------------


def test_only_custodians_add_principals_or_register_datasets(world: World) -> None:
    mallory = str(world.kit.pub_file("mallory"))
    size = world.size()
    result = world.cli("principal", "add", "mallory", "--role", "custodian", "--pubkey", mallory,
                       as_="rae")  # fmt: skip
    assert_refused(result, "principal 'rae' is a reviewer; only custodians add principals")
    refusal_of(world, size, attempted="principal.add", code="CUST318", actor="rae")
    size = world.size()
    result = world.cli("dataset", "add", "payments2", str(world.data["payments"]), as_="ola")
    assert_refused(result, "principal 'ola' is a overseer; only custodians register datasets")
    refusal_of(world, size, attempted="dataset.add", code="CUST318", actor="ola")
    # someone the ledger never registered, with a key of their own, adding herself
    size = world.size()
    result = world.cli("principal", "add", "mallory", "--role", "custodian", "--pubkey", mallory,
                       as_="mallory")  # fmt: skip
    assert_refused(result, "unknown principal 'mallory'")
    refusal_of(world, size, attempted="principal.add", code="CUST310", actor="mallory")
    state = world.state()
    assert "mallory" not in state.principals and "payments2" not in state.datasets


def test_a_new_custodian_needs_k_custodians(world: World) -> None:
    cara = str(world.kit.pub_file("cara"))
    size = world.size()
    first = world.cli("principal", "add", "cara", "--role", "custodian", "--pubkey", cara,
                      as_="ana")  # fmt: skip
    assert first.status == 0, first.stderr
    assert "signed by ana (1 of 2); not registered yet" in first.stdout
    (entry,) = world.since(size)
    assert (entry["action"], entry["actor"], entry["principal"]) == ("principal.add", "ana", "cara")
    assert (entry["votes"], entry["required"], entry["effective"]) == (1, 2, False)
    assert entry["request"]["args"]["role"] == "custodian" and entry["signature"]
    assert "cara" not in world.state().principals
    # cara does not exist yet: her first act is refused as an unknown principal
    size = world.size()
    result = world.cli("dataset", "add", "payments2", str(world.data["payments"]), as_="cara")
    assert_refused(result, "unknown principal 'cara'")
    refusal_of(world, size, attempted="dataset.add", code="CUST310", actor="cara")
    size = world.size()
    second = world.cli("principal", "add", "cara", "--role", "custodian", "--pubkey", cara,
                       as_="ben")  # fmt: skip
    assert second.status == 0, second.stderr
    assert "signed by ben (2 of 2); registered" in second.stdout
    (entry,) = world.since(size)
    assert (entry["votes"], entry["effective"], entry["actor"]) == (2, True, "ben")
    listed = world.cli("principal", "list", "--format", "json")
    assert ("cara", "custodian", public_key("cara")) in [
        (p["name"], p["role"], p["pubkey"]) for p in json.loads(listed.stdout)
    ]


# --- classification ------------------------------------------------------------------------------


def test_a_column_of_ssns_stays_an_identifier_whatever_classify_says(world: World) -> None:
    copy = world.root / "deaths-copy.parquet"
    shutil.copyfile(world.data["deaths"], copy)
    size = world.size()
    result = world.cli("dataset", "add", "deaths_copy", str(copy), "--classify", "ssn=category",
                       as_="ana")  # fmt: skip
    assert_refused(result, "column deaths_copy.ssn holds identifiers by its values and may not be "
                   "classified 'category'")  # fmt: skip
    entry = refusal_of(world, size, attempted="dataset.add", code="CUST519", actor="ana")
    assert entry["request"]["args"]["classify"] == {"ssn": "category"}
    assert not SSN_SHAPED.search(json.dumps(entry))  # the refusal holds no value from the data
    assert not SSN_SHAPED.search(result.stdout + result.stderr)
    assert "deaths_copy" not in world.state().datasets
    # and through the normal query path no raw SSN ever comes out, from either spelling
    size = world.size()
    sql = ("SELECT d.ssn, p.payee_tin, d.date_of_death FROM deaths d "
           "JOIN payments p ON p.payee_tin = d.ssn")  # fmt: skip
    out = world.cli("query", sql, "--agreement", "rae-a", "--format", "csv", as_="rae")
    assert out.status == 0, out.stderr
    rows = out.stdout.splitlines()[1:]
    assert len(rows) == 3 * 26  # three SSA payments each of the 26 SSA payees who died
    assert all(ssn == tin for ssn, tin, _ in (row.split(",") for row in rows))  # tokens join
    assert not SSN_SHAPED.search(out.stdout)
    kinds = [(e["action"], e.get("attempted")) for e in world.since(size)]
    assert kinds == [("intent", "query"), ("query", None)]


def test_lowering_a_class_needs_k_custodians(world: World) -> None:
    copy = world.root / "deaths-lowered.parquet"
    shutil.copyfile(world.data["deaths"], copy)
    args = ("dataset", "add", "deaths_dob", str(copy), "--classify", "date_of_birth=date")
    size = world.size()
    first = world.cli(*args, as_="ana")
    assert first.status == 0, first.stderr
    assert "signed by ana (1 of 2); not registered yet" in first.stdout
    assert "lowered classes (date_of_birth) need 2 custodians" in first.stdout
    (entry,) = world.since(size)
    assert (entry["lowered"], entry["votes"], entry["effective"]) == (["date_of_birth"], 1, False)
    assert "deaths_dob" not in world.state().datasets
    second = world.cli(*args, as_="ben")
    assert second.status == 0 and "signed by ben (2 of 2); registered" in second.stdout


# --- quorum and self-approval --------------------------------------------------------------------


def test_an_agreement_cannot_choose_a_quorum_below_k(world: World) -> None:
    path = world.agreement_file("rae-k1", document("rae-k1", "rae", approvals_required=1))
    size = world.size()
    result = world.cli("agreement", "apply", str(path), as_="rae")
    assert_refused(result, "approvals_required must be at least the workspace's 2")
    entry = refusal_of(world, size, attempted="agreement.propose", code="CUST522", actor="rae")
    assert entry["request"]["args"]["document"]["approvals_required"] == 1
    assert "rae-k1" not in world.state().agreements  # never proposed


def test_nobody_approves_their_own_proposal_or_approves_twice(world: World) -> None:
    version, sha = world.propose(document("ana-proposed", "rae"), by="ana")
    approve = ("agreement", "approve", "ana-proposed", "--version", str(version), "--sha256", sha)
    size = world.size()
    result = world.cli(*approve, as_="ana")
    assert_refused(result, "principal 'ana' proposed agreement 'ana-proposed' v1 and may not "
                   "approve it")  # fmt: skip
    refusal_of(world, size, attempted="agreement.approve", code="CUST523", actor="ana")
    assert world.cli(*approve, as_="ben").status == 0
    size = world.size()
    result = world.cli(*approve, as_="ben")
    assert_refused(result, "already approved agreement 'ana-proposed' v1; an approval counts once")
    refusal_of(world, size, attempted="agreement.approve", code="CUST320", actor="ben")
    assert world.show("ana-proposed").approvals == ("ben",)
    size = world.size()
    result = world.cli("query", "SELECT amount FROM payments", "--agreement", "ana-proposed",
                       as_="rae")  # fmt: skip
    assert_refused(result, "agreement 'ana-proposed' is not approved (1 of 2 approvals)")
    refusal_of(world, size, attempted="query", code="CUST313", actor="rae")


# --- someone else's agreement id -----------------------------------------------------------------


def test_a_reviewer_cannot_take_over_another_reviewers_agreement(world: World) -> None:
    path = world.agreement_file("takeover", document("rae-a", "rob", purpose="rob's own"))
    size = world.size()
    result = world.cli("agreement", "apply", str(path), as_="rob")
    assert_refused(result, "only agreement 'rae-a''s own reviewer ('rae') proposes its next "
                   "versions")  # fmt: skip
    refusal_of(world, size, attempted="agreement.propose", code="CUST312", actor="rob")
    # and the owner cannot hand her id to someone else either: that is a new agreement
    path = world.agreement_file("handover", document("rae-a", "rob", purpose="handed over"))
    size = world.size()
    result = world.cli("agreement", "apply", str(path), as_="rae")
    assert_refused(result, "a change of reviewer is a new agreement")
    refusal_of(world, size, attempted="agreement.propose", code="CUST521", actor="rae")
    shown = world.show("rae-a")
    assert (shown.version, shown.status, shown.reviewer) == (1, "active", "rae")
    owner = world.cli("query", "SELECT count(*) AS n FROM payments", "--agreement", "rae-a",
                      "--format", "json", as_="rae")  # fmt: skip
    assert owner.status == 0 and json.loads(owner.stdout)["rows"] == [[540]]
    size = world.size()
    result = world.cli("query", "SELECT count(*) FROM payments", "--agreement", "rae-a",
                       as_="rob")  # fmt: skip
    assert_refused(result, "principal 'rob' is not the reviewer of agreement 'rae-a'")
    refusal_of(world, size, attempted="query", code="CUST316", actor="rob")


def test_tokens_differ_between_agreements_and_between_reviewers(world: World) -> None:
    world.activate(document("rob-a", "rob"))
    world.activate(document("rae-b", "rae"))
    sql = "SELECT payee_tin FROM payments WHERE payment_id = 'P0000000'"
    tokens = {}
    for agreement, reviewer in (("rae-a", "rae"), ("rae-b", "rae"), ("rob-a", "rob")):
        result = world.cli("query", sql, "--agreement", agreement, "--format", "json",
                           as_=reviewer)  # fmt: skip
        assert result.status == 0, result.stderr
        ((token,),) = json.loads(result.stdout)["rows"]
        assert not SSN_SHAPED.search(token)
        tokens[agreement] = token
    assert len(set(tokens.values())) == 3, tokens


# --- approving exactly what was shown ------------------------------------------------------------


def test_a_stale_approval_does_not_activate_a_wider_version(world: World) -> None:
    narrow = document("rae-w", "rae")
    v1, sha1 = world.propose(narrow, by="rae")
    world.kit.approve_all(world.ws, "rae-w")
    wider = json.loads(json.dumps(narrow))
    wider["datasets"]["payments"]["columns"]["method"] = "allow"
    del wider["datasets"]["payments"]["rows"]
    v2, sha2 = world.propose(wider, by="rae")
    assert (v1, v2) == (1, 2) and sha1 != sha2
    for custodian, version, sha in (("ben", v1, sha1), ("ana", v2, sha1)):
        size = world.size()
        result = world.cli("agreement", "approve", "rae-w", "--version", str(version),
                           "--sha256", sha, as_=custodian)  # fmt: skip
        assert_refused(result, f"the approval is for v{version} sha256 {sha[:12]}…, but the "
                       f"pending version of 'rae-w' is v2 sha256 {sha2[:12]}…")  # fmt: skip
        entry = refusal_of(world, size, attempted="agreement.approve", code="CUST524",
                           actor=custodian)  # fmt: skip
        assert entry["request"]["args"] == {"agreement": "rae-w", "sha256": sha,
                                            "version": version}  # fmt: skip
    shown = world.show("rae-w")
    assert (shown.version, shown.status, shown.active_version) == (2, "pending", 1)
    assert shown.approvals == () and "+ payments.method: deny -> allow" in shown.changes
    # the reviewer still runs under v1: the column v2 would grant stays denied
    size = world.size()
    result = world.cli("query", "SELECT method FROM payments", "--agreement", "rae-w", as_="rae")
    assert result.status == 3 and result.stdout == "", result.stderr
    assert "method" in result.stderr
    (refusal,) = world.since(size)
    assert (refusal["action"], refusal["agreement_version"]) == ("refusal", 1)
    assert refusal["agreement_sha256"] == sha1


# --- the state cache and the ledger --------------------------------------------------------------


def test_editing_the_state_cache_activates_nothing(world: World) -> None:
    world.propose(document("rae-cache", "rae"), by="rae")
    path = world.ws.root / "state.json"
    cache = json.loads(path.read_text())
    state = cache["body"]["state"]
    versions = state["agreements"]["rae-cache"]["versions"]
    versions[0][4] = ["ana", "ben"]  # an approval row for each custodian
    state["projections"]["rae-cache@1"] = state["projections"]["rae-a@1"]
    state["principals"]["mallory"] = ["custodian", public_key("mallory")]
    path.write_text(json.dumps(cache))
    size = world.size()
    result = world.cli("query", "SELECT payee_tin FROM payments", "--agreement", "rae-cache",
                       as_="rae")  # fmt: skip
    assert_refused(result, "agreement 'rae-cache' is not approved (0 of 2 approvals)")
    refusal_of(world, size, attempted="query", code="CUST313", actor="rae")
    assert not SSN_SHAPED.search(result.stdout)
    assert world.show("rae-cache").approvals == ()
    rebuilt = json.loads(path.read_text())["body"]["state"]
    assert rebuilt["agreements"]["rae-cache"]["versions"][0][4] == []
    assert "mallory" not in rebuilt["principals"]
    assert_audit_passes(world)  # the ledger itself is clean
    # what these tests read in-process is exactly what `custodiet ledger entries` prints
    printed = world.cli("ledger", "entries")
    assert printed.status == 0
    assert [json.loads(line) for line in printed.stdout.splitlines()] == world.entries()


def test_a_forged_approval_entry_activates_nothing_and_audit_names_it(
    world: World, tmp_path: Path
) -> None:
    ws = Workspace(tmp_path / "ws")
    shutil.copytree(world.ws.root, ws.root)
    forged = World(world.kit, ws, tmp_path, world.data)
    version, sha = forged.propose(document("rae-forged", "rae"), by="rae")
    ledger = ws.ledger()
    try:
        first = ledger.size()
        for custodian, count in (("ana", 1), ("ben", 2)):
            ledger.append({
                "action": "agreement.approve", "actor": custodian, "agreement": "rae-forged",
                "agreement_version": version, "agreement_sha256": sha, "approvals": count,
                "approvals_required": 2, "active": count == 2,
            })  # fmt: skip
    finally:
        ledger.close()
    size = forged.size()
    result = forged.cli("query", "SELECT payee_tin FROM payments", "--agreement", "rae-forged",
                        as_="rae")  # fmt: skip
    assert_refused(result, "agreement 'rae-forged' is not approved (0 of 2 approvals)")
    refusal_of(forged, size, attempted="query", code="CUST313", actor="rae")
    assert forged.show("rae-forged").approvals == ()
    audit = forged.cli("ledger", "audit")
    assert audit.status == 1, audit.stdout + audit.stderr
    assert f"not authorized: ledger entry {first}: entry 'agreement.approve' does not carry a " \
        "request for it [CUST513]" in audit.stderr  # fmt: skip
    assert_replays(world)  # the shared workspace's ledger is untouched


# --- source integrity and where projections are built --------------------------------------------


def test_a_swapped_source_stops_the_build_and_the_reviewer_builds_nothing(
    world: World, tmp_path: Path
) -> None:
    source = tmp_path / "deaths-swap.parquet"
    shutil.copyfile(world.data["deaths"], source)
    world.act(add_dataset, "ana", "dataset.add", name="deaths_swap", path=str(source), classify={})
    swap = document("rae-swap", "rae")
    swap["datasets"] = {"deaths_swap": swap["datasets"]["deaths"]}
    version, sha = world.propose(swap, by="rae")
    world.kit.approve(world.ws, "rae-swap", "ana")
    write_canonical(tmp_path / "other", people=300)
    shutil.copyfile(tmp_path / "other" / "deaths.parquet", source)  # after registration
    size = world.size()
    result = world.cli("agreement", "approve", "rae-swap", "--version", str(version),
                       "--sha256", sha, as_="ben")  # fmt: skip
    assert result.status == 1, result.stdout + result.stderr
    assert "dataset 'deaths_swap' changed since it was registered" in result.stderr
    assert "protected projection ready" not in result.stdout
    approval, build = world.since(size)
    assert (approval["action"], approval["active"]) == ("agreement.approve", True)
    assert (build["action"], build["decision"], build["code"]) == (
        "projection.build",
        "failed",
        "CUST536",
    )
    registered = next(e for e in world.entries() if e.get("dataset") == "deaths_swap")
    assert build["agreement"] == "rae-swap"
    assert build["sources"]["deaths_swap"] != registered["file_sha256"]
    assert not list(world.ws.projections_dir.glob("rae-swap-*"))
    # the reviewer's own query builds nothing: refused, nothing built, no build entry
    size = world.size()
    query = world.cli("query", "SELECT ssn FROM deaths_swap", "--agreement", "rae-swap", as_="rae")
    assert_refused(query, "agreement 'rae-swap' v1 has no projection built from registered sources")
    refusal_of(world, size, attempted="query", code="CUST527", actor="rae")
    assert not list(world.ws.projections_dir.glob("rae-swap-*"))
    assert_replays(world)


def test_a_missing_projection_is_not_rebuilt_inside_a_reviewers_query(
    world: World, tmp_path: Path
) -> None:
    ws = Workspace(tmp_path / "ws")
    shutil.copytree(world.ws.root, ws.root)
    copy = World(world.kit, ws, tmp_path, world.data)
    removed = sorted(ws.projections_dir.glob("rae-a-v1-*"))
    assert len(removed) == 2  # the database and its policy
    for path in removed:
        path.unlink()
    # the reviewer's process runs without the workspace secret, the root of every token key: had
    # her request tried to build (tokenize) anything, it could not have, and it would fail on that
    withheld = tmp_path / "secret.bin"
    ws.secret_path.rename(withheld)
    size = copy.size()
    result = copy.cli("query", "SELECT payee_tin FROM payments", "--agreement", "rae-a", as_="rae")
    assert not ws.secret_path.exists()
    withheld.rename(ws.secret_path)
    assert result.status == 1 and result.stdout == "", result.stderr
    assert "the protected projection of agreement 'rae-a' (v1) is not built" in result.stderr
    assert "a custodian rebuilds it" in result.stderr and "secret" not in result.stderr
    (entry,) = copy.since(size)
    assert (entry["action"], entry["attempted"], entry["decision"], entry["code"]) == (
        "refusal",
        "query",
        "failed",
        "CUST538",
    )
    assert entry["request"]["principal"] == "rae" and entry["signature"]
    assert not list(ws.projections_dir.glob("rae-a-v1-*"))  # nothing was built
    assert [e["action"] for e in copy.since(size)] == ["refusal"]  # no projection.build
    # a custodian's signed rebuild is how it comes back, on the ledger with its request
    size = copy.size()
    rebuilt = copy.cli("agreement", "build", "rae-a", as_="ben")
    assert rebuilt.status == 0, rebuilt.stderr
    (build,) = copy.since(size)
    assert (build["action"], build["decision"], build["actor"]) == (
        "projection.build",
        "allowed",
        "ben",
    )
    assert build["request"]["action"] == "agreement.build"


# --- replayed, stale and foreign requests --------------------------------------------------------


def test_replayed_stale_and_foreign_requests_are_refused(world: World) -> None:
    args = {"agreement": "rae-a", "sql": "SELECT count(*) FROM payments"}
    with opened(world.ws) as rt:
        signed = world.kit.sign(rt, "rae", "query", args)
        assert run_query(rt, signed).rows == [(540,)]
        stale = world.kit.sign(
            rt, "rae", "query", args, now=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
        )
        foreign = world.kit.sign(rt, "rae", "query", args, origin="custodiet.local/elsewhere")
    cases = (
        (signed, "CUST506", "the request was already used (a replayed signature)"),
        (stale, "CUST505", "more than 300 s from now"),
        (foreign, "CUST503", "the request was signed for another log"),
    )
    for request, code, rule in cases:
        size = world.size()
        with opened(world.ws) as rt, pytest.raises(RefusedError) as refused:
            run_query(rt, request)
        assert refused.value.code == code and rule in refused.value.rule
        entry = refusal_of(world, size, attempted="query", code=code, actor="rae")
        assert (entry["request"], entry["signature"]) == (request.request, request.signature)


# --- a query killed mid-execution ----------------------------------------------------------------


def test_a_killed_query_leaves_an_unfinished_intent(world: World) -> None:
    size = world.size()
    slow = ("SELECT count(*) FROM payments a, payments b, payments c, payments d "
            "WHERE a.amount + b.amount > c.amount + d.amount")  # fmt: skip
    command = [sys.executable, "-m", "custodiet", "query", slow, "--agreement", "rae-a",
               *world.kit.as_("rae"), "--workspace", str(world.ws.root)]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        intent = None
        while intent is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            intent = next((e for e in world.since(size) if e["action"] == "intent"), None)
        assert intent is not None, proc.communicate()
        time.sleep(0.5)  # well inside the engine by now
        assert proc.poll() is None, proc.communicate()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        out, _ = proc.communicate()
    assert proc.returncode == -signal.SIGKILL and out == b""
    assert [e["action"] for e in world.since(size)] == ["intent"]
    assert (intent["attempted"], intent["actor"], intent["sql"]) == ("query", "rae", slow)
    audit = assert_audit_passes(world)
    assert f"unfinished: entry {intent['index']} is an intent without an outcome" in audit.stdout


# --- fields the product does not enforce ---------------------------------------------------------


def test_epsilon_in_a_pseudonymous_agreement_is_refused(world: World) -> None:
    dp = document("rae-dp", "rae")
    dp["limits"]["epsilon"] = 1.0
    path = world.agreement_file("rae-dp", dp)
    size = world.size()
    result = world.cli("agreement", "apply", str(path), as_="rae")
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "epsilon" in text)
    assert result.status == 2, result.stdout + result.stderr
    assert f"{path}:{line}" in result.stderr and "epsilon" in result.stderr
    assert "agreement.propose" not in [e["action"] for e in world.since(size)]
    assert "rae-dp" not in world.state().agreements
