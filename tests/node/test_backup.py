"""`coopnode backup` and `coopnode restore` on both engines: the archive's contents and
manifest, a restore that gives back the same rows, keys and photos, a SQLite backup
restored into PostgreSQL, a copy that stays consistent while rows are written, and
each refusal in plain words."""

from __future__ import annotations

import io
import json
import tarfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, select

from node.cli import main
from node.services.backup import MANIFEST, Manifest, create_backup
from node.services.backup_engines import BackupError
from node.services.restore import restore_backup
from node.settings import load_settings
from node.storage import migrate
from node.storage.database import Database
from node.storage.engine import create_null_pool_engine
from node.storage.migrate import HEAD_REVISION
from node.storage.tables import actor_keys, actors, domains, media, members
from tests.node.cli.test_cli_media import png
from tests.support.postgres import PostgresCluster

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def new_node(data: Path, database_url: str) -> Path:
    code, output = run(
        "init",
        "--domain",
        "coop.example",
        "--name",
        "Coop",
        "--database-url",
        "" if database_url.startswith("sqlite") else database_url,
        "--data-dir",
        str(data),
    )
    assert code == 0, output
    for name in ("ana", "ben"):
        code, output = run("members", "add", name, "--data-dir", str(data))
        assert code == 0, output
    photo = data.parent / "honey.png"
    photo.write_bytes(png())
    code, output = run("media", "upload", str(photo), "--data-dir", str(data))
    assert code == 0, output
    return data


def rows(data: Path, database_url: str | None = None) -> dict[str, list[dict[str, Any]]]:
    settings = load_settings(data)
    db = Database(database_url or settings.database_url, readers=1)

    def read(conn: Any) -> dict[str, list[dict[str, Any]]]:
        return {
            table.name: [
                dict(r) for r in conn.execute(select(table).order_by(table.c.id)).mappings()
            ]
            for table in (actors, actor_keys, members, media)
        }

    try:
        return db.read_sync(read)
    finally:
        db.close()


def test_a_backup_restores_into_a_new_data_directory(
    tmp_path: Path, database_factory: Callable[[str], str]
) -> None:
    url = database_factory("source")
    data = new_node(tmp_path / "a", url)
    archive = tmp_path / "backups" / "coop.tar.gz"

    code, output = run("backup", str(archive), "--data-dir", str(data))

    assert code == 0, output
    assert "2 members" in output
    assert "1 photos" in output
    assert archive.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in archive.parent.iterdir()] == ["coop.tar.gz"]
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        manifest = Manifest.from_json(tar.extractfile(MANIFEST).read().decode())  # type: ignore[union-attr]
    [photo] = [n for n in names if n.startswith("media/")]
    assert names == {MANIFEST, "coopnode.toml", photo, manifest.database_file}
    assert set(manifest.files) == names - {MANIFEST}
    assert manifest.schema_revision == HEAD_REVISION
    assert manifest.counts["members"] == 2
    assert manifest.counts["media_files"] == 1
    assert manifest.counts["actor_keys"] == len(rows(data)["actor_keys"])

    target_url = database_factory("target")
    restored = tmp_path / "b"
    extra = [] if target_url.startswith("sqlite") else ["--database-url", target_url]
    code, output = run("restore", str(archive), "--data-dir", str(restored), *extra)

    assert code == 0, output
    assert rows(restored) == rows(data)
    assert (restored / photo).read_bytes() == png()
    assert load_settings(restored).domain == "coop.example"
    assert (restored / "coopnode.toml").stat().st_mode & 0o777 == 0o600


def test_a_sqlite_backup_restores_into_postgresql(
    tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    data = new_node(tmp_path / "a", "sqlite")
    archive = tmp_path / "coop.tar.gz"
    assert run("backup", str(archive), "--data-dir", str(data))[0] == 0
    target = postgres_cluster.create_database()

    code, output = run(
        "restore", str(archive), "--data-dir", str(tmp_path / "b"), "--database-url", target
    )

    assert code == 0, output
    assert load_settings(tmp_path / "b").database_url == target
    assert rows(tmp_path / "b") == rows(data)
    # The sequences continue after the copied ids.
    code, output = run("members", "add", "chloe", "--data-dir", str(tmp_path / "b"))
    assert code == 0, output
    assert [m["id"] for m in rows(tmp_path / "b")["members"]] == [1, 2, 3]


def test_a_postgresql_backup_does_not_go_back_to_sqlite(
    tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    data = new_node(tmp_path / "a", postgres_cluster.create_database())
    archive = tmp_path / "coop.tar.gz"
    assert run("backup", str(archive), "--data-dir", str(data))[0] == 0
    sqlite = f"sqlite:///{tmp_path / 'b.sqlite3'}"

    with pytest.raises(BackupError, match="restore it into PostgreSQL"):
        restore_backup(archive, tmp_path / "b", database_url=sqlite)


def test_the_copy_is_consistent_while_rows_are_written(tmp_path: Path) -> None:
    data = new_node(tmp_path / "a", "sqlite")
    settings = load_settings(data)
    db = Database(settings.database_url, readers=1)
    stop = threading.Event()
    written = [0]

    def keep_writing() -> None:
        while not stop.is_set():
            n = written[0]
            db.write_sync(
                lambda c, n=n: c.execute(
                    insert(domains),
                    [
                        {"host": f"d{n}-{i}.example", "policy": "block", "updated_at": NOW}
                        for i in range(50)
                    ],
                )
            )
            written[0] += 1

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        manifests = [create_backup(settings, tmp_path / f"{i}.tar.gz", now=NOW) for i in range(3)]
    finally:
        stop.set()
        writer.join()
        db.close()

    assert written[0] > 0
    for i, manifest in enumerate(manifests):
        assert manifest.counts["domains"] % 50 == 0
        # The restore counts the restored rows against the manifest.
        restore_backup(tmp_path / f"{i}.tar.gz", tmp_path / f"r{i}")
    assert manifests[-1].counts["domains"] >= manifests[0].counts["domains"]


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    data = new_node(tmp_path / "a", "sqlite")
    path = tmp_path / "coop.tar.gz"
    create_backup(load_settings(data), path, now=NOW)
    return path


def rewritten(archive: Path, change: Callable[[str, bytes], bytes | None]) -> Path:
    """A copy of ``archive`` with each member's bytes changed by ``change`` (None: left out)."""
    out = archive.with_name("changed.tar.gz")
    with tarfile.open(archive) as source, tarfile.open(out, "w:gz") as target:
        for member in source.getmembers():
            data = change(member.name, source.extractfile(member).read())  # type: ignore[union-attr]
            if data is not None:
                member.size = len(data)
                target.addfile(member, io.BytesIO(data))
    return out


def test_a_used_data_directory_is_refused(tmp_path: Path, archive: Path) -> None:
    code, output = run("restore", str(archive), "--data-dir", str(tmp_path / "a"))

    assert code == 1
    assert "already holds a node (coopnode.toml, coopnode.sqlite3, media/)" in output


def test_a_database_with_tables_is_refused(tmp_path: Path, archive: Path) -> None:
    used = f"sqlite:///{tmp_path / 'a' / 'coopnode.sqlite3'}"

    with pytest.raises(BackupError, match="already has tables: restore into a new one"):
        restore_backup(archive, tmp_path / "b", database_url=used)
    assert not (tmp_path / "b" / "coopnode.toml").exists()


def test_a_newer_schema_is_refused(tmp_path: Path, archive: Path) -> None:
    def newer(name: str, data: bytes) -> bytes:
        if name != MANIFEST:
            return data
        return json.dumps({**json.loads(data), "schema_revision": "9999"}).encode()

    code, output = run("restore", str(rewritten(archive, newer)), "--data-dir", str(tmp_path / "b"))

    assert code == 1
    assert f"schema revision 9999 is newer than this coopnode's ({HEAD_REVISION})" in output
    assert not (tmp_path / "b" / "coopnode.sqlite3").exists()


def test_a_damaged_or_incomplete_archive_is_refused(tmp_path: Path, archive: Path) -> None:
    damaged = rewritten(archive, lambda n, d: d + b"\n" if n == "coopnode.toml" else d)
    with pytest.raises(BackupError, match=r"coopnode\.toml does not match its checksum"):
        restore_backup(damaged, tmp_path / "b")

    without_photo = rewritten(archive, lambda n, d: None if n.startswith("media/") else d)
    with pytest.raises(BackupError, match="does not match its manifest: missing media/"):
        restore_backup(without_photo, tmp_path / "c")

    not_one = tmp_path / "notes.tar.gz"
    not_one.write_bytes(b"not an archive")
    code, output = run("restore", str(not_one), "--data-dir", str(tmp_path / "d"))
    assert code == 1
    assert "is not a readable coopnode backup" in output


def test_a_new_backup_replaces_the_previous_one_whole(tmp_path: Path, archive: Path) -> None:
    data = tmp_path / "a"
    assert run("members", "add", "chloe", "--data-dir", str(data))[0] == 0

    code, output = run("backup", str(archive), "--data-dir", str(data))

    assert code == 0, output
    assert "3 members" in output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "coop.tar.gz", "honey.png"]


def test_without_pg_dump_a_postgresql_backup_says_what_to_install(
    tmp_path: Path, postgres_cluster: PostgresCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = new_node(tmp_path / "a", postgres_cluster.create_database())
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))

    with pytest.raises(BackupError, match="pg_dump was not found on PATH: install"):
        create_backup(load_settings(data), tmp_path / "coop.tar.gz", now=NOW)
    assert not (tmp_path / "coop.tar.gz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "honey.png"]


def test_a_backup_from_an_older_schema_restores_and_asks_for_migrate(tmp_path: Path) -> None:
    data = new_node(tmp_path / "a", "sqlite")
    engine = create_null_pool_engine(load_settings(data).database_url)
    migrate.upgrade_or_downgrade(engine, "0014")  # as an older coopnode left it
    engine.dispose()
    code, output = run("backup", str(tmp_path / "old.tar.gz"), "--data-dir", str(data))
    assert code == 0, output
    assert "sqlite schema 0014" in output
    restored = tmp_path / "b"

    code, output = run("restore", str(tmp_path / "old.tar.gz"), "--data-dir", str(restored))

    assert code == 0, output
    assert "its schema is older than this coopnode's: run `coopnode migrate` next" in output
    code, output = run("migrate", "--data-dir", str(restored))
    assert code == 0, output
    assert f"Migrated the schema from 0014 to {HEAD_REVISION}." in output
    assert rows(restored) == rows(data)
