"""Excluded payee: a payment to a TIN whose exclusion (SAM or LEIE) is active on the payment date.

Active means ``exclusion_start <= payment_date`` and (no end, or ``payment_date <= exclusion_end``).
Decoy: an exclusion that ended before the payment.
"""

from __future__ import annotations

from custodiet.agreements.model import Treatment
from custodiet.screens.model import Screen

SCREEN = Screen(
    name="excluded_payee",
    rule="payment to a payee whose SAM or LEIE exclusion is active on the payment date",
    needs={
        "payments": {
            "payment_id": Treatment.ALLOW,
            "payee_tin": Treatment.PSEUDONYMIZE,
            "amount": Treatment.ALLOW,
            "payment_date": Treatment.ALLOW,
        },
        "exclusions": {
            "tin": Treatment.PSEUDONYMIZE,
            "source": Treatment.ALLOW,
            "exclusion_start": Treatment.ALLOW,
            "exclusion_end": Treatment.ALLOW,
        },
    },
    sql="""
SELECT
  'payments' AS record_table,
  p.payment_id AS record_id,
  p.payee_tin AS payee,
  p.amount AS amount,
  e.source AS exclusion_source,
  e.exclusion_start AS exclusion_start,
  e.exclusion_end AS exclusion_end,
  p.payment_date AS payment_date
FROM payments AS p
JOIN exclusions AS e ON p.payee_tin = e.tin
WHERE e.exclusion_start <= p.payment_date
  AND (e.exclusion_end IS NULL OR p.payment_date <= e.exclusion_end)
""",
)
