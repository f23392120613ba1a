"""The machine's PostgreSQL and Redis, borrowed for one test module and handed back clean.

A test that needs them calls :func:`require`: it skips when the service is unreachable, or fails
when ``AXTRACE_REQUIRE_SERVICES=1`` (CI, where ``.ci/run`` starts them). Each module gets its own
throw-away PostgreSQL databases (dropped after, even with connections left open) and one Redis
database number nobody else is using (claimed with a key, flushed after).
"""

from __future__ import annotations

import importlib.util
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
CLAIM_KEY = "axtrace:scale:claimed-by"


def postgres_reachable() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        import psycopg

        with psycopg.connect(_admin_dsn(), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"PostgreSQL at {PG_HOST}:{PG_PORT} unreachable: {exc}"
    return None


def redis_reachable() -> str | None:
    """None when Redis answers and prefect-redis is importable, else why not."""
    if importlib.util.find_spec("prefect_redis") is None:  # the server imports it by name
        return "prefect-redis is not installed: pip install prefect-redis"
    import redis
    try:
        with redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=3) as client:
            client.ping()
    except Exception as exc:
        return f"Redis at {REDIS_HOST}:{REDIS_PORT} unreachable: {exc}"
    return None


def require(*problems: str | None) -> None:
    """Skip (or, with ``AXTRACE_REQUIRE_SERVICES=1``, fail) naming what is missing."""
    missing = [p for p in problems if p]
    if not missing:
        return
    if os.environ.get("AXTRACE_REQUIRE_SERVICES") == "1":
        pytest.fail("; ".join(missing))
    pytest.skip("; ".join(missing))


def _admin_dsn(database: str = "postgres") -> str:
    return f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={database}"


@contextmanager
def temp_database(prefix: str = "axtrace_scale") -> Iterator[str]:
    """A fresh, empty database (its name); dropped afterwards, connections and all."""
    import psycopg

    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def redis_database() -> Iterator[int]:
    """A Redis database number that was empty, claimed for us; flushed afterwards."""
    import redis

    token = secrets.token_hex(8)
    for number in range(15, 0, -1):
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=number)
        try:
            if client.set(CLAIM_KEY, token, nx=True, ex=6 * 3600) and client.dbsize() == 1:
                break
            if client.get(CLAIM_KEY) == token.encode():
                client.delete(CLAIM_KEY)  # ours, but someone else's data is there too
        finally:
            client.close()
    else:
        raise RuntimeError("no empty Redis database (1-15) to borrow")
    try:
        yield number
    finally:
        with redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=number) as client:
            client.flushdb()
