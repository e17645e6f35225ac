"""Tiny canonical federal tables (docs/schema.md) with valid identifiers, and a ready workspace.

SSNs follow SSA's rules, routing numbers carry a valid ABA check digit and EINs use valid
prefixes, so classification from values is tested on realistic input.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
from stdnum.us import rtn

from custodiet.catalog.classes import ColumnClass
from custodiet.catalog.model import ColumnInfo, Dataset
from custodiet.principals import Role
from custodiet.workspace import Workspace
from tests.kit import Kit

TABLES: dict[str, dict[str, str]] = {
    "beneficiaries": {
        "ssn": "VARCHAR", "first_name": "VARCHAR", "last_name": "VARCHAR",
        "date_of_birth": "DATE", "address": "VARCHAR", "zip": "VARCHAR", "state": "VARCHAR",
        "program": "VARCHAR", "monthly_benefit": "DECIMAL(12,2)", "entitlement_date": "DATE",
        "routing_number": "VARCHAR", "account_number": "VARCHAR",
    },
    "payments": {
        "payment_id": "VARCHAR", "payee_tin": "VARCHAR", "payee_name": "VARCHAR",
        "agency": "VARCHAR", "program": "VARCHAR", "amount": "DECIMAL(12,2)",
        "payment_date": "DATE", "routing_number": "VARCHAR", "account_number": "VARCHAR",
        "method": "VARCHAR",
    },
    "deaths": {
        "ssn": "VARCHAR", "first_name": "VARCHAR", "last_name": "VARCHAR",
        "date_of_birth": "DATE", "date_of_death": "DATE",
    },
    "exclusions": {
        "tin": "VARCHAR", "name": "VARCHAR", "source": "VARCHAR", "exclusion_start": "DATE",
        "exclusion_end": "DATE",
    },
    "tax_refunds": {
        "refund_id": "VARCHAR", "tin": "VARCHAR", "tax_year": "INTEGER",
        "filing_status": "VARCHAR", "refund_amount": "DECIMAL(12,2)", "issue_date": "DATE",
        "routing_number": "VARCHAR", "account_number": "VARCHAR",
    },
}  # fmt: skip

# what the classifier must say about each canonical column: (class, identifier kind)
CANONICAL_CLASSES: dict[str, dict[str, tuple[str, str | None]]] = {
    "beneficiaries": {
        "ssn": ("identifier", "ssn"), "first_name": ("identifier", "name"),
        "last_name": ("identifier", "name"), "date_of_birth": ("quasi_identifier", None),
        "address": ("quasi_identifier", None), "zip": ("quasi_identifier", None),
        "state": ("category", None), "program": ("category", None),
        "monthly_benefit": ("amount", None), "entitlement_date": ("date", None),
        "routing_number": ("identifier", "routing"), "account_number": ("identifier", "account"),
    },
    "payments": {
        "payment_id": ("key", None), "payee_tin": ("identifier", "tin"),
        "payee_name": ("identifier", "name"), "agency": ("category", None),
        "program": ("category", None), "amount": ("amount", None), "payment_date": ("date", None),
        "routing_number": ("identifier", "routing"), "account_number": ("identifier", "account"),
        "method": ("category", None),
    },
    "deaths": {
        "ssn": ("identifier", "ssn"), "first_name": ("identifier", "name"),
        "last_name": ("identifier", "name"), "date_of_birth": ("quasi_identifier", None),
        "date_of_death": ("date", None),
    },
    "exclusions": {
        "tin": ("identifier", "tin"), "name": ("identifier", "name"), "source": ("category", None),
        "exclusion_start": ("date", None), "exclusion_end": ("date", None),
    },
    "tax_refunds": {
        "refund_id": ("key", None), "tin": ("identifier", "tin"), "tax_year": ("category", None),
        "filing_status": ("category", None), "refund_amount": ("amount", None),
        "issue_date": ("date", None), "routing_number": ("identifier", "routing"),
        "account_number": ("identifier", "account"),
    },
}  # fmt: skip

ROWS = 60


def valid_ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"


def valid_routing(rng: random.Random) -> str:
    base = f"{rng.choice([1, 2, 11, 21, 26, 31, 61, 71]):02d}{rng.randint(0, 999_999):06d}"
    return base + rtn.calc_check_digit(base)


def valid_ein(rng: random.Random) -> str:
    """EINs with prefixes 91-95: valid EINs that are never valid SSNs (area 900+)."""
    return f"{rng.randint(91, 95)}{rng.randint(0, 9_999_999):07d}"


def _value(column: str, sql_type: str, i: int, rng: random.Random) -> Any:
    day = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randint(0, 360))
    generators: dict[str, Any] = {
        "ssn": valid_ssn(rng),
        "payee_tin": valid_ssn(rng),
        "tin": valid_ssn(rng) if i % 2 else valid_ein(rng),
        "routing_number": valid_routing(rng),
        "account_number": f"{rng.randint(10**9, 10**10 - 1)}",
        "date_of_birth": dt.date(1930 + i % 60, 1 + i % 12, 1 + i % 28),
        "zip": f"{rng.randint(501, 99950):05d}",
        "address": f"{rng.randint(1, 9999)} {rng.choice(['Oak', 'Elm', 'Main'])} St #{i}",
        "state": rng.choice(["MD", "VA", "DC", "CA"]),
        "program": rng.choice(["RSI", "SSDI", "SSI"]),
        "agency": rng.choice(["SSA", "IRS", "VA"]),
        "method": rng.choice(["ACH", "CHECK"]),
        "source": rng.choice(["SAM", "LEIE"]),
        "filing_status": rng.choice(["single", "joint"]),
        "tax_year": rng.choice([2021, 2022, 2023]),
        "payment_id": f"P{i:07d}",
        "refund_id": f"R{i:07d}",
    }
    if column in generators:
        return generators[column]
    if column.endswith("name"):
        return f"{rng.choice(['Ann', 'Bo', 'Cy', 'Di'])} {rng.choice(['Lee', 'Kim'])} {i}"
    if sql_type.startswith("DECIMAL"):
        return round(rng.uniform(10, 5000), 2)
    return day


def table_rows(table: str, rows: int = ROWS, seed: int = 7) -> list[tuple[Any, ...]]:
    rng = random.Random(f"{table}-{seed}")
    columns = TABLES[table]
    return [tuple(_value(c, t, i, rng) for c, t in columns.items()) for i in range(rows)]


def write_table(
    path: Path, columns: dict[str, str], rows: Sequence[tuple[Any, ...]], fmt: str = "parquet"
) -> Path:
    """Write ``rows`` with DuckDB as parquet, csv, or a DuckDB file holding table ``t``."""
    con = duckdb.connect(str(path) if fmt == "duckdb" else ":memory:")
    try:
        con.execute(f"CREATE TABLE t ({', '.join(f'{c} {t}' for c, t in columns.items())})")
        con.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(columns))})", rows)
        if fmt != "duckdb":
            con.execute(f"COPY t TO '{path}' (FORMAT {fmt})")
    finally:
        con.close()
    return path


def write_canonical(directory: Path, rows: int = ROWS) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    return {
        table: write_table(directory / f"{table}.parquet", columns, table_rows(table, rows))
        for table, columns in TABLES.items()
    }


CUSTODIANS = ("alice", "carol")


def kit_for(ws: Workspace) -> Kit:
    """The kit whose keys sign for the people of a workspace made here (keys beside it)."""
    return Kit(ws.root.parent)


def workspace_with_people(root: Path) -> Workspace:
    """A fresh workspace: custodians alice and carol (the genesis's, K = 2), then reviewer bob
    and overseer olga added by alice's signature. Keys live in ``root.parent/keys``."""
    kit = Kit(root.parent)
    ws = kit.init(root, custodians=CUSTODIANS, k=2)
    kit.add_principal(ws, "bob", Role.REVIEWER, by=("alice",))
    kit.add_principal(ws, "olga", Role.OVERSEER, by=("alice",))
    return ws


def ledger_entries(ws: Workspace) -> list[dict[str, Any]]:
    import json

    ledger = ws.ledger()
    try:
        return [json.loads(data) for _, data in ledger.entries()]
    finally:
        ledger.close()


AGREEMENT_YAML = """\
id: ssa-deceased-payees
purpose: Find SSA payments made after the payee's death
reviewer: bob
expires: {expires}
mode: pseudonymous
datasets:
  payments:
    rows: "agency = 'SSA'"
    columns:
      payment_id: allow
      payee_tin: pseudonymize
      payee_name: deny
      agency: allow
      amount: allow
      payment_date: allow
      routing_number: pseudonymize
      account_number: pseudonymize
  deaths:
    columns:
      ssn: pseudonymize
      date_of_death: allow
      date_of_birth: generalize:year
limits:
  max_rows: 10000
  min_group_size: 11
approvals_required: 2
"""


def write_agreement(path: Path, expires: str = "2027-06-30", **replace: str) -> Path:
    text = AGREEMENT_YAML.format(expires=expires)
    for old, new in replace.items():
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return path


def canonical_catalog(directory: Path = Path("/nonexistent")) -> dict[str, Dataset]:
    """The canonical datasets as the catalog would hold them, without reading any file."""
    return {
        table: Dataset(
            name=table,
            path=str(directory / f"{table}.parquet"),
            format="parquet",
            columns={
                column: ColumnInfo(
                    column,
                    TABLES[table][column],
                    ColumnClass(cls),
                    kind,  # type: ignore[arg-type]
                )
                for column, (cls, kind) in classes.items()
            },
            sha256="0" * 64,
            rows=ROWS,
        )
        for table, classes in CANONICAL_CLASSES.items()
    }


def registered_workspace(root: Path) -> Workspace:
    """A workspace with principals and the five canonical datasets registered (by alice)."""
    ws = workspace_with_people(root / "ws")
    kit = kit_for(ws)
    for table, path in write_canonical(root / "data").items():
        kit.add_dataset(ws, table, path, {}, by=("alice",))
    return ws
