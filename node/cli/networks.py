"""``coopnode networks``: the networks of co-ops this node hosts (create one, take
applications, approve, refuse or remove members) and those the co-op belongs to (join,
leave, see each one's roster).

Its commands import what they use when they run, so that ``coopnode --help`` and the
other commands start without loading it."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import click

from node.cli.common import data_dir_option, fail, settings_of, with_node


@click.group()
def networks() -> None:
    """Networks of co-ops: those hosted here, and those the co-op belongs to."""


def _day(moment: Any) -> str:
    return "-" if moment is None else f"{moment:%Y-%m-%d}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _network_url(node: Any, name: str) -> str:
    return str(node.urls.actor(name))


@networks.command("create")
@click.argument("name")
@click.option("--title", default=None, help="The network's name as people see it (default: NAME).")
@click.option("--summary", default=None, help="What the network is, in a few words.")
@click.option("--charter", default=None, help="The rules its members agree to.")
@click.option(
    "--admission",
    type=click.Choice(["admin", "vote"]),
    default="admin",
    show_default=True,
    help="Who admits a co-op: the node's admin, or the members' vote.",
)
@data_dir_option
def networks_create(
    name: str,
    title: str | None,
    summary: str | None,
    charter: str | None,
    admission: str,
    data_dir: Path,
) -> None:
    """Host a new network NAME: its own actor, which co-ops apply to join."""
    # Imported here to keep start-up fast (as in every command below).
    from node.networks import hosting

    settings = settings_of(data_dir)

    async def work(node: Any) -> tuple[Any, str]:
        network = await hosting.create_network(
            node, name=name, title=title, summary=summary, charter=charter, admission=admission
        )
        return network, _network_url(node, network.name)

    network, url = with_node(settings, work)
    click.echo(f"Network {network.name} created: {url} (admission: {network.admission}).")
    click.echo(f"Co-ops apply with `coopnode networks join {network.name}@{settings.domain}`.")


@networks.command("list")
@data_dir_option
def networks_list(data_dir: Path) -> None:
    """The networks hosted here (members, applications waiting) and the co-op's own
    memberships (state, network)."""
    from node.networks import reading

    settings = settings_of(data_dir)

    async def work(node: Any) -> tuple[list[Any], list[Any]]:
        hosted = [await reading.directory(node, n.name, size=1) for n in await reading.hosted(node)]
        return hosted, await reading.memberships(node)

    hosted, memberships = with_node(settings, work)
    if not hosted and not memberships:
        click.echo(
            "No network is hosted here and the co-op belongs to none: "
            "`coopnode networks create NAME` hosts one, "
            "`coopnode networks join network@host` applies to one."
        )
        return
    for found in hosted:
        network = found.network
        click.echo(
            f"hosted\t{network.name}\t{network.admission}\t"
            f"{_plural(found.members_in_all, 'member')}\t{found.waiting} waiting\t{network.title}"
        )
    for membership in memberships:
        click.echo(f"{membership.state}\t{membership.network}\t{membership.name}")


@networks.command("show")
@click.argument("network")
@data_dir_option
def networks_show(network: str, data_dir: Path) -> None:
    """A network hosted here (by NAME or URL): charter, admission, counts, waiting
    applications. Or one the co-op applied to (by URL or handle): its state, the
    reason it was refused or removed, its roster."""
    from node.errors import NotFound
    from node.networks import hosting, reading

    settings = settings_of(data_dir)

    async def work(node: Any) -> tuple[str, Any]:
        name = hosting.network_named(node, network) or network
        if "@" in name and "/" not in name:
            local, _, host = name.lstrip("@").partition("@")
            name = local if host == settings.domain else name
        if await reading.find_network(node, name) is not None:
            found = await reading.directory(node, name, size=1)
            return "hosted", (found, await reading.applications(node, name))
        url = network
        if "@" in network and "://" not in network:
            url = str((await node.peers.resolve(network))["id"])
        try:
            return "membership", await reading.membership(node, url)
        except NotFound:
            raise NotFound(
                f"no network {network!r} is hosted here, and the co-op never applied to it"
            ) from None

    kind, shown = with_node(settings, work)
    if kind == "hosted":
        _show_hosted(settings, *shown)
    else:
        _show_membership(*shown)


def _show_hosted(settings: Any, found: Any, waiting: list[Any]) -> None:
    network = found.network
    click.echo(f"{network.title} ({network.name}@{settings.domain})")
    click.echo(f"  actor: {settings.base_url}/actors/{network.name}")
    if network.summary:
        click.echo(f"  summary: {network.summary}")
    click.echo(f"  admission: {network.admission}")
    click.echo(
        f"  {_plural(found.members_in_all, 'member')}, {found.waiting} waiting, "
        f"{_plural(found.offers_in_all, 'offer')} relayed"
    )
    if found.sectors:
        click.echo("  sectors: " + ", ".join(f"{s} ({n})" for s, n in found.sectors))
    if found.regions:
        click.echo("  regions: " + ", ".join(f"{r} ({n})" for r, n in found.regions))
    click.echo("  charter:" if network.charter else "  charter: (none)")
    for line in network.charter.splitlines():
        click.echo(f"    {line}")
    for member in waiting:
        click.echo(f"  waiting since {_day(member.applied_at)}: {_member_line(member)}")


def _show_membership(membership: Any, roster: list[Any]) -> None:
    click.echo(f"{membership.name} ({membership.network})")
    click.echo(f"  state: {membership.state}")
    if membership.reason:
        click.echo(f"  reason: {membership.reason}")
    click.echo(f"  applied: {_day(membership.applied_at)}, member since: {_day(membership.since)}")
    if membership.sector or membership.region:
        click.echo(f"  as: {membership.sector or '-'}, {membership.region or '-'}")
    if membership.state == "member":
        click.echo(f"  roster: {_plural(len(roster), 'other member')}")
    for entry in roster:
        click.echo(f"    {entry.sector or '-'}\t{entry.region or '-'}\t{entry.actor}\t{entry.name}")


def _member_line(member: Any) -> str:
    return f"{member.actor}\t{member.sector or '-'}\t{member.region or '-'}\t{member.name}"


@networks.command("join")
@click.argument("target")
@click.option("--sector", default=None, help="The co-op's sector, for the network's directory.")
@click.option("--region", default=None, help="The co-op's region, for the network's directory.")
@click.option(
    "--wait",
    type=float,
    default=15.0,
    show_default=True,
    help="Seconds to wait for the answer (0: do not wait).",
)
@data_dir_option
def networks_join(
    target: str, sector: str | None, region: str | None, wait: float, data_dir: Path
) -> None:
    """Apply to join a network by handle (network@host) or actor URL, and wait for its
    answer."""
    from node.networks import joining, reading
    from node.networks.model import State

    settings = settings_of(data_dir)

    async def work(node: Any) -> None:
        result = await joining.join(node, target, sector=sector, region=region)
        if result.state is State.MEMBER:
            click.echo(f"Already a member of {result.network}.")
            return
        if result.sent:
            click.echo(f"Application sent to {result.network}.")
        else:
            click.echo(f"Already applied to {result.network}.")
        deadline = time.monotonic() + wait
        membership, _ = await reading.membership(node, result.network)
        while membership.state is State.PENDING and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            membership, _ = await reading.membership(node, result.network)
        if membership.state is State.MEMBER:
            click.echo(f"{result.network} admitted the co-op: its members' offers will reach it.")
        elif membership.state is State.REFUSED:
            why = f": {membership.reason}" if membership.reason else "."
            click.echo(f"{result.network} refused the application{why}")
        else:
            click.echo(
                "Waiting for its answer: it arrives while `coopnode serve` runs "
                "(see `coopnode networks list`)."
            )

    with_node(settings, work)


@networks.command("leave")
@click.argument("network")
@data_dir_option
def networks_leave(network: str, data_dir: Path) -> None:
    """Leave a network (by its actor URL), or withdraw an application: it is sent a
    Leave, and what came only through it leaves the catalogue."""
    from node.networks import joining

    settings = settings_of(data_dir)
    left = with_node(settings, lambda node: joining.leave(node, network))
    click.echo(f"Left {left.network}; a Leave is on its way.")


@networks.command("members")
@click.argument("name")
@click.option("--waiting", is_flag=True, help="The applications waiting instead of the members.")
@click.option("--json", "as_json", is_flag=True, help="As JSON, for programs.")
@data_dir_option
def networks_members(name: str, waiting: bool, as_json: bool, data_dir: Path) -> None:
    """The members of network NAME (actor, sector, region, name), or with --waiting
    the applications waiting for a decision."""
    from node.networks import documents as views
    from node.networks import reading
    from node.networks.model import State

    settings = settings_of(data_dir)
    state = State.PENDING if waiting else State.MEMBER
    found = with_node(settings, lambda node: reading.applications(node, name, states=(state,)))
    if as_json:
        click.echo(json.dumps([views.member_view(m) for m in found], ensure_ascii=False, indent=2))
        return
    if not found:
        click.echo(f"No application waits in {name}." if waiting else f"{name} has no member yet.")
    for member in found:
        since = member.applied_at if waiting else member.since
        click.echo(f"{_day(since)}\t{_member_line(member)}")


@networks.command("approve")
@click.argument("name")
@click.argument("actor")
@data_dir_option
def networks_approve(name: str, actor: str, data_dir: Path) -> None:
    """Admit ACTOR (a co-op's actor URL) whose application to NAME waits: it is sent an
    Accept, the other members an Add."""
    from node.networks import hosting

    settings = settings_of(data_dir)
    with_node(settings, lambda node: hosting.approve(node, name, actor))
    click.echo(f"{actor} is now a member of {name}; an Accept is on its way.")


@networks.command("refuse")
@click.argument("name")
@click.argument("actor")
@click.option("--reason", default=None, help="Why, for the co-op.")
@data_dir_option
def networks_refuse(name: str, actor: str, reason: str | None, data_dir: Path) -> None:
    """Turn down ACTOR's application to NAME: it is sent a Reject, with the reason."""
    from node.networks import hosting

    settings = settings_of(data_dir)
    with_node(settings, lambda node: hosting.refuse(node, name, actor, reason=reason))
    click.echo(f"{actor} was refused from {name}; a Reject is on its way.")


@networks.command("remove")
@click.argument("name")
@click.argument("actor")
@click.option("--reason", required=True, help="Why, for the co-op and the other members.")
@data_dir_option
def networks_remove(name: str, actor: str, reason: str, data_dir: Path) -> None:
    """Remove member ACTOR from NAME: it and the other members are told why, and
    nothing of it is relayed from now on."""
    from node.networks import hosting

    settings = settings_of(data_dir)
    if not reason.strip():
        fail("a removal says why: give --reason")
    with_node(settings, lambda node: hosting.remove(node, name, actor, reason=reason))
    click.echo(f"{actor} was removed from {name}; every member is told.")


COMMANDS = (networks,)
