"""Other servers: ``lookup`` (an account anywhere), ``domains`` (blocking and allowing
them) and ``deliveries`` (the queue, and the peers failing delivery).

Its commands import what they use when they run, so that ``coopnode --help`` and the
other commands start without loading it."""

from __future__ import annotations

import json
from pathlib import Path

import click

from node.cli.common import (
    check_schema,
    command_clock,
    data_dir_option,
    read,
    settings_of,
    with_node,
    write,
)


@click.command()
@click.argument("handle")
@data_dir_option
def lookup(handle: str, data_dir: Path) -> None:
    """Find a fediverse account by its handle (user@host) or URL and show its actor.

    The fetches are signed as the co-op, so servers that answer only signed fetches
    (authorized fetch) answer this too."""
    settings = settings_of(data_dir)
    actor = with_node(settings, lambda node: node.peers.resolve(handle))
    summary = {k: actor.get(k) for k in ("id", "type", "preferredUsername", "name", "inbox")}
    click.echo(json.dumps(summary, indent=2, ensure_ascii=False))


@click.group()
def domains() -> None:
    """Other servers: block them, or allow them (for allow-list mode)."""


def set_domain(data_dir: Path, host: str, policy: str, reason: str) -> tuple[str, dict[str, int]]:
    """Record ``policy`` for ``host``; returns the host as stored and what was severed."""
    # Imported here to keep start-up fast (as in every command below).
    from node.services import domains as domain_service

    settings = settings_of(data_dir)
    check_schema(settings)
    try:
        host = domain_service.normalise(host)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    now = command_clock().now()

    return host, write(
        settings,
        lambda conn: domain_service.set_policy(conn, host, policy, reason=reason, now=now),
    )


@domains.command("block")
@click.argument("host")
@click.option("--reason", default="", help="Why, for the record.")
@data_dir_option
def domains_block(host: str, reason: str, data_dir: Path) -> None:
    """Block a domain and its subdomains: refused at the inbox, never fetched, never
    delivered to; its followers, the follows of it and anything queued from or to it
    are removed."""
    host, severed = set_domain(data_dir, host, "blocked", reason)
    click.echo(f"{host} is blocked (within a few seconds on a running node).")
    removed = [f"{n} {what}" for what, n in severed.items() if n]
    if removed:
        click.echo("Removed or dropped: " + ", ".join(removed) + ".")


@domains.command("allow")
@click.argument("host")
@click.option("--reason", default="", help="Why, for the record.")
@data_dir_option
def domains_allow(host: str, reason: str, data_dir: Path) -> None:
    """Allow a domain (what allow-list mode and the "listed" follow policy accept)."""
    host, _ = set_domain(data_dir, host, "allowed", reason)
    click.echo(f"{host} is allowed.")


@domains.command("clear")
@click.argument("host")
@data_dir_option
def domains_clear(host: str, data_dir: Path) -> None:
    """Remove the block or allowance of a domain."""
    host, _ = set_domain(data_dir, host, "", "")
    click.echo(f"{host} is neither blocked nor allowed.")


@domains.command("list")
@data_dir_option
def domains_list(data_dir: Path) -> None:
    """List the domains the node decided about or had trouble delivering to."""
    from node.services import domains as domain_service

    settings = settings_of(data_dir)
    listed = read(settings, domain_service.list_domains)
    if not listed:
        click.echo("No domain is blocked or allowed, and none is failing.")
    for row in listed:
        health = (
            "unavailable" if row["unavailable"] else ("failing" if row["failing_since"] else "")
        )
        click.echo(
            "\t".join(
                [
                    row["host"],
                    row["policy"] or "-",
                    health or "-",
                    row["reason"] or row["last_error"] or "",
                ]
            )
        )


@click.command()
@data_dir_option
def deliveries(data_dir: Path) -> None:
    """The delivery queue, and the peers failing delivery with their reasons."""
    from node.services import domains as domain_service
    from node.services import outbox

    settings = settings_of(data_dir)
    summary = read(settings, outbox.queue_summary)
    click.echo(
        "Queue: "
        + ", ".join(
            f"{summary.get(s, 0)} {s}" for s in ("pending", "delivered", "failed", "dropped")
        )
    )
    failing = read(settings, outbox.failing_hosts)
    if failing:
        click.echo("Failing peers:")
    for row in failing:
        click.echo(
            f"  {row['host']}: {row['pending']} waiting, {row['attempts']} attempts, "
            f"next {row['next_attempt_at']:%Y-%m-%d %H:%M} UTC: {row['last_error']}"
        )
    unavailable = sorted(read(settings, domain_service.unavailable_hosts))
    if unavailable:
        click.echo("Unavailable (probed every few hours): " + ", ".join(unavailable))


COMMANDS = (lookup, domains, deliveries)
