"""``coopnode backup``: one archive (tar.gz) that brings a co-op back on a new machine.

What it holds::

    database/coopnode.sqlite3   a consistent copy (SQLite), or
    database/coopnode.pgdump    pg_dump's custom format (PostgreSQL)
    coopnode.toml               the settings file as it is on disk (never the
                                environment: secrets given there stay there)
    media/<key>.<ext>           the photos members uploaded
    manifest.json               schema revision, coopnode version, engine, the rows of
                                each table, the SHA-256 of every other file, created_at

The database is copied first and the photos after: every photo the copied database
names is then on disk (a photo's file is written before its row, and never changed).
The archive is written to a temporary file beside ``FILE`` and renamed over it at the
end, so ``FILE`` is either the previous backup or the new one, never half of one. It
holds the co-op's private keys: it is readable by its owner only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any

from node.services import backup_engines
from node.services.backup_engines import BackupError
from node.services.media import media_root
from node.settings import CONFIG_FILE, Settings

FORMAT = 1
MANIFEST = "manifest.json"
DATABASE_FILES = {
    "sqlite": "database/coopnode.sqlite3",
    "postgresql": "database/coopnode.pgdump",
}
MEDIA_PREFIX = "media/"


@dataclass(frozen=True, slots=True)
class Manifest:
    format: int
    coopnode_version: str
    schema_revision: str
    engine: str
    created_at: str
    counts: dict[str, int]
    files: dict[str, str]  # path in the archive -> SHA-256 (hex)

    @property
    def database_file(self) -> str:
        return DATABASE_FILES[self.engine]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Read a manifest, or say plainly what is wrong with it."""
        try:
            data: Any = json.loads(text)
        except ValueError as exc:
            raise BackupError(f"the archive's {MANIFEST} is not JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else None
            raise BackupError(
                f"the archive's {MANIFEST} has format {found!r}; this coopnode reads {FORMAT}"
            )
        try:
            manifest = cls(
                format=FORMAT,
                coopnode_version=str(data["coopnode_version"]),
                schema_revision=str(data["schema_revision"]),
                engine=str(data["engine"]),
                created_at=str(data["created_at"]),
                counts={str(k): int(v) for k, v in dict(data["counts"]).items()},
                files={str(k): str(v) for k, v in dict(data["files"]).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BackupError(f"the archive's {MANIFEST} lacks or garbles {exc}") from None
        if manifest.engine not in DATABASE_FILES:
            raise BackupError(f"the archive's database engine {manifest.engine!r} is unknown")
        if manifest.database_file not in manifest.files:
            raise BackupError(f"the archive has no {manifest.database_file}")
        return manifest


def coopnode_version() -> str:
    try:
        return version("coopnode")
    except PackageNotFoundError:
        return "unknown"


def sha256_of(fh: IO[bytes]) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: fh.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def create_backup(settings: Settings, archive: Path, *, now: datetime) -> Manifest:
    """Write the backup of the node ``settings`` describe to ``archive``."""
    archive = Path(archive).absolute()
    if archive.is_dir():
        raise BackupError(f"{archive} is a directory: give the archive's file name")
    archive.parent.mkdir(parents=True, exist_ok=True)
    engine = backup_engines.engine_name(settings.database_url)
    with tempfile.TemporaryDirectory(prefix=".coopnode-backup-", dir=archive.parent) as work:
        staged = Path(work) / "database"
        if engine == "sqlite":
            revision, counts = backup_engines.snapshot_sqlite(settings.database_url, staged)
        else:
            revision, counts = backup_engines.dump_postgres(settings.database_url, staged)
        if revision is None:
            raise BackupError("the database has no coopnode schema: there is nothing to back up")
        partial = Path(work) / "archive.tar.gz"
        files: dict[str, str] = {}
        with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
            _add(tar, staged, DATABASE_FILES[engine], files)
            if settings.config_path.exists():
                _add(tar, settings.config_path, CONFIG_FILE, files)
            for path in _media_files(settings.data_dir):
                # A photo deleted since the listing is simply not in the backup.
                with contextlib.suppress(FileNotFoundError):
                    _add(tar, path, MEDIA_PREFIX + path.name, files)
            manifest = Manifest(
                format=FORMAT,
                coopnode_version=coopnode_version(),
                schema_revision=revision,
                engine=engine,
                created_at=now.isoformat(),
                counts={**counts, "media_files": sum(f.startswith(MEDIA_PREFIX) for f in files)},
                files=files,
            )
            _add_bytes(tar, MANIFEST, manifest.to_json().encode())
        os.chmod(partial, 0o600)
        with partial.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(partial, archive)
    _fsync_directory(archive.parent)
    return manifest


def _media_files(data_dir: Path) -> list[Path]:
    """The photos on disk, without the temporary files of uploads under way."""
    root = media_root(data_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith("."))


def _add(tar: tarfile.TarFile, path: Path, name: str, files: dict[str, str]) -> None:
    """Add the file at ``path`` as ``name``, hashed from the same open file it is
    archived from (so the checksum is the archived bytes')."""
    with path.open("rb") as fh:
        files[name] = sha256_of(fh)
        fh.seek(0)
        info = tar.gettarinfo(arcname=name, fileobj=fh)
        info.mode, info.uid, info.gid, info.uname, info.gname = 0o600, 0, 0, "", ""
        tar.addfile(info, fh)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o600
    with tempfile.SpooledTemporaryFile() as fh:
        fh.write(data)
        fh.seek(0)
        tar.addfile(info, fh)


def _fsync_directory(directory: Path) -> None:
    # The rename is durable once the directory entry is (not possible on every system).
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def copy_file(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` (a new file, the owner's only)."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with source.open("rb") as src, os.fdopen(fd, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
        dst.flush()
        os.fsync(dst.fileno())
