"""``coopnode backup`` and ``coopnode restore``: the whole node in one archive, and
back on a new machine.

Its commands import what they use when they run, so that ``coopnode --help`` and the
other commands start without loading it."""

from __future__ import annotations

import time
from pathlib import Path

import click

from node.cli.common import command_clock, data_dir_option, fail, settings_of
from node.errors import NodeError


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@data_dir_option
def backup(file: Path, data_dir: Path) -> None:
    """Write the database, the settings file and the photos to FILE (a tar.gz), with a
    manifest of checksums. Safe while the node serves; FILE is replaced only once the
    new archive is complete."""
    from node.services.backup import create_backup

    settings = settings_of(data_dir)
    started = time.monotonic()
    try:
        manifest = create_backup(settings, file, now=command_clock().now())
    except NodeError as exc:
        fail(exc.reason)
    size = file.stat().st_size
    counts = manifest.counts
    click.echo(
        f"{file}: {size} bytes in {time.monotonic() - started:.1f} s; {manifest.engine} "
        f"schema {manifest.schema_revision}; {counts.get('members', 0)} members, "
        f"{counts.get('offers', 0)} offers, {counts.get('proposals', 0)} proposals, "
        f"{counts.get('ballots', 0)} ballots, {counts.get('media_files', 0)} photos"
    )


@click.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@data_dir_option
@click.option(
    "--database-url",
    default=None,
    help="Restore into this database (an empty PostgreSQL one, say) instead of the one "
    "the restored settings name; it is written into the restored settings.",
)
def restore(file: Path, data_dir: Path, database_url: str | None) -> None:
    """Restore the backup FILE into the new data directory: checks every checksum, and
    refuses a data directory or database that already holds a node, and a schema
    newer than this coopnode's. A SQLite backup may go into PostgreSQL; a PostgreSQL
    backup goes into PostgreSQL only."""
    from node.services.restore import restore_backup
    from node.storage.engine import shown_url

    started = time.monotonic()
    try:
        restored = restore_backup(file, data_dir, database_url=database_url)
    except NodeError as exc:
        fail(exc.reason)
    manifest = restored.manifest
    click.echo(
        f"restored {file} (made {manifest.created_at} by coopnode {manifest.coopnode_version}) "
        f"into {data_dir} in {time.monotonic() - started:.1f} s: database "
        f"{shown_url(restored.database_url)}, {restored.photos} photos"
    )
    if restored.needs_migrate:
        click.echo("its schema is older than this coopnode's: run `coopnode migrate` next")
    click.echo(f"start it with: coopnode serve --data-dir {data_dir}")


COMMANDS = (backup, restore)
