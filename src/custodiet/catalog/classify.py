"""Classify a column from its name, its type and a bounded sample of validated values.

Rules, first match wins:
1. identifier names: SSN/TIN/EIN, personal names, routing and account numbers;
2. values: a string column whose sampled values are mostly valid ABA routing numbers, SSNs or
   EINs (python-stdnum) is an identifier of that kind, whatever else its name says;
3. other names: date of birth, ZIP, address -> quasi_identifier; ``*_id`` -> key;
   money words -> amount;
4. types: DATE/TIMESTAMP -> date; DECIMAL -> amount;
5. a low-cardinality string or integer -> category;
6. anything else -> sensitive (the cautious default).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stdnum.us import ein, rtn, ssn

from custodiet.catalog.classes import ColumnClass
from custodiet.catalog.model import ColumnInfo, IdentifierKind

VALID_SHARE = 0.9  # share of sampled values that must validate to call a column an identifier
MAX_CATEGORIES = 64
INTEGER_TYPES = frozenset(
    {
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "HUGEINT",
    }
)

_Rule = tuple[re.Pattern[str], ColumnClass, IdentifierKind | None]
_IDENTIFIER, _QUASI = ColumnClass.IDENTIFIER, ColumnClass.QUASI_IDENTIFIER
_NAME_RULES: tuple[_Rule, ...] = (
    (re.compile(r"(^|_)ssn$|social_security"), _IDENTIFIER, "ssn"),
    (re.compile(r"(^|_)(tin|itin|taxpayer_id)$"), _IDENTIFIER, "tin"),
    (re.compile(r"(^|_)(ein|fein)$|employer_id"), _IDENTIFIER, "ein"),
    (re.compile(r"(^|_)(routing|aba|rtn)(_number|_no)?$"), _IDENTIFIER, "routing"),
    (re.compile(r"(^|_)(account|acct|iban)(_number|_no|_num)?$"), _IDENTIFIER, "account"),
    (re.compile(r"(^|_)(first|last|middle|full|given|family|maiden|sur)?_?name$"), _IDENTIFIER,
     "name"),
    (re.compile(r"date_of_birth|birth_?date|(^|_)dob$"), _QUASI, None),
    (re.compile(r"(^|_)(zip|zip_?code|postal_?code|zip5)$"), _QUASI, None),
    (re.compile(r"(^|_)(address|street|address_line\d?|city)$"), _QUASI, None),
    (re.compile(r"(^|_)id$"), ColumnClass.KEY, None),
    (re.compile(r"(amount|benefit|salary|wage|balance|price|cost|fee|refund)s?$"),
     ColumnClass.AMOUNT, None),
)  # fmt: skip

_VALIDATORS: tuple[tuple[IdentifierKind, Callable[[str], bool]], ...] = (
    ("routing", rtn.is_valid),
    ("ssn", ssn.is_valid),
    ("ein", ein.is_valid),
)


@dataclass(frozen=True)
class ColumnStats:
    """What classification may look at: a bounded sample and two counts, never stored."""

    sample: Sequence[str]  # non-null values of a string column (empty for other types)
    distinct: int
    non_null: int


def classify_column(name: str, sql_type: str, stats: ColumnStats) -> ColumnInfo:
    by_name = _from_name(name)
    if by_name and by_name[0] is ColumnClass.IDENTIFIER:
        return ColumnInfo(name, sql_type, *by_name)
    cls, kind = _from_values(stats.sample) or by_name or _from_type(sql_type, stats)
    return ColumnInfo(name, sql_type, cls, kind)


def identifier_kind_from_values(sample: Sequence[str]) -> IdentifierKind | None:
    """'routing', 'ssn', 'ein', or 'tin' when values validate as both SSNs and EINs.

    Routing numbers come first: their check digit is the strongest signal, and most of them also
    pass the SSN and EIN format rules.
    """
    if not sample:
        return None
    valid = {kind for kind, check in _VALIDATORS if _share(sample, check) >= VALID_SHARE}
    if "routing" in valid:
        return "routing"
    if {"ssn", "ein"} <= valid:
        return "tin"
    if "ssn" in valid:
        return "ssn"
    return "ein" if "ein" in valid else None


def _from_values(sample: Sequence[str]) -> tuple[ColumnClass, IdentifierKind | None] | None:
    kind = identifier_kind_from_values(sample)
    return (ColumnClass.IDENTIFIER, kind) if kind else None


def _from_name(name: str) -> tuple[ColumnClass, IdentifierKind | None] | None:
    lowered = name.lower()
    for pattern, cls, kind in _NAME_RULES:
        if pattern.search(lowered):
            return cls, kind
    return None


def _from_type(sql_type: str, stats: ColumnStats) -> tuple[ColumnClass, IdentifierKind | None]:
    upper = sql_type.upper()
    if upper.startswith(("DATE", "TIMESTAMP")):
        return ColumnClass.DATE, None
    if upper.startswith("DECIMAL"):
        return ColumnClass.AMOUNT, None
    if (upper == "VARCHAR" or upper in INTEGER_TYPES) and _low_cardinality(stats):
        return ColumnClass.CATEGORY, None
    return ColumnClass.SENSITIVE, None


def _low_cardinality(stats: ColumnStats) -> bool:
    return 0 < stats.distinct <= MAX_CATEGORIES and stats.distinct * 2 <= stats.non_null


def _share(sample: Sequence[str], check: Callable[[str], bool]) -> float:
    return sum(1 for value in sample if check(value)) / len(sample)
