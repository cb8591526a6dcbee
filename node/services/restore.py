"""``coopnode restore``: a backup archive back into a new data directory.

In order: the archive is unpacked beside the data directory and every file checked
against the manifest's SHA-256 (a file missing, changed or unlisted refuses it); a
schema newer than this coopnode's is refused (upgrade coopnode first); the target must
be new (no settings, database or photos in the data directory, no table in the target
database); then the database, the settings and the photos are put in place and the
restored database's rows are counted against the manifest.

Engines: a SQLite backup restores into SQLite, or into PostgreSQL (the scale-up path:
the rows are copied table by table, see :mod:`node.services.backup_engines`); a
PostgreSQL backup restores into PostgreSQL only (``pg_restore``): going back down to
SQLite is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from node.services import backup_engines
from node.services.backup import (
    MANIFEST,
    MEDIA_PREFIX,
    Manifest,
    copy_file,
    sha256_of,
)
from node.services.backup_engines import BackupError
from node.services.media import media_root
from node.settings import CONFIG_FILE, DATABASE_FILE, load_settings
from node.storage.migrate import HEAD_REVISION, known_revisions


@dataclass(frozen=True, slots=True)
class Restored:
    manifest: Manifest
    database_url: str
    photos: int
    # The restored schema is older than this coopnode's: `coopnode migrate` is next.
    needs_migrate: bool


def restore_backup(
    archive: Path,
    data_dir: Path,
    *,
    database_url: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Restored:
    """Restore ``archive`` into the new ``data_dir``; the database is ``database_url``,
    else the one the restored settings and the environment name (as ``serve`` would
    read them), else ``data_dir/coopnode.sqlite3``."""
    data_dir = Path(data_dir).absolute()
    _refuse_used_data_dir(data_dir)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".coopnode-restore-", dir=data_dir.parent) as work:
        unpacked = Path(work)
        manifest = unpack(Path(archive), unpacked)
        check_revision(manifest.schema_revision)
        config = unpacked / CONFIG_FILE
        url = _target_url(unpacked, data_dir, database_url, environ)
        target_engine = backup_engines.engine_name(url)
        if manifest.engine == "postgresql" and target_engine == "sqlite":
            raise BackupError(
                "this is a PostgreSQL backup: restore it into PostgreSQL "
                "(--database-url postgresql://...); going back to SQLite is not supported"
            )
        _refuse_used_database(url)
        database = unpacked / manifest.database_file
        if manifest.engine == "postgresql":
            backup_engines.restore_postgres(url, database)
        elif target_engine == "postgresql":
            backup_engines.copy_sqlite_into_postgres(database, url)
        else:
            copy_file(database, backup_engines.sqlite_file(url))
        try:
            # A copy into PostgreSQL is migrated to the newest schema first.
            if manifest.schema_revision == HEAD_REVISION or manifest.engine == target_engine:
                _check_counts(manifest, url)
        except BackupError:
            if target_engine == "sqlite":  # the target stays new: a next try may run
                backup_engines.sqlite_file(url).unlink()
            raise
        if config.exists():
            _restore_settings(config, data_dir, database_url)
        photos = _restore_photos(unpacked, data_dir)
    migrated = manifest.engine != target_engine
    return Restored(
        manifest=manifest,
        database_url=url,
        photos=photos,
        needs_migrate=manifest.schema_revision != HEAD_REVISION and not migrated,
    )


def unpack(archive: Path, into: Path) -> Manifest:
    """Unpack ``archive`` into ``into`` and check every file against its manifest."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            # The "data" filter refuses links, devices and paths outside ``into``.
            tar.extractall(into, filter="data")
    except FileNotFoundError:
        raise BackupError(f"{archive} does not exist") from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"{archive} is not a readable coopnode backup: {exc}") from None
    manifest_path = into / MANIFEST
    if not manifest_path.is_file():
        raise BackupError(f"{archive} has no {MANIFEST}: it is not a coopnode backup")
    manifest = Manifest.from_json(manifest_path.read_text(encoding="utf-8"))
    found = {
        path.relative_to(into).as_posix()
        for path in into.rglob("*")
        if path.is_file() and path != manifest_path
    }
    unlisted = sorted(found - set(manifest.files))
    missing = sorted(set(manifest.files) - found)
    if unlisted or missing:
        missing_text, unlisted_text = ", ".join(missing), ", ".join(unlisted)
        raise BackupError(
            f"{archive} does not match its manifest: missing {missing_text or 'nothing'}; "
            f"unlisted {unlisted_text or 'nothing'}"
        )
    for name, expected in sorted(manifest.files.items()):
        with (into / name).open("rb") as fh:
            if sha256_of(fh) != expected:
                raise BackupError(f"{archive}: {name} does not match its checksum (damaged?)")
    return manifest


def check_revision(revision: str) -> None:
    """Refuse a schema this coopnode does not know (made by a newer one, most likely)."""
    if revision in known_revisions():
        return
    numbered = revision.isascii() and revision.isdigit() and HEAD_REVISION.isdigit()
    newer = numbered and int(revision) > int(HEAD_REVISION)
    if newer:
        raise BackupError(
            f"the backup's schema revision {revision} is newer than this coopnode's "
            f"({HEAD_REVISION}): install the coopnode version that made it, or a newer one"
        )
    raise BackupError(f"the backup's schema revision {revision!r} is unknown to this coopnode")


def _refuse_used_data_dir(data_dir: Path) -> None:
    used = [name for name in (CONFIG_FILE, DATABASE_FILE) if (data_dir / name).exists()]
    root = media_root(data_dir)
    if root.is_dir() and any(root.iterdir()):
        used.append(root.name + "/")
    if used:
        raise BackupError(
            f"{data_dir} already holds a node ({', '.join(used)}): restore into a new, "
            "empty data directory"
        )


def _refuse_used_database(url: str) -> None:
    shown = backup_engines.engine_name(url)
    if shown == "sqlite":
        if backup_engines.sqlite_file(url).exists() and backup_engines.has_tables(url):
            raise BackupError(
                f"{backup_engines.sqlite_file(url)} already has tables: restore into a new one"
            )
        with contextlib.suppress(FileNotFoundError):
            backup_engines.sqlite_file(url).unlink()  # an empty file: replaced below
        backup_engines.sqlite_file(url).parent.mkdir(parents=True, exist_ok=True)
    elif backup_engines.has_tables(url):
        raise BackupError(
            "the target PostgreSQL database already has tables: restore into an empty one "
            "(createdb a new database)"
        )


def _target_url(
    unpacked: Path, data_dir: Path, database_url: str | None, environ: Mapping[str, str] | None
) -> str:
    if database_url:
        return database_url
    if not (unpacked / CONFIG_FILE).exists():
        return f"sqlite:///{(data_dir / DATABASE_FILE).resolve()}"
    settings = load_settings(unpacked, environ=environ)
    if settings.database_url == f"sqlite:///{(unpacked / DATABASE_FILE).resolve()}":
        return f"sqlite:///{(data_dir / DATABASE_FILE).resolve()}"
    return settings.database_url


def _restore_settings(config: Path, data_dir: Path, database_url: str | None) -> None:
    """The settings file as it was; with ``database_url`` in it when one was given."""
    text = config.read_text(encoding="utf-8")
    if database_url:
        kept = [line for line in text.splitlines() if not line.startswith("database_url")]
        text = "\n".join([*kept, f"database_url = {json.dumps(database_url)}"]) + "\n"
    target = data_dir / CONFIG_FILE
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def _restore_photos(unpacked: Path, data_dir: Path) -> int:
    source = unpacked / MEDIA_PREFIX.rstrip("/")
    if not source.is_dir():
        return 0
    root = media_root(data_dir)
    root.mkdir(mode=0o700, exist_ok=True)
    count = 0
    for path in sorted(source.iterdir()):
        shutil.move(path, root / path.name)
        os.chmod(root / path.name, 0o600)
        count += 1
    return count


def _check_counts(manifest: Manifest, url: str) -> None:
    _, counts = backup_engines.database_facts(url)
    expected = {k: v for k, v in manifest.counts.items() if k != "media_files"}
    wrong = sorted(k for k in expected if counts.get(k) != expected[k])
    if wrong:
        details = ", ".join(f"{k}: {counts.get(k)} for {expected[k]}" for k in wrong)
        raise BackupError(f"the restored database does not hold what the backup did: {details}")
