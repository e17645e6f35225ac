"""Amount outlier: a payment far above what its payee is usually paid within its program.

Per payee and program with at least ``min_payments`` payments: the usual amount is the median
of them, the spread 1.4826 x the median absolute deviation (a robust standard deviation),
floored at a tenth of the usual amount so that a payee paid the same amount every month is not
flagged for a cost-of-living raise. A payment more than ``z`` (default 3.5) spreads above the
usual amount is a case; its ``robust_z`` says how far. Payments without a program are not
screened. Decoy: a steady benefit with a small raise.
"""

from __future__ import annotations

from custodiet.agreements.model import Treatment
from custodiet.screens.model import Screen

SCREEN = Screen(
    name="amount_outlier",
    rule="payment more than {z} robust standard deviations above its payee's usual amount "
    "in the same program (payees with {min_payments}+ payments there)",
    needs={
        "payments": {
            "payment_id": Treatment.ALLOW,
            "payee_tin": Treatment.PSEUDONYMIZE,
            "amount": Treatment.ALLOW,
            "program": Treatment.ALLOW,
        },
    },
    sql="""
WITH usual AS (
  SELECT payee_tin, program, median(amount) AS usual_amount, count(*) AS payments
  FROM payments
  WHERE program IS NOT NULL
  GROUP BY payee_tin, program
  HAVING count(*) >= {min_payments}
),
spread AS (
  SELECT
    u.payee_tin AS payee_tin,
    u.program AS program,
    u.usual_amount AS usual_amount,
    u.payments AS payments,
    greatest(1.4826 * median(abs(p.amount - u.usual_amount)), 0.1 * u.usual_amount) AS spread
  FROM payments AS p
  JOIN usual AS u ON p.payee_tin = u.payee_tin AND p.program = u.program
  GROUP BY u.payee_tin, u.program, u.usual_amount, u.payments
)
SELECT
  'payments' AS record_table,
  p.payment_id AS record_id,
  p.payee_tin AS payee,
  p.amount AS amount,
  p.program AS program,
  s.usual_amount AS usual_amount,
  s.payments AS payments_in_program,
  round((p.amount - s.usual_amount) / s.spread, 2) AS robust_z
FROM payments AS p
JOIN spread AS s ON p.payee_tin = s.payee_tin AND p.program = s.program
WHERE s.spread > 0 AND (p.amount - s.usual_amount) / s.spread > {z}
""",
)
