"""The query path: principal -> active agreement -> policy -> check -> execute -> release -> ledger.

Write-ahead audit: the ledger entry is appended before a result is returned, and every request
that does not produce one (refused, malformed, timed out, failed) is appended as a ``refusal``
before the error is raised. If the ledger cannot record, the caller gets ``SystemFailure`` and no
data. Entries carry the SQL and what the query touched, the result's row count and digest; never a
value from the data.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from custodiet.errors import CustodietError, InputError, RefusedError, SystemFailure
from custodiet.gateway.dp import release_with_budget
from custodiet.gateway.execute import Executed, execute, open_engine
from custodiet.gateway.release import Released, release
from custodiet.workspace import Workspace

if TYPE_CHECKING:
    import duckdb

    from custodiet.gateway.policy import Policy
    from custodiet.gateway.rewrite import CheckedQuery


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    ledger_index: int
    notices: tuple[str, ...]
    truncated: bool


def run_query(
    ws: Workspace,
    agreement_id: str,
    principal_name: str,
    sql: str,
    *,
    now: dt.datetime | None = None,
    dry_run: bool = False,
) -> QueryResult:
    """Run ``sql`` for ``principal_name`` under ``agreement_id``; the ledger records it first."""
    from custodiet.agreements.lifecycle import require_active
    from custodiet.gateway.check import check_query
    from custodiet.gateway.projection import ensure_projection, load_policy
    from custodiet.principals import get_principal

    ws.manifest()  # not a workspace: bad input (exit 2), and there is no ledger to record on
    entry: dict[str, Any] = {"actor": principal_name, "agreement": agreement_id, "sql": sql}
    try:
        get_principal(ws, principal_name)
        active = require_active(ws, agreement_id, principal_name, now=now)
        entry.update(agreement_version=active.version, agreement_sha256=active.sha256)
        policy = load_policy(ws, active)
        projection = ensure_projection(ws, active)
        checked = check_query(sql, policy)
        entry.update(
            executed_sql=checked.executed,
            datasets=list(checked.tables),
            columns=list(checked.columns),
        )
        timeout = active.agreement.limits.timeout_seconds
        # ---- release hook (issue 11): gateway/dp.py releases mode dp with noise, checks and
        # spends the budget, answers repeats from its cache, and handles --dry-run; aggregate
        # mode goes through gateway/suppress.py (runs `run` once or twice); pseudonymous mode
        # through _released unchanged. `spend` (epsilon_spent, rho_spent, ...) joins the entry
        # appended below, before anything is returned.
        released, spend = release_with_budget(
            ws,
            active,
            policy,
            checked,
            dry_run=dry_run,
            run=lambda bounded: _executed(projection, bounded, checked.row_limit, timeout),
            plain=lambda: _released(projection, policy, checked, timeout),
        )
    except CustodietError as exc:
        _append(ws, _refusal(entry, exc))
        raise
    except Exception as exc:  # fail closed: an unexpected error is recorded, never shown raw
        failure = SystemFailure(
            f"internal error while running the query ({type(exc).__name__})",
            hint="tell a custodian; the failure is on the ledger",
            code="CUST148",
        )
        _append(ws, _refusal(entry, failure))
        raise failure from None
    index = _append(
        ws,
        {
            **entry,
            "action": "query",
            "rows_returned": len(released.rows),
            "result_sha256": released.sha256,
            **spend,
            "decision": "allowed",
            "rule": f"agreement '{agreement_id}' (v{active.version}), mode {policy.mode.value}",
        },
    )
    return QueryResult(released.columns, released.rows, index, released.notices, released.truncated)


def _executed(projection: Path, sql: str, row_limit: int, timeout_seconds: float) -> Executed:
    """Execute checked SQL on its own cursor of the projection's engine."""
    cursor = _engine(projection).cursor()
    try:
        return execute(cursor, sql, row_limit=row_limit, timeout_seconds=timeout_seconds)
    finally:
        cursor.close()


def _released(
    projection: Path, policy: Policy, checked: CheckedQuery, timeout_seconds: float
) -> Released:
    """Execute the checked SQL on its own cursor of the projection's engine; apply the mode."""
    executed = _executed(projection, checked.executed, checked.row_limit, timeout_seconds)
    return release(
        policy,
        executed.columns,
        executed.rows,
        touched=checked.columns,
        hidden=checked.hidden,
    )


def _refusal(entry: Mapping[str, Any], exc: CustodietError) -> dict[str, Any]:
    if isinstance(exc, RefusedError):
        decision, reason = "refused", exc.rule
    elif isinstance(exc, InputError):
        decision, reason = "malformed", exc.message
    else:
        decision, reason = "failed", exc.message
    return {**entry, "action": "refusal", "decision": decision, "reason": reason, "code": exc.code}


def _append(ws: Workspace, entry: Mapping[str, Any]) -> int:
    """Append to the ledger or fail closed: any failure to record is a SystemFailure."""
    try:
        ledger = ws.ledger()
        try:
            index: int = ledger.append(entry)
        finally:
            ledger.close()
    except SystemFailure:
        raise
    except Exception as exc:
        raise SystemFailure(
            f"the ledger could not record this request ({type(exc).__name__}); nothing returned",
            hint="check the ledger store (`custodiet ledger verify`) and try again",
            code="CUST147",
        ) from None
    return index


# One read-only engine per projection file, shared by the queries of this process; each query
# runs on its own cursor, so one can be interrupted without touching the others.
_ENGINES: dict[Path, duckdb.DuckDBPyConnection] = {}
_ENGINES_LOCK = threading.Lock()


def _engine(projection: Path) -> duckdb.DuckDBPyConnection:
    with _ENGINES_LOCK:
        engine = _ENGINES.get(projection)
        if engine is None:
            engine = _ENGINES[projection] = open_engine(projection)
        return engine
