"""Paid after death: benefits are paid a month behind, so only months after the death's count.

The SSA benefit paid in the month of death pays for the previous month and is proper; any benefit
paid in a later month than the death is improper. ``months_behind`` (default 1) is how many months
behind the agency pays: a payment ``months_behind`` or more months after the month of death.
Decoy: a death on the 1st or 2nd, paid on the 3rd of the same month. Only SSA benefits follow
that schedule, so only they are screened (other agencies: ``other_agency_after_death``).
"""

from __future__ import annotations

from custodiet.agreements.model import Treatment
from custodiet.screens.model import Screen

SCREEN = Screen(
    name="paid_after_death",
    rule="SSA benefit paid {months_behind}+ months after the month of the payee's death "
    "(paid {months_behind} month(s) behind)",
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
  d.date_of_death AS date_of_death,
  p.payment_date AS payment_date,
  date_diff('month', d.date_of_death, p.payment_date) AS months_after_death,
  m.match AS match
FROM payments AS p
JOIN death AS d ON p.payee_tin = d.ssn
LEFT JOIN death_match AS m
  ON m.record_table = 'payments' AND m.record_id = CAST(p.payment_id AS VARCHAR)
WHERE p.agency = 'SSA'
  AND date_diff('month', date_trunc('month', d.date_of_death), date_trunc('month', p.payment_date))
      >= {months_behind}
""",
)
