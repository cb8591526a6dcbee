"""``coopnode media``: images for offers, stored and served by the node.

Its commands import what they use when they run, so that ``coopnode --help`` and the
other commands start without loading it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from node.cli.common import data_dir_option, fail, settings_of, with_node


@click.group("media")
def media_group() -> None:
    """Images for offers, stored and served by the node."""


@media_group.command("upload")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--description", default="", help="What the image shows (alt text).")
@data_dir_option
def media_upload(file: Path, description: str, data_dir: Path) -> None:
    """Store a JPEG, PNG, WebP or GIF image; print its id and URL."""
    # Imported here to keep start-up fast.
    from node.services import media as media_service

    settings = settings_of(data_dir)
    limit = settings.media_max_bytes
    size = file.stat().st_size
    if size > limit:
        fail(media_service.too_large_reason(f"{file} is {size} bytes", limit))
    with file.open("rb") as fh:
        data = fh.read(limit + 1)  # a file growing meanwhile is still refused

    async def store(node: Any) -> Any:
        item = await media_service.store(
            node.db,
            settings.data_dir,
            data,
            actor_id=node.peers.coop_id,
            now=node.clock.now(),
            description=description,
            max_bytes=limit,
        )
        return item, node.urls.media(item.key, item.extension)

    item, url = with_node(settings, store)
    click.echo(f"{item.key}\t{url}")


COMMANDS = (media_group,)
