"""Duplicate payment: the same payee, amount, date and program paid more than once.

The first copy (lowest payment_id) is proper; each later copy is improper. Decoy: the same
monthly benefit paid on different dates.
"""

from __future__ import annotations

from custodiet.agreements.model import Treatment
from custodiet.screens.model import Screen

SCREEN = Screen(
    name="duplicate_payment",
    rule="a later copy of a payment with the same payee, amount, date and program",
    needs={
        "payments": {
            "payment_id": Treatment.ALLOW,
            "payee_tin": Treatment.PSEUDONYMIZE,
            "amount": Treatment.ALLOW,
            "payment_date": Treatment.ALLOW,
            "program": Treatment.ALLOW,
        },
    },
    # Groups first, then only the duplicated groups are joined back: far cheaper than a window
    # over every payment. coalesce keeps payments without a program comparable, as GROUP BY does.
    sql="""
WITH copies AS (
  SELECT payee_tin, amount, payment_date, coalesce(program, '') AS program,
         min(payment_id) AS original_payment_id, count(*) AS copies
  FROM payments
  GROUP BY payee_tin, amount, payment_date, coalesce(program, '')
  HAVING count(*) > 1
)
SELECT
  'payments' AS record_table,
  p.payment_id AS record_id,
  p.payee_tin AS payee,
  p.amount AS amount,
  c.original_payment_id AS original_payment_id,
  c.copies AS copies,
  p.payment_date AS payment_date
FROM payments AS p
JOIN copies AS c
  ON p.payee_tin = c.payee_tin
  AND p.amount = c.amount
  AND p.payment_date = c.payment_date
  AND coalesce(p.program, '') = c.program
WHERE p.payment_id > c.original_payment_id
""",
)
