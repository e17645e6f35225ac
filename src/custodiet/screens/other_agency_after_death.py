"""Paid after death by another agency: a non-SSA payment dated after the payee's death.

Vendor, OPM, VA and other agencies' payments do not follow SSA's paid-a-month-behind schedule:
any payment dated more than ``grace_days`` (default 0) after the death is a case. SSA benefits
are ``paid_after_death``'s. A business's EIN written as an EIN never matches an SSN (tokens are
typed). Decoy: a payment on the day of death.
"""

from __future__ import annotations

from custodiet.agreements.model import Treatment
from custodiet.screens.model import Screen

SCREEN = Screen(
    name="other_agency_after_death",
    rule="payment by an agency other than SSA dated more than {grace_days} day(s) after the "
    "payee's death",
    needs={
        "payments": {
            "payment_id": Treatment.ALLOW,
            "payee_tin": Treatment.PSEUDONYMIZE,
            "amount": Treatment.ALLOW,
            "payment_date": Treatment.ALLOW,
            "agency": Treatment.ALLOW,
        },
        "deaths": {"ssn": Treatment.PSEUDONYMIZE, "date_of_death": Treatment.ALLOW},
    },
    reports_match=True,
    sql="""
WITH death AS (
  SELECT ssn, min(date_of_death) AS date_of_death FROM deaths GROUP BY ssn
)
SELECT
  'payments' AS record_table,
  p.payment_id AS record_id,
  p.payee_tin AS payee,
  p.amount AS amount,
  p.agency AS agency,
  d.date_of_death AS date_of_death,
  p.payment_date AS payment_date,
  date_diff('day', d.date_of_death, p.payment_date) AS days_after_death,
  m.match AS match
FROM payments AS p
JOIN death AS d ON p.payee_tin = d.ssn
LEFT JOIN death_match AS m
  ON m.record_table = 'payments' AND m.record_id = CAST(p.payment_id AS VARCHAR)
WHERE p.agency <> 'SSA'
  AND date_diff('day', d.date_of_death, p.payment_date) > {grace_days}
""",
)
