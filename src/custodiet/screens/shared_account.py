"""Shared account: more than ``payees`` (default 3) distinct payees paid into one account.

The IRS allows at most 3 refunds into one account (the agreement may set another number); every
payment or refund into an account with more payees than that is a case. Payees are counted
across payments and tax refunds together (the same person has the same token in both). Decoy: a
couple sharing an account.
"""

from __future__ import annotations

from custodiet.agreements.model import Treatment
from custodiet.screens.model import Screen

SCREEN = Screen(
    name="shared_account",
    rule="payment or refund into an account that pays more than {payees} distinct payees",
    needs={
        "payments": {
            "payment_id": Treatment.ALLOW,
            "payee_tin": Treatment.PSEUDONYMIZE,
            "amount": Treatment.ALLOW,
            "routing_number": Treatment.PSEUDONYMIZE,
            "account_number": Treatment.PSEUDONYMIZE,
        },
        "tax_refunds": {
            "refund_id": Treatment.ALLOW,
            "tin": Treatment.PSEUDONYMIZE,
            "refund_amount": Treatment.ALLOW,
            "routing_number": Treatment.PSEUDONYMIZE,
            "account_number": Treatment.PSEUDONYMIZE,
        },
    },
    sql="""
WITH deposits AS (
  SELECT 'payments' AS record_table, payment_id AS record_id, payee_tin AS payee, amount,
         routing_number, account_number
  FROM payments
  WHERE routing_number IS NOT NULL AND account_number IS NOT NULL
  UNION ALL
  SELECT 'tax_refunds' AS record_table, refund_id AS record_id, tin AS payee,
         refund_amount AS amount, routing_number, account_number
  FROM tax_refunds
  WHERE routing_number IS NOT NULL AND account_number IS NOT NULL
),
shared AS (
  SELECT routing_number, account_number, count(DISTINCT payee) AS payees_on_account
  FROM deposits
  GROUP BY routing_number, account_number
  HAVING count(DISTINCT payee) > {payees}
)
SELECT
  d.record_table AS record_table,
  d.record_id AS record_id,
  d.payee AS payee,
  d.amount AS amount,
  s.payees_on_account AS payees_on_account,
  d.account_number AS account
FROM deposits AS d
JOIN shared AS s
  ON d.routing_number = s.routing_number AND d.account_number = s.account_number
""",
)
