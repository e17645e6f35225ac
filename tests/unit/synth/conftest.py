"""One small multi-chunk data set, generated once and shared by the synth tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from custodiet.synth import Summary, generate

PEOPLE = 12_000
CHUNK = 5_000  # three chunks (5,000 + 5,000 + 2,000): ids and truth must hold across them
TABLES = ("beneficiaries", "payments", "deaths", "exclusions", "tax_refunds", "truth")


def generate_small(
    out: Path, people: int = PEOPLE, seed: int = 0, profile: str = "stress"
) -> Summary:
    return generate(out, people, seed, profile, chunk_people=CHUNK)


@pytest.fixture(scope="session")
def synth_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Summary]:
    out = tmp_path_factory.mktemp("synth") / "data"
    return out, generate_small(out)


@pytest.fixture(scope="session")
def synth_dir(synth_run: tuple[Path, Summary]) -> Path:
    return synth_run[0]


def connect(directory: Path) -> duckdb.DuckDBPyConnection:
    """DuckDB with one view per table written into ``directory``."""
    con = duckdb.connect()
    for table in TABLES:
        path = directory / f"{table}.parquet"
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{path}')")
    return con


@pytest.fixture
def sql(synth_dir: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(synth_dir)
    yield con
    con.close()
