"""Match quality: how well a death record agrees with the payee it matched by SSN token.

Built on the custodian side with the projection (``projection.build_projection``), and built
again over every record when an extension adds payments, refunds, deaths or beneficiaries
(``growth.extend``: a new death record matches payments already held): for every
payment or tax refund whose payee's SSN is in the death records, the projection gets one row of
``death_match`` -- ``record_table``, ``record_id``, ``match`` -- and nothing else: the names and
dates of birth compared never reach the reviewer's engine, only the category.

* ``exact``: the SSN, the name and the date of birth agree;
* ``ssn_name``: the SSN and the name agree, the date of birth does not (or is unknown);
* ``ssn_dob``: the SSN and the date of birth agree, the name does not (or is unknown);
* ``ssn_only``: only the nine digits agree.

The payee's name is the payment's ``payee_name``, else the beneficiary record's name; the date
of birth is the beneficiary record's. Beneficiary records are used only when the agreement
grants the ``beneficiaries`` dataset, and every dataset is read through its grant's row filter.
Names are compared as their letters, case-folded. A person with several death records gets the
best category any of them gives. Built only for pseudonymous agreements granting ``deaths.ssn``
pseudonymized and, for payments (refunds), ``payment_id`` (``refund_id``) allowed and
``payee_tin`` (``tin``) pseudonymized: exactly what the death screens read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from custodiet.agreements.model import Agreement, Mode, Treatment
from custodiet.catalog.classes import ColumnClass
from custodiet.catalog.model import Dataset
from custodiet.catalog.source import relation_sql, source_of
from custodiet.gateway.policy import ColumnKind, ColumnView, TableView
from custodiet.gateway.tokens import domain_of
from custodiet.gateway.treatments import quote

if TYPE_CHECKING:
    import duckdb

TABLE = "death_match"
CATEGORIES = ("exact", "ssn_name", "ssn_dob", "ssn_only")


@dataclass(frozen=True)
class _Records:
    dataset: str
    record_id: str
    tin: str
    name: str | None  # the record's own payee name column, if it has one


_RECORDS = (
    _Records("payments", "payment_id", "payee_tin", "payee_name"),
    _Records("tax_refunds", "refund_id", "tin", None),
)
# The table's shape with no rows, for running the screens on raw files (tests, benchmarks).
EMPTY_DEATH_MATCH = (
    "SELECT NULL::VARCHAR AS record_table, NULL::VARCHAR AS record_id, NULL::VARCHAR AS match "
    "WHERE false"
)
_NAME = "upper(regexp_replace(concat_ws('', {}), '[^A-Za-z]', '', 'g'))"


def build_death_match(
    con: duckdb.DuckDBPyConnection, agreement: Agreement, datasets: Mapping[str, Dataset]
) -> TableView | None:
    """Create ``death_match`` on ``con`` (the projection being built); None when the agreement
    does not grant what the death screens read, or grants a dataset of that name."""
    records = [r for r in _RECORDS if _granted(agreement, r)]
    deaths = agreement.datasets.get("deaths")
    if (
        agreement.mode is not Mode.PSEUDONYMOUS
        or TABLE in agreement.datasets
        or deaths is None
        or not _is(deaths.columns.get("ssn"), Treatment.PSEUDONYMIZE)
        or not records
    ):
        return None
    views = _Views(con, agreement, datasets)
    dead = views.open("deaths", "ssn")
    con.execute(
        f"CREATE TEMP TABLE mq_dead AS SELECT k.norm AS norm, "
        f"{_name(datasets['deaths'], 'd', 'first_name', 'last_name')} AS name, "
        f"{_column(datasets['deaths'], 'd', 'date_of_birth')} AS born "
        f"FROM {dead} AS d JOIN mq_key_deaths AS k ON CAST(d.ssn AS VARCHAR) = k.raw"
    )
    known = "SELECT NULL::VARCHAR AS norm, NULL::VARCHAR AS name, NULL::DATE AS born LIMIT 0"
    if "beneficiaries" in agreement.datasets and "ssn" in datasets["beneficiaries"].columns:
        people = views.open("beneficiaries", "ssn")
        known = (
            f"SELECT k.norm AS norm, "
            f"{_name(datasets['beneficiaries'], 'b', 'first_name', 'last_name')} AS name, "
            f"{_column(datasets['beneficiaries'], 'b', 'date_of_birth')} AS born "
            f"FROM {people} AS b JOIN mq_key_beneficiaries AS k ON CAST(b.ssn AS VARCHAR) = k.raw"
        )
    con.execute(f"CREATE TEMP TABLE mq_known AS {known}")
    parts = []
    for r in records:
        paid = views.open(r.dataset, r.tin)
        own = _name(datasets[r.dataset], "x", r.name) if r.name else "NULL::VARCHAR"
        parts.append(
            f"SELECT '{r.dataset}' AS record_table, CAST(x.{quote(r.record_id)} AS VARCHAR) "
            f"AS record_id, k.norm AS norm, nullif({own}, '') AS name FROM {paid} AS x "
            f"JOIN mq_key_{r.dataset} AS k ON CAST(x.{quote(r.tin)} AS VARCHAR) = k.raw"
        )
    con.execute(
        f"""CREATE TABLE {TABLE} AS
        WITH records AS ({" UNION ALL ".join(parts)}),
        scored AS (
          SELECT r.record_table, r.record_id,
                 max(CASE WHEN coalesce(r.name, nullif(k.name, '')) = d.name THEN 2 ELSE 0 END
                     + CASE WHEN k.born = d.born THEN 1 ELSE 0 END) AS score
          FROM records AS r
          JOIN mq_dead AS d ON r.norm = d.norm
          LEFT JOIN mq_known AS k ON r.norm = k.norm
          GROUP BY r.record_table, r.record_id
        )
        SELECT record_table, record_id,
               CASE score WHEN 3 THEN 'exact' WHEN 2 THEN 'ssn_name' WHEN 1 THEN 'ssn_dob'
                          ELSE 'ssn_only' END AS match
        FROM scored ORDER BY record_table, record_id"""
    )
    views.close()
    return TableView(
        TABLE,
        {
            "record_table": ColumnView("record_table", ColumnKind.VALUE, ColumnClass.CATEGORY,
                                       "VARCHAR"),
            "record_id": ColumnView("record_id", ColumnKind.VALUE, ColumnClass.KEY, "VARCHAR"),
            "match": ColumnView("match", ColumnKind.VALUE, ColumnClass.CATEGORY, "VARCHAR"),
        },
        person_column=None,
    )  # fmt: skip


def _is(rule: object, treatment: Treatment) -> bool:
    return getattr(rule, "treatment", None) is treatment and getattr(rule, "level", None) is None


def _granted(agreement: Agreement, records: _Records) -> bool:
    grant = agreement.datasets.get(records.dataset)
    return (
        grant is not None
        and _is(grant.columns.get(records.record_id), Treatment.ALLOW)
        and _is(grant.columns.get(records.tin), Treatment.PSEUDONYMIZE)
    )


def _column(dataset: Dataset, alias: str, column: str) -> str:
    return f"{alias}.{quote(column)}" if column in dataset.columns else "NULL::DATE"


def _name(dataset: Dataset, alias: str, *columns: str | None) -> str:
    present = [f"{alias}.{quote(c)}" for c in columns if c and c in dataset.columns]
    return _NAME.format(", ".join(present)) if present else "NULL::VARCHAR"


class _Views:
    """Each dataset's rows inside its grant's filter, and its SSNs normalized as tokens are."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, agreement: Agreement, datasets: Mapping[str, Dataset]
    ) -> None:
        self._con, self._agreement, self._datasets = con, agreement, datasets
        self._attached: list[str] = []

    def open(self, name: str, tin: str) -> str:
        import pyarrow as pa

        from custodiet.gateway.projection import filter_sql

        dataset, grant = self._datasets[name], self._agreement.datasets[name]
        alias = f"mq_src_{name}"
        source = relation_sql(self._con, source_of(dataset), alias=alias)
        if dataset.format == "duckdb":
            self._attached.append(alias)
        where = f" WHERE {filter_sql(self._agreement, dataset, grant)}" if grant.rows else ""
        view = f"mq_rows_{name}"
        self._con.execute(f"CREATE TEMP VIEW {view} AS SELECT * FROM {source}{where}")
        normalize = domain_of(dataset.columns[tin].identifier_kind)[1]
        # Only values with a dead person's digits can match: every SSN normalization keeps the
        # digits, so the others are never normalized (deaths are few, payees many).
        among = (
            ""
            if name == "deaths"
            else (
                " WHERE regexp_replace(raw, '[^0-9]', '', 'g') IN "
                "(SELECT regexp_replace(norm, '[^0-9]', '', 'g') FROM mq_key_deaths)"
            )
        )
        raw = self._con.sql(
            f"SELECT raw FROM (SELECT DISTINCT CAST({quote(tin)} AS VARCHAR) AS raw FROM {view} "
            f"WHERE {quote(tin)} IS NOT NULL){among}"
        ).to_arrow_table()
        pairs = [(v, n) for v in raw.column("raw").to_pylist() if (n := normalize(v))]
        self._con.register(
            f"mq_key_{name}",
            pa.table({"raw": [p[0] for p in pairs], "norm": [p[1] for p in pairs]},
                     schema=pa.schema([("raw", pa.string()), ("norm", pa.string())])),
        )  # fmt: skip
        return view

    def close(self) -> None:
        for name in ("deaths", "beneficiaries", *(r.dataset for r in _RECORDS)):
            self._con.execute(f"DROP VIEW IF EXISTS mq_rows_{name}")
            self._con.unregister(f"mq_key_{name}")
        self._con.execute("DROP TABLE IF EXISTS mq_dead")
        self._con.execute("DROP TABLE IF EXISTS mq_known")
        for alias in self._attached:
            self._con.execute(f"DETACH {alias}")
