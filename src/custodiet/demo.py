"""`custodiet demo`: the whole story in one run, on synthetic data, in a fresh workspace.

keys -> workspace whose genesis names the custodians -> data -> principals and datasets signed
by custodians -> agreement proposed by the reviewer and approved, exactly that version, by two
custodians -> screens through the gateway (scored against the planted truth) -> a refused
attempt to read names -> one case re-identified with two approvals -> the ledger verified and
audited, and a forged approval caught. Each step says in plain words what it proved.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from custodiet.agreements.lifecycle import apply_agreement, load_document
from custodiet.catalog.classes import ColumnClass
from custodiet.catalog.model import Dataset
from custodiet.catalog.registry import add_dataset
from custodiet.errors import RefusedError, SystemFailure
from custodiet.gateway.activation import approve_and_activate
from custodiet.gateway.service import run_query
from custodiet.identity import (
    SignedRequest,
    load_private_key,
    load_public_key,
    new_key,
    sign_request,
)
from custodiet.ledger.audit import AuditReport, audit, log_key
from custodiet.ledger.replay import AuditResult, audit_entries, request_message
from custodiet.principals import Role, add_principal
from custodiet.reid import Release, approve_reid, request_reid, show_reid
from custodiet.reid.render import records_table
from custodiet.runtime import Runtime, opened
from custodiet.screens import SCREENS
from custodiet.screens.grants import agreement_document
from custodiet.screens.model import Case, Report
from custodiet.screens.render import dollars, score_table, summary_table
from custodiet.screens.run import run_screens
from custodiet.screens.score import PatternScore, read_truth, score
from custodiet.synth import TABLES, generate
from custodiet.workspace import Workspace, init_workspace

AGREEMENT_ID = "improper-payments-review"
CUSTODIANS = ("ana", "ben")  # the SSA and Treasury data custodians
REVIEWER = "rae"  # the outside reviewer asking for "a basic anti-fraud review"
OVERSEER = "ivy"  # the inspector general, who verifies the ledger
NAMES_PROBE = "SELECT payee_name, amount FROM payments LIMIT 5"
AGREEMENT_DAYS = 90


@dataclass(frozen=True)
class DemoResult:
    workspace: Path
    report: Report
    scores: list[PatternScore]
    refusal: RefusedError
    release: Release | None  # None when the data held no case to re-identify
    audit: AuditReport
    checkpoint: str
    forgery: AuditResult  # the audit of the ledger with a forged approval appended


class Narrator:
    """Numbered steps, each ending with what it proved."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.step = 0

    def begin(self, title: str) -> None:
        self.step += 1
        self.console.rule(f"[bold]{self.step}. {title}", align="left")

    def proved(self, text: str) -> None:
        self.console.print(f"[green]proved:[/green] {text}")

    def say(self, text: str) -> None:
        self.console.print(text, markup=False)


class People:
    """Each principal's own key, kept outside the workspace (as each would keep theirs)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        for name in (*CUSTODIANS, REVIEWER, OVERSEER):
            new_key(self.key_path(name), comment=name)

    def key_path(self, name: str) -> Path:
        return self.directory / f"{name}.key"

    def pubkey(self, name: str) -> str:
        return load_public_key(self.key_path(name).with_name(f"{name}.key.pub"))

    def sign(self, rt: Runtime, name: str, action: str, args: dict[str, Any]) -> SignedRequest:
        key = load_private_key(self.key_path(name))
        return sign_request(key, name, rt.state.origin, action, args)


def run_demo(console: Console, workspace: Path | None, people: int, seed: int) -> DemoResult:
    """Run every step under ``workspace`` (a new temporary directory when None): the workspace
    itself in DIR/workspace, the principals' keys in DIR/keys, the data in DIR/data."""
    started = time.monotonic()
    root = workspace or Path(tempfile.mkdtemp(prefix="custodiet-demo-"))
    out = Narrator(console)
    keys = _keys(out, root / "keys")
    ws = _workspace(out, root / "workspace", keys)
    data = _generate(out, root / "data", people, seed)
    with opened(ws) as rt:
        _principals(out, rt, keys)
        datasets = _datasets(out, rt, keys, data)
        _agreement(out, rt, keys, datasets)
        report, scores = _screens(out, rt, keys, data)
        refusal = _refused_names(out, rt, keys)
        release = _reidentify(out, rt, keys, report)
    report_of_audit, checkpoint, forgery = _ledger(out, ws, keys)
    _explore(out, root, time.monotonic() - started)
    return DemoResult(root, report, scores, refusal, release, report_of_audit, checkpoint, forgery)


def _keys(out: Narrator, directory: Path) -> People:
    out.begin("Every principal makes their own key")
    keys = People(directory)
    for name in (*CUSTODIANS, REVIEWER, OVERSEER):
        out.say(f"{name:4} {keys.key_path(name)} (private, 0600) + .pub")
    out.proved(
        "keys are Ed25519 in OpenSSH format (ssh-keygen keys work too); the private halves stay "
        "with their owners and never enter the workspace"
    )
    return keys


def _workspace(out: Narrator, root: Path, keys: People) -> Workspace:
    out.begin("A new workspace whose genesis names the custodians")
    ws = init_workspace(
        root, custodians={name: keys.pubkey(name) for name in CUSTODIANS}, min_approvals=2
    )
    out.say(f"workspace {root}; ledger origin {ws.origin}")
    out.say(f"genesis: custodians {', '.join(CUSTODIANS)}, K = 2 approvals for everything")
    out.proved(
        "whoever ran init holds no power now: every later action needs a registered "
        "principal's signature"
    )
    return ws


def _generate(out: Narrator, data: Path, people: int, seed: int) -> Path:
    out.begin(f"Synthetic federal data for {people:,} people")
    with out.console.status("generating beneficiaries, payments, deaths, exclusions, refunds"):
        summary = generate(data, people=people, seed=seed)
    table = Table("table", "rows", title=str(data), title_justify="left")
    for name in TABLES:
        table.add_row(name, f"{summary.rows.get(name, 0):,}")
    out.console.print(table)
    planted = ", ".join(f"{p} {n:,}" for p, n in summary.patterns.items())
    out.say(f"planted improper records (truth.parquet, kept by the custodians): {planted}")
    out.proved("no real person is involved: identifiers are valid in form and entirely invented")
    return data


def _principals(out: Narrator, rt: Runtime, keys: People) -> None:
    out.begin("Custodians register the reviewer and the overseer")
    for name, role, by, who in (
        (REVIEWER, Role.REVIEWER, CUSTODIANS[0], "outside reviewer"),
        (OVERSEER, Role.OVERSEER, CUSTODIANS[1], "inspector general"),
    ):
        args = {"name": name, "role": role.value, "pubkey": keys.pubkey(name)}
        add_principal(rt, keys.sign(rt, by, "principal.add", args))
        out.say(f"{name:4} {role.value:10} {who}, signed by {by}")
    attempt = {"name": "mallory", "role": "custodian", "pubkey": keys.pubkey(REVIEWER)}
    _attempt(
        out,
        lambda: add_principal(rt, keys.sign(rt, REVIEWER, "principal.add", attempt)),
        f"{REVIEWER} tries to make a custodian",
    )
    out.proved(
        "only custodians register principals (a new custodian needs K of them); the refused "
        "attempt is on the ledger with its signature"
    )


def _datasets(out: Narrator, rt: Runtime, keys: People, data: Path) -> dict[str, Dataset]:
    out.begin("A custodian registers the datasets; every column is classified")
    datasets = {}
    for name in TABLES:
        if name == "truth":
            continue
        args = {"name": name, "path": str((data / f"{name}.parquet").resolve()), "classify": {}}
        datasets[name] = add_dataset(rt, keys.sign(rt, CUSTODIANS[0], "dataset.add", args)).dataset
    table = Table("dataset", "rows", "class", "columns", box=None)
    for d in datasets.values():
        first = True
        for column_class in ColumnClass:
            names = _columns_of(d, column_class)
            if names:
                table.add_row(d.name if first else "", f"{d.rows:,}" if first else "",
                              column_class.value, names)  # fmt: skip
                first = False
    out.console.print(table)
    out.proved(
        "SSNs, TINs, EINs, routing and account numbers were recognised from their values, names "
        "from their columns; each file's sha256 is on the ledger; truth.parquet was not "
        "registered, so no reviewer can query it"
    )
    return datasets


def _columns_of(dataset: Dataset, column_class: ColumnClass) -> str:
    return ", ".join(c.name for c in dataset.columns.values() if c.column_class is column_class)


def _agreement(out: Narrator, rt: Runtime, keys: People, datasets: dict[str, Dataset]) -> None:
    out.begin("An agreement for exactly what the screens read, and two signed approvals")
    document = agreement_document(
        agreement_id=AGREEMENT_ID,
        reviewer=REVIEWER,
        expires=dt.date.today() + dt.timedelta(days=AGREEMENT_DAYS),
        screens=SCREENS.values(),
        datasets=datasets,
    )
    path = rt.ws.root.parent / "agreements" / f"{AGREEMENT_ID}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    signed_document, _ = load_document(path, rt.state)
    version = apply_agreement(
        rt, keys.sign(rt, REVIEWER, "agreement.propose", {"document": signed_document})
    )
    out.say(f"{path} proposed by {REVIEWER} as v{version.version} (sha256 {version.sha256[:16]}…)")
    for name, grant in document["datasets"].items():
        granted = [f"{c} ({t})" for c, t in grant["columns"].items() if t != "deny"]
        denied = [c for c, t in grant["columns"].items() if t == "deny"]
        out.say(f"  {name}: {', '.join(granted)}; denied: {', '.join(denied) or 'none'}")
    exact = {"agreement": AGREEMENT_ID, "version": version.version, "sha256": version.sha256}
    _attempt(
        out,
        lambda: approve_and_activate(rt, keys.sign(rt, REVIEWER, "agreement.approve", exact)),
        f"{REVIEWER} approves her own agreement",
    )
    projection = None
    for custodian in CUSTODIANS:
        done = approve_and_activate(rt, keys.sign(rt, custodian, "agreement.approve", exact))
        out.say(f"approved by {custodian} (v{version.version}, that sha256): "
                f"{done.status.approvals} of {done.status.required}")  # fmt: skip
        projection = done.projection or projection
    built = projection.name if projection else "-"
    out.say(f"protected projection built on the custodians' side: {built}")
    out.proved(
        "each approval binds exactly the version and sha256 the custodian reviewed; identifiers "
        "become keyed tokens under this agreement's and reviewer's own key; names and addresses "
        "are not in the reviewer's engine at all"
    )


def _screens(
    out: Narrator, rt: Runtime, keys: People, data: Path
) -> tuple[Report, list[PatternScore]]:
    out.begin(f"The reviewer ({REVIEWER}) runs the {len(SCREENS)} screens through the gateway")
    report = run_screens(
        rt, keys.sign(rt, REVIEWER, "screen.run", {"agreement": AGREEMENT_ID, "screens": []})
    )
    out.console.print(summary_table(report))
    scores = score(report.cases, read_truth(data / "truth.parquet"), SCREENS)
    out.console.print(
        score_table(scores, "Checked by the custodians against the planted truth (record ids only)")
    )
    out.proved(
        f"{report.total_cases:,} improper records and {dollars(report.total_amount_at_risk)} at "
        "risk found without seeing one name or SSN; the signed request and each screen's query "
        "are ledger entries"
    )
    return report, scores


def _refused_names(out: Narrator, rt: Runtime, keys: People) -> RefusedError:
    out.begin("The reviewer tries to read payee names")
    out.say(f'$ custodiet query --agreement {AGREEMENT_ID} --as {REVIEWER} "{NAMES_PROBE}"')
    request = keys.sign(rt, REVIEWER, "query", {"agreement": AGREEMENT_ID, "sql": NAMES_PROBE})
    try:
        run_query(rt, request)
    except RefusedError as refused:
        out.say(refused.render())
        out.proved(
            "the gateway refuses what the agreement denies, and the refusal is on the ledger"
        )
        return refused
    raise _broken("the gateway returned payee names under an agreement that denies them")


def _reidentify(out: Narrator, rt: Runtime, keys: People, report: Report) -> Release | None:
    case = _case_to_reidentify(report)
    if case is None:
        out.begin("Break glass: nothing to re-identify")
        out.say("the screens found no case at this size; try more --people")
        return None
    out.begin(f"Break glass: re-identify one case ({case.record_id}, {', '.join(case.patterns)})")
    args = {
        "agreement": AGREEMENT_ID,
        "tokens": [case.payee],
        "fields": ["name", "tin"],
        "reason": f"{case.record_id}: {', '.join(case.patterns)}; identify the payee before "
        "referral",
    }
    request = request_reid(rt, keys.sign(rt, REVIEWER, "reid.request", args))
    out.say(f"request {request.id} for payee token {case.payee} (names and TIN, no bank numbers)"
            f" filed by {REVIEWER}; sha256 {request.sha256[:16]}…")  # fmt: skip
    show = {"request": request.id}
    _attempt(out, lambda: show_reid(rt, keys.sign(rt, REVIEWER, "reid.show", show)),
             "show before approval")  # fmt: skip
    exact = {"request": request.id, "sha256": request.sha256}
    _attempt(out, lambda: approve_reid(rt, keys.sign(rt, REVIEWER, "reid.approve", exact)),
             f"{REVIEWER} approves own request")  # fmt: skip
    for custodian in CUSTODIANS:
        approved = approve_reid(rt, keys.sign(rt, custodian, "reid.approve", exact))
        out.say(f"approved by {custodian}: {len(approved.approvals)} of 2")
    release = show_reid(rt, keys.sign(rt, REVIEWER, "reid.show", show))
    table = records_table(release.records, f"Released to {REVIEWER} only")
    out.console.print(table)
    out.proved(
        f"identities left the vault for one token only, after two custodians approved exactly "
        f"that request; ledger entry {release.ledger_index} holds the token, the fields, the "
        "count and a digest, not the identities"
    )
    return release


def _case_to_reidentify(report: Report) -> Case | None:
    """The largest paid-after-death case if any (a person), else the largest case."""
    ordered = sorted(report.cases, key=lambda c: (-c.amount_at_risk, c.record_id))
    return next((c for c in ordered if "paid_after_death" in c.patterns), None) or next(
        iter(ordered), None
    )


def _attempt(out: Narrator, action: Callable[[], object], what: str) -> None:
    try:
        action()
    except RefusedError as refused:
        out.say(f"{what}: {refused.message}")
        return
    raise _broken(f"{what} was not refused")


def _broken(what: str) -> SystemFailure:
    """A safeguard the demo relies on did not hold: stop, never carry on quietly."""
    return SystemFailure(
        f"demo stopped: {what}",
        hint="this is a bug in custodiet's safeguards; report it with the workspace",
        code="CUST428",
    )


def _ledger(out: Narrator, ws: Workspace, keys: People) -> tuple[AuditReport, str, AuditResult]:
    out.begin(f"The overseer ({OVERSEER}) verifies the ledger and audits every access")
    ledger = ws.ledger()
    try:
        checkpoint = ledger.checkpoint()
        verified = audit(ledger, log_key(ledger.vkey()))
        vkey = ledger.vkey()
        history = [json.loads(data) for _, data in ledger.entries()]
    finally:
        ledger.close()
    out.say(f"verified {verified.size} entries and {verified.checkpoints} signed checkpoints")
    _, replayed = audit_entries(history)
    if replayed.violation is not None:
        raise _broken(f"the demo's own ledger does not audit: {replayed.violation}")
    out.say(f"audited {replayed.entries} entries: every signature checks and every access was "
            "authorized by K custodians' approvals when it happened")  # fmt: skip
    out.say("signed checkpoint (C2SP signed note):")
    out.say(checkpoint.rstrip("\n"))
    out.say(f"verifier key: {vkey}")
    forged = _forged_approval(history, keys)
    _, caught = audit_entries(forged)
    if caught.violation is None:
        raise _broken("a forged approval passed the audit")
    index, code, rule = caught.violation
    out.say(f"a rogue operator appends an approval in {CUSTODIANS[1]}'s name, signed with "
            f"{REVIEWER}'s key; the audit stops at entry {index}: {rule} [{code}]")  # fmt: skip
    out.proved(
        "every step above, allowed or refused, is in a tamper-evident log that anyone holding "
        "the verifier key can check, and `custodiet ledger audit` proves from the ledger alone "
        "who allowed each access; a forged approval is caught"
    )
    return verified, checkpoint, caught


def _forged_approval(history: list[dict[str, Any]], keys: People) -> list[dict[str, Any]]:
    """The history with one more entry: an approval claiming a custodian, signed by another."""
    request = {
        "v": 1,
        "origin": history[0]["origin"],
        "principal": CUSTODIANS[1],
        "action": "agreement.approve",
        "args": {"agreement": AGREEMENT_ID, "version": 2, "sha256": "0" * 64},
        "time": history[-1]["time"],
        "nonce": "f" * 32,
    }
    key = load_private_key(keys.key_path(REVIEWER))
    signature = base64.b64encode(key.sign(request_message(request))).decode()
    forged = {"index": len(history), "time": history[-1]["time"], "action": "agreement.approve",
              "actor": CUSTODIANS[1], "request": request, "signature": signature}  # fmt: skip
    return [*history, forged]


def _explore(out: Narrator, root: Path, seconds: float) -> None:
    out.begin(f"Explore further (demo took {seconds:.0f} s)")
    # always: under `make demo` the venv is on PATH only inside `uv run`, not in your shell
    lines = [
        f"export CUSTODIET_WORKSPACE={root / 'workspace'}",
        f'export PATH="{Path(sys.executable).parent}:$PATH"',
    ]
    for line in (
        *lines,
        f"export CUSTODIET_KEY={root / 'keys' / f'{REVIEWER}.key'}   # act as {REVIEWER}",
        "custodiet screen list",
        f"custodiet screen run --agreement {AGREEMENT_ID} --as {REVIEWER}",
        f'custodiet query --agreement {AGREEMENT_ID} --as {REVIEWER} "SELECT program, '
        'count(*) AS payments, sum(amount) AS dollars FROM payments GROUP BY program"',
        f"custodiet monitor --agreement {AGREEMENT_ID} --as {REVIEWER}   # cases, each once",
        f"custodiet case list --agreement {AGREEMENT_ID} --as {REVIEWER} --state open",
        f"custodiet agreement show {AGREEMENT_ID}",
        "custodiet ledger entries --from 0 --to 5",
        "custodiet ledger verify",
        "custodiet ledger audit",
        "custodiet ledger checkpoint",
    ):
        out.say(f"  {line}")
