"""A monitor run narrowed to the rows that arrived since the last run.

When the only change since the last run of an agreement is new versions of datasets it follows
(payments, tax refunds, deaths; same agreement version, same screens), a case no earlier run
saw must involve a new row: a new payment or refund, or a payee with one (a duplicate's group is
one payee's), or a payee with a new death record. The screens of ``NARROWED`` then run with
their findings restricted to those payees and records, read from each row's dataset version
(``VERSION_COLUMN``, stored in the projection at build and extension, hidden from reviewers);
the other screens (shared accounts, outliers, ages: a new row can change an old record's
finding) run in full. The restriction keeps a superset of the new cases and the run still diffs
against the open cases, so a narrowed run opens exactly the cases a full run would.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from custodiet.agreements.lifecycle import ActiveAgreement
from custodiet.agreements.model import Mode
from custodiet.catalog.classes import ColumnClass
from custodiet.gateway.policy import VERSION_COLUMN, ColumnKind, ColumnView, Policy
from custodiet.gateway.treatments import quote
from custodiet.ledger.replay import dataset_versions
from custodiet.runtime import Runtime

NARROWED = ("paid_after_death", "refund_to_deceased", "other_agency_after_death",
            "duplicate_payment", "excluded_payee")  # fmt: skip
# a table whose new rows a run can look at -> (its record key, or "", its person column)
NEW_ROWS = {
    "payments": ("payment_id", "payee_tin"),
    "tax_refunds": ("refund_id", "tin"),
    "deaths": ("", "ssn"),
}


@dataclass(frozen=True)
class Scope:
    """Rows of ``since[table]``'s later versions are new."""

    since: Mapping[str, int]

    def sql(self, screen: str, sql: str) -> str | None:
        """``sql`` restricted to the findings that involve a new row; None: run it in full."""
        if screen not in NARROWED:
            return None
        payees = " UNION ALL ".join(
            f"SELECT {quote(NEW_ROWS[t][1])} FROM {quote(t)} WHERE {_new(t, v)}"
            for t, v in sorted(self.since.items())
        )
        records = "".join(
            f" OR (screened.record_table = '{t}' AND screened.record_id IN "
            f"(SELECT CAST({quote(NEW_ROWS[t][0])} AS VARCHAR) FROM {quote(t)} "
            f"WHERE {_new(t, v)}))"
            for t, v in sorted(self.since.items())
            if NEW_ROWS[t][0]
        )
        return (
            f"SELECT * FROM ({sql.strip()}) AS screened WHERE screened.payee IN ({payees}){records}"
        )

    def policy(self, policy: Policy) -> Policy:
        """``policy`` with the version column of the new rows' tables: only a narrowed screen's
        query, which the gateway writes, is checked under it."""
        tables = dict(policy.tables)
        for table in self.since:
            view = tables[table]
            column = ColumnView(VERSION_COLUMN, ColumnKind.VALUE, ColumnClass.CATEGORY, "INTEGER")
            tables[table] = replace(view, columns={**view.columns, VERSION_COLUMN: column})
        return replace(policy, tables=tables)

    def document(self, screens: list[str]) -> dict[str, Any]:
        """What the run's ledger entry says of its scope."""
        return {
            "since": dict(sorted(self.since.items())),
            "scopes": {s: "new_rows" if s in NARROWED else "full" for s in screens},
        }


def _new(table: str, version: int) -> str:
    return f"{quote(table)}.{VERSION_COLUMN} > {int(version)}"


def narrowing(
    rt: Runtime, active: ActiveAgreement, last: Mapping[str, Any] | None, now: Mapping[str, Any]
) -> Scope | None:
    """The scope of a run whose basis is ``now`` after a last run on ``last``: None (every
    screen in full) unless only followed payments, refunds or deaths gained versions since."""
    agreement = active.agreement
    if (
        last is None
        or agreement.mode is not Mode.PSEUDONYMOUS
        or last.get("agreement_version") != now["agreement_version"]
        or last.get("screens_sha256") != now["screens_sha256"]
    ):
        return None
    before, after = last.get("sources"), now["sources"]
    if not isinstance(before, dict) or set(before) != set(after):
        return None
    since: dict[str, int] = {}
    for name in sorted(after):
        if before[name] == after[name]:
            continue
        grant = agreement.datasets.get(name)
        if name not in NEW_ROWS or grant is None or not grant.follow:
            return None
        versions = {v["sha256"]: int(v["version"]) for v in
                    dataset_versions(rt.state.datasets.get(name, {}))}  # fmt: skip
        old, new = versions.get(before[name]), versions.get(after[name])
        if old is None or new is None or new <= old:
            return None
        since[name] = old
    if not since or not _readable(rt, active, since):
        return None
    return Scope(since)


def _readable(rt: Runtime, active: ActiveAgreement, since: Mapping[str, int]) -> bool:
    """Whether each table stores the version column and grants what the restriction reads."""
    from custodiet.gateway.projection import load_policy, projection_path
    from custodiet.gateway.service import engine

    policy = load_policy(rt.ws, active)
    for table in since:
        view = policy.tables.get(table)
        key, person = NEW_ROWS[table]
        if view is None or person not in view.columns or (key and key not in view.columns):
            return False
        if view.columns[person].kind is not ColumnKind.TOKEN:
            return False
    cursor = engine(rt, projection_path(rt.ws, active)).cursor()
    try:
        found = cursor.execute(
            "SELECT count(DISTINCT table_name) FROM information_schema.columns "
            "WHERE column_name = ? AND table_name IN (SELECT unnest(?))",
            [VERSION_COLUMN, sorted(since)],
        ).fetchone()
    finally:
        cursor.close()
    return bool(found and int(found[0]) == len(since))
