"""``coopnode mail``: the node's email. ``mail test ADDRESS`` sends a test message at
once through the SMTP server of the settings and says what went wrong, if anything;
``mail status`` shows the outbox: how many messages wait, went or failed, and the
latest failures.

Its commands import what they use when they run, so that ``coopnode --help`` and the
other commands start without loading it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from node.cli.common import check_schema, data_dir_option, fail, read, settings_of


@click.group()
def mail() -> None:
    """The node's email: test the SMTP settings, see the outbox."""


@mail.command("test")
@click.argument("address")
@click.option(
    "--language",
    type=click.Choice(["en", "fr"]),
    default="en",
    show_default=True,
    help="The language of the test message.",
)
@data_dir_option
def mail_test(address: str, language: str, data_dir: Path) -> None:
    """Send a test email to ADDRESS now, and say what went wrong if it did not go."""
    from node.errors import Invalid
    from node.mail import addresses, smtp

    settings = settings_of(data_dir)
    try:
        result = asyncio.run(addresses.send_test(settings, address, language))
    except Invalid as exc:
        fail(exc.reason)
    security = {"starttls": "STARTTLS", "tls": "TLS", "none": "no encryption"}
    server = f"{settings.smtp_host}:{settings.smtp_port} ({security[settings.smtp_security]})"
    if result.outcome == smtp.Outcome.SENT:
        click.echo(f"Sent a test email to {address} through {server}.")
        return
    where = f" through {server}" if settings.mail_on else ""
    fail(f"The test email to {address} was not sent{where}: {result.detail}")


@mail.command("status")
@click.option("--limit", default=10, show_default=True, help="How many recent failures to show.")
@data_dir_option
def mail_status(limit: int, data_dir: Path) -> None:
    """How many messages wait, went or failed; the latest failures and why."""
    from node.mail import store

    settings = settings_of(data_dir)
    check_schema(settings)
    if not settings.mail_on:
        click.echo("Email is off: no smtp_host in the settings. Nothing is sent.")
    counts = read(settings, store.outbox_counts)
    parts = [
        f"{counts.get(state, 0)} {state}" for state in ("pending", "sending", "sent", "failed")
    ]
    click.echo("Outbox: " + ", ".join(parts))
    recent = read(settings, lambda conn: store.outbox_page(conn, limit=500))
    failed = [m for m in recent if m.state == "failed" or (m.state == "pending" and m.last_error)]
    for found in failed[:limit]:
        click.echo(
            f"{found.created_at:%Y-%m-%d %H:%M}\t{found.state}\t{found.kind}\t{found.address}"
            f"\t{found.attempts} attempt(s)\t{found.last_error}"
        )


COMMANDS = [mail]
