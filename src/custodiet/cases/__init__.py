"""Cases: what monitoring found, stored custodian side, adjudicated by the reviewer on the ledger.

``monitor`` runs an agreement's screens and opens a case for each (screen, record) no earlier
run saw; ``adjudicate`` records the reviewer's signed ``case.set``; ``store`` keeps each run's
case facts beside the workspace's ledger and derives the case table from the ledger alone;
``report`` sums it for a month; ``read`` releases the cases (or the month's report rows) to a
signed ``case.read`` of the agreement's reviewer, a custodian or an overseer.
"""
