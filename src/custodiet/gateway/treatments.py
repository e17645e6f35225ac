"""The SQL each column treatment compiles to, over the custodian's raw source (alias ``src``).

Generalizations keep a column usable while coarsening it:
  year      first day of the year, as DATE (date arithmetic still works; 1987-06-02 -> 1987-01-01)
  month     first day of the month, as DATE
  decade    first day of the decade, as DATE (1987-06-02 -> 1980-01-01)
  zip3      first three digits of the ZIP code, as VARCHAR
  state     the two-letter state at the end of an address ("..., Springfield, IL 62704" -> IL)
  age_band  10-year band of age on the agreement's expiry date, as VARCHAR ("40-49"; "90+")
A masked column is the constant '***' (it carries no information). A pseudonymized column is
replaced by its token, joined in from a table of distinct values (see ``projection``).
"""

from __future__ import annotations

import datetime as dt

from custodiet.agreements.model import ColumnRule, Treatment
from custodiet.errors import InputError

MASK = "***"


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _as_date(column: str) -> str:
    return f"TRY_CAST({column} AS DATE)"


def _generalized(level: str, column: str, reference: dt.date) -> str:
    day = _as_date(column)
    if level == "year":
        return f"CAST(date_trunc('year', {day}) AS DATE)"
    if level == "month":
        return f"CAST(date_trunc('month', {day}) AS DATE)"
    if level == "decade":
        return f"make_date(CAST(year({day}) // 10 * 10 AS INTEGER), 1, 1)"
    if level == "zip3":
        digits = f"regexp_replace(CAST({column} AS VARCHAR), '[^0-9]', '', 'g')"
        return f"NULLIF(left({digits}, 3), '')"
    if level == "state":
        pattern = r"([A-Za-z]{2})(\s+\d{5}(-\d{4})?)?\s*$"
        return f"NULLIF(upper(regexp_extract(CAST({column} AS VARCHAR), '{pattern}', 1)), '')"
    if level == "age_band":
        age = f"date_sub('year', {day}, DATE '{reference.isoformat()}')"
        low = f"CAST({age} // 10 * 10 AS INTEGER)"
        return (
            f"CASE WHEN {age} IS NULL OR {age} < 0 THEN NULL WHEN {age} >= 90 THEN '90+' "
            f"ELSE CAST({low} AS VARCHAR) || '-' || CAST({low} + 9 AS VARCHAR) END"
        )
    raise InputError(f"unknown generalization {level!r}", code="CUST280")


def projected_expression(rule: ColumnRule, column: str, reference: dt.date) -> str:
    """SQL for one granted, non-pseudonymized column (``column`` is already qualified/quoted)."""
    if rule.treatment is Treatment.ALLOW:
        return column
    if rule.treatment is Treatment.MASK:
        return f"'{MASK}'"
    if rule.treatment is Treatment.GENERALIZE and rule.level is not None:
        return _generalized(rule.level, column, reference)
    raise InputError(f"treatment {rule} has no column expression", code="CUST281")
