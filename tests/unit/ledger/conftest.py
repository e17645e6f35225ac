"""Ledger fixtures: stores on SQLite and PostgreSQL (fresh schema per test), ledgers with keys."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from custodiet.ledger import note
from custodiet.ledger.writer import Ledger, open_ledger
from tests.needs import unavailable

POSTGRES_USERS = ("postgres", "root")
POSTGRES = "postgresql://{user}@127.0.0.1:5432/test"


def postgres_base_url() -> str:
    """A reachable server's URL; under CI=true an unreachable server fails, else it skips."""
    for user in POSTGRES_USERS:
        url = POSTGRES.format(user=user)
        try:
            psycopg.connect(url, connect_timeout=3).close()
        except psycopg.Error:
            continue
        return url
    unavailable(
        "PostgreSQL at 127.0.0.1:5432 (database test) is not reachable",
        "start a server with trust auth and a database named test",
    )


@pytest.fixture
def postgres_url() -> Iterator[str]:
    base = postgres_base_url()
    schema = f"ledger_test_{uuid.uuid4().hex[:12]}"
    yield f"{base}?schema={schema}"
    with psycopg.connect(base, autocommit=True) as con:
        con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


ORIGIN = "custodiet.test/ledger"


def make_key(directory: Path, name: str = "log.ed25519") -> Path:
    path = directory / name
    note.write_private_key(path)
    return path


@pytest.fixture
def ledger(store_url: str, tmp_path: Path) -> Iterator[Ledger]:
    opened = open_ledger(store_url, ORIGIN, make_key(tmp_path), create=True)
    yield opened
    opened.close()


@pytest.fixture
def sqlite_ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = open_ledger(
        f"sqlite:///{tmp_path / 'ledger.db'}", ORIGIN, make_key(tmp_path), create=True
    )
    yield opened
    opened.close()
