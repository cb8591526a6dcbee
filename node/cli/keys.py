"""``coopnode keys``: the signing keys of the co-op and its members.

Its commands import what they use when they run, so that ``coopnode --help`` and the
other commands start without loading it."""

from __future__ import annotations

from pathlib import Path

import click

from node.cli.common import data_dir_option, settings_of, with_node


@click.group()
def keys() -> None:
    """The signing keys of the co-op and its members."""


@keys.command("rotate")
@click.option(
    "--member",
    "username",
    default=None,
    metavar="USERNAME",
    help="Rotate this local member's keys instead of the co-op's.",
)
@data_dir_option
def rotate(username: str | None, data_dir: Path) -> None:
    """Replace the RSA and Ed25519 keys (after a leak, say) and send an Update of the
    actor to the servers that follow it; the running node signs with the new keys
    from its next delivery round."""
    # Imported here to keep start-up fast.
    from node.members import keys as actor_keys

    settings = settings_of(data_dir)
    done = with_node(settings, lambda node: actor_keys.rotate(node, username))
    old_rsa, old_ed = done.old_fingerprints
    new_rsa, new_ed = done.new_fingerprints
    click.echo(f"New keys for {done.actor} (same key ids, new material):")
    click.echo(f"  RSA      {done.rsa_key_id}\t{old_rsa} -> {new_rsa}")
    click.echo(f"  Ed25519  {done.ed25519_key_id}\t{old_ed} -> {new_ed}")
    plural = "es" if done.inboxes != 1 else ""
    click.echo(f"Update of the actor queued for {done.inboxes} inbox{plural}.")
    click.echo("A peer that fetches the keys now gets the new ones.")


COMMANDS = (keys,)
