"""Store fixtures for both backends: a SQLite file in a temporary folder, or a fresh schema in a
PostgreSQL database that this test run creates (`dcsentry_t_<random>`) and drops at the end, so
concurrent runs on the machine's shared server never see each other's rows.

Use: `from storekit import pg_database, pg_url, store_url  # noqa: F401` in a test module; a test
that takes `store_url` runs once per backend. The server is $DCSENTRY_TEST_PG (default
postgresql://127.0.0.1:5432/test, trust auth as the current user). An unreachable server fails the
test with what to do: a skipped backend would prove nothing.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest

PG_BASE = os.environ.get("DCSENTRY_TEST_PG", "postgresql://127.0.0.1:5432/test")


def with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


def with_schema(url: str, schema: str) -> str:
    """The URL whose connections use `schema` (libpq `options=-csearch_path=...`)."""
    parts = urlsplit(url)
    opt = "options=" + quote(f"-csearch_path={schema}", safe="")
    return urlunsplit(parts._replace(query="&".join(q for q in (parts.query, opt) if q)))


def admin() -> psycopg.Connection:
    try:
        return psycopg.connect(PG_BASE, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        pytest.fail(f"PostgreSQL is required for the store tests and is not reachable at {PG_BASE}: {exc}\n"
                    "Start it (CI and the dev machines run it on 127.0.0.1:5432 with trust auth) or point "
                    "DCSENTRY_TEST_PG at one.", pytrace=False)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of this test run; dropped (connections and all) at the end."""
    name = f"dcsentry_t_{secrets.token_hex(6)}"
    with admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(PG_BASE, name)
    finally:
        with admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture()
def pg_url(pg_database: str) -> str:
    """A fresh, empty schema in the run's database: each test starts from nothing."""
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return with_schema(pg_database, schema)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test that takes it runs on both backends."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_url")
