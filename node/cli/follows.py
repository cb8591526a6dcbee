"""Following and followers: ``follow``, ``unfollow``, ``following``, ``followers``, and
``profile`` (the co-op's name and description, sent to every follower when changed).

Its commands import what they use when they run, so that ``coopnode --help`` and the
other commands start without loading it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from node.cli.common import coop_id, data_dir_option, fail, read, settings_of, with_node
from node.settings import Settings


@click.command()
@click.argument("target")
@click.option(
    "--wait",
    type=float,
    default=15.0,
    show_default=True,
    help="Seconds to wait for the answer (0: do not wait).",
)
@data_dir_option
def follow(target: str, wait: float, data_dir: Path) -> None:
    """Follow another co-op (or any actor) by handle (coop@host) or actor URL."""
    # Imported here to keep start-up fast (as in every command below).
    from node.follows import actions
    from node.follows import store as follows

    settings = settings_of(data_dir)
    result = with_node(settings, lambda node: actions.follow(node, target))
    if not result.sent:
        click.echo(f"Already following {result.followed} (or asked to).")
    else:
        click.echo(f"Follow sent to {result.followed}.")
    deadline = time.monotonic() + wait
    state = follows.PENDING
    while wait > 0:
        rows = read(settings, lambda conn: following_state(conn, settings, result.followed))
        state = rows or follows.PENDING
        if state != follows.PENDING or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if state == follows.ACCEPTED:
        click.echo(f"{result.followed} accepted: its offers and proposals will reach this co-op.")
        show_backfill(settings, result.followed, deadline + 300)
    elif state == follows.REJECTED:
        click.echo(f"{result.followed} refused the follow.")
    else:
        click.echo(
            "Waiting for their answer: it arrives while `coopnode serve` runs "
            "(see `coopnode following`)."
        )


def show_backfill(settings: Settings, followed: str, deadline: float) -> None:
    """A progress bar over the import of the followed co-op's existing offers."""
    # Imported here to keep start-up fast.
    from node.offers import backfill_store

    def walk() -> dict[str, Any] | None:
        return read(
            settings,
            lambda conn: backfill_store.progress(
                conn, actor_id=coop_id(conn, settings), followed=followed
            ),
        )

    started = time.monotonic()
    found = walk()
    while found is None and time.monotonic() - started < 5:
        time.sleep(0.3)  # the running node starts the walk when the Accept arrives
        found = walk()
    if found is None:
        return  # it publishes no offers (not a co-op, or an older coopnode)
    total = found["total"]
    with click.progressbar(
        length=total or 0, label="Importing its offers", show_pos=True, width=30
    ) as bar:
        shown = 0
        while True:
            found = walk() or found
            if total is None and found["total"]:
                total = bar.length = found["total"]
            bar.update(found["imported"] - shown)
            shown = found["imported"]
            if found["state"] != backfill_store.RUNNING or time.monotonic() > deadline:
                break
            time.sleep(0.3)
    if found["state"] == backfill_store.DONE:
        click.echo(f"{found['imported']} offers imported.")
    elif found["state"] == backfill_store.FAILED:
        click.echo(f"The import stopped: {found['last_error']}", err=True)
    else:
        click.echo(f"{found['imported']} offers so far; the import goes on in the background.")


def following_state(conn: Any, settings: Settings, followed: str) -> str | None:
    """The state of the co-op's follow of ``followed``, if it asked."""
    # Imported here to keep start-up fast.
    from node.follows import store as follows

    return follows.following_state(conn, actor_id=coop_id(conn, settings), followed=followed)


@click.command()
@click.argument("target")
@data_dir_option
def unfollow(target: str, data_dir: Path) -> None:
    """Stop following an actor (handle or URL); it is sent an Undo."""
    from node.follows import actions

    settings = settings_of(data_dir)
    followed = with_node(settings, lambda node: actions.unfollow(node, target))
    click.echo(f"No longer following {followed}.")


@click.command("following")
@data_dir_option
def following_list(data_dir: Path) -> None:
    """List whom the co-op follows, with the state of each follow."""
    from node.follows import store as follows

    settings = settings_of(data_dir)

    def rows(conn: Any) -> list[Any]:
        actor_id = coop_id(conn, settings)
        return follows.list_following(conn, actor_id=actor_id, state=None, limit=100_000)

    followed = read(settings, rows)
    if not followed:
        click.echo(
            "The co-op follows no one yet: `coopnode follow coop@other.example` follows a "
            "co-op (each node follows the other to see its offers and proposals)."
        )
    for row in followed:
        click.echo(f"{row.state}\t{row.created_at:%Y-%m-%d %H:%M}\t{row.followed}")


@click.group()
def followers() -> None:
    """Who follows the co-op; approve or refuse those waiting."""


@followers.command("list")
@click.option("--pending", is_flag=True, help="Only the follows waiting for approval.")
@data_dir_option
def followers_list(pending: bool, data_dir: Path) -> None:
    """List followers (accepted and pending)."""
    from node.follows import store as follows

    settings = settings_of(data_dir)

    def rows(conn: Any) -> list[Any]:
        actor_id = coop_id(conn, settings)
        state = follows.PENDING if pending else None
        return follows.list_followers(conn, actor_id=actor_id, state=state, limit=100_000)

    found = read(settings, rows)
    if not found:
        click.echo("No follow waits for approval." if pending else "No one follows the co-op yet.")
    for row in found:
        click.echo(f"{row.state}\t{row.created_at:%Y-%m-%d %H:%M}\t{row.follower}")


@followers.command("approve")
@click.argument("actor")
@data_dir_option
def followers_approve(actor: str, data_dir: Path) -> None:
    """Accept a pending follower (by actor URL)."""
    from node.follows import actions

    settings = settings_of(data_dir)
    with_node(settings, lambda node: actions.answer_follower(node, actor, accept=True))
    click.echo(f"{actor} is now a follower; an Accept is on its way.")


@followers.command("refuse")
@click.argument("actor")
@data_dir_option
def followers_refuse(actor: str, data_dir: Path) -> None:
    """Refuse a pending follower, or remove an accepted one (by actor URL)."""
    from node.follows import actions

    settings = settings_of(data_dir)
    with_node(settings, lambda node: actions.answer_follower(node, actor, accept=False))
    click.echo(f"{actor} does not follow the co-op; a Reject is on its way.")


@click.command()
@click.option("--name", default=None, help="The co-op's new name.")
@click.option("--summary", default=None, help="The co-op's new description.")
@data_dir_option
def profile(name: str | None, summary: str | None, data_dir: Path) -> None:
    """Show the co-op's profile, or change it and send the change to every follower."""
    from node.follows import actions
    from node.services import identity

    settings = settings_of(data_dir)
    if name is not None and not name.strip():
        fail("the name cannot be empty")
    if name is not None or summary is not None:
        queued = with_node(
            settings, lambda node: actions.update_profile(node, name=name, summary=summary)
        )
        click.echo(f"Profile updated; sent to {queued} inbox{'es' if queued != 1 else ''}.")
    coop = read(settings, lambda conn: identity.get_actor(conn, settings.handle)).actor
    click.echo(f"{coop.name}\n{coop.summary}" if coop.summary else coop.name)


COMMANDS = (follow, unfollow, following_list, followers, profile)
