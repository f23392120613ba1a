"""The ledger on PostgreSQL goes away: the intake answers 503, and nothing accepted is lost."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from sqlmodel import Session, select

from axtrace.ledger.db import make_engine
from axtrace.ledger.models import Alert
from axtrace.runtime import start_child, stop, wait_healthy
from axtrace.testing import Stack, free_port
from tests.scale.services import _admin_dsn, postgres_reachable, require, temp_database

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def pg_intake(stack: Stack) -> Iterator[tuple[httpx.Client, str, str]]:
    """An intake (no dispatcher) whose ledger is a fresh PostgreSQL database."""
    require(postgres_reachable())
    with temp_database("axtrace_rel") as database:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
        env = {**stack.env, "AXTRACE_DATABASE_URL": url, "AXTRACE_KNOWN_SITES": "alpha"}
        stack_cli = Stack(stack.workdir, stack.sites, env, stack.api_port)
        stack_cli.axtrace("db", "upgrade")
        port = free_port()
        proc = start_child(["intake", "--port", str(port), "--no-background"],
                           stack.workdir / "logs" / "pg-intake.log", env)
        try:
            wait_healthy(f"http://127.0.0.1:{port}/healthz", timeout=60, proc=proc)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                yield client, database, url
        finally:
            stop(proc)
            stack_cli.http.close()


def deliver(client: httpx.Client, key: str) -> int:
    body = json.dumps({"site": "alpha", "key": key, "title": f"PG {key}"})
    return client.post("/v1/alerts", content=body,
                       headers={"content-type": "application/json"}).status_code


def database_reachable(database: str, allowed: bool) -> None:
    with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s AND pid <> pg_backend_pid()", (database,))


def test_postgresql_away_gets_503_and_after_recovery_every_accepted_alert_is_there(
    pg_intake: tuple[httpx.Client, str, str],
) -> None:
    client, database, url = pg_intake
    before = {f"before-{i}": deliver(client, f"before-{i}") for i in range(3)}
    assert set(before.values()) == {202}
    database_reachable(database, allowed=False)
    try:
        during = {f"during-{i}": deliver(client, f"during-{i}") for i in range(3)}
    finally:
        database_reachable(database, allowed=True)
    assert set(during.values()) == {503}, "a database outage is 503 (senders retry)"
    retried = {key: deliver(client, key) for key in during}
    assert set(retried.values()) == {202}
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            keys = set(session.exec(select(Alert.key)).all())
    finally:
        engine.dispose()
    assert keys == set(before) | set(during)
