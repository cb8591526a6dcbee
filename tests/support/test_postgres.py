"""The throwaway cluster must isolate databases and always clean up after itself."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.support.postgres import (
    INSTALL_HINT,
    PG_BIN_ENV,
    PostgresCluster,
    PostgresClusterError,
    find_pg_bin,
)

pytestmark = pytest.mark.postgres

REPO_ROOT = Path(__file__).resolve().parents[2]


def _require_postgres() -> None:
    # On CI a missing server must be a failure, or the PostgreSQL half of the
    # suite could silently stop running.
    if find_pg_bin() is not None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(INSTALL_HINT)
    pytest.skip(INSTALL_HINT)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A reaped-late zombie counts as gone.
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


def _postmaster_pid(pg: PostgresCluster) -> int:
    return int((pg.data_dir / "postmaster.pid").read_text().splitlines()[0])


def _wait_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_databases_are_isolated_and_stop_cleans_up() -> None:
    _require_postgres()
    with PostgresCluster() as pg:
        url_a = pg.create_database()
        url_b = pg.create_database("coopnode_isolation_b")
        assert url_a != url_b
        assert url_b == f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}/coopnode_isolation_b"

        engine_a = create_engine(url_a)
        engine_b = create_engine(url_b)
        try:
            with engine_a.begin() as conn:
                conn.execute(text("CREATE TABLE offers (id integer PRIMARY KEY, title text)"))
                conn.execute(text("INSERT INTO offers VALUES (1, 'bike repair')"))
            with engine_a.connect() as conn:
                assert conn.execute(text("SELECT title FROM offers")).scalar_one() == "bike repair"
            with engine_b.connect() as conn:
                assert inspect(conn).get_table_names() == []
                current = conn.execute(text("SELECT current_database()")).scalar_one()
                assert current == "coopnode_isolation_b"
            # Dropping works even while a pooled connection is still open.
            with engine_b.connect():
                pg.drop_database("coopnode_isolation_b")
        finally:
            engine_a.dispose()
            engine_b.dispose()

        admin = create_engine(pg.admin_url)
        try:
            with admin.connect() as conn:
                names = conn.execute(text("SELECT datname FROM pg_database")).scalars().all()
                show = {
                    name: conn.execute(text(f"SHOW {name}")).scalar_one()
                    for name in ("fsync", "max_connections", "listen_addresses", "lc_collate")
                }
        finally:
            admin.dispose()
        assert "coopnode_isolation_b" not in names
        assert url_a.rsplit("/", 1)[1] in names
        assert show == {
            "fsync": "off",
            "max_connections": "200",
            "listen_addresses": "127.0.0.1",
            "lc_collate": "C",
        }

        base = pg.base_dir
        postmaster = _postmaster_pid(pg)
        pg.stop()
        assert not base.exists()
        assert _wait_gone(postmaster)
        pg.stop()  # a second stop is harmless
        assert not pg.running
    # ...and so is the context manager's stop after an explicit one.


def test_failed_start_reports_server_log_and_cleans_up() -> None:
    _require_postgres()
    pg = PostgresCluster(settings={"shared_buffers": "not-a-size"})
    with pytest.raises(PostgresClusterError, match=r"(?s)server log.*shared_buffers"):
        pg.start()
    assert not pg.running
    with pytest.raises(PostgresClusterError, match="not started"):
        _ = pg.base_dir
    pg.stop()


def test_interrupted_run_still_removes_cluster() -> None:
    """A run killed by Ctrl-C never reaches stop(); the atexit hook must."""
    _require_postgres()
    script = textwrap.dedent(
        """
        import os, signal
        from tests.support.postgres import PostgresCluster
        pg = PostgresCluster()
        pg.start()
        pid = (pg.data_dir / "postmaster.pid").read_text().splitlines()[0]
        print(pg.base_dir, pid, flush=True)
        os.kill(os.getpid(), signal.SIGINT)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "KeyboardInterrupt" in result.stderr, result.stderr
    base, pid = result.stdout.split()
    assert not Path(base).exists()
    assert _wait_gone(int(pid))


@pytest.mark.parametrize("name", ["Bad", "1abc", "a;drop", "a" * 64, "postgres", "template1"])
def test_unsafe_database_names_are_rejected(name: str) -> None:
    # Validation happens before any connection, so no server is needed.
    with pytest.raises(ValueError, match=r"name|built-in"):
        PostgresCluster().create_database(name)
    with pytest.raises(ValueError, match=r"name|built-in"):
        PostgresCluster().drop_database(name)


def test_env_override_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("initdb", "pg_ctl"):
        program = tmp_path / name
        program.write_text("#!/bin/sh\nexit 1\n")
        program.chmod(program.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv(PG_BIN_ENV, str(tmp_path))
    assert find_pg_bin() == tmp_path


def test_bad_env_override_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PG_BIN_ENV, str(tmp_path))
    with pytest.warns(UserWarning, match=PG_BIN_ENV):
        found = find_pg_bin()
    assert found != tmp_path
