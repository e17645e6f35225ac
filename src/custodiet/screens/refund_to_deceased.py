"""Refund to deceased: a refund for tax year Y claimed with the TIN of someone who died before Y.

Decoy: a final return for the year of death (the person died after Y began) is proper.
"""

from __future__ import annotations

from custodiet.agreements.model import Treatment
from custodiet.screens.model import Screen

SCREEN = Screen(
    name="refund_to_deceased",
    rule="tax refund for a year that began after the filer's death",
    needs={
        "tax_refunds": {
            "refund_id": Treatment.ALLOW,
            "tin": Treatment.PSEUDONYMIZE,
            "tax_year": Treatment.ALLOW,
            "refund_amount": Treatment.ALLOW,
        },
        "deaths": {"ssn": Treatment.PSEUDONYMIZE, "date_of_death": Treatment.ALLOW},
    },
    reports_match=True,
    sql="""
WITH death AS (
  SELECT ssn, min(date_of_death) AS date_of_death FROM deaths GROUP BY ssn
)
SELECT
  'tax_refunds' AS record_table,
  r.refund_id AS record_id,
  r.tin AS payee,
  r.refund_amount AS amount,
  r.tax_year AS tax_year,
  d.date_of_death AS date_of_death,
  m.match AS match
FROM tax_refunds AS r
JOIN death AS d ON r.tin = d.ssn
LEFT JOIN death_match AS m
  ON m.record_table = 'tax_refunds' AND m.record_id = CAST(r.refund_id AS VARCHAR)
WHERE d.date_of_death < make_date(r.tax_year, 1, 1)
""",
)
