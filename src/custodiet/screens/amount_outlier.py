"""Amount outlier: a payment far above what its payee is usually paid within its program.

Amounts are compared on a log scale (payments are multiplicative: a vendor's invoices spread
over orders of magnitude, a benefit rises by a percentage). Per payee and program with at least
``min_payments`` positive payments: the usual amount is their median, the spread 1.4826 x the
median absolute deviation of the log amounts (a robust standard deviation), floored at ln(1.1)
so that a payee paid the same amount every month is not flagged for a cost-of-living raise. A
payment more than ``z`` (default 3.5) spreads above the usual amount is a case; ``robust_z``
says how far. Payments without a program are not screened. Decoy: a steady benefit with a raise.
"""

from __future__ import annotations

from custodiet.agreements.model import Treatment
from custodiet.screens.model import Screen

SCREEN = Screen(
    name="amount_outlier",
    rule="payment more than {z} robust standard deviations (log scale) above its payee's usual "
    "amount in the same program (payees with {min_payments}+ payments there)",
    needs={
        "payments": {
            "payment_id": Treatment.ALLOW,
            "payee_tin": Treatment.PSEUDONYMIZE,
            "amount": Treatment.ALLOW,
            "program": Treatment.ALLOW,
        },
    },
    # greatest() keeps ln() defined whatever order the engine evaluates the conditions in.
    sql="""
WITH paid AS (
  SELECT payment_id, payee_tin, program, amount, ln(greatest(amount, 0.01)) AS log_amount
  FROM payments
  WHERE program IS NOT NULL AND amount > 0
),
usual AS (
  SELECT payee_tin, program, median(log_amount) AS usual_log, median(amount) AS usual_amount,
         count(*) AS payments
  FROM paid
  GROUP BY payee_tin, program
  HAVING count(*) >= {min_payments}
),
spread AS (
  SELECT
    u.payee_tin AS payee_tin,
    u.program AS program,
    u.usual_log AS usual_log,
    u.usual_amount AS usual_amount,
    u.payments AS payments,
    greatest(1.4826 * median(abs(p.log_amount - u.usual_log)), ln(1.1)) AS spread
  FROM paid AS p
  JOIN usual AS u ON p.payee_tin = u.payee_tin AND p.program = u.program
  GROUP BY u.payee_tin, u.program, u.usual_log, u.usual_amount, u.payments
)
SELECT
  'payments' AS record_table,
  p.payment_id AS record_id,
  p.payee_tin AS payee,
  p.amount AS amount,
  p.program AS program,
  s.usual_amount AS usual_amount,
  s.payments AS payments_in_program,
  round((p.log_amount - s.usual_log) / s.spread, 2) AS robust_z
FROM paid AS p
JOIN spread AS s ON p.payee_tin = s.payee_tin AND p.program = s.program
WHERE (p.log_amount - s.usual_log) / s.spread > {z}
""",
)
