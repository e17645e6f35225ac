from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from custodiet.errors import CustodietError, InputError, RefusedError, SystemFailure
from custodiet.gateway.execute import EngineLimits, execute, open_engine, translate

SECRET_VALUE = "Zelda Quuxworth"


@pytest.fixture(scope="module")
def projection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("proj") / "p.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        f"CREATE TABLE people AS SELECT i AS id, '{SECRET_VALUE}' || i AS name FROM range(50) r(i)"
    )
    con.close()
    return path


@pytest.fixture
def engine(projection: Path):
    con = open_engine(
        projection, EngineLimits(threads=1, memory_limit="256MB", max_temp_directory_size="1GB")
    )
    yield con
    con.close()


def _run(con, sql: str, *, row_limit: int = 100, timeout: float = 10.0):
    return execute(con, sql, row_limit=row_limit, timeout_seconds=timeout)


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("enable_external_access", False),
        ("autoload_known_extensions", False),
        ("autoinstall_known_extensions", False),
        ("allow_community_extensions", False),
        ("python_enable_replacements", False),
        ("lock_configuration", True),
        ("threads", 1),
        ("memory_limit", "244.1 MiB"),  # 256 MB
        ("max_temp_directory_size", "953.6 MiB"),  # 1 GB
    ],
)
def test_engine_settings_took_effect(engine, setting: str, expected: object) -> None:
    assert engine.execute(f"SELECT current_setting('{setting}')").fetchone() == (expected,)


@pytest.mark.parametrize(
    "statement",
    [
        "SET threads = 8",
        "SET enable_external_access = true",
        "RESET lock_configuration",
        "SET python_enable_replacements = true",
        "SET memory_limit = '64GB'",
    ],
)
def test_configuration_cannot_be_changed_after_lock(engine, statement: str) -> None:
    with pytest.raises(duckdb.Error):
        engine.execute(statement)
    assert engine.execute("SELECT current_setting('threads')").fetchone() == (1,)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('{file}')",
        "SELECT * FROM read_text('{file}')",
        "SELECT * FROM '{file}'",
        "COPY people TO '{out}'",
        "ATTACH '{out}.db' AS other",
    ],
)
def test_files_are_out_of_reach_even_if_the_checker_were_bypassed(
    engine, tmp_path, sql: str
) -> None:
    file = tmp_path / "outside.csv"
    file.write_text("a\nsecret\n")
    out = tmp_path / "written.csv"
    with pytest.raises(RefusedError) as caught:
        _run(engine, sql.format(file=file, out=out))
    assert caught.value.code == "CUST372"
    assert not out.exists() and not Path(f"{out}.db").exists()


def test_writes_to_the_projection_fail(engine) -> None:
    for sql in ("CREATE TABLE x AS SELECT 1", "DELETE FROM people", "UPDATE people SET id = 0"):
        with pytest.raises(CustodietError):
            _run(engine, sql)
    assert _run(engine, "SELECT count(*) FROM people").rows == [(50,)]


def test_python_variables_are_not_scanned(engine) -> None:
    leaked = pa.table({"key": ["top-secret"]})
    assert duckdb.connect().execute("SELECT * FROM leaked").fetchall() == [("top-secret",)]
    with pytest.raises(duckdb.CatalogException):
        engine.execute("SELECT * FROM leaked")
    with pytest.raises(InputError) as caught:
        _run(engine, "SELECT * FROM leaked")
    assert "top-secret" not in caught.value.render()
    del leaked


def test_deadline_interrupts_a_runaway_query_and_the_engine_keeps_serving(engine) -> None:
    with pytest.raises(RefusedError) as caught:
        _run(engine, "SELECT count(*) FROM range(1000000000000) a", timeout=0.3)
    assert caught.value.code == "CUST370"
    assert caught.value.rule == "query exceeded the time limit of 0.3 s"
    assert _run(engine, "SELECT count(*) FROM people").rows == [(50,)]


def test_fetches_at_most_the_row_limit(engine) -> None:
    result = _run(engine, "SELECT id FROM people ORDER BY id", row_limit=7)
    assert result.columns == ("id",)
    assert result.rows == [(i,) for i in range(7)]


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ("SELECT CAST(name AS INTEGER) FROM people", "CUST283"),
        ("SELECT CAST(name AS DATE) FROM people", "CUST283"),
        ("SELECT id // (id - id) FROM people WHERE name LIKE 'Zelda%'", "CUST287"),
        ("SELECT 9223372036854775807 + id FROM people", "CUST284"),
        ("SELECT name + 1 FROM people", "CUST285"),
        ("SELECT * FROM nosuchtable WHERE name = 'Zelda Quuxworth1'", "CUST286"),
    ],
)
def test_engine_errors_are_translated_without_any_value(engine, sql: str, code: str) -> None:
    with pytest.raises(InputError) as caught:
        _run(engine, sql)
    assert caught.value.code == code
    text = caught.value.render()
    assert "Zelda" not in text and "Quuxworth" not in text
    assert "Error:" not in text  # no engine message text at all


def test_unknown_engine_errors_become_a_system_failure_without_their_text() -> None:
    error = translate(duckdb.IOException(f"could not read {SECRET_VALUE}"))
    assert isinstance(error, SystemFailure) and error.code == "CUST146"
    assert SECRET_VALUE not in error.render()


def test_unopenable_projection_is_a_system_failure(tmp_path) -> None:
    bad = tmp_path / "bad.duckdb"
    bad.write_bytes(b"not a database " * 100)
    with pytest.raises(SystemFailure) as caught:
        open_engine(bad)
    assert caught.value.code == "CUST144"


def test_cursors_share_the_locked_configuration(engine) -> None:
    cursor = engine.cursor()
    leaked = pa.table({"key": ["top-secret"]})
    with pytest.raises(duckdb.Error):
        cursor.execute("SET enable_external_access = true")
    with pytest.raises(duckdb.CatalogException):
        cursor.execute("SELECT * FROM leaked")
    assert cursor.execute("SELECT current_setting('enable_external_access')").fetchone() == (False,)
    cursor.close()
    del leaked


def test_a_result_over_the_byte_cap_is_refused_while_it_is_fetched(engine) -> None:
    # 50 rows of an 8-byte id and a ~17-character name: ~1,650 bytes counted, plus 8 per value
    sql = "SELECT id, name FROM people"
    whole = execute(engine, sql, row_limit=100, timeout_seconds=10, max_bytes=10_000)
    assert len(whole.rows) == 50
    with pytest.raises(RefusedError) as caught:
        execute(engine, sql, row_limit=100, timeout_seconds=10, max_bytes=1_000)
    assert caught.value.code == "CUST376"
    assert SECRET_VALUE not in caught.value.render()


def test_the_byte_cap_counts_every_chunk(engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from custodiet.gateway import execute as module

    monkeypatch.setattr(module, "CHUNK_VALUES", 2)  # one row per fetch
    sql = "SELECT id, name FROM people ORDER BY id"
    assert len(execute(engine, sql, row_limit=7, timeout_seconds=10, max_bytes=10_000).rows) == 7
    with pytest.raises(RefusedError) as caught:
        execute(engine, sql, row_limit=100, timeout_seconds=10, max_bytes=1_000)
    assert caught.value.code == "CUST376"


def test_no_time_left_is_a_timeout_naming_the_whole_limit(engine) -> None:
    with pytest.raises(RefusedError) as caught:
        execute(engine, "SELECT 1", row_limit=1, timeout_seconds=0, time_limit=30)
    assert caught.value.code == "CUST370"
    assert "30 s" in caught.value.message
