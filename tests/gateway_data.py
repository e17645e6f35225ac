"""Small canonical payments/deaths data and agreements for the gateway tests, built in tmp_path.

People are numbered 0..N-1; person i has a valid SSN (written with dashes in deaths, digits only in
payments, so tokens must normalize), three SSA payments a month apart, and every seventh person is
dead (date of death before their last payment).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from custodiet.agreements.model import Agreement
from custodiet.catalog.classes import ColumnClass
from custodiet.catalog.model import ColumnInfo, Dataset

SSN_SQL = (
    "printf('%03d-%02d-%04d', 100 + i % 500, 10 + (i // 500) % 80, 1000 + i)"  # valid SSA ranges
)


def ssn_of(i: int) -> str:
    return f"{100 + i % 500:03d}-{10 + (i // 500) % 80:02d}-{1000 + i:04d}"


def write_canonical(directory: Path, people: int = 200) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"payments": directory / "payments.parquet", "deaths": directory / "deaths.parquet"}
    con = duckdb.connect()
    con.execute(
        f"""
        COPY (
          SELECT 'P' || lpad(CAST(i * 3 + k AS VARCHAR), 7, '0') AS payment_id,
                 replace({SSN_SQL}, '-', '') AS payee_tin,
                 'Person ' || CAST(i AS VARCHAR) AS payee_name,
                 CASE WHEN i % 10 = 9 THEN 'VA' ELSE 'SSA' END AS agency,
                 CASE WHEN i % 3 = 0 THEN 'RSI' WHEN i % 3 = 1 THEN 'SSDI' ELSE 'SSI' END
                   AS program,
                 CAST(500 + (i % 17) * 10 + k AS DECIMAL(12,2)) AS amount,
                 CAST(DATE '2024-01-03' + INTERVAL (k) MONTH AS DATE) AS payment_date,
                 '0110000' || CAST(15 + i % 2 AS VARCHAR) AS routing_number,
                 lpad(CAST(900000 + i AS VARCHAR), 10, '0') AS account_number,
                 'ACH' AS method
          FROM range({people}) r(i), range(3) k(k)
        ) TO '{paths["payments"]}' (FORMAT parquet)
        """
    )
    con.execute(
        f"""
        COPY (
          SELECT {SSN_SQL} AS ssn, 'First' || CAST(i AS VARCHAR) AS first_name,
                 'Last' AS last_name,
                 CAST(DATE '1940-03-15' + INTERVAL (i % 50) YEAR AS DATE) AS date_of_birth,
                 DATE '2024-02-10' AS date_of_death
          FROM range({people}) r(i) WHERE i % 7 = 0
        ) TO '{paths["deaths"]}' (FORMAT parquet)
        """
    )
    con.close()
    return paths


_PAYMENTS: dict[str, tuple[str, ColumnClass, str | None]] = {
    "payment_id": ("VARCHAR", ColumnClass.KEY, None),
    "payee_tin": ("VARCHAR", ColumnClass.IDENTIFIER, "tin"),
    "payee_name": ("VARCHAR", ColumnClass.IDENTIFIER, "name"),
    "agency": ("VARCHAR", ColumnClass.CATEGORY, None),
    "program": ("VARCHAR", ColumnClass.CATEGORY, None),
    "amount": ("DECIMAL(12,2)", ColumnClass.AMOUNT, None),
    "payment_date": ("DATE", ColumnClass.DATE, None),
    "routing_number": ("VARCHAR", ColumnClass.IDENTIFIER, "routing"),
    "account_number": ("VARCHAR", ColumnClass.IDENTIFIER, "account"),
    "method": ("VARCHAR", ColumnClass.CATEGORY, None),
}
_DEATHS: dict[str, tuple[str, ColumnClass, str | None]] = {
    "ssn": ("VARCHAR", ColumnClass.IDENTIFIER, "ssn"),
    "first_name": ("VARCHAR", ColumnClass.IDENTIFIER, "name"),
    "last_name": ("VARCHAR", ColumnClass.IDENTIFIER, "name"),
    "date_of_birth": ("DATE", ColumnClass.QUASI_IDENTIFIER, None),
    "date_of_death": ("DATE", ColumnClass.DATE, None),
}


def canonical_datasets(paths: dict[str, Path]) -> dict[str, Dataset]:
    def dataset(name: str, spec: dict[str, tuple[str, ColumnClass, str | None]]) -> Dataset:
        columns = {c: ColumnInfo(c, t, k, i) for c, (t, k, i) in spec.items()}  # type: ignore[arg-type]
        return Dataset(name, str(paths[name]), "parquet", columns, "0" * 64, 0)

    return {"payments": dataset("payments", _PAYMENTS), "deaths": dataset("deaths", _DEATHS)}


def agreement_document(agreement_id: str = "ssa-deceased", **changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": agreement_id,
        "purpose": "Find SSA payments made after the payee's death",
        "reviewer": "rev",
        "expires": "2030-06-30",
        "mode": "pseudonymous",
        "datasets": {
            "payments": {
                "rows": "agency = 'SSA'",
                "columns": {
                    "payment_id": "allow",
                    "payee_tin": "pseudonymize",
                    "payee_name": "deny",
                    "agency": "allow",
                    "program": "allow",
                    "amount": "allow",
                    "payment_date": "allow",
                    "routing_number": "pseudonymize",
                    "account_number": "pseudonymize",
                },
            },
            "deaths": {
                "columns": {
                    "ssn": "pseudonymize",
                    "date_of_death": "allow",
                    "date_of_birth": "generalize:year",
                }
            },
        },
        "limits": {"max_rows": 1000, "min_group_size": 5, "timeout_seconds": 10},
        "approvals_required": 2,
    }
    document.update(changes)
    return document


def make_agreement(agreement_id: str = "ssa-deceased", **changes: Any) -> Agreement:
    return Agreement.model_validate(agreement_document(agreement_id, **changes))


@dataclass(frozen=True)
class Active:
    """Stands in for ``agreements.lifecycle.ActiveAgreement`` in unit tests."""

    agreement: Agreement
    version: int = 1
    sha256: str = "ab" * 32


EXPIRES = dt.date(2030, 6, 30)


@dataclass(frozen=True)
class World:
    ws: Any  # custodiet.workspace.Workspace
    agreement_id: str
    data: dict[str, Path]
    kit: Any = None  # tests.kit.Kit: signs as cust1, cust2, rev, rev2


def run_query(
    ws: Any, agreement_id: str, principal: str, sql: str, *, dry_run: bool = False
) -> Any:
    """``principal``'s signed query (``gateway.service.run_query``), as one CLI command runs it."""
    from tests.kit import Kit

    return Kit().query(ws, agreement_id, sql, by=principal, dry_run=dry_run)


def state_of(ws: Any) -> Any:
    """The governance state replayed from ``ws``'s ledger."""
    from tests.kit import Kit

    return Kit().state(ws)


def make_world(
    root: Path, *, people: int = 200, agreements: tuple[dict[str, Any], ...] = ()
) -> World:
    """A real workspace: custodians cust1 and cust2 (K = 2), reviewers rev and rev2, the
    canonical datasets registered by cust1, and each agreement proposed by its reviewer and
    approved by both custodians (the second approval builds its projection)."""
    import yaml

    from custodiet.principals import Role
    from tests.kit import Kit

    kit = Kit(root)
    ws = kit.init(root / "ws", custodians=("cust1", "cust2"), k=2)
    for name in ("rev", "rev2"):
        kit.add_principal(ws, name, Role.REVIEWER, by=("cust1",))
    data = write_canonical(root / "data", people)
    for name, path in data.items():
        kit.add_dataset(ws, name, path, {}, by=("cust1",))
    documents = agreements or (agreement_document(),)
    for document in documents:
        path = root / f"{document['id']}.yaml"
        path.write_text(yaml.safe_dump(document))
        kit.apply(ws, path, by=document["reviewer"])
        kit.approve_all(ws, document["id"], by=("cust1", "cust2"))
    return World(ws, documents[0]["id"], data, kit)
