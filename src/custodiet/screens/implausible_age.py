"""Implausible age: an SSA payment to a beneficiary aged ``years`` (default 115) or more on
the payment date, not dead.

Age is in full years, the birthday counted on its day. Beneficiaries with any death record are
left to ``paid_after_death``. Decoy: beneficiaries aged 105 to 112.
"""

from __future__ import annotations

from custodiet.agreements.model import Treatment
from custodiet.screens.model import Screen

SCREEN = Screen(
    name="implausible_age",
    rule="SSA payment to a beneficiary aged {years}+ on the payment date, with no death record",
    needs={
        "payments": {
            "payment_id": Treatment.ALLOW,
            "payee_tin": Treatment.PSEUDONYMIZE,
            "amount": Treatment.ALLOW,
            "payment_date": Treatment.ALLOW,
            "agency": Treatment.ALLOW,
        },
        "beneficiaries": {"ssn": Treatment.PSEUDONYMIZE, "date_of_birth": Treatment.ALLOW},
        "deaths": {"ssn": Treatment.PSEUDONYMIZE},
    },
    # The birth date is carried as `born` inside the query: under that name it cannot be
    # mistaken for the (denied) date_of_birth of the deaths table joined beside it.
    sql="""
WITH living AS (
  SELECT b.ssn AS ssn, min(b.date_of_birth) AS born
  FROM beneficiaries AS b
  LEFT JOIN (SELECT DISTINCT ssn FROM deaths) AS d ON b.ssn = d.ssn
  WHERE d.ssn IS NULL
  GROUP BY b.ssn
),
aged AS (
  SELECT
    p.payment_id AS payment_id,
    p.payee_tin AS payee_tin,
    p.amount AS amount,
    p.payment_date AS payment_date,
    l.born AS born,
    date_diff('year', l.born, p.payment_date)
      - CASE
          WHEN month(p.payment_date) * 100 + day(p.payment_date)
               < month(l.born) * 100 + day(l.born) THEN 1
          ELSE 0
        END AS age
  FROM payments AS p
  JOIN living AS l ON p.payee_tin = l.ssn
  WHERE p.agency = 'SSA'
)
SELECT
  'payments' AS record_table,
  a.payment_id AS record_id,
  a.payee_tin AS payee,
  a.amount AS amount,
  a.age AS age_on_payment_date,
  a.born AS date_of_birth,
  a.payment_date AS payment_date
FROM aged AS a
WHERE a.age >= {years}
""",
)
