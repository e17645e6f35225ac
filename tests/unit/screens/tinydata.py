"""Hand-made canonical tables (docs/schema.md) in which every screen's rule, edge and decoy appear.

Each scenario below says which records a screen must flag; the tests assert exactly those.
Identifiers are valid (python-stdnum) so the catalog classifies them as a real file would be.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from stdnum.us import ein, rtn, ssn

MONEY = pa.decimal128(12, 2)
D = dt.date.fromisoformat


def person(i: int) -> str:
    value = f"{100 + i:03d}10{1000 + i:04d}"
    assert ssn.is_valid(value)
    return value


def vendor(i: int) -> str:
    value = f"04{1000000 + i:07d}"
    assert ein.is_valid(value)
    return value


def routing(i: int) -> str:
    base = f"0110{i:04d}"
    value = base + rtn.calc_check_digit(base)
    assert rtn.is_valid(value)
    return value


def account(i: int) -> str:
    return f"{40000000 + i:010d}"


# People by role in the scenarios (index -> SSN via person()).
DIES_MID_MONTH = 1  # died 2024-03-15; paid 02-03, 03-03 (proper), 04-03 and 05-03 (improper)
DIES_ON_2ND = 2  # decoy: died 2024-05-02, paid 2024-05-03
DIES_ON_1ST = 3  # decoy: died 2024-05-01, paid 2024-05-03
DIES_END_OF_MONTH = 4  # died 2024-05-31, paid 06-01 (a later month); a vendor's EIN twin paid
DUPLICATED = 5  # paid 1200 RSI on 2024-01-03 three times: the 2nd and 3rd copies are improper
SAME_BENEFIT = 6  # decoy: 1200 on 2024-01-03 and 2024-02-03; and 1200 SSI on 01-03 besides RSI
SHARED = (7, 8, 9, 10)  # four payees on one account (10 by tax refund): every deposit flagged
THREE_ON_ACCOUNT = (11, 12, 13)  # exactly 3 payees: not flagged
COUPLE = (14, 15)  # decoy: two people sharing an account
OLDEST = 18  # born 1909-05-15: 114 on 2024-05-14 (proper), 115 on 05-15 (improper); VA pays too
CENTENARIAN = 19  # decoy: aged 109
OLD_AND_DEAD = 20  # born 1900, died 2023-06-10: paid after death, never implausible_age
DIED_BEFORE_YEAR = 21  # died 2023-12-31: a 2024 refund is improper, the 2023 refund is proper
DIED_ON_NEW_YEAR = 22  # died 2024-01-01: the 2024 refund is a final return (proper)
OPM_ANNUITANT = 23  # died 2024-03-15: OPM paid on that day (proper) and the day after
STEADY = 24  # paid 1200 RSI six times, then 12000 once: the 12000 is an outlier
RAISED = 25  # decoy: 1200 RSI five times, then 1236 twice (a cost-of-living raise)
FEW = 26  # decoy: 1200 four times, then 9000: too few payments to judge
EXCLUDED_OPEN = 1  # vendor(1): SAM exclusion from 2024-01-10, open-ended
EXCLUDED_ENDED = 2  # vendor(2): LEIE exclusion 2024-01-01 .. 2024-03-31


_NAMES = {person(i): f"given{i}  FAMILY{i}" for i in range(100)}  # a payee's name, as paid


class Tables:
    """Accumulates rows per canonical table, then writes one Parquet file each."""

    def __init__(self) -> None:
        self.payments: list[dict[str, object]] = []
        self.beneficiaries: list[dict[str, object]] = []
        self.deaths: list[dict[str, object]] = []
        self.exclusions: list[dict[str, object]] = []
        self.tax_refunds: list[dict[str, object]] = []

    def beneficiary(self, i: int, born: str, acct: int | None = None) -> None:
        self.beneficiaries.append(
            {
                "ssn": person(i),
                "first_name": f"Given{i}",
                "last_name": f"Family{i}",
                "date_of_birth": D(born),
                "address": f"{i} Main St",
                "zip": f"{20000 + i:05d}",
                "state": "MD",
                "program": "RSI",
                "monthly_benefit": Decimal("1200.00"),
                "entitlement_date": D("2010-01-01"),
                "routing_number": routing(acct if acct is not None else i),
                "account_number": account(acct if acct is not None else i),
            }
        )

    def pay(
        self,
        pid: str,
        tin: str,
        when: str,
        amount: str = "1200.00",
        program: str | None = "RSI",
        acct: int | None = None,
        agency: str = "SSA",
    ) -> None:
        self.payments.append(
            {
                "payment_id": pid,
                "payee_tin": tin,
                "payee_name": _NAMES.get(tin, f"Payee of {pid}"),
                "agency": agency,
                "program": program,
                "amount": Decimal(amount),
                "payment_date": D(when),
                "routing_number": None if acct is None else routing(acct),
                "account_number": None if acct is None else account(acct),
                "method": "CHECK" if acct is None else "ACH",
            }
        )

    def death(self, i: int, born: str, died: str, last_name: str | None = None) -> None:
        self.deaths.append(
            {
                "ssn": person(i),
                "first_name": f"Given{i}",
                "last_name": last_name or f"Family{i}",
                "date_of_birth": D(born),
                "date_of_death": D(died),
            }
        )

    def exclusion(self, tin: str, source: str, start: str, end: str | None) -> None:
        self.exclusions.append(
            {
                "tin": tin,
                "name": "Excluded Vendor LLC",
                "source": source,
                "exclusion_start": D(start),
                "exclusion_end": None if end is None else D(end),
            }
        )

    def refund(self, rid: str, i: int, year: int, amount: str, acct: int) -> None:
        self.tax_refunds.append(
            {
                "refund_id": rid,
                "tin": person(i),
                "tax_year": year,
                "filing_status": "single",
                "refund_amount": Decimal(amount),
                "issue_date": D(f"{year + 1}-03-15"),
                "routing_number": routing(acct),
                "account_number": account(acct),
            }
        )

    def write(self, out: Path) -> dict[str, Path]:
        out.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, schema in SCHEMAS.items():
            rows: list[dict[str, object]] = getattr(self, name)
            path = out / f"{name}.parquet"
            pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
            paths[name] = path
        return paths


S = pa.string()
SCHEMAS = {
    "beneficiaries": pa.schema(
        [
            ("ssn", S),
            ("first_name", S),
            ("last_name", S),
            ("date_of_birth", pa.date32()),
            ("address", S),
            ("zip", S),
            ("state", S),
            ("program", S),
            ("monthly_benefit", MONEY),
            ("entitlement_date", pa.date32()),
            ("routing_number", S),
            ("account_number", S),
        ]
    ),
    "payments": pa.schema(
        [
            ("payment_id", S),
            ("payee_tin", S),
            ("payee_name", S),
            ("agency", S),
            ("program", S),
            ("amount", MONEY),
            ("payment_date", pa.date32()),
            ("routing_number", S),
            ("account_number", S),
            ("method", S),
        ]
    ),
    "deaths": pa.schema(
        [
            ("ssn", S),
            ("first_name", S),
            ("last_name", S),
            ("date_of_birth", pa.date32()),
            ("date_of_death", pa.date32()),
        ]
    ),
    "exclusions": pa.schema(
        [
            ("tin", S),
            ("name", S),
            ("source", S),
            ("exclusion_start", pa.date32()),
            ("exclusion_end", pa.date32()),
        ]
    ),
    "tax_refunds": pa.schema(
        [
            ("refund_id", S),
            ("tin", S),
            ("tax_year", pa.int32()),
            ("filing_status", S),
            ("refund_amount", MONEY),
            ("issue_date", pa.date32()),
            ("routing_number", S),
            ("account_number", S),
        ]
    ),
}


def scenario() -> Tables:
    """Every screen's rule, boundary and decoy. Payment ids say what each record is for."""
    t = Tables()
    p = person
    # paid_after_death
    t.beneficiary(DIES_MID_MONTH, "1940-01-01")
    t.death(DIES_MID_MONTH, "1940-01-01", "2024-03-15")
    for pid, when in (("P101", "2024-02-03"), ("P102", "2024-03-03"), ("P103", "2024-04-03")):
        t.pay(pid, p(DIES_MID_MONTH), when, acct=DIES_MID_MONTH)
    t.pay("P104", p(DIES_MID_MONTH), "2024-05-03", acct=DIES_MID_MONTH)
    t.pay("P105", p(DIES_MID_MONTH), "2024-05-03", acct=DIES_MID_MONTH)  # also a duplicate
    for i, died in ((DIES_ON_2ND, "2024-05-02"), (DIES_ON_1ST, "2024-05-01")):
        t.beneficiary(i, "1945-06-06")
        t.death(i, "1945-06-06", died)
        t.pay(f"P1{i}1", p(i), "2024-05-03", acct=i)
    t.beneficiary(DIES_END_OF_MONTH, "1950-02-02")
    t.death(DIES_END_OF_MONTH, "1950-02-20", "2024-05-31")  # another date of birth: ssn_name
    t.pay("P141", p(DIES_END_OF_MONTH), "2024-05-03", acct=DIES_END_OF_MONTH)
    t.pay("P142", p(DIES_END_OF_MONTH), "2024-06-01", acct=DIES_END_OF_MONTH)
    twin = f"{p(DIES_END_OF_MONTH)[:2]}-{p(DIES_END_OF_MONTH)[2:]}"  # an EIN, the same digits
    t.pay("P151", twin, "2024-06-07", "4000.00", program=None, agency="DOD")
    # duplicate_payment
    t.beneficiary(DUPLICATED, "1950-01-01")
    for pid in ("P201", "P202", "P203"):
        t.pay(pid, p(DUPLICATED), "2024-01-03", acct=DUPLICATED)
    t.beneficiary(SAME_BENEFIT, "1950-01-01")
    t.pay("P211", p(SAME_BENEFIT), "2024-01-03", acct=SAME_BENEFIT)
    t.pay("P212", p(SAME_BENEFIT), "2024-02-03", acct=SAME_BENEFIT)
    t.pay("P213", p(SAME_BENEFIT), "2024-01-03", program="SSI", acct=SAME_BENEFIT)
    t.pay("P214", vendor(9), "2024-01-05", "310.00", program=None, agency="CMS")
    t.pay("P215", vendor(9), "2024-01-05", "310.00", program=None, agency="CMS")
    # shared_account: account 70 has four payees, account 71 three, account 72 a couple
    for n, i in enumerate(SHARED[:3]):
        t.beneficiary(i, "1960-01-01", acct=70)
        t.pay(f"P30{n}", p(i), "2024-01-03", acct=70)
    t.refund("R301", SHARED[3], 2023, "850.00", acct=70)
    t.pay("P303", p(SHARED[0]), "2024-02-03", acct=70)
    for n, i in enumerate(THREE_ON_ACCOUNT):
        t.pay(f"P31{n}", p(i), "2024-01-03", acct=71)
    t.refund("R311", THREE_ON_ACCOUNT[0], 2023, "400.00", acct=71)
    for n, i in enumerate(COUPLE):
        t.pay(f"P32{n}", p(i), "2024-01-03", acct=72)
    for n in range(5):  # checks to five different payees carry no account at all
        t.pay(f"P33{n}", p(40 + n), "2024-01-03")
    # excluded_payee
    t.exclusion(vendor(EXCLUDED_OPEN), "SAM", "2024-01-10", None)
    t.pay("P401", vendor(EXCLUDED_OPEN), "2024-01-09", "5000.00", program=None, agency="DOD")
    t.pay("P402", vendor(EXCLUDED_OPEN), "2024-01-10", "5000.00", program=None, agency="DOD")
    t.pay("P403", vendor(EXCLUDED_OPEN), "2025-06-01", "7000.00", program=None, agency="DOD")
    t.exclusion(vendor(EXCLUDED_ENDED), "LEIE", "2024-01-01", "2024-03-31")
    t.pay("P411", vendor(EXCLUDED_ENDED), "2024-03-31", "900.00", program=None, agency="CMS")
    t.pay("P412", vendor(EXCLUDED_ENDED), "2024-04-01", "900.00", program=None, agency="CMS")
    # implausible_age
    t.beneficiary(OLDEST, "1909-05-15")
    t.pay("P501", p(OLDEST), "2024-05-14", acct=OLDEST)
    t.pay("P502", p(OLDEST), "2024-05-15", acct=OLDEST)
    t.pay("P503", p(OLDEST), "2024-06-01", "80.00", program=None, agency="VA")  # not SSA
    t.beneficiary(CENTENARIAN, "1915-01-01")
    t.pay("P511", p(CENTENARIAN), "2024-05-03", acct=CENTENARIAN)
    t.beneficiary(OLD_AND_DEAD, "1900-01-01")
    t.death(OLD_AND_DEAD, "1900-01-01", "2023-06-10", last_name="Other")  # ssn_dob
    t.pay("P521", p(OLD_AND_DEAD), "2024-01-03", acct=OLD_AND_DEAD)
    # refund_to_deceased
    t.death(DIED_BEFORE_YEAR, "1950-01-01", "2023-12-31")
    t.refund("R601", DIED_BEFORE_YEAR, 2024, "1500.00", acct=DIED_BEFORE_YEAR)
    t.refund("R602", DIED_BEFORE_YEAR, 2023, "700.00", acct=DIED_BEFORE_YEAR)
    t.death(DIED_ON_NEW_YEAR, "1950-01-01", "2024-01-01")
    t.refund("R611", DIED_ON_NEW_YEAR, 2024, "300.00", acct=DIED_ON_NEW_YEAR)
    # other_agency_after_death (P151 above, an EIN with a dead SSN's digits, is not a match)
    t.death(OPM_ANNUITANT, "1940-07-07", "2024-03-15")
    t.pay("P701", p(OPM_ANNUITANT), "2024-03-15", "2100.00", program=None, agency="OPM")
    t.pay("P702", p(OPM_ANNUITANT), "2024-03-16", "2100.00", program=None, agency="OPM")
    # amount_outlier
    for n, amount in enumerate(("1200.00",) * 6 + ("12000.00",)):
        t.pay(f"P80{n}", p(STEADY), f"2023-0{n + 1}-03", amount)
    for n, amount in enumerate(("1200.00",) * 5 + ("1236.00",) * 2):
        t.pay(f"P81{n}", p(RAISED), f"2023-0{n + 1}-03", amount)
    for n, amount in enumerate(("1200.00",) * 4 + ("9000.00",)):
        t.pay(f"P82{n}", p(FEW), f"2023-0{n + 1}-03", amount)
    return t


# What each screen must flag in scenario(), derived by hand from the comments above.
# The match category of each death screen's case (gateway/match_quality.py): the payee's name
# is on the payment (or the beneficiary record), the date of birth on the beneficiary record.
MATCH = {
    "P103": "exact", "P104": "exact", "P105": "exact",  # name and birth date agree
    "P142": "ssn_name",  # the death record has another date of birth
    "P521": "ssn_dob",  # the death record has another last name
    "R601": "ssn_only",  # a refund, no beneficiary record: nothing to compare
    "P702": "ssn_name",  # OPM's payee name agrees; no beneficiary record, no birth date
}  # fmt: skip

EXPECTED: dict[str, set[str]] = {
    "paid_after_death": {"P103", "P104", "P105", "P142", "P521"},
    "duplicate_payment": {"P105", "P202", "P203", "P215"},
    "shared_account": {"P300", "P301", "P302", "P303", "R301"},
    "excluded_payee": {"P402", "P403", "P411"},
    "implausible_age": {"P502"},
    "refund_to_deceased": {"R601"},
    "other_agency_after_death": {"P702"},
    "amount_outlier": {"P806"},
}
