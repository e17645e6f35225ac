from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from custodiet.catalog.classes import ColumnClass
from custodiet.catalog.registry import add_dataset, get_dataset, list_datasets
from custodiet.errors import InputError
from custodiet.workspace import Workspace, init_workspace
from tests.catalog_data import (
    CANONICAL_CLASSES,
    TABLES,
    ledger_entries,
    table_rows,
    write_canonical,
    write_table,
)


@pytest.fixture(scope="module")
def canonical(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, dict[str, Path]]:
    root = tmp_path_factory.mktemp("catalog")
    ws = init_workspace(root / "ws")
    paths = write_canonical(root / "data")
    for table, path in paths.items():
        add_dataset(ws, table, path, {}, "alice")
    return ws, paths


@pytest.mark.parametrize("table", sorted(TABLES))
def test_classifies_canonical_table(
    canonical: tuple[Workspace, dict[str, Path]], table: str
) -> None:
    ws, _ = canonical
    dataset = get_dataset(ws, table)
    got = {c.name: (c.column_class.value, c.identifier_kind) for c in dataset.columns.values()}
    assert got == CANONICAL_CLASSES[table]


def test_dataset_records_file_digest_rows_and_absolute_path(
    canonical: tuple[Workspace, dict[str, Path]],
) -> None:
    ws, paths = canonical
    dataset = get_dataset(ws, "payments")
    assert dataset.sha256 == hashlib.sha256(paths["payments"].read_bytes()).hexdigest()
    assert dataset.rows == len(table_rows("payments"))
    assert Path(dataset.path).is_absolute()
    assert dataset.format == "parquet"


def test_lists_datasets_by_name(canonical: tuple[Workspace, dict[str, Path]]) -> None:
    ws, _ = canonical
    assert [d.name for d in list_datasets(ws)] == sorted(TABLES)


def test_registration_is_on_the_ledger_with_classes_and_no_values(
    canonical: tuple[Workspace, dict[str, Path]],
) -> None:
    ws, _ = canonical
    entries = [e for e in ledger_entries(ws) if e["action"] == "dataset.add"]
    assert [e["dataset"] for e in entries] == list(TABLES)
    payments = next(e for e in entries if e["dataset"] == "payments")
    assert payments["columns"]["payee_tin"] == "identifier"
    assert payments["actor"] == "alice"
    text = json.dumps(entries)
    for row in table_rows("payments")[:20]:
        assert row[1] not in text and row[2] not in text  # no SSN, no name


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return init_workspace(tmp_path / "ws")


SMALL = {"payee_tin": "VARCHAR", "agency": "VARCHAR", "amount": "DECIMAL(12,2)"}


def small_rows() -> list[tuple[object, ...]]:
    return [(t, a, m) for t, a, m in ((r[1], r[3], r[5]) for r in table_rows("payments"))]


@pytest.mark.parametrize("fmt", ["csv", "duckdb"])
def test_registers_csv_and_duckdb_tables(ws: Workspace, tmp_path: Path, fmt: str) -> None:
    path = write_table(tmp_path / f"small.{fmt}", SMALL, small_rows(), fmt)
    location = f"{path}::t" if fmt == "duckdb" else str(path)
    dataset = add_dataset(ws, "small", location, {}, "alice")
    assert dataset.format == fmt
    assert dataset.table == ("t" if fmt == "duckdb" else None)
    assert dataset.columns["payee_tin"].identifier_kind == "tin"
    assert dataset.columns["agency"].column_class is ColumnClass.CATEGORY
    assert get_dataset(ws, "small") == dataset


def test_override_replaces_inferred_class(ws: Workspace, tmp_path: Path) -> None:
    path = write_table(tmp_path / "s.parquet", SMALL, small_rows())
    overrides = {"agency": ColumnClass.SENSITIVE, "payee_tin": ColumnClass.KEY}
    dataset = add_dataset(ws, "s", path, overrides, "alice")
    assert dataset.columns["agency"].column_class is ColumnClass.SENSITIVE
    assert dataset.columns["payee_tin"].column_class is ColumnClass.KEY
    assert dataset.columns["payee_tin"].identifier_kind is None


def test_override_to_identifier_gets_an_identifier_kind(ws: Workspace, tmp_path: Path) -> None:
    path = write_table(tmp_path / "s.parquet", SMALL, small_rows())
    dataset = add_dataset(ws, "s", path, {"agency": ColumnClass.IDENTIFIER}, "alice")
    assert dataset.columns["agency"].identifier_kind == "account"


def test_rejects_override_of_unknown_column(ws: Workspace, tmp_path: Path) -> None:
    path = write_table(tmp_path / "s.parquet", SMALL, small_rows())
    with pytest.raises(InputError, match="unknown column 'nope'") as caught:
        add_dataset(ws, "s", path, {"nope": ColumnClass.KEY}, "alice")
    assert caught.value.code == "CUST238"


@pytest.mark.parametrize(
    ("name", "location", "code"),
    [
        ("s", "missing.parquet", "CUST234"),
        ("s", "data.xlsx", "CUST233"),
        ("s", "db.duckdb", "CUST232"),
        ("Bad-Name", "x.parquet", "CUST235"),
    ],
)
def test_rejects_bad_registration_input(
    ws: Workspace, tmp_path: Path, name: str, location: str, code: str
) -> None:
    (tmp_path / "data.xlsx").write_bytes(b"x")
    with pytest.raises(InputError) as caught:
        add_dataset(ws, name, tmp_path / location, {}, "alice")
    assert caught.value.code == code
    assert caught.value.exit_status == 2


def test_rejects_unreadable_file_without_engine_message(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(InputError) as caught:
        add_dataset(ws, "broken", path, {}, "alice")
    assert caught.value.code == "CUST239"
    assert "magic" not in caught.value.message.lower()


def test_rejects_duplicate_dataset_and_keeps_the_first(ws: Workspace, tmp_path: Path) -> None:
    path = write_table(tmp_path / "s.parquet", SMALL, small_rows())
    first = add_dataset(ws, "s", path, {}, "alice")
    with pytest.raises(InputError, match="already registered"):
        add_dataset(ws, "s", path, {"agency": ColumnClass.KEY}, "alice")
    assert get_dataset(ws, "s") == first


def test_unknown_dataset_is_an_input_error(ws: Workspace) -> None:
    with pytest.raises(InputError, match="unknown dataset 'nope'"):
        get_dataset(ws, "nope")
