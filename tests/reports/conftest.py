"""Ledgers for the report tests: fresh SQLite files (schema by the real migrations), and a
PostgreSQL schema of its own when PostgreSQL is reachable."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from axtrace.ledger.db import make_engine, upgrade
from axtrace.settings import get_settings
from tests.reports.builder import Ledger, three_sites

POSTGRES_URL = os.environ.get("AXTRACE_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty ledger migrated once per session; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "ledger.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def ledger_url(
    migrated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    """A fresh, migrated SQLite ledger that this process's settings point at."""
    path = tmp_path / "ledger.db"
    shutil.copyfile(migrated, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("AXTRACE_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


@pytest.fixture
def engine(ledger_url: str) -> Iterator[Engine]:
    engine = make_engine(ledger_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def ledger(session: Session) -> Ledger:
    return Ledger(session)


@pytest.fixture
def three(ledger: Ledger) -> Ledger:
    """alpha, beta and gamma as worked out by hand in test_figures.py."""
    three_sites(ledger)
    return ledger


@pytest.fixture
def postgres_engine() -> Iterator[Engine]:
    """A migrated ledger in a schema of its own on PostgreSQL, dropped afterwards."""
    admin = make_engine(POSTGRES_URL)
    schema = f"reports_{uuid.uuid4().hex[:10]}"
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except Exception as exc:  # unreachable PostgreSQL: skip unless services are required
        admin.dispose()
        if os.environ.get("AXTRACE_REQUIRE_SERVICES") == "1":
            raise
        pytest.skip(f"PostgreSQL not reachable: {type(exc).__name__}")
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    upgrade(url)
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()
