"""`monitor`: run an agreement's screens and open a case for each finding no earlier run saw.

A monitor run is an access like a screen run (``intent``, one ``query`` per screen, refusals)
closed by a ``monitor`` entry that names the new cases by id, records the SHA-256 of their
facts (stored custodian side, see ``store``) and the run's basis: the agreement version, the
digests of the sources its projection was built from, and the screens' SQL. ``changed`` and
``narrowing`` decide what a run must look at: when nothing in the basis moved since the last
run, nothing can be new and no screen runs; when only followed datasets gained versions, the
screens that allow it look at the findings that involve a new row (``scope``); otherwise every
screen runs on the whole projection. The findings are then diffed against the cases already
open (stable ids).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from custodiet import entries
from custodiet.agreements.lifecycle import ActiveAgreement
from custodiet.cases.model import CaseFacts, case_id, case_key
from custodiet.cases.scope import Scope
from custodiet.cases.scope import narrowing as scope_after
from custodiet.cases.store import write_run
from custodiet.errors import CustodietError, SystemFailure
from custodiet.gateway.rendering import file_bytes, recorded, requested_output
from custodiet.gateway.service import authorized, text_args
from custodiet.identity import SignedRequest
from custodiet.runtime import Runtime
from custodiet.screens.model import Report

if TYPE_CHECKING:
    from custodiet.progress import Progress

# record table -> (its key, its program column, its date column); "" when it has none
FACT_COLUMNS = {
    "payments": ("payment_id", "program", "payment_date"),
    "tax_refunds": ("refund_id", "", "issue_date"),
}
NO_PROGRAM = "(none)"
ROW_COLUMNS = ("case_id", "screen", "record_table", "record_id", "payee", "amount_at_risk",
               "program", "month")  # fmt: skip


@dataclass(frozen=True)
class MonitorRun:
    agreement_id: str
    agreement_version: int
    cases: tuple[CaseFacts, ...]  # only the cases no earlier run saw
    screens: tuple[str, ...]  # the screens that ran (none when nothing changed)
    refused: tuple[str, ...]
    unchanged_since: int | None  # the earlier run whose basis this run shares, if any
    ledger_index: int = -1
    output: bytes | None = None


def basis(rt: Runtime, agreement_id: str, version: int) -> dict[str, Any]:
    """What a run's findings depend on: the version, its projection's sources, the screens."""
    from custodiet.screens import SCREENS

    screens = hashlib.sha256(
        json.dumps({n: s.sql for n, s in SCREENS.items()}, sort_keys=True).encode()
    ).hexdigest()
    sources = rt.state.projections.get(f"{agreement_id}@{version}", {})
    return {"agreement_version": version, "sources": dict(sorted(sources.items())),
            "screens_sha256": screens}  # fmt: skip


def changed(rt: Runtime, agreement_id: str, now: Mapping[str, Any]) -> int | None:
    """The last monitor run of ``agreement_id`` when its basis equals ``now`` (nothing can be
    new), else None (the screens run, narrowed or not: ``narrowing``)."""
    last = rt.refresh().monitored.get(agreement_id)
    if last is not None and last[1] == dict(now):
        return int(last[0])
    return None


def narrowing(
    rt: Runtime, agreement_id: str, active: ActiveAgreement, now: Mapping[str, Any]
) -> Scope | None:
    """The new rows a run may look at (cases/scope.py), or None: every screen in full."""
    last = rt.state.monitored.get(agreement_id)
    return scope_after(rt, active, None if last is None else last[1], now)


def monitor(rt: Runtime, signed: SignedRequest, progress: Progress | None = None) -> MonitorRun:
    """Run the agreement's screens (when anything changed) and open the new cases
    (``progress`` hears of each screen done)."""
    from custodiet.screens.run import run_screens

    (agreement_id,) = text_args(rt, signed, "agreement")
    output = requested_output(rt, signed)
    active = authorized(rt, signed, agreement_id)
    now = basis(rt, agreement_id, active.version)
    since = changed(rt, agreement_id, now)
    if since is not None:
        return _nothing_new(rt, signed, agreement_id, active.version, active.sha256, now, since,
                            output)  # fmt: skip
    scope = narrowing(rt, agreement_id, active, now)
    found: list[CaseFacts] = []

    def narrow(
        report: Report, intent: int, kind: str | None
    ) -> tuple[Report, dict[str, Any], bytes | None]:
        context = {"agreement": agreement_id, "agreement_version": active.version,
                   "intent": intent}  # fmt: skip
        try:
            facts = _new_cases(rt, agreement_id, report)
            sha = write_run(rt.ws, agreement_id, intent, facts)
        except CustodietError as exc:
            rt.refuse(exc, attempted="monitor", actor=signed.principal, context=context)
        except Exception as exc:  # fail closed: recorded (closing the run), never shown raw
            failure = SystemFailure(
                f"internal error while opening the run's cases ({type(exc).__name__})",
                hint="tell a custodian; the failure is on the ledger",
                code="CUST148",
            )
            rt.refuse(failure, attempted="monitor", actor=signed.principal, context=context)
        found.extend(facts)
        kept = {(f.record_table, f.record_id) for f in facts}
        narrowed = Report(
            report.agreement_id, report.agreement_version,
            tuple(c for c in report.cases if (c.record_table, c.record_id) in kept),
            report.summaries, report.refusals,
        )  # fmt: skip
        extra = {"new_cases": [[f.id, f.screen] for f in facts], "cases_sha256": sha,
                 "basis": now, "scope": "full"}  # fmt: skip
        if scope is not None:
            ran = [s.screen for s in report.summaries]
            extra.update(scope="new_rows", **scope.document(ran))
        return narrowed, extra, None if kind is None else cases_file(kind, facts)

    report = run_screens(rt, signed, narrow, scope, progress)
    return MonitorRun(
        agreement_id, active.version, tuple(found), tuple(s.screen for s in report.summaries),
        tuple(r.screen for r in report.refusals), None, report.ledger_index, report.output,
    )  # fmt: skip


def _nothing_new(
    rt: Runtime, signed: SignedRequest, agreement_id: str, version: int, sha256: str,
    now: dict[str, Any], since: int, output: str | None,
) -> MonitorRun:  # fmt: skip
    about = {"agreement": agreement_id, "agreement_version": version, "agreement_sha256": sha256}
    intent = rt.commit(entries.intent(signed, **about, screens=[]), refuse_as=signed)
    sha = write_run(rt.ws, agreement_id, intent.index, [])
    rendered = None if output is None else cases_file(output, [])
    done = rt.commit(
        entries.outcome(
            "monitor", intent.index, signed.principal, agreement_id, agreement_version=version,
            screens=[], cases=0, refused=[], new_cases=[], cases_sha256=sha, basis=now,
            scope="unchanged", unchanged_since=since,
            **(recorded(output, rendered) if output and rendered is not None else {}),
        )
    )  # fmt: skip
    return MonitorRun(agreement_id, version, (), (), (), since, done.index, rendered)


def _new_cases(rt: Runtime, agreement_id: str, report: Report) -> list[CaseFacts]:
    """One case per (screen, record) the report found that no earlier run opened."""
    from custodiet.gateway.tokens import read_secret

    key = case_key(read_secret(rt.ws.secret_path), agreement_id)
    seen = rt.refresh().cases
    fresh = [
        (case_id(key, f.pattern, c.record_table, c.record_id), f, c)
        for c in report.cases
        for f in c.findings
    ]
    fresh = [(i, f, c) for i, f, c in fresh if i not in seen]
    unique = {i: (f, c) for i, f, c in reversed(fresh)}  # the first finding of a pattern wins
    facts = _record_facts(rt, agreement_id, {(c.record_table, c.record_id) for _, c in
                                              unique.values()})  # fmt: skip
    out = []
    for i, (finding, case) in unique.items():
        program, month = facts.get((case.record_table, case.record_id), (NO_PROGRAM, ""))
        out.append(CaseFacts(i, finding.pattern, case.record_table, case.record_id, case.payee,
                             case.amount_at_risk, program, month,
                             {k: _plain(v) for k, v in finding.evidence.items()}))  # fmt: skip
    return sorted(out, key=lambda f: (f.screen, f.record_table, f.record_id))


def _plain(value: Any) -> Any:
    from custodiet.screens.render import plain

    shown = plain(value)  # canonical JSON (the run file's digest) has no floats: their text
    return shown if isinstance(shown, str | int | bool) or shown is None else str(shown)


def _record_facts(
    rt: Runtime, agreement_id: str, records: set[tuple[str, str]]
) -> dict[tuple[str, str], tuple[str, str]]:
    """(program, YYYY-MM) of each record, read custodian side from the agreement's projection:
    only what it grants (a column it does not grant reads as none)."""
    from custodiet.agreements.lifecycle import active_agreement
    from custodiet.gateway.projection import projection_path
    from custodiet.gateway.service import engine

    active = active_agreement(rt.state, agreement_id, rt.now())
    cursor = engine(rt, projection_path(rt.ws, active)).cursor()
    facts: dict[tuple[str, str], tuple[str, str]] = {}
    try:
        for table, (key, program, date) in FACT_COLUMNS.items():
            wanted = sorted(r for t, r in records if t == table)
            if not wanted:
                continue
            present = _columns(cursor, table)
            if key not in present:
                continue
            program_sql = f"CAST({program} AS VARCHAR)" if program in present else "NULL"
            month_sql = f"strftime({date}, '%Y-%m')" if date in present else "NULL"
            rows = cursor.execute(
                f"SELECT CAST({key} AS VARCHAR), {program_sql}, {month_sql} FROM {table} "
                f"WHERE CAST({key} AS VARCHAR) IN (SELECT unnest(?))",
                [wanted],
            ).fetchall()
            for record, prog, month in rows:
                facts[(table, str(record))] = (prog or NO_PROGRAM, month or "")
    finally:
        cursor.close()
    return facts


def _columns(cursor: Any, table: str) -> set[str]:
    rows = cursor.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
    ).fetchall()
    return {str(r[0]) for r in rows}


def case_rows(cases: Sequence[CaseFacts]) -> tuple[list[str], list[list[Any]]]:
    return list(ROW_COLUMNS), [
        [f.id, f.screen, f.record_table, f.record_id, f.payee, f.amount, f.program, f.month]
        for f in cases
    ]


def cases_file(kind: str, cases: Sequence[CaseFacts]) -> bytes:
    """The new cases as the bytes of a csv, parquet or json file."""
    columns, rows = case_rows(cases)
    return file_bytes(kind, columns, rows, {"cases": [c.document() for c in cases]})


def run_document(run: MonitorRun) -> dict[str, Any]:
    import base64

    document: dict[str, Any] = {
        "agreement": run.agreement_id, "agreement_version": run.agreement_version,
        "cases": [c.document() for c in run.cases], "screens": list(run.screens),
        "refused": list(run.refused), "unchanged_since": run.unchanged_since,
        "ledger_index": run.ledger_index,
    }  # fmt: skip
    if run.output is not None:
        document["output"] = base64.b64encode(run.output).decode("ascii")
    return document


def run_from_document(doc: Mapping[str, Any]) -> MonitorRun:
    import base64

    output = doc.get("output")
    return MonitorRun(
        doc["agreement"], doc["agreement_version"],
        tuple(CaseFacts.from_document(c) for c in doc["cases"]), tuple(doc["screens"]),
        tuple(doc["refused"]), doc["unchanged_since"], doc["ledger_index"],
        None if output is None else base64.b64decode(output),
    )  # fmt: skip
