"""The query path: signed request -> authorized intent -> check -> execute -> release -> outcome.

Write-ahead audit: the principal's signed request is checked by the replay rules (signature,
freshness, reviewer of an active, approved, unexpired version with a projection built from
registered sources) and goes on the ledger as an ``intent`` before the query runs; its outcome
(rows and digest, or the failure) follows. Anything refused before that is one ``refusal``
entry carrying the request. If the ledger cannot record, the caller gets ``SystemFailure`` and no
data. Entries carry the SQL and what the query touched, the result's row count and digest; never
a value from the data.

The agreement's ``timeout_seconds`` is one deadline for the whole request: it starts before the
check (which tests it between passes, ``bounds.Deadline``) and every engine run gets what is left
of it. A result that grows past the workspace's ``max_result_bytes`` while it is fetched is
refused as the intent's outcome, and nothing is released.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from custodiet import entries
from custodiet.agreements.model import Mode
from custodiet.errors import CustodietError, InputError, SystemFailure
from custodiet.gateway.bounds import Deadline
from custodiet.gateway.dp import release_with_budget
from custodiet.gateway.execute import Executed, execute, open_engine
from custodiet.gateway.release import Released, release
from custodiet.gateway.rendering import recorded, requested_output, rows_file
from custodiet.identity import SignedRequest
from custodiet.runtime import Runtime

if TYPE_CHECKING:
    import duckdb

    from custodiet.agreements.lifecycle import ActiveAgreement
    from custodiet.gateway.policy import Policy
    from custodiet.gateway.rewrite import CheckedQuery

MAX_SQL_CHARS = 100_000


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    ledger_index: int
    notices: tuple[str, ...]
    truncated: bool
    output: bytes | None = None  # the file asked for (args.output), as its entry records it


def text_args(
    rt: Runtime, signed: SignedRequest, *names: str, limit: int = MAX_SQL_CHARS
) -> list[str]:
    """The request's text arguments ``names``; a malformed request is refused on the ledger."""
    values = []
    for name in names:
        value = signed.args.get(name)
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            rt.refuse(
                InputError(
                    f"the request's {name} is missing, empty or longer than {limit:,} characters",
                    hint="check the command line",
                    code="CUST530",
                ),
                attempted=signed.action,
                actor=signed.principal,
                signed=signed,
            )
        values.append(value)
    return values


def authorized(rt: Runtime, signed: SignedRequest, agreement_id: str) -> ActiveAgreement:
    """Check the signed access request now (the same rules an audit applies) and return the
    agreement version it runs under; a refusal is recorded and raised."""
    from custodiet.agreements.lifecycle import active_agreement

    rt.authorize(entries.intent(signed, agreement=agreement_id), refuse_as=signed)
    return active_agreement(rt.state, agreement_id, rt.now())


def run_query(rt: Runtime, signed: SignedRequest) -> QueryResult:
    """Run the signed request's SQL under its agreement; the ledger records it first."""
    from custodiet.gateway.check import check_query
    from custodiet.gateway.projection import load_policy, projection_path

    agreement_id, sql = text_args(rt, signed, "agreement", "sql")
    output = requested_output(rt, signed)
    active = authorized(rt, signed, agreement_id)
    deadline = Deadline(active.agreement.limits.timeout_seconds)
    about = {
        "agreement": agreement_id,
        "agreement_version": active.version,
        "agreement_sha256": active.sha256,
        "sql": sql,
    }
    try:
        policy = load_policy(rt.ws, active)
        projection = projection_path(rt.ws, active)
        checked = check_query(sql, policy, deadline)
    except CustodietError as exc:
        rt.refuse(exc, attempted="query", actor=signed.principal, signed=signed, context=about)
    touched = {
        "executed_sql": checked.executed,
        "datasets": list(checked.tables),
        "columns": list(checked.columns),
    }
    dry_run = signed.args.get("dry_run") is True
    intent = rt.commit(entries.intent(signed, **about, **touched), refuse_as=signed)
    return execute_under(rt, intent.index, signed.principal, active, policy, projection, checked,
                         {**about, **touched}, dry_run=dry_run, output=output,
                         deadline=deadline)  # fmt: skip


def execute_under(
    rt: Runtime,
    intent_index: int,
    actor: str,
    active: ActiveAgreement,
    policy: Policy,
    projection: Path,
    checked: CheckedQuery,
    about: Mapping[str, Any],
    what: str = "query",
    *,
    dry_run: bool = False,
    output: str | None = None,
    deadline: Deadline | None = None,
) -> QueryResult:
    """Run a checked query announced by ``intent_index``; record its outcome or its failure.
    With ``output``, the released rows are rendered as that file and its digest recorded.

    Every engine run gets what is left of ``deadline`` (default: the agreement's
    ``timeout_seconds`` from now). A dp-mode query holds the workspace's write lock from its
    budget check to its outcome entry, so two queries can never both spend the last of a
    budget."""
    context = {**about, "intent": intent_index}
    deadline = deadline or Deadline(active.agreement.limits.timeout_seconds)
    with rt.exclusive() if policy.mode is Mode.DP else nullcontext():
        try:
            released, spend = _released_with_budget(rt, active, policy, projection, checked,
                                                    dry_run, deadline)  # fmt: skip
            rendered = None if output is None else rows_file(
                output, released.columns, released.rows, released.notices)  # fmt: skip
        except CustodietError as exc:
            rt.refuse(exc, attempted=what, actor=actor, context=context)
        except Exception as exc:  # fail closed: an unexpected error is recorded, never shown raw
            failure = SystemFailure(
                f"internal error while running the query ({type(exc).__name__})",
                hint="tell a custodian; the failure is on the ledger",
                code="CUST148",
            )
            rt.refuse(failure, attempted=what, actor=actor, context=context)
        done = rt.commit(
            entries.outcome(
                "query",
                intent_index,
                actor,
                active.agreement.id,
                **{k: v for k, v in about.items() if k not in ("agreement", "executed_sql")},
                executed_sql=checked.executed,
                rows_returned=len(released.rows),
                result_sha256=released.sha256,
                **spend,
                **({} if rendered is None or output is None else recorded(output, rendered)),
                rule=f"agreement '{active.agreement.id}' (v{active.version}), "
                f"mode {policy.mode.value}",
            )
        )
    return QueryResult(
        released.columns, released.rows, done.index, released.notices, released.truncated,
        rendered,
    )  # fmt: skip


def _released_with_budget(
    rt: Runtime,
    active: ActiveAgreement,
    policy: Policy,
    projection: Path,
    checked: CheckedQuery,
    dry_run: bool,
    deadline: Deadline,
) -> tuple[Released, dict[str, Any]]:
    """The mode's release (gateway/dp.py: noise and the budget in dp mode, contribution-based
    suppression in aggregate mode) and what the outcome entry adds (the spend)."""
    return release_with_budget(
        rt,
        active,
        policy,
        checked,
        dry_run=dry_run,
        run=lambda sql: _executed(rt, projection, sql, checked.row_limit, deadline),
        plain=lambda: _released(rt, projection, policy, checked, deadline),
    )


def _executed(
    rt: Runtime, projection: Path, sql: str, row_limit: int, deadline: Deadline
) -> Executed:
    """Execute checked SQL on its own cursor of the projection's engine, within what is left of
    ``deadline`` and the workspace's ``max_result_bytes``."""
    max_bytes = rt.ws.max_result_bytes
    cursor = engine(rt, projection).cursor()
    try:
        return execute(
            cursor,
            sql,
            row_limit=row_limit,
            timeout_seconds=deadline.remaining(),
            max_bytes=max_bytes,
            time_limit=deadline.seconds,
        )
    finally:
        cursor.close()


def _released(
    rt: Runtime, projection: Path, policy: Policy, checked: CheckedQuery, deadline: Deadline
) -> Released:
    """Execute the checked SQL on its own cursor of the projection's engine; apply the mode."""
    executed = _executed(rt, projection, checked.executed, checked.row_limit, deadline)
    return release(
        policy,
        executed.columns,
        executed.rows,
        touched=checked.columns,
        hidden=checked.hidden,
    )


def engine(rt: Runtime, projection: Path) -> duckdb.DuckDBPyConnection:
    """One read-only engine per projection file for the runtime's life; each query runs on its
    own cursor, so one can be interrupted without touching the others. Engines of projections
    no longer active (a version revoked, expired or superseded) are closed here."""
    engines: dict[Path, duckdb.DuckDBPyConnection] = rt.resources.setdefault("engines", {})
    opened_inodes: dict[Path, int] = rt.resources.setdefault("engine_inodes", {})
    with rt.resource_lock:
        found = engines.get(projection)
        inode = _inode(projection)
        if found is not None and opened_inodes.get(projection) != inode:
            engines.pop(projection).close()  # extended (replaced) since: read the new file
            found = None
        if found is None:
            found = engines[projection] = open_engine(projection)
            opened_inodes[projection] = inode
            _evict_inactive(rt, engines, keep=projection)
        return found


def _inode(path: Path) -> int:
    try:
        return path.stat().st_ino
    except OSError:
        return -1


def _evict_inactive(
    rt: Runtime, engines: dict[Path, duckdb.DuckDBPyConnection], keep: Path
) -> None:
    live = {
        f"{agreement.id}-v{version.number}-{version.sha256[:12]}.duckdb"
        for agreement in rt.state.agreements.values()
        if (version := agreement.active(rt.now())) is not None
    }
    for path in [p for p in engines if p != keep and p.name not in live]:
        engines.pop(path).close()
