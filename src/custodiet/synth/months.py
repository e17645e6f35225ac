"""``--months N``: the synthetic data as it arrives, month after month.

After ``generate`` wrote the tables, the dated ones (payments by ``payment_date``, tax refunds by
``issue_date``, deaths by ``date_of_death``) are split: the rows of each of the last N months of
the window go to ``OUT/month=YYYY-MM/TABLE.parquet``, the earlier rows stay in
``OUT/TABLE.parquet`` (the initial load; rows dated after the window go with its last month).
A planted record is in the file of the month it occurs, and ``truth.parquet`` gains ``month``
(``YYYY-MM`` of the planted record's date). Without ``--months`` nothing here runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from custodiet.errors import InputError
from custodiet.synth.calendar import WINDOW_YEAR

MONTHLY = {"payments": "payment_date", "tax_refunds": "issue_date", "deaths": "date_of_death"}
TRUTH_KEYS = {"payments": "payment_id", "tax_refunds": "refund_id"}
MAX_MONTHS = 12


def check_months(months: int) -> None:
    if not 1 <= months <= MAX_MONTHS:
        raise InputError(
            f"--months must be between 1 and {MAX_MONTHS}",
            hint=f"the synthetic window is the {MAX_MONTHS} months of {WINDOW_YEAR}",
            code="CUST709",
        )


def month_labels(months: int) -> list[str]:
    """``YYYY-MM`` of the last ``months`` months of the window, in order."""
    return [f"{WINDOW_YEAR}-{m:02d}" for m in range(MAX_MONTHS - months + 1, MAX_MONTHS + 1)]


def split_months(out: Path, months: int) -> dict[str, int]:
    """Split the dated tables of ``out`` by month; rows written per file (``month=…/TABLE``)."""
    check_months(months)
    labels = month_labels(months)
    written: dict[str, int] = {}
    record_months: dict[str, pa.Table] = {}
    for table, column in MONTHLY.items():
        path = out / f"{table}.parquet"
        data = pq.read_table(path)
        slot = _slots(data.column(column), months)
        if table in TRUTH_KEYS:
            record_months[table] = pa.table(
                {"record_id": data.column(TRUTH_KEYS[table]), "month": _labels(data.column(column))}
            )
        for number, label in enumerate(labels):
            folder = out / f"month={label}"
            folder.mkdir(exist_ok=True)
            part = data.filter(pa.array(slot == number))
            _write(part, folder / f"{table}.parquet")
            written[f"month={label}/{table}.parquet"] = part.num_rows
        base = data.filter(pa.array(slot < 0))
        _write(base, path)
        written[f"{table}.parquet"] = base.num_rows
    _label_truth(out / "truth.parquet", record_months)
    return written


def _slots(dates: pa.ChunkedArray, months: int) -> np.ndarray:
    """-1 for rows before the split months, else the index of their month (later rows: last)."""
    keys = np.asarray(pc.fill_null(_month_keys(dates), -(10**6)).to_numpy(zero_copy_only=False))
    first = WINDOW_YEAR * 12 + (MAX_MONTHS - months)
    index = keys - first
    return np.where(index < 0, -1, np.minimum(index, months - 1))


def _month_keys(dates: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.add(pc.multiply(pc.year(dates), 12), pc.subtract(pc.month(dates), 1))


def _labels(dates: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.strftime(pc.cast(dates, pa.timestamp("s")), format="%Y-%m")


def _label_truth(path: Path, record_months: dict[str, pa.Table]) -> None:
    truth = pq.read_table(path)
    months = pa.nulls(truth.num_rows, pa.string())
    for table, found in record_months.items():
        at = pc.index_in(truth.column("record_id"), value_set=found.column("record_id"))
        mine = pc.equal(truth.column("record_table"), table)
        looked = pc.take(found.column("month"), at)
        months = pc.if_else(mine, looked, months)
    _write(truth.append_column("month", months), path)


def _write(table: pa.Table, path: Path) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, temporary)
    temporary.replace(path)
