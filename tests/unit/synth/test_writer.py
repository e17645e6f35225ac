from __future__ import annotations

from pathlib import Path

import pytest

from custodiet.synth.writer import TableWriters


def test_failed_run_leaves_neither_partial_nor_final_files(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), TableWriters(tmp_path):
        assert any(tmp_path.iterdir())  # partial files exist while writing
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_clean_run_publishes_every_table_under_its_final_name(tmp_path: Path) -> None:
    with TableWriters(tmp_path):
        pass
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        f"{t}.parquet"
        for t in ("beneficiaries", "payments", "deaths", "exclusions", "tax_refunds", "truth")
    )
