"""Fixtures shared by the whole suite.

Tests that touch the database take the ``database_url`` fixture (or ``network``), which
runs them on SQLite and on PostgreSQL. ``COOPNODE_TEST_BACKENDS`` narrows the list
(``sqlite`` or ``postgres``); on CI (``CI=true``) a missing PostgreSQL fails the run
instead of skipping its half.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tests.support.network import Network
from tests.support.postgres import PostgresCluster, find_pg_bin

BACKENDS = [
    b.strip() for b in os.environ.get("COOPNODE_TEST_BACKENDS", "sqlite,postgres").split(",")
]


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    if find_pg_bin() is None:
        message = (
            "PostgreSQL server programs not found (apt-get install postgresql, "
            "or set COOPNODE_PG_BIN)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_factory(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[[str], str]:
    """Makes a fresh, empty database per call, on the backend under test."""
    if backend == "sqlite":
        return lambda name: f"sqlite:///{tmp_path / (name + '.sqlite3')}"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return lambda name: cluster.create_database()


@pytest.fixture
def database_url(database_factory: Callable[[str], str]) -> str:
    return database_factory("test")


@pytest.fixture
async def network(tmp_path: Path, database_factory: Callable[[str], str]) -> AsyncIterator[Network]:
    net = Network(root=tmp_path / "nodes", database_url=database_factory)
    try:
        yield net
    finally:
        await net.aclose()
