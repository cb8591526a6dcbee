"""`coopnode migrate` says what it will do before it does it, does nothing with
--dry-run, and refuses to run under a serving node where the engine does not allow it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from node.cli import main
from node.settings import load_settings
from node.storage import migrate
from node.storage.engine import create_null_pool_engine
from tests.support.postgres import PostgresCluster
from tests.support.processes import run_coopnode, start_serve


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def move_to(data: Path, revision: str) -> sa.Engine:
    """Put the node's schema back at ``revision``, as if an older coopnode had made it."""
    engine = create_null_pool_engine(load_settings(data).database_url)
    migrate.upgrade_or_downgrade(engine, revision)
    return engine


def test_migrate_prints_its_steps_and_a_dry_run_changes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run("init", "--domain", "a.example", "--name", "A", "--data-dir", str(data))[0] == 0
    engine = move_to(data, "0011")

    code, output = run("migrate", "--dry-run", "--data-dir", str(data))

    assert code == 0, output
    assert f"The schema goes from 0011 to {migrate.HEAD_REVISION}, in 15 step(s):" in output
    assert "  0012  Indexes for the retention:" in output
    assert "  0013  How deliveries to each host are signed:" in output
    assert "  0014  Indexes for the outbox collection:" in output
    assert "  0015  What `coopnode doctor` reads:" in output
    assert "  0016  Orders on both sides, and the counted stock" in output
    assert "  0017  The Creates of withdrawn offers leave the outbox collection:" in output
    assert "  0018  Networks of co-ops:" in output
    assert "  0019  Email: members' addresses" in output
    assert "  0020  Discussion threads:" in output
    assert "  0021  The catalogue's words:" in output
    assert "  0022  The catalogue's prices as words of the text index:" in output
    assert "  0023  SQLite's text index keyed by the hour of publication:" in output
    assert "  0024  PostgreSQL's text index knows each offer's period of publication:" in output
    assert (
        "  0025  PostgreSQL's text index knows the ceilings of each offer's price and its region:"
        in output
    )
    assert (
        "  0026  PostgreSQL's text indexes of the offers keep their unmerged entries short:"
        in output
    )
    assert "Dry run: nothing was changed." in output
    assert migrate.current_revision(engine) == "0011"
    # SQLite keeps no old rows to vacuum after 0022 rewrites every offer.
    assert "VACUUM" not in output

    code, output = run("migrate", "--data-dir", str(data))

    assert code == 0, output
    assert "  0012  Indexes for the retention:" in output
    assert f"Migrated the schema from 0011 to {migrate.HEAD_REVISION}." in output
    assert "VACUUM" not in output
    assert migrate.current_revision(engine) == migrate.HEAD_REVISION
    engine.dispose()


def test_migrate_refuses_a_schema_from_a_newer_coopnode(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run("init", "--domain", "a.example", "--name", "A", "--data-dir", str(data))[0] == 0
    engine = create_null_pool_engine(load_settings(data).database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()

    code, output = run("migrate", "--data-dir", str(data))

    assert code == 1
    assert "revision 9999" in output
    assert "upgrade coopnode" in output


def test_on_sqlite_migrate_refuses_while_the_node_serves(tmp_path: Path) -> None:
    data = tmp_path / "data"
    node = start_serve(data)
    try:
        node.wait_ready()
        # The node's code is older than the one installed: its schema is behind.
        engine = move_to(data, "0013")

        refused = run_coopnode("migrate", "--data-dir", str(data))

        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "  0014  Indexes for the outbox collection:" in refused.stdout
        assert "another process has the SQLite database open" in refused.stderr
        assert "stop `coopnode serve`" in refused.stderr
        assert migrate.current_revision(engine) == "0013"
    finally:
        node.stop()

    done = run_coopnode("migrate", "--data-dir", str(data))

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Migrated the schema from 0013 to {migrate.HEAD_REVISION}." in done.stdout
    assert migrate.current_revision(engine) == migrate.HEAD_REVISION
    engine.dispose()


def test_on_postgresql_steps_that_only_add_run_while_the_node_serves(
    tmp_path: Path, postgres_cluster: PostgresCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    url = postgres_cluster.create_database()
    init = ("init", "--domain", "a.example", "--name", "A", "--data-dir", str(data))
    assert run(*init, "--database-url", url)[0] == 0
    engine = move_to(data, "0012")
    serving = create_null_pool_engine(url)
    # As a serving node does: a session open on the database, idle between requests.
    with serving.connect() as session:
        session.exec_driver_sql("SELECT 1")

        code, output = run("migrate", "--data-dir", str(data))

        assert code == 0, output
        assert "1 other session(s) have the database open" in output
        assert "restart `coopnode serve`" in output
        assert migrate.current_revision(engine) == migrate.HEAD_REVISION
        # 0022 rewrote every offer: the command that vacuums them, which runs as given.
        assert "These steps rewrote every row of offers" in output
        vacuum = f"psql {make_url(url).database} -c 'VACUUM FULL offers' -c 'VACUUM ANALYZE offers'"
        assert f"\n  {vacuum}\n" in output
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as admin:
            for statement in re.findall(r"-c '([^']*)'", vacuum):
                admin.exec_driver_sql(statement)

        # A step that changes what the older code reads waits for the node to stop.
        migrate.upgrade_or_downgrade(engine, "0012")
        monkeypatch.setattr(migrate, "NEEDS_STOPPED_NODE", frozenset({"0014"}))

        code, output = run("migrate", "--data-dir", str(data))

        assert code == 1
        assert "  0014  Indexes for the outbox collection:" in output
        assert "step(s) 0014 change what the running version reads" in output
        assert migrate.current_revision(engine) == "0012"

    code, output = run("migrate", "--data-dir", str(data))

    assert code == 0, output
    assert "other session" not in output
    assert migrate.current_revision(engine) == migrate.HEAD_REVISION
    serving.dispose()
    engine.dispose()


def test_a_new_postgresql_database_has_nothing_to_vacuum(postgres_cluster: PostgresCluster) -> None:
    from node.services.setup import plan_migration

    plan = plan_migration(postgres_cluster.create_database())

    assert [step.revision for step in plan.steps][-1] == migrate.HEAD_REVISION
    assert "0022" in [step.revision for step in plan.steps]
    assert plan.to_vacuum == ()
    assert plan.vacuum is None
