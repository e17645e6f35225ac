from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from custodiet.catalog.classes import ColumnClass
from custodiet.catalog.model import Dataset
from custodiet.catalog.registry import Registration, get_dataset, list_datasets
from custodiet.errors import InputError, RefusedError
from custodiet.ledger.replay import State
from custodiet.principals import Role
from custodiet.workspace import Workspace
from tests.catalog_data import (
    CANONICAL_CLASSES,
    TABLES,
    ledger_entries,
    table_rows,
    write_canonical,
    write_table,
)
from tests.kit import Kit

KIT = Kit()
CUSTODIANS = ("alice", "carol")  # the genesis's; K = 2


def register(
    ws: Workspace,
    name: str,
    location: Path | str,
    classify: dict[str, ColumnClass] | None = None,
    by: str = "alice",
) -> Registration:
    """``by``'s signed `dataset add` (one custodian's signature)."""
    done: Registration = KIT.add_dataset(ws, name, location, classify or {}, by=(by,))
    return done


def add_dataset(
    ws: Workspace, name: str, location: Path | str, classify: dict[str, ColumnClass], by: str
) -> Dataset:
    return register(ws, name, location, classify, by).dataset


def state(ws: Workspace) -> State:
    return KIT.state(ws)


@pytest.fixture(scope="module")
def canonical(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, dict[str, Path]]:
    root = tmp_path_factory.mktemp("catalog")
    ws = KIT.init(root / "ws", custodians=CUSTODIANS)
    paths = write_canonical(root / "data")
    for table, path in paths.items():
        add_dataset(ws, table, path, {}, "alice")
    return ws, paths


@pytest.mark.parametrize("table", sorted(TABLES))
def test_classifies_canonical_table(
    canonical: tuple[Workspace, dict[str, Path]], table: str
) -> None:
    ws, _ = canonical
    dataset = get_dataset(state(ws), table)
    got = {c.name: (c.column_class.value, c.identifier_kind) for c in dataset.columns.values()}
    assert got == CANONICAL_CLASSES[table]


def test_dataset_records_file_digest_rows_and_absolute_path(
    canonical: tuple[Workspace, dict[str, Path]],
) -> None:
    ws, paths = canonical
    dataset = get_dataset(state(ws), "payments")
    assert dataset.sha256 == hashlib.sha256(paths["payments"].read_bytes()).hexdigest()
    assert dataset.rows == len(table_rows("payments"))
    assert Path(dataset.path).is_absolute()
    assert dataset.format == "parquet"


def test_lists_datasets_by_name(canonical: tuple[Workspace, dict[str, Path]]) -> None:
    ws, _ = canonical
    assert [d.name for d in list_datasets(state(ws))] == sorted(TABLES)


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
    return KIT.init(tmp_path / "ws", custodians=CUSTODIANS)


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
    assert get_dataset(state(ws), "small") == dataset


def test_override_that_raises_protection_replaces_inferred_class(
    ws: Workspace, tmp_path: Path
) -> None:
    path = write_table(tmp_path / "s.parquet", SMALL, small_rows())
    done = register(ws, "s", path, {"agency": ColumnClass.SENSITIVE})
    assert (done.lowered, done.votes, done.required, done.effective) == ((), 1, 1, True)
    assert done.dataset.columns["agency"].column_class is ColumnClass.SENSITIVE
    assert get_dataset(state(ws), "s") == done.dataset


def test_a_column_of_identifier_values_cannot_be_classified_lower(
    ws: Workspace, tmp_path: Path
) -> None:
    """`--classify payee_tin=key` used to make SSNs a plain key; values that validate as
    identifiers now stay identifiers, whoever and however many sign."""
    path = write_table(tmp_path / "s.parquet", SMALL, small_rows())
    with pytest.raises(RefusedError) as caught:
        register(ws, "s", path, {"payee_tin": ColumnClass.KEY})
    assert caught.value.code == "CUST519"
    assert "s.payee_tin holds identifiers by its values" in caught.value.rule
    entry = ledger_entries(ws)[-1]
    assert (entry["action"], entry["code"]) == ("refusal", "CUST519")
    assert "s" not in state(ws).datasets


QUASI = {"zip": "VARCHAR", "agency": "VARCHAR"}


def quasi_rows() -> list[tuple[object, ...]]:
    return [(f"{20000 + i:05d}", "SSA" if i % 2 else "VA") for i in range(200)]


def test_lowering_a_class_needs_k_custodians(ws: Workspace, tmp_path: Path) -> None:
    path = write_table(tmp_path / "q.parquet", QUASI, quasi_rows())
    assert register(ws, "probe", path).dataset.columns["zip"].column_class is (
        ColumnClass.QUASI_IDENTIFIER
    )
    lowered = {"zip": ColumnClass.CATEGORY}
    first = register(ws, "q", path, lowered, by="alice")
    assert (first.lowered, first.votes, first.required, first.effective) == (
        ("zip",), 1, 2, False,
    )  # fmt: skip
    assert "q" not in state(ws).datasets
    with pytest.raises(RefusedError) as again:
        register(ws, "q", path, lowered, by="alice")
    assert again.value.code == "CUST320"
    second = register(ws, "q", path, lowered, by="carol")
    assert (second.votes, second.effective) == (2, True)
    assert get_dataset(state(ws), "q").columns["zip"].column_class is ColumnClass.CATEGORY


def test_only_custodians_register_datasets(ws: Workspace, tmp_path: Path) -> None:
    KIT.add_principal(ws, "bob", Role.REVIEWER, by=("alice",))
    path = write_table(tmp_path / "s.parquet", SMALL, small_rows())
    with pytest.raises(RefusedError) as caught:
        register(ws, "s", path, by="bob")
    assert caught.value.code == "CUST318"
    assert "s" not in state(ws).datasets


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
    with pytest.raises(RefusedError, match="already registered") as caught:
        add_dataset(ws, "s", path, {"agency": ColumnClass.SENSITIVE}, "carol")
    assert caught.value.code == "CUST236"
    assert get_dataset(state(ws), "s") == first


def test_unknown_dataset_is_an_input_error(ws: Workspace) -> None:
    with pytest.raises(InputError, match="unknown dataset 'nope'"):
        get_dataset(state(ws), "nope")
