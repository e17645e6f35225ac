"""`synth --months N`: each of the last N months is its own file set, every row is kept once,
and each planted record is in the file of the month truth names."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from custodiet.synth import Summary
from custodiet.synth.months import MONTHLY, split_months
from tests.conftest import run_cli

MONTHS = ("2024-10", "2024-11", "2024-12")


@pytest.fixture(scope="module")
def split(synth_run: tuple[Path, Summary], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("months") / "data"
    shutil.copytree(synth_run[0], out)
    split_months(out, 3)
    return out


def _one(sql: str) -> int:
    con = duckdb.connect()
    try:
        row = con.execute(sql).fetchone()
    finally:
        con.close()
    assert row is not None
    return int(row[0])


def test_every_dated_row_is_in_exactly_one_file(
    synth_run: tuple[Path, Summary], split: Path
) -> None:
    original = synth_run[0]
    for table, column in MONTHLY.items():
        parts = [
            split / f"{table}.parquet",
            *(split / f"month={m}" / f"{table}.parquet" for m in MONTHS),
        ]
        listed = ", ".join(f"'{p}'" for p in parts)
        every = f"SELECT * FROM read_parquet([{listed}])"
        assert _one(f"SELECT count(*) FROM ({every})") == _one(
            f"SELECT count(*) FROM read_parquet('{original / table}.parquet')"
        )
        before = _one(
            f"SELECT count(*) FROM read_parquet('{split / table}.parquet') "
            f"WHERE strftime({column}, '%Y-%m') >= '{MONTHS[0]}'"
        )
        assert before == 0
        for month in MONTHS[:-1]:
            outside = _one(
                f"SELECT count(*) FROM read_parquet('{split / f'month={month}' / table}.parquet') "
                f"WHERE strftime({column}, '%Y-%m') <> '{month}'"
            )
            assert outside == 0


def test_each_planted_record_is_in_the_file_of_its_month(split: Path) -> None:
    truth = f"read_parquet('{split / 'truth.parquet'}')"
    assert _one(f"SELECT count(*) FROM {truth} WHERE month IS NULL") == 0
    planted_late = _one(f"SELECT count(*) FROM {truth} WHERE month >= '{MONTHS[0]}'")
    assert planted_late > 0
    for month in MONTHS:
        payments = f"read_parquet('{split / f'month={month}' / 'payments.parquet'}')"
        missing = _one(
            f"SELECT count(*) FROM {truth} WHERE record_table = 'payments' AND month = '{month}' "
            f"AND record_id NOT IN (SELECT payment_id FROM {payments})"
        )
        assert missing == 0
        planted = _one(
            f"SELECT count(*) FROM {truth} WHERE record_table = 'payments' AND month = '{month}'"
        )
        assert planted > 0


def test_months_out_of_range_exit_2(tmp_path: Path) -> None:
    result = run_cli("synth", "--out", str(tmp_path / "d"), "--people", "100", "--months", "13")
    assert result.status == 2
    assert "--months" in result.stderr.splitlines()[0]
    assert not (tmp_path / "d").exists()
