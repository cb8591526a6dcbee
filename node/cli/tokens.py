"""``coopnode tokens``: the co-op's admin API tokens.

Its commands import what they use when they run, so that ``coopnode --help`` and the
other commands start without loading it."""

from __future__ import annotations

from pathlib import Path

import click

from node.cli.common import (
    check_schema,
    command_clock,
    data_dir_option,
    fail,
    read,
    settings_of,
    write,
)


@click.group()
def tokens() -> None:
    """API tokens."""


@tokens.command("create")
@click.option("--name", default="admin", show_default=True, help="What the token is for.")
@data_dir_option
def tokens_create(name: str, data_dir: Path) -> None:
    """Create an admin token and print it once."""
    # Imported here to keep start-up fast (as in every command below).
    from node.services import tokens as token_service

    settings = settings_of(data_dir)
    check_schema(settings)
    token = token_service.new_token()
    now = command_clock().now()
    write(
        settings,
        lambda conn: token_service.store_token(conn, token, name=name, role="admin", now=now),
    )
    click.echo(token)


@tokens.command("list")
@data_dir_option
def tokens_list(data_dir: Path) -> None:
    """List tokens (their names and dates; tokens themselves are never stored)."""
    from node.services import tokens as token_service

    settings = settings_of(data_dir)
    for info in read(settings, token_service.list_tokens):
        state = f"revoked {info.revoked_at:%Y-%m-%d}" if info.revoked_at else "active"
        click.echo(
            f"{info.id}\t{info.role}\t{info.created_at:%Y-%m-%d %H:%M}\t{state}\t{info.name}"
        )


@tokens.command("revoke")
@click.argument("token_id", type=int)
@data_dir_option
def tokens_revoke(token_id: int, data_dir: Path) -> None:
    """Revoke a token by its number (see `coopnode tokens list`)."""
    from node.services import tokens as token_service

    settings = settings_of(data_dir)
    now = command_clock().now()
    if not write(settings, lambda conn: token_service.revoke_token(conn, token_id, now=now)):
        fail(f"no active token {token_id}")
    click.echo(f"Token {token_id} revoked.")


COMMANDS = (tokens,)
