"""`case set`: the agreement's reviewer records a case's adjudication, signed, on the ledger.

The replay (``ledger.replay._case_set``) decides: only the reviewer of the case's agreement,
only along open -> confirmed | not_improper, confirmed -> recovered | not_improper,
not_improper -> confirmed, and an amount when (and only when) the case is recovered. A refused
request is on the ledger as a refusal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from custodiet import entries
from custodiet.identity import SignedRequest
from custodiet.runtime import Runtime


@dataclass(frozen=True)
class CaseChange:
    case: str
    agreement: str
    previous: str
    state: str
    amount: str | None
    ledger_index: int

    def document(self) -> dict[str, Any]:
        return dict(self.__dict__)


def set_case(rt: Runtime, signed: SignedRequest) -> CaseChange:
    done = rt.commit(entries.action(signed), refuse_as=signed)
    args = signed.args
    amount = args.get("amount")
    return CaseChange(
        str(done.entry["case"]), str(done.entry["agreement"]), str(done.entry["previous"]),
        str(args["state"]), amount if isinstance(amount, str) else None, done.index,
    )  # fmt: skip


def change_from_document(doc: dict[str, Any]) -> CaseChange:
    return CaseChange(**doc)
