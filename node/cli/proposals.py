"""Governance: ``proposals`` (open, list, show; answer invitations to shared proposals)
and ``audit`` (anyone's recount of a closed proposal, on any coopnode).

Its commands import what they use when they run, so that ``coopnode --help`` and the
other commands start without loading it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from node.cli.common import data_dir_option, json_file, read, settings_of, with_node
from node.errors import NodeError


@click.group()
def proposals() -> None:
    """The co-op's governance proposals: open one, list them, see one's counts; answer
    other co-ops' invitations to shared proposals."""


@proposals.command("open")
@click.argument("file")
@data_dir_option
def proposals_open(file: str, data_dir: Path) -> None:
    """Open the proposal described in FILE (JSON as the API takes it; - reads standard
    input), as the co-op; members are told (Create of a Question)."""
    # Imported here to keep start-up fast (as in every command below).
    from node.governance import proposals as governance

    settings = settings_of(data_dir)
    data = json_file(file)
    result = with_node(settings, lambda node: governance.create_proposal(node, data, author=None))
    click.echo(f"{result['id']}\t{result['state']}\t{result['uri']}")
    for warning in result["warnings"]:
        click.echo(f"warning: {warning}", err=True)


# The shared proposals hosted elsewhere that `proposals list` shows, newest first.
SHARED_LISTED = 1000


@proposals.command("list")
@data_dir_option
def proposals_list(data_dir: Path) -> None:
    """Every proposal, newest first: key, state, voters, closing time, title; then the
    shared proposals other co-ops host that this one takes part in, with their host.
    Invitations still waiting for an answer are in `proposals invitations`."""
    from node.governance import documents
    from node.governance.store import proposals as stored
    from node.governance.store import remote

    settings = settings_of(data_dir)
    own = read(settings, lambda conn: stored.newest(conn, limit=None))
    shared = read(
        settings,
        lambda conn: [
            documents.describe_remote(row) for row in remote.visible(conn, limit=SHARED_LISTED)
        ],
    )
    if not own and not shared:
        click.echo("No proposal yet: `coopnode proposals open FILE` opens one.")
    for found in own:
        closes = found.closes_at.strftime("%Y-%m-%d %H:%M UTC")
        click.echo(
            f"{found.key}\t{found.state}\t{found.shown.voters} voters\tcloses {closes}\t"
            f"{found.title}"
        )
    for described in shared:
        ends = described.get("closes_at")
        closes = (
            datetime.fromisoformat(ends).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
            if ends
            else "?"
        )
        voters = described.get("voters")
        click.echo(
            f"{described['id']}\t{described['state']}\t"
            f"{'?' if voters is None else voters} voters\tcloses {closes}\t"
            f"{described['title'] or described['uri']}\t"
            f"(shared, hosted by another co-op: {described['host']})"
        )


@proposals.command("show")
@click.argument("key")
@data_dir_option
def proposals_show(key: str, data_dir: Path) -> None:
    """Proposal KEY: its settings, counts as last published, and outcome once closed."""
    from node.governance.store import proposals as stored
    from node.urls import Urls

    settings = settings_of(data_dir)
    urls = Urls(settings.base_url)
    try:
        found = read(settings, lambda conn: stored.get(conn, key))
    except NodeError as exc:
        raise click.ClickException(exc.reason) from None
    source = found.source
    counts = found.shown.counts
    click.echo(f"{found.title}  ({found.state})")
    click.echo(f"  {urls.proposal(found.key)}")
    rule = source["rule"] or "multiple choice"
    if source["threshold"]:
        rule += f" {source['threshold']}"
    click.echo(f"  rule: {rule}; quorum {source['quorum']}; eligible {found.eligible}")
    click.echo(f"  opens {source['opens_at']}, closes {source['closes_at']}")
    for option in source["options"]:
        n = counts.get(option["name"], 0)
        click.echo(f"  {n:>8}  {option['name']} ({option['role']})")
    if found.outcome is not None:
        click.echo(f"  outcome: {found.outcome['reason']}")


@proposals.command("invitations")
@data_dir_option
def proposals_invitations(data_dir: Path) -> None:
    """Shared proposals other co-ops invited this one to, waiting for an answer: key,
    closing time, host, title. Members see one only once it is accepted."""
    from node.governance import reading

    settings = settings_of(data_dir)
    invited = read(settings, reading.invitation_list)
    if not invited:
        click.echo("No invitation waits for an answer.")
    for found in invited:
        click.echo(
            f"{found['id']}\tcloses {found.get('closes_at') or '?'}\t{found['host']}\t"
            f"{found.get('title') or found['uri']}"
        )


@proposals.command("accept")
@click.argument("key")
@data_dir_option
def proposals_accept(key: str, data_dir: Path) -> None:
    """Take part in the shared proposal KEY: its members see it and vote."""
    from node.governance import sharing

    settings = settings_of(data_dir)
    result = with_node(settings, lambda node: sharing.accept(node, key))
    click.echo(f"{key}\t{result['state']}: members see it and vote.")


@proposals.command("decline")
@click.argument("key")
@data_dir_option
def proposals_decline(key: str, data_dir: Path) -> None:
    """Decline the shared proposal KEY: its host is told (Reject)."""
    from node.governance import sharing

    settings = settings_of(data_dir)
    with_node(settings, lambda node: sharing.decline(node, key))
    click.echo(f"{key}\tdeclined: its host is told.")


@click.command("audit")
@click.argument("url")
@click.option(
    "--allow-http",
    is_flag=True,
    help="Fetch http URLs and loopback addresses too (a local node, tests).",
)
@click.pass_context
def audit(ctx: click.Context, url: str, allow_http: bool) -> None:
    """Recount the closed proposal at URL from its published ballots and electorate.

    Verifies each ballot's proof against the voter's own key, recomputes the result
    with the same rules as the host, and prints published and recomputed figures side
    by side. Exits 0 when everything matches, 1 when it does not, 2 when the proposal
    cannot be reached or read. Needs no node: anyone can run it.
    """
    # Imported here: the auditor's client and proof code are not needed by other commands.
    from node.cli.audit import audit_command

    ctx.invoke(audit_command, url=url, allow_http=allow_http)


COMMANDS = (proposals, audit)
