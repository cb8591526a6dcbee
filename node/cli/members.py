"""``coopnode members``: the co-op's members, their colleges and their tokens.

Its commands import what they use when they run, so that ``coopnode --help`` and the
other commands start without loading it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from node.cli.common import (
    check_schema,
    command_clock,
    data_dir_option,
    fail,
    read,
    settings_of,
    with_node,
    write,
)
from node.errors import NodeError
from node.settings import Settings

T = TypeVar("T")


@click.group()
def members() -> None:
    """The co-op's members: add, link, confirm, change, remove; colleges and tokens."""


def show_member(member: Any) -> None:
    """One line per member: number, handle, role, college, start, local or remote, state."""
    state = f"left {member.left_at:%Y-%m-%d}" if member.left_at else member.state
    college = member.college or "-"
    where = "local" if member.local else "remote"
    click.echo(
        f"{member.id}\t{member.handle}\t{member.role}\t{college}\t"
        f"{member.joined_at:%Y-%m-%d}\t{where}\t{state}"
    )


def member_write(settings: Settings, unit: Callable[[Any], T]) -> T:
    """A write whose refusal (a NodeError) is shown as the command's error."""
    check_schema(settings)
    try:
        return write(settings, unit)
    except NodeError as exc:
        raise click.ClickException(
            f"{exc.field}: {exc.reason}" if exc.field else exc.reason
        ) from None


@members.command("add")
@click.argument("username")
@click.option("--name", default=None, help="The name people see (the username by default).")
@click.option("--role", default="member", show_default=True, help="admin, member or observer.")
@click.option("--college", default=None, help="The member's college, if the co-op has some.")
@click.option("--joined", default=None, help="When membership began (2026-01-15; today).")
@click.option("--password", is_flag=True, help="Ask for a password to log in with.")
@data_dir_option
def members_add(
    username: str,
    name: str | None,
    role: str,
    college: str | None,
    joined: str | None,
    password: bool,
    data_dir: Path,
) -> None:
    """Add a local member, with a Person actor on this node."""
    # Imported here to keep start-up fast (as in every command below).
    from node.members.actions import add_member

    settings = settings_of(data_dir)
    data: dict[str, Any] = {"username": username, "role": role}
    for key, value in (("name", name), ("college", college), ("joined_at", joined)):
        if value is not None:
            data[key] = value
    if password:
        data["password"] = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    member, _ = with_node(settings, lambda node: add_member(node, data))
    show_member(member)


@members.command("link")
@click.argument("target")
@click.option("--role", default="member", show_default=True, help="admin, member or observer.")
@click.option("--college", default=None, help="The member's college, if the co-op has some.")
@click.option("--joined", default=None, help="When membership began (2026-01-15; today).")
@data_dir_option
def members_link(
    target: str, role: str, college: str | None, joined: str | None, data_dir: Path
) -> None:
    """Link a member whose account is elsewhere (user@host or actor URL): recorded as
    pending, with the account shown, until `coopnode members confirm`."""
    from node.members.actions import add_member

    settings = settings_of(data_dir)
    data: dict[str, Any] = {"remote": target, "role": role}
    for key, value in (("college", college), ("joined_at", joined)):
        if value is not None:
            data[key] = value
    member, actor = with_node(settings, lambda node: add_member(node, data))
    click.echo(json.dumps(actor, indent=2, ensure_ascii=False))
    show_member(member)
    click.echo(f"Check the account above, then: coopnode members confirm {member.id}")


@members.command("confirm")
@click.argument("member_id", type=int)
@data_dir_option
def members_confirm(member_id: int, data_dir: Path) -> None:
    """Confirm a pending remote member."""
    from node.members import store as service

    settings = settings_of(data_dir)
    show_member(member_write(settings, lambda conn: service.confirm(conn, member_id)))


@members.command("list")
@click.option("--all", "everyone", is_flag=True, help="Include former members.")
@data_dir_option
def members_list(everyone: bool, data_dir: Path) -> None:
    """List members: number, handle, role, college, start date, local or remote, state."""
    from node.members import store as service

    settings = settings_of(data_dir)
    found = read(settings, lambda conn: service.list_members(conn, current_only=not everyone))
    for member in found:
        show_member(member)
    if not found:
        click.echo("No members yet.", err=True)


@members.command("change")
@click.argument("member_id", type=int)
@click.option("--role", default=None, help="admin, member or observer.")
@click.option("--college", default=None, help="Another college.")
@data_dir_option
def members_change(member_id: int, role: str | None, college: str | None, data_dir: Path) -> None:
    """Change a member's role or college (a new role revokes the member's tokens)."""
    from node.members import store as service

    settings = settings_of(data_dir)
    now = command_clock().now()
    show_member(
        member_write(
            settings,
            lambda conn: service.change(conn, member_id, now=now, role=role, college=college),
        )
    )


@members.command("remove")
@click.argument("member_id", type=int)
@data_dir_option
def members_remove(member_id: int, data_dir: Path) -> None:
    """End a membership today (kept in the history) and revoke the member's tokens."""
    from node.members import store as service

    settings = settings_of(data_dir)
    now = command_clock().now()
    show_member(member_write(settings, lambda conn: service.remove(conn, member_id, now=now)))


@members.command("token")
@click.argument("member_id", type=int)
@data_dir_option
def members_token(member_id: int, data_dir: Path) -> None:
    """Create an API token acting as the member, with the member's role; print it once."""
    from node.members import store as service

    settings = settings_of(data_dir)
    now = command_clock().now()
    click.echo(
        member_write(
            settings,
            lambda conn: service.issue_token(
                conn, service.get_member(conn, member_id), name="issued by the admin", now=now
            ),
        )
    )


@members.command("colleges")
@click.argument("weights", nargs=-1)
@data_dir_option
def members_colleges(weights: tuple[str, ...], data_dir: Path) -> None:
    """Show the colleges, or set them: NAME=PERCENT ... (summing to 100)."""
    from node.members import store as service

    settings = settings_of(data_dir)
    if weights:
        wanted = []
        for item in weights:
            name, sep, weight = item.partition("=")
            if not sep or not name.strip():
                fail(f"{item!r}: write NAME=PERCENT, e.g. workers=50")
            try:
                wanted.append(
                    service.College(name=name.strip(), weight_bp=service.parse_weight(weight))
                )
            except NodeError as exc:
                fail(f"{item}: {exc.reason}")
        now = command_clock().now()
        member_write(settings, lambda conn: service.set_colleges(conn, wanted, now=now))
    for college in read(settings, service.list_colleges):
        click.echo(f"{college.name}\t{service.percent(college.weight_bp)} %")


COMMANDS = (members,)
