from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import run_cli

TABLES = ("beneficiaries", "payments", "deaths", "exclusions", "tax_refunds", "truth")


def test_synth_writes_every_table_and_prints_what_it_wrote(tmp_path: Path) -> None:
    out = tmp_path / "data"
    result = run_cli("synth", "--out", str(out), "--people", "2000", "--seed", "3")
    assert result.status == 0, result.stderr
    for table in TABLES:
        assert pq.ParquetFile(out / f"{table}.parquet").metadata.num_rows > 0
        assert f"{table}.parquet" in result.stdout
    assert "paid_after_death" in result.stdout
    assert "Traceback" not in result.stderr


def test_synth_overwrites_an_existing_directory_and_leaves_no_partial_files(tmp_path: Path) -> None:
    out = tmp_path / "data"
    out.mkdir()
    (out / "payments.parquet").write_text("old")
    assert (
        run_cli("synth", "--out", str(out), "--people", "500", "--profile", "realistic").status == 0
    )
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{t}.parquet" for t in TABLES)
    assert pq.ParquetFile(out / "payments.parquet").metadata.num_rows > 0


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (("--people", "0"), "--people"),
        (("--people", "many"), "--people"),
        (("--seed", "-1"), "--seed"),
        (("--profile", "extreme"), "--profile"),
    ],
)
def test_bad_numbers_and_profile_exit_2_naming_the_option(
    tmp_path: Path, arguments: tuple[str, ...], named: str
) -> None:
    out = tmp_path / "data"
    result = run_cli("synth", "--out", str(out), *arguments)
    assert result.status == 2
    assert named in result.stderr.splitlines()[0]
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_missing_parent_directory_exits_2(tmp_path: Path) -> None:
    result = run_cli("synth", "--out", str(tmp_path / "no" / "such" / "dir"), "--people", "10")
    assert result.status == 2
    assert "--out" in result.stderr.splitlines()[0]
    assert "Traceback" not in result.stderr


def test_out_that_is_a_file_exits_2(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("x")
    result = run_cli("synth", "--out", str(target), "--people", "10")
    assert result.status == 2
    assert "not a directory" in result.stderr
    assert target.read_text() == "x"


def test_synth_help_explains_every_option() -> None:
    result = run_cli("synth", "--help")
    assert result.status == 0
    for option in ("--out", "--people", "--seed", "--profile"):
        assert option in result.stdout
