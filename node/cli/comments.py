"""``coopnode comments``: the discussion threads' moderation from the command line.
``comments list`` shows the reports waiting (``--reported``), the hidden comments
(``--hidden``) or the latest; ``hide``, ``unhide``, ``remove`` and ``dismiss`` act on
one comment by its key, as the admin's page does (a removal is sent where the comment
went, by the running node's delivery worker).

Its commands import what they use when they run, so that ``coopnode --help`` and the
other commands start without loading it."""

from __future__ import annotations

from pathlib import Path

import click

from node.cli.common import data_dir_option, settings_of, with_node


@click.group()
def comments() -> None:
    """Comments under proposals: the reports, hiding and removing."""


def _line(comment: object) -> str:
    from node.discussion.store import Comment
    from node.offers.markdown import excerpt

    assert isinstance(comment, Comment)
    origin = "here" if comment.actor_id is not None else comment.author_host
    return (
        f"{comment.key}\t{comment.state}\t{comment.published:%Y-%m-%d %H:%M}\t"
        f"{comment.author_name} ({origin})\t{excerpt(comment.content, 80)}"
    )


@comments.command("list")
@click.option("--reported", is_flag=True, help="The reports waiting for a decision.")
@click.option("--hidden", is_flag=True, help="The hidden comments.")
@data_dir_option
def comments_list(reported: bool, hidden: bool, data_dir: Path) -> None:
    """The latest comments (key, state, date, author and server, text)."""
    from node.discussion import threads

    settings = settings_of(data_dir)
    if reported:
        found = with_node(settings, threads.reports)
        if not found:
            click.echo("No report waiting.")
        for report, comment in found:
            reason = report.reason or "(no reason given)"
            click.echo(f"{_line(comment)}\n\treported by {report.reporter}: {reason}")
        return
    for comment in with_node(settings, lambda node: threads.recent(node, hidden=hidden)):
        click.echo(_line(comment))


def _decision(name: str, help_text: str) -> click.Command:
    @click.argument("key")
    @data_dir_option
    def command(key: str, data_dir: Path) -> None:
        from node.discussion import threads

        settings = settings_of(data_dir)
        act = {
            "hide": threads.hide,
            "unhide": threads.unhide,
            "remove": threads.remove,
            "dismiss": threads.dismiss,
        }[name]
        done = with_node(settings, lambda node: act(node, key))
        if name == "dismiss":
            click.echo(f"Closed {done} report(s) of {key}.")
        else:
            click.echo(_line(done))

    command.__doc__ = help_text
    return comments.command(name)(command)


_decision("hide", "Hide a comment here (kept, and shown again with unhide).")
_decision("unhide", "Show a hidden comment again.")
_decision(
    "remove",
    "Remove a comment for good: a member's is deleted where it went; another "
    "server's is removed here and the co-op's relay of it undone.",
)
_decision("dismiss", "Close a comment's reports and leave it as it is.")

COMMANDS = [comments]
