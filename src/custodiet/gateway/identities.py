"""The custodian side of break-glass re-identification: which person tokens exist, and whose.

Only ``reid`` calls this, and only for a request two custodians approved. ``person_tokens_present``
looks tokens up in the agreement's protected projection (what the reviewer could have seen);
``identify`` reads the raw registered files (inside the agreement's row filter), recomputes the
token of each distinct person identifier under the agreement's key, and returns the identifier
columns (names, SSN/TIN, bank account) of the records whose person token was requested.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from custodiet.agreements.model import ColumnRule, Treatment
from custodiet.catalog.classes import ColumnClass
from custodiet.catalog.model import Dataset
from custodiet.catalog.source import relation_sql, source_of
from custodiet.errors import SystemFailure
from custodiet.gateway.execute import open_engine
from custodiet.gateway.projection import (
    PERSON_DOMAIN,
    ActiveVersion,
    load_policy,
    projection_path,
)
from custodiet.gateway.tokens import Tokenizer, agreement_key, domain_of, read_secret
from custodiet.gateway.treatments import quote
from custodiet.workspace import Workspace

if TYPE_CHECKING:
    import duckdb


@dataclass(frozen=True)
class IdentifiedRecord:
    """One raw record behind a person token: its dataset and its identifier columns as text."""

    token: str
    dataset: str
    fields: Mapping[str, str | None]


def person_tokens_present(
    ws: Workspace, active: ActiveVersion, tokens: Collection[str]
) -> set[str]:
    """The subset of ``tokens`` that occur as a person token in the agreement's projection."""
    import duckdb

    database = projection_path(ws, active)
    policy = load_policy(ws, active)
    columns = [(t.name, t.person_column) for t in policy.tables.values() if t.person_column]
    if not columns or not tokens:
        return set()
    union = " UNION ".join(
        f"SELECT {quote(column)} AS token FROM {quote(table)} "
        f"WHERE {quote(column)} IN (SELECT unnest($tokens))"
        for table, column in columns
    )
    try:
        # the reviewer's own engine settings: one process may hold one configuration per file
        con = open_engine(database)
        try:
            rows = con.execute(union, {"tokens": sorted(tokens)}).fetchall()
        finally:
            con.close()
    except duckdb.Error as exc:
        raise _engine_failure(active, exc) from None
    return {str(row[0]) for row in rows}


def identify(
    ws: Workspace,
    active: ActiveVersion,
    datasets: Mapping[str, Dataset],
    tokens: Collection[str],
    kinds: Collection[str] = ("name", "ssn", "tin", "ein"),
) -> list[IdentifiedRecord]:
    """The identified records behind ``tokens``, showing only identifier columns of ``kinds``
    (names and TINs unless bank numbers were asked for), sorted by token, dataset, fields."""
    import duckdb

    key = agreement_key(read_secret(ws.secret_path), active.agreement.id, active.agreement.reviewer)
    wanted = set(tokens)
    found: list[IdentifiedRecord] = []
    try:
        con = duckdb.connect(config={"threads": 1})
        try:
            for name, grant in active.agreement.datasets.items():
                dataset = datasets[name]
                person = _person_column(dataset, grant.columns)
                if person is not None:
                    found += _records(con, dataset, grant.rows, person, key, wanted, kinds)
        finally:
            con.close()
    except duckdb.Error as exc:
        raise _engine_failure(active, exc) from None
    return sorted(found, key=_order)


def _order(record: IdentifiedRecord) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    return (
        record.token,
        record.dataset,
        tuple((k, v or "") for k, v in sorted(record.fields.items())),
    )


def _person_column(dataset: Dataset, rules: Mapping[str, ColumnRule]) -> str | None:
    """The dataset's pseudonymized person identifier (SSN/TIN/EIN), as the projection chose it."""
    for name, rule in rules.items():
        info = dataset.columns.get(name)
        if (
            info is not None
            and rule.treatment is Treatment.PSEUDONYMIZE
            and domain_of(info.identifier_kind)[0] == PERSON_DOMAIN
        ):
            return name
    return None


def _records(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    rows_filter: str | None,
    person: str,
    key: bytes,
    wanted: set[str],
    kinds: Collection[str],
) -> list[IdentifiedRecord]:
    source = relation_sql(con, source_of(dataset), alias=f"src_{dataset.name}")
    where = f"WHERE ({rows_filter})" if rows_filter else ""
    con.execute(f"CREATE OR REPLACE TEMP VIEW inside AS SELECT * FROM {source} {where}")
    distinct = con.execute(
        f"SELECT DISTINCT CAST({quote(person)} AS VARCHAR) FROM inside "
        f"WHERE {quote(person)} IS NOT NULL"
    ).fetchall()
    tokenizer = Tokenizer(key, dataset.columns[person].identifier_kind)
    matched = {}
    for (value,) in distinct:
        token = tokenizer.token(value)
        if token is not None and token in wanted:
            matched[value] = token
    if not matched:
        return []
    shown = [
        c.name
        for c in dataset.columns.values()
        if c.column_class is ColumnClass.IDENTIFIER and c.identifier_kind in kinds
    ]
    selected = ", ".join(f"CAST({quote(c)} AS VARCHAR)" for c in shown)
    rows = con.execute(
        f"SELECT DISTINCT CAST({quote(person)} AS VARCHAR), {selected} FROM inside "
        f"WHERE CAST({quote(person)} AS VARCHAR) IN (SELECT unnest($values))",
        {"values": sorted(matched)},
    ).fetchall()
    return [
        IdentifiedRecord(matched[row[0]], dataset.name, dict(zip(shown, row[1:], strict=True)))
        for row in rows
    ]


def _engine_failure(active: ActiveVersion, exc: Exception) -> SystemFailure:
    return SystemFailure(
        f"re-identification under agreement '{active.agreement.id}' (v{active.version}) failed: "
        f"engine error ({type(exc).__name__})",
        hint="check that the registered dataset files are readable and unchanged",
        code="CUST429",
    )
