"""The command line, run in-process: what an admin types and what it answers."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from node.cli import main
from node.services import tokens
from node.settings import load_settings
from node.storage import migrate
from node.storage.database import Database


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_init_writes_settings_creates_the_coop_and_prints_a_working_token(tmp_path: Path) -> None:
    data = tmp_path / "data"

    code, output = run(
        "init", "--domain", "Coop.Example", "--name", "Fair Trade Market", "--data-dir", str(data)
    )

    assert code == 0, output
    settings = load_settings(data)
    assert settings.domain == "coop.example"
    assert settings.base_url == "https://coop.example"
    assert not settings.local
    token = output.split("keep it safe): ")[1].split()[0]
    db = Database(settings.database_url)
    try:
        assert db.read_sync(lambda c: tokens.find_token(c, token)) is not None
    finally:
        db.close()


def test_init_refuses_an_existing_node_and_a_bad_domain(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run("init", "--domain", "a.example", "--name", "A", "--data-dir", str(data))[0] == 0

    code, output = run("init", "--domain", "b.example", "--name", "B", "--data-dir", str(data))
    assert code == 1
    assert "already holds a node" in output
    assert load_settings(data).domain == "a.example"

    other = tmp_path / "other"
    code, output = run(
        "init", "--domain", "https://b.example/", "--name", "B", "--data-dir", str(other)
    )
    assert code == 1
    assert "not a URL" in output
    assert not other.exists()


def test_the_data_dir_can_come_from_the_environment(tmp_path: Path) -> None:
    data = tmp_path / "from-env"
    env = {"COOPNODE_DATA_DIR": str(data)}

    assert run("init", "--domain", "a.example", "--name", "A", env=env)[0] == 0
    code, output = run("tokens", "list", env=env)

    assert code == 0
    assert "admin (created by init)" in output


def test_serve_refuses_an_outdated_schema_until_migrate_upgrades_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run("init", "--domain", "a.example", "--name", "A", "--data-dir", str(data))[0] == 0
    # As if the node had been created by the previous version of coopnode.
    from node.storage.engine import create_null_pool_engine

    engine = create_null_pool_engine(load_settings(data).database_url)
    migrate.upgrade_or_downgrade(engine, "0001")
    engine.dispose()

    code, output = run("serve", "--data-dir", str(data))
    assert code == 1
    assert "coopnode migrate" in output

    code, output = run("migrate", "--data-dir", str(data))
    assert code == 0
    assert f"from 0001 to {migrate.HEAD_REVISION}" in output
    assert "Admin API token" not in output


def test_serve_refuses_a_schema_from_a_newer_coopnode(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run("init", "--domain", "a.example", "--name", "A", "--data-dir", str(data))[0] == 0
    from node.storage.engine import create_null_pool_engine

    engine = create_null_pool_engine(load_settings(data).database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()

    code, output = run("serve", "--data-dir", str(data))
    assert code == 1
    assert "newer version of coopnode" in output


def test_a_local_node_is_served_only_at_its_own_address(tmp_path: Path) -> None:
    data = tmp_path / "data"
    from node.settings import Settings, write_config

    write_config(Settings(data_dir=data, domain="127.0.0.1:8000", name="Local", local=True))

    code, output = run("serve", "--port", "8001", "--data-dir", str(data))

    assert code == 1
    assert "127.0.0.1:8000" in output


def test_a_new_local_node_needs_a_concrete_host(tmp_path: Path) -> None:
    code, output = run("serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path / "d"))  # noqa: S104

    assert code == 1
    assert "concrete --host" in output


def test_tokens_are_created_listed_and_revoked(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    assert run("init", "--domain", "a.example", "--name", "A", "--data-dir", data)[0] == 0

    code, token = run("tokens", "create", "--name", "phone", "--data-dir", data)
    assert code == 0
    assert token.strip().startswith("cn_")
    listing = run("tokens", "list", "--data-dir", data)[1]
    assert "phone" in listing
    assert token.strip() not in listing
    phone_id = next(line.split("\t")[0] for line in listing.splitlines() if "phone" in line)

    assert run("tokens", "revoke", phone_id, "--data-dir", data)[0] == 0
    assert "revoked" in run("tokens", "list", "--data-dir", data)[1]
    code, output = run("tokens", "revoke", phone_id, "--data-dir", data)
    assert code == 1
    assert "no active token" in output


def test_worker_on_sqlite_explains_that_it_needs_postgresql(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    assert run("init", "--domain", "a.example", "--name", "A", "--data-dir", data)[0] == 0

    code, output = run("worker", "--data-dir", data)

    assert code == 1
    assert "PostgreSQL" in output


def test_serve_without_workers_on_sqlite_explains_that_it_needs_postgresql(
    tmp_path: Path,
) -> None:
    data = str(tmp_path / "data")
    assert run("init", "--domain", "a.example", "--name", "A", "--data-dir", data)[0] == 0

    code, output = run("serve", "--no-workers", "--data-dir", data)

    assert code == 1
    assert "--no-workers needs PostgreSQL" in output


def test_commands_on_a_missing_node_say_how_to_create_one(tmp_path: Path) -> None:
    code, output = run("tokens", "list", "--data-dir", str(tmp_path / "none"))

    assert code == 1
    assert "coopnode init" in output


def test_migrate_on_a_current_database_changes_nothing(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    assert run("init", "--domain", "a.example", "--name", "A", "--data-dir", data)[0] == 0

    code, output = run("migrate", "--data-dir", data)

    assert code == 0
    assert "up to date" in output


def test_init_records_the_database_url_and_keeps_files_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    elsewhere = tmp_path / "db" / "coop.sqlite3"

    code, output = run(
        "init",
        "--domain",
        "a.example",
        "--name",
        "A",
        "--data-dir",
        str(data),
        "--database-url",
        f"sqlite:///{elsewhere}",
    )

    assert code == 0, output
    assert load_settings(data).database_url == f"sqlite:///{elsewhere}"
    assert elsewhere.exists()
    assert not (data / "coopnode.sqlite3").exists()
    assert data.stat().st_mode & 0o777 == 0o700
    assert (data / "coopnode.toml").stat().st_mode & 0o777 == 0o600
    assert elsewhere.stat().st_mode & 0o777 == 0o600


def test_an_empty_database_is_refused_until_migrate_creates_the_coop(tmp_path: Path) -> None:
    data = tmp_path / "data"
    from node.settings import Settings, write_config

    # As after pointing a configured node at a new, empty PostgreSQL database.
    write_config(Settings(data_dir=data, domain="a.example", name="A"))

    code, output = run("serve", "--data-dir", str(data))
    assert code == 1
    assert "coopnode migrate" in output

    code, output = run("migrate", "--data-dir", str(data))
    assert code == 0, output
    assert "Admin API token" in output
    code, output = run("migrate", "--data-dir", str(data))
    assert "up to date" in output
    assert "Admin API token" not in output


def test_profile_shows_and_changes_the_coops_name(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run("init", "--domain", "a.example", "--name", "A", "--data-dir", str(data))[0] == 0

    changed = run("profile", "--name", "Marché", "--summary", "Fair trade", "--data-dir", str(data))
    shown = run("profile", "--data-dir", str(data))
    empty = run("profile", "--name", " ", "--data-dir", str(data))

    assert changed == (0, "Profile updated; sent to 0 inboxes.\nMarché\nFair trade\n")
    assert shown == (0, "Marché\nFair trade\n")
    assert empty[0] == 1
    assert "cannot be empty" in empty[1]
    assert run("profile", "--data-dir", str(data))[1] == "Marché\nFair trade\n"
