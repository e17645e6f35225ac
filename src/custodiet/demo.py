"""`custodiet demo`: the whole story in one run, on synthetic data, in a fresh workspace.

generate data -> workspace -> principals -> datasets (column classes) -> agreement with two
approvals -> screens through the gateway (scored against the planted truth) -> a refused attempt
to read names -> one case re-identified with two approvals -> the ledger verified and its signed
checkpoint printed. Each step says in plain words what it proved.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from custodiet.agreements.lifecycle import active_agreement, apply_agreement, approve
from custodiet.catalog.classes import ColumnClass
from custodiet.catalog.model import Dataset
from custodiet.catalog.registry import add_dataset
from custodiet.errors import RefusedError, SystemFailure
from custodiet.gateway.projection import ensure_projection
from custodiet.gateway.service import run_query
from custodiet.ledger.audit import AuditReport, audit, log_key
from custodiet.principals import Role, add_principal
from custodiet.reid import Release, approve_reid, request_reid, show_reid
from custodiet.reid.render import records_table
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


def run_demo(console: Console, workspace: Path | None, people: int, seed: int) -> DemoResult:
    """Run every step in ``workspace`` (a new temporary directory when None)."""
    started = time.monotonic()
    root = workspace or Path(tempfile.mkdtemp(prefix="custodiet-demo-"))
    out = Narrator(console)
    ws = _workspace(out, root)
    data = _generate(out, root / "data", people, seed)
    _principals(out, ws)
    datasets = _datasets(out, ws, data)
    _agreement(out, ws, datasets)
    report, scores = _screens(out, ws, data)
    refusal = _refused_names(out, ws)
    release = _reidentify(out, ws, report)
    report_of_audit, checkpoint = _ledger(out, ws)
    _explore(out, root, time.monotonic() - started)
    return DemoResult(root, report, scores, refusal, release, report_of_audit, checkpoint)


def _workspace(out: Narrator, root: Path) -> Workspace:
    out.begin("A new workspace")
    ws = init_workspace(root)
    out.say(f"workspace {root} (keys, ledger, catalog); ledger origin {ws.origin}")
    out.proved("the ledger starts with its own signed first entry; everything below is appended")
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


def _principals(out: Narrator, ws: Workspace) -> None:
    out.begin("Principals")
    for name, role, who in (
        (CUSTODIANS[0], Role.CUSTODIAN, "SSA data custodian"),
        (CUSTODIANS[1], Role.CUSTODIAN, "Treasury data custodian"),
        (REVIEWER, Role.REVIEWER, "outside reviewer"),
        (OVERSEER, Role.OVERSEER, "inspector general"),
    ):
        add_principal(ws, name, role, actor=CUSTODIANS[0])
        out.say(f"{name:4} {role.value:10} {who}")
    out.proved("each principal got an API token shown once; the workspace keeps only its hash")


def _datasets(out: Narrator, ws: Workspace, data: Path) -> dict[str, Dataset]:
    out.begin("Register the datasets and classify every column")
    datasets = {
        name: add_dataset(ws, name, data / f"{name}.parquet", {}, CUSTODIANS[0])
        for name in TABLES
        if name != "truth"
    }
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
        "from their columns; truth.parquet was not registered, so no reviewer can query it"
    )
    return datasets


def _columns_of(dataset: Dataset, column_class: ColumnClass) -> str:
    return ", ".join(c.name for c in dataset.columns.values() if c.column_class is column_class)


def _agreement(out: Narrator, ws: Workspace, datasets: dict[str, Dataset]) -> None:
    out.begin("An agreement for exactly what the screens read, and two approvals")
    document = agreement_document(
        agreement_id=AGREEMENT_ID,
        reviewer=REVIEWER,
        expires=dt.date.today() + dt.timedelta(days=AGREEMENT_DAYS),
        screens=SCREENS.values(),
        datasets=datasets,
    )
    path = ws.root / "agreements" / f"{AGREEMENT_ID}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    version = apply_agreement(ws, path, REVIEWER)
    out.say(f"{path} proposed by {REVIEWER} as v{version.version} (sha256 {version.sha256[:16]}…)")
    for name, grant in document["datasets"].items():
        granted = [f"{c} ({t})" for c, t in grant["columns"].items() if t != "deny"]
        denied = [c for c, t in grant["columns"].items() if t == "deny"]
        out.say(f"  {name}: {', '.join(granted)}; denied: {', '.join(denied) or 'none'}")
    for custodian in CUSTODIANS:
        status = approve(ws, AGREEMENT_ID, custodian)
        out.say(f"approved by {custodian}: {status.approvals} of {status.required}")
    projection = ensure_projection(ws, active_agreement(ws, AGREEMENT_ID))
    out.say(f"protected projection built: {projection.name}")
    out.proved(
        "identifiers become keyed tokens under this agreement's own key; names and addresses are "
        "not in the reviewer's engine at all"
    )


def _screens(out: Narrator, ws: Workspace, data: Path) -> tuple[Report, list[PatternScore]]:
    out.begin(f"The reviewer ({REVIEWER}) runs the six screens through the gateway")
    report = run_screens(ws, AGREEMENT_ID, REVIEWER)
    out.console.print(summary_table(report))
    scores = score(report.cases, read_truth(data / "truth.parquet"), SCREENS)
    out.console.print(
        score_table(scores, "Checked by the custodians against the planted truth (record ids only)")
    )
    out.proved(
        f"{report.total_cases:,} improper records and {dollars(report.total_amount_at_risk)} at "
        "risk found without seeing one name or SSN; each screen's query is a ledger entry"
    )
    return report, scores


def _refused_names(out: Narrator, ws: Workspace) -> RefusedError:
    out.begin("The reviewer tries to read payee names")
    out.say(f'$ custodiet query --agreement {AGREEMENT_ID} --as {REVIEWER} "{NAMES_PROBE}"')
    try:
        run_query(ws, AGREEMENT_ID, REVIEWER, NAMES_PROBE)
    except RefusedError as refused:
        out.say(refused.render())
        out.proved(
            "the gateway refuses what the agreement denies, and the refusal is on the ledger"
        )
        return refused
    raise _broken("the gateway returned payee names under an agreement that denies them")


def _reidentify(out: Narrator, ws: Workspace, report: Report) -> Release | None:
    case = _case_to_reidentify(report)
    if case is None:
        out.begin("Break glass: nothing to re-identify")
        out.say("the screens found no case at this size; try more --people")
        return None
    out.begin(f"Break glass: re-identify one case ({case.record_id}, {', '.join(case.patterns)})")
    request = request_reid(
        ws,
        AGREEMENT_ID,
        REVIEWER,
        [case.payee],
        f"{case.record_id}: {', '.join(case.patterns)}; identify the payee before referral",
    )
    out.say(f"request {request.id} for payee token {case.payee} filed by {REVIEWER}")
    _attempt(out, lambda: show_reid(ws, request.id, REVIEWER), "show before approval")
    _attempt(
        out, lambda: approve_reid(ws, request.id, REVIEWER), f"{REVIEWER} approves own request"
    )
    for custodian in CUSTODIANS:
        approved = approve_reid(ws, request.id, custodian)
        out.say(f"approved by {custodian}: {len(approved.approvals)} of 2")
    release = show_reid(ws, request.id, REVIEWER)
    table = records_table(release.records, f"Released to {REVIEWER} only")
    out.console.print(table)
    out.proved(
        f"identities left the vault for one token only, after two custodians approved; ledger "
        f"entry {release.ledger_index} holds the token, the count and a digest, not the identities"
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


def _ledger(out: Narrator, ws: Workspace) -> tuple[AuditReport, str]:
    out.begin(f"The overseer ({OVERSEER}) verifies the ledger")
    ledger = ws.ledger()
    try:
        checkpoint = ledger.checkpoint()
        verified = audit(ledger, log_key(ledger.vkey()))
        vkey = ledger.vkey()
    finally:
        ledger.close()
    out.say(f"verified {verified.size} entries and {verified.checkpoints} signed checkpoints")
    out.say("signed checkpoint (C2SP signed note):")
    out.say(checkpoint.rstrip("\n"))
    out.say(f"verifier key: {vkey}")
    out.proved(
        "every step above, allowed or refused, is in a tamper-evident log that anyone holding "
        "the verifier key can check; removing or editing an entry breaks this checkpoint"
    )
    return verified, checkpoint


def _explore(out: Narrator, root: Path, seconds: float) -> None:
    out.begin(f"Explore further (demo took {seconds:.0f} s)")
    lines = [f"export CUSTODIET_WORKSPACE={root}"]
    if shutil.which("custodiet") is None:  # run through make / uv: the venv is not on PATH
        lines.append(f'export PATH="{Path(sys.executable).parent}:$PATH"')
    for line in (
        *lines,
        "custodiet screen list",
        f"custodiet screen run --agreement {AGREEMENT_ID} --as {REVIEWER}",
        f'custodiet query --agreement {AGREEMENT_ID} --as {REVIEWER} "SELECT program, '
        'count(*) AS payments, sum(amount) AS dollars FROM payments GROUP BY program"',
        f"custodiet agreement show {AGREEMENT_ID}",
        "custodiet ledger entries --from 0 --to 5",
        "custodiet ledger verify",
        "custodiet ledger checkpoint",
    ):
        out.say(f"  {line}")
