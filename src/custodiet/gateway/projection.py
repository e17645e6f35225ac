"""Compile an active agreement version into its protected projection, all the reviewer's engine has.

One DuckDB file per agreement version, ``projections/<id>-v<version>-<sha[:12]>.duckdb``, with one
table per granted dataset holding only granted columns of rows inside the filter: quasi-identifiers
generalized, masked columns constant, identifiers replaced by keyed tokens. It holds no key, no view
SQL, no identifier and nothing from another agreement. The ``Policy`` it implies is saved beside it
(``….policy.json``) for the checker. Built by a custodian-side connection under a temporary name and
renamed into place, so a reader never sees half a projection; building twice is harmless.
"""

from __future__ import annotations

import array
import json
import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from custodiet import entries
from custodiet.agreements.model import Agreement, DatasetGrant, Mode, Treatment
from custodiet.catalog.classes import ColumnClass
from custodiet.catalog.model import Dataset
from custodiet.catalog.source import relation_sql, source_of
from custodiet.errors import InputError, SystemFailure
from custodiet.gateway.match_quality import build_death_match
from custodiet.gateway.policy import (
    ROW_NUMBER_COLUMN,
    VERSION_COLUMN,
    ColumnKind,
    ColumnView,
    Policy,
    TableView,
)
from custodiet.gateway.tokens import (
    TOKEN_LENGTH,
    Tokenizer,
    agreement_key,
    domain_of,
    read_secret,
)
from custodiet.gateway.treatments import projected_expression, quote
from custodiet.identity import SignedRequest
from custodiet.ledger.replay import State, dataset_versions, files_digest
from custodiet.runtime import Runtime
from custodiet.workspace import Workspace

if TYPE_CHECKING:
    import duckdb

    from custodiet.progress import Progress

PERSON_DOMAIN = "tin"
_KINDS = {
    Treatment.ALLOW: ColumnKind.VALUE,
    Treatment.PSEUDONYMIZE: ColumnKind.TOKEN,
    Treatment.GENERALIZE: ColumnKind.GENERALIZED,
    Treatment.MASK: ColumnKind.MASKED,
}


class ActiveVersion(Protocol):
    """An active agreement version (``agreements.lifecycle.ActiveAgreement``)."""

    @property
    def agreement(self) -> Agreement: ...
    @property
    def version(self) -> int: ...
    @property
    def sha256(self) -> str: ...


@dataclass(frozen=True)
class ProjectionFiles:
    database: Path
    policy: Path


def projection_files(ws: Workspace, active: ActiveVersion) -> ProjectionFiles:
    stem = f"{active.agreement.id}-v{active.version}-{active.sha256[:12]}"
    return ProjectionFiles(
        ws.projections_dir / f"{stem}.duckdb", ws.projections_dir / f"{stem}.policy.json"
    )


def projection_path(ws: Workspace, active: ActiveVersion) -> Path:
    """The built projection of this agreement version. It is built on the custodian side when
    the version becomes active (``build_for``), never inside a reviewer's request."""
    files = projection_files(ws, active)
    if files.database.exists() and files.policy.exists():
        return files.database
    raise _not_built(active)


def _not_built(active: ActiveVersion) -> SystemFailure:
    agreement = active.agreement.id
    return SystemFailure(
        f"the protected projection of agreement '{agreement}' (v{active.version}) is not built",
        hint=f"a custodian rebuilds it: `custodiet agreement build {agreement} --as CUSTODIAN`",
        code="CUST538",
    )


def load_policy(ws: Workspace, active: ActiveVersion) -> Policy:
    """The Policy of this agreement version's built projection."""
    files = projection_files(ws, active)
    if not files.policy.exists():
        raise _not_built(active)
    try:
        return policy_from_json(json.loads(files.policy.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SystemFailure(
            f"{files.policy}: unreadable projection policy ({type(exc).__name__})",
            hint="a custodian rebuilds it with `custodiet agreement build`",
            code="CUST142",
        ) from None


def build_for(
    rt: Runtime,
    active: ActiveVersion,
    signed: SignedRequest | None = None,
    progress: Progress | None = None,
) -> Path:
    """Custodian side: re-hash the registered sources, build the projection, and record the
    build with the source digests (``projection.build``). A source whose bytes differ from its
    registered digest stops the build (exit 1), and that failure is on the ledger too.
    ``progress`` hears of each table built."""
    from custodiet.catalog.registry import get_dataset

    state = rt.refresh()
    agreement = active.agreement
    built = state.projections.get(f"{agreement.id}@{active.version}", {})
    datasets = {
        name: get_dataset(state, name, _version_to_build(state, name, grant, built))
        for name, grant in agreement.datasets.items()
    }
    about: dict[str, Any] = {"agreement": agreement.id, "agreement_version": active.version}
    if signed is not None:  # a custodian's rebuild: their signed request is part of the entry
        about.update(request=signed.request, signature=signed.signature, actor=signed.principal)
    digests = {name: current_digest(dataset) for name, dataset in datasets.items()}
    changed = sorted(n for n, d in datasets.items() if digests[n] != d.sha256)
    if changed:
        failure = SystemFailure(
            f"dataset '{changed[0]}' changed since it was registered (its bytes no longer match "
            "the registered sha256); the projection was not built",
            hint="restore the registered file, or register the new data under a new dataset name",
            code="CUST536",
        )
        rt.record(
            entries.system(
                "projection.build", **about, sources=digests, decision="failed",
                reason=failure.message, code=failure.code,
            )
        )  # fmt: skip
        raise failure
    files = projection_files(rt.ws, active)
    key = agreement_key(read_secret(rt.ws.secret_path), agreement.id, agreement.reviewer)
    build_projection(files, active, datasets, key, progress)
    rt.commit(
        entries.system("projection.build", **about, sources=digests, decision="allowed"),
        refuse_as=signed,
    )
    return files.database


def _version_to_build(
    state: State, name: str, grant: DatasetGrant, built: Mapping[str, str]
) -> int | None:
    """The latest version of a followed dataset (or of one never built); else the version the
    projection was built from: an agreement that does not follow stays on its version."""
    if grant.follow or name not in built:
        return None
    record = state.datasets.get(name, {})
    return next(
        (int(v["version"]) for v in dataset_versions(record) if v["sha256"] == built[name]), None
    )


def current_digest(dataset: Dataset) -> str:
    """The digest of ``dataset``'s files as they are on disk now ("unreadable" if one is not)."""
    from custodiet.catalog.registry import file_sha256

    try:
        found = [{"path": p, "sha256": file_sha256(Path(p))} for p, _ in dataset.file_digests]
    except OSError:
        return "unreadable"
    return files_digest(found)


def build_projection(
    files: ProjectionFiles,
    active: ActiveVersion,
    datasets: Mapping[str, Dataset],
    key: bytes,
    progress: Progress | None = None,
) -> None:
    """Write the projection and its policy, each under a temporary name renamed into place;
    ``progress`` hears of each table (the granted ones, then ``death_match``)."""
    files.database.parent.mkdir(parents=True, exist_ok=True)
    agreement = active.agreement
    tables: dict[str, TableView] = {}
    hint = "check that the registered dataset files are readable and unchanged"
    with scratch_database(files, active, "build", hint) as temporary:
        con = custodian_engine(temporary)
        try:
            builder = _Builder(con, agreement, key)
            steps = len(agreement.datasets) + 1
            for done, (name, grant) in enumerate(agreement.datasets.items()):
                if progress is not None:
                    progress(done, steps)
                tables[name] = builder.table(datasets[name], grant)
            if progress is not None:
                progress(steps - 1, steps)
            match = build_death_match(con, agreement, datasets)
            if match is not None:
                tables[match.name] = match
            con.execute("CHECKPOINT")
            if progress is not None:
                progress(steps, steps)
        finally:
            con.close()
        policy = Policy(
            agreement_id=agreement.id,
            version=active.version,
            mode=agreement.mode,
            tables=tables,
            max_rows=agreement.limits.max_rows,
            min_group_size=agreement.limits.min_group_size,
        )
        _write_atomically(files.policy, json.dumps(policy_to_json(policy), indent=2))
        temporary.chmod(0o600)
        temporary.replace(files.database)


@contextmanager
def scratch_database(
    files: ProjectionFiles, active: ActiveVersion, verb: str, hint: str
) -> Iterator[Path]:
    """A temporary file beside the projection to ``verb`` it in, renamed into place by the
    caller once complete and removed (with its WAL) in every other case; an engine error on
    the way is CUST143, naming the error's type only, never its text (it may quote data)."""
    import duckdb

    temporary = files.database.with_name(f".{files.database.name}.{secrets.token_hex(6)}.tmp")
    try:
        yield temporary
    except duckdb.Error as exc:
        raise SystemFailure(
            f"could not {verb} the projection of agreement '{active.agreement.id}' "
            f"(v{active.version}): engine error ({type(exc).__name__})",
            hint=hint,
            code="CUST143",
        ) from None
    finally:
        temporary.unlink(missing_ok=True)
        temporary.with_name(temporary.name + ".wal").unlink(missing_ok=True)


def custodian_engine(database: Path) -> duckdb.DuckDBPyConnection:
    """A custodian-side connection to a projection being written: every core, no progress bar."""
    import duckdb

    con = duckdb.connect(str(database), config={"threads": os.cpu_count() or 1})
    con.execute("SET enable_progress_bar = false")
    return con


class _Builder:
    """Builds one table after another on the custodian-side connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection, agreement: Agreement, key: bytes) -> None:
        self._con = con
        self._agreement = agreement
        self._key = key

    def table(self, dataset: Dataset, grant: DatasetGrant) -> TableView:
        versioned = self._agreement.mode is Mode.PSEUDONYMOUS
        select, kinds, tokens = self._select(dataset, grant, versioned)
        person = self._ranked(dataset, kinds)
        if person is not None:
            select = self._rank(select, kinds, person)
        self._create(dataset.name, select, kinds)
        self._release(dataset, tokens)
        return self._view(dataset, kinds, ranked=person is not None)

    def append(self, dataset: Dataset, grant: DatasetGrant) -> None:
        """Append ``dataset``'s rows (its new files only) to its table, treated as ``table``
        treats them: the same key gives every identifier the token it already has."""
        versioned = self._holds(dataset.name, VERSION_COLUMN)
        select, kinds, tokens = self._select(dataset, grant, versioned)
        person = self._ranked(dataset, kinds)
        if person is not None and self._holds(dataset.name, ROW_NUMBER_COLUMN):
            select = self._rank(select, kinds, person, table=dataset.name)
        self._con.execute(f"INSERT INTO {quote(dataset.name)} BY NAME {select}")
        self._release(dataset, tokens)

    def _select(
        self, dataset: Dataset, grant: DatasetGrant, versioned: bool = False
    ) -> tuple[str, dict[str, ColumnKind], int]:
        self._open_source(dataset, grant)
        selects: list[str] = []
        joins: list[str] = []
        kinds: dict[str, ColumnKind] = {}
        for name, rule in grant.columns.items():
            if rule.treatment is Treatment.DENY:
                continue
            if name not in dataset.columns:
                raise InputError(
                    f"agreement '{self._agreement.id}': column '{dataset.name}.{name}' "
                    "is not in the dataset",
                    code="CUST282",
                )
            column = f"src.{quote(name)}"
            if rule.treatment is Treatment.PSEUDONYMIZE:
                alias = f"tok{len(joins)}"
                self._register_tokens(alias, name, dataset.columns[name].identifier_kind)
                joins.append(f"LEFT JOIN {alias} ON CAST({column} AS VARCHAR) = {alias}.raw")
                selects.append(f"{alias}.token AS {quote(name)}")
            else:
                expression = projected_expression(rule, column, self._agreement.expires)
                selects.append(f"{expression} AS {quote(name)}")
            kinds[name] = _KINDS[rule.treatment]
        if versioned and VERSION_COLUMN not in dataset.columns:  # never in ``kinds``: hidden
            selects.append(f"{int(dataset.version)}::INTEGER AS {VERSION_COLUMN}")
        select = f"SELECT {', '.join(selects)} FROM source_rows AS src {' '.join(joins)}"
        return select, kinds, len(joins)

    def _ranked(self, dataset: Dataset, kinds: Mapping[str, ColumnKind]) -> str | None:
        """The person column when ``dataset``'s table stores each person's rank (dp mode)."""
        person = _person_column(dataset, kinds)
        if self._agreement.mode is Mode.DP and ROW_NUMBER_COLUMN not in dataset.columns:
            return person
        return None

    def _rank(
        self, select: str, kinds: Mapping[str, ColumnKind], person: str, table: str | None = None
    ) -> str:
        """``select`` with each person's rows ranked in an order fixed by a hash of the row's own
        values: which rows a cut keeps depends on that person's rows only, and never on the
        values' size. A row without a person has no rank. dp mode's per-person cut is then the
        filter ROW_NUMBER_COLUMN <= C, which also drops the rows without a person. With
        ``table`` (an extension), the new rows rank after the rows that person already has."""
        every = ", ".join(f"new.{quote(name)}" for name in kinds)
        unit = quote(person)
        rank = f"row_number() OVER (PARTITION BY new.{unit} ORDER BY hash({every}))"
        before = ""
        if table is not None:
            rank = f"coalesce(held.top, 0) + {rank}"
            before = (
                f" LEFT JOIN (SELECT {unit} AS unit, max({ROW_NUMBER_COLUMN}) AS top "
                f"FROM {quote(table)} GROUP BY {unit}) AS held ON new.{unit} = held.unit"
            )
        return (
            f"SELECT new.*, CASE WHEN new.{unit} IS NOT NULL THEN {rank} END "
            f"AS {ROW_NUMBER_COLUMN} FROM ({select}) AS new{before} ORDER BY {ROW_NUMBER_COLUMN}"
        )  # stored in rank order: the cut's filter then skips whole blocks of rows

    def _holds(self, table: str, column: str) -> bool:
        found = self._con.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = ? AND column_name = ?",
            [table, column],
        ).fetchone()
        return bool(found and found[0])

    def _release(self, dataset: Dataset, tokens: int) -> None:
        for alias in (f"tok{i}" for i in range(tokens)):
            self._con.unregister(alias)
        self._con.execute("DROP VIEW source_rows")
        if dataset.format == "duckdb":
            self._con.execute("DETACH source_db")

    def _create(self, table: str, select: str, kinds: Mapping[str, ColumnKind]) -> None:
        """Create ``table`` from ``select``, token columns stored uncompressed.

        Random tokens do not compress; decompressing them (FSST/dictionary) made joins and
        distinct counts on tokens 3-4x slower than on the raw Parquet. Other columns keep
        DuckDB's compression, which their scans benefit from.
        """
        columns = ", ".join(
            f"{quote(name)} {sql_type}"
            + (" USING COMPRESSION uncompressed" if kinds.get(name) is ColumnKind.TOKEN else "")
            for name, sql_type, *_ in self._con.execute(f"DESCRIBE {select}").fetchall()
        )
        self._con.execute(f"CREATE TABLE {quote(table)} ({columns})")
        self._con.execute(f"INSERT INTO {quote(table)} {select}")

    def _open_source(self, dataset: Dataset, grant: DatasetGrant) -> None:
        source = relation_sql(self._con, source_of(dataset), alias="source_db")
        where = f" WHERE {filter_sql(self._agreement, dataset, grant)}" if grant.rows else ""
        self._con.execute(f"CREATE TEMP VIEW source_rows AS SELECT * FROM {source}{where}")

    def _register_tokens(self, alias: str, column: str, kind: str | None) -> None:
        """Register (raw, token) for each distinct value: one HMAC per value, not per row."""
        import pyarrow as pa

        distinct = self._con.sql(
            f"SELECT DISTINCT CAST({quote(column)} AS VARCHAR) AS raw FROM source_rows "
            f"WHERE {quote(column)} IS NOT NULL"
        ).to_arrow_table()
        tokenizer = Tokenizer(self._key, kind)
        normalize = tokenizer.normalize
        pairs = [
            (raw, normalized)
            for raw in distinct.column("raw").to_pylist()
            if (normalized := normalize(raw))
        ]
        packed = tokenizer.packed_tokens([normalized for _, normalized in pairs])
        offsets = array.array("i", range(0, TOKEN_LENGTH * (len(pairs) + 1), TOKEN_LENGTH))
        tokens = pa.StringArray.from_buffers(
            len(pairs), pa.py_buffer(offsets), pa.py_buffer(packed)
        )
        mapping = pa.table(
            {"raw": pa.array([raw for raw, _ in pairs], pa.string()), "token": tokens}
        )
        self._con.register(alias, mapping)

    def _view(
        self, dataset: Dataset, kinds: Mapping[str, ColumnKind], *, ranked: bool
    ) -> TableView:
        rows = self._con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? ORDER BY ordinal_position",
            [dataset.name],
        ).fetchall()
        columns = {
            name: ColumnView(name, kinds[name], dataset.columns[name].column_class, sql_type)
            for name, sql_type in rows
            if name in kinds  # never ROW_NUMBER_COLUMN: the reviewer cannot name it
        }
        denied = frozenset(dataset.columns) - frozenset(columns)
        return TableView(
            dataset.name, columns, _person_column(dataset, kinds), denied, ranked=ranked
        )


def _person_column(dataset: Dataset, kinds: Mapping[str, ColumnKind]) -> str | None:
    """The first pseudonymized column of the person domain (SSN/TIN): the privacy unit."""
    return next(
        (
            name
            for name, kind in kinds.items()
            if kind is ColumnKind.TOKEN
            and domain_of(dataset.columns[name].identifier_kind)[0] == PERSON_DOMAIN
        ),
        None,
    )


def filter_sql(agreement: Agreement, dataset: Dataset, grant: DatasetGrant) -> str:
    """The grant's row filter as it runs: the checked tree re-rendered, never the YAML text."""
    from custodiet.agreements.rowfilter import RowFilterProblem, row_filter_sql

    assert grant.rows is not None
    try:
        return row_filter_sql(grant.rows, dataset.columns)
    except RowFilterProblem as problem:
        raise InputError(
            f"agreement '{agreement.id}': datasets.{dataset.name}.rows: {problem}",
            hint="apply a corrected version of the agreement",
            code="CUST248",
        ) from None


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def policy_to_json(policy: Policy) -> dict[str, Any]:
    return {
        "agreement_id": policy.agreement_id,
        "version": policy.version,
        "mode": policy.mode.value,
        "max_rows": policy.max_rows,
        "min_group_size": policy.min_group_size,
        "tables": {
            name: {
                "person_column": view.person_column,
                "denied": sorted(view.denied),
                "ranked": view.ranked,
                "columns": [
                    [c.name, c.kind.value, c.column_class.value, c.sql_type]
                    for c in view.columns.values()
                ],
            }
            for name, view in policy.tables.items()
        },
    }


def policy_from_json(data: Mapping[str, Any]) -> Policy:
    tables = {
        name: TableView(
            name=name,
            columns={
                c[0]: ColumnView(c[0], ColumnKind(c[1]), ColumnClass(c[2]), c[3])
                for c in table["columns"]
            },
            person_column=table["person_column"],
            denied=frozenset(table["denied"]),
            ranked=bool(table.get("ranked", False)),  # absent in projections built before it
        )
        for name, table in data["tables"].items()
    }
    return Policy(
        agreement_id=data["agreement_id"],
        version=int(data["version"]),
        mode=Mode(data["mode"]),
        tables=tables,
        max_rows=int(data["max_rows"]),
        min_group_size=int(data["min_group_size"]),
    )
