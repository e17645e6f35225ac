"""Column classes: what a column is; the class decides the weakest treatment allowed."""

from __future__ import annotations

from enum import StrEnum


class ColumnClass(StrEnum):
    IDENTIFIER = "identifier"  # SSN/TIN/EIN, names, bank account and routing numbers
    QUASI_IDENTIFIER = "quasi_identifier"  # date of birth, ZIP, address
    SENSITIVE = "sensitive"
    AMOUNT = "amount"
    DATE = "date"
    CATEGORY = "category"
    KEY = "key"  # record ids such as payment_id
