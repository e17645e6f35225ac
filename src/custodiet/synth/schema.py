"""The canonical federal schema of docs/schema.md, as Arrow schemas."""

from __future__ import annotations

import pyarrow as pa

MONEY = pa.decimal128(12, 2)
_TEXT = pa.string()
_DATE = pa.date32()


def _schema(*columns: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(name, kind) for name, kind in columns])


SCHEMAS: dict[str, pa.Schema] = {
    "beneficiaries": _schema(
        ("ssn", _TEXT),
        ("first_name", _TEXT),
        ("last_name", _TEXT),
        ("date_of_birth", _DATE),
        ("address", _TEXT),
        ("zip", _TEXT),
        ("state", _TEXT),
        ("program", _TEXT),
        ("monthly_benefit", MONEY),
        ("entitlement_date", _DATE),
        ("routing_number", _TEXT),
        ("account_number", _TEXT),
    ),
    "payments": _schema(
        ("payment_id", _TEXT),
        ("payee_tin", _TEXT),
        ("payee_name", _TEXT),
        ("agency", _TEXT),
        ("program", _TEXT),
        ("amount", MONEY),
        ("payment_date", _DATE),
        ("routing_number", _TEXT),
        ("account_number", _TEXT),
        ("method", _TEXT),
    ),
    "deaths": _schema(
        ("ssn", _TEXT),
        ("first_name", _TEXT),
        ("last_name", _TEXT),
        ("date_of_birth", _DATE),
        ("date_of_death", _DATE),
    ),
    "exclusions": _schema(
        ("tin", _TEXT),
        ("name", _TEXT),
        ("source", _TEXT),
        ("exclusion_start", _DATE),
        ("exclusion_end", _DATE),
    ),
    "tax_refunds": _schema(
        ("refund_id", _TEXT),
        ("tin", _TEXT),
        ("tax_year", pa.int32()),
        ("filing_status", _TEXT),
        ("refund_amount", MONEY),
        ("issue_date", _DATE),
        ("routing_number", _TEXT),
        ("account_number", _TEXT),
    ),
    "truth": _schema(
        ("record_table", _TEXT),
        ("record_id", _TEXT),
        ("pattern", _TEXT),
        ("amount_at_risk", MONEY),
        ("match", _TEXT),  # death patterns: the death record's match category, else null
    ),
}
TABLES = tuple(SCHEMAS)
