"""A monitor run narrowed to the rows that arrived since the last run.

When the only change since the last run of an agreement is new versions of datasets it follows
(payments, tax refunds, deaths; same agreement version, same screens), a case no earlier run
saw must involve a new row. Each screen of ``RESTRICTED`` then reads, of the table its cases are
records of, only the rows where such a finding can be (``RESTRICTED`` says which), told apart by
each row's dataset version (``VERSION_COLUMN``, stored in the projection at build and at each
extension, hidden from reviewers); the other screens (shared accounts, outliers, ages: a new
row can change an older record's finding) run in full. A restricted screen finds every finding
a full one finds on those rows, a superset of the new cases, and the run still diffs against
the open cases, so a narrowed run opens exactly the cases a full run would.
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

# screen -> the table whose rows it reads only where a new finding can be, and which rows:
# "new_or_dead" a new row, or one whose payee has a new death record (a death screen's finding
# needs both, and a new record of an earlier death changes which payments follow it);
# "new" a new row (an exclusion screen: its other dataset is not followed, so it did not change);
# "same_day" a row paid on a day a new row was (a duplicate's copies share their day)
RESTRICTED = {
    "paid_after_death": ("payments", "new_or_dead"),
    "other_agency_after_death": ("payments", "new_or_dead"),
    "refund_to_deceased": ("tax_refunds", "new_or_dead"),
    "excluded_payee": ("payments", "new"),
    "duplicate_payment": ("payments", "same_day"),
}
NARROWED = tuple(RESTRICTED)
# a table whose new rows a run can look at -> its person column
NEW_ROWS = {"payments": "payee_tin", "tax_refunds": "tin", "deaths": "ssn"}


@dataclass(frozen=True)
class Scope:
    """Rows of ``since[table]``'s later versions are new."""

    since: Mapping[str, int]

    def sql(self, screen: str, sql: str) -> str | None:
        """``sql`` reading only the rows where a finding no earlier run saw can be (its restricted
        table replaced by those rows, under the same alias); None: the screen runs in full."""
        import sqlglot
        from sqlglot import exp

        if screen not in RESTRICTED:
            return None
        table, how = RESTRICTED[screen]
        rows = f"SELECT * FROM {quote(table)} WHERE {self._where(table, how)}"
        try:
            tree = sqlglot.parse_one(sql, dialect="duckdb")
            kept = sqlglot.parse_one(rows, dialect="duckdb")
            if not isinstance(kept, exp.Query):
                return None
            for node in list(tree.find_all(exp.Table)):
                if node.name == table and not node.args.get("db") and not node.args.get("catalog"):
                    alias = node.alias_or_name
                    node.replace(kept.copy().subquery(alias))
            return tree.sql(dialect="duckdb")
        except sqlglot.errors.SqlglotError:  # a screen it cannot rewrite runs in full
            return None

    def _where(self, table: str, how: str) -> str:
        terms = []
        if how in ("new", "new_or_dead") and table in self.since:
            terms.append(_new(table, self.since[table]))
        if how == "new_or_dead" and "deaths" in self.since:
            terms.append(
                f"{quote(table)}.{quote(NEW_ROWS[table])} IN (SELECT deaths.ssn FROM deaths "
                f"WHERE {_new('deaths', self.since['deaths'])})"
            )
        if how == "same_day" and table in self.since:
            terms.append(
                f"{quote(table)}.payment_date IN (SELECT fresh.payment_date FROM {quote(table)} "
                f"AS fresh WHERE fresh.{VERSION_COLUMN} > {int(self.since[table])})"
            )
        return " OR ".join(terms) or "false"

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
        person = NEW_ROWS[table]
        if view is None or person not in view.columns:
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
