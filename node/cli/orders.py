"""``coopnode orders``: the orders the co-op received and those it placed, and the
seller's answers, as the node's operator (an admin) gives them.

Its commands import what they use when they run, so that ``coopnode --help`` and the
other commands start without loading it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from node.cli.common import data_dir_option, settings_of, with_node


@click.group()
def orders() -> None:
    """Orders between co-ops: those received for the co-op's offers (accept, reject,
    fulfil, cancel) and those placed on other co-ops' offers."""


def _line(order: dict[str, Any]) -> str:
    total = f"\t{order['total']} {order['currency']}" if order["total"] is not None else "\t-"
    title = order["offer"]["title"] or order["offer"]["uri"]
    return (
        f"{order['key']}\t{order['side']}\t{order['state']}\t{order['quantity']} "
        f"{order['unit']}{total}\t{title}"
    )


@orders.command("list")
@click.option("--received", is_flag=True, help="Only the orders received for the co-op's offers.")
@data_dir_option
def orders_list(received: bool, data_dir: Path) -> None:
    """The orders received (and, without --received, those the co-op's members placed),
    newest first: key, side, state, quantity, total, offer."""
    # Imported here to keep start-up fast (as in every command below).
    from node.orders import reading

    settings = settings_of(data_dir)

    async def work(node: Any) -> list[dict[str, Any]]:
        found = await reading.received(node, member_id=None, admin=True)
        if not received:
            found += await reading.placed(node)
        return found

    found = with_node(settings, work)
    if not found:
        click.echo("No order yet." if not received else "No order received yet.")
    for order in found:
        click.echo(_line(order))


@orders.command("show")
@click.argument("key")
@data_dir_option
def orders_show(key: str, data_dir: Path) -> None:
    """Order KEY in full."""
    from node.orders import reading

    settings = settings_of(data_dir)
    order = with_node(settings, lambda node: reading.one(node, key, member_id=None, admin=True))
    click.echo(_line(order))
    click.echo(f"  {order['said']}")
    for label, field in (
        ("buyer", "buyer"),
        ("seller", "seller"),
        ("delivery", "delivery"),
        ("payment", "payment"),
        ("note", "note"),
        ("answer", "answer"),
        ("agreement", "agreement"),
    ):
        if order[field]:
            click.echo(f"  {label}: {order[field]}")
    if order["actions"]:
        click.echo(f"  next: {', '.join(order['actions'])}")


def _decide(key: str, decision: str, note: str, data_dir: Path) -> None:
    from node.orders import buying, reading, selling

    settings = settings_of(data_dir)

    async def work(node: Any) -> dict[str, Any]:
        shown = await reading.one(node, key, member_id=None, admin=True)
        if shown["side"] == "buyer":
            order = await buying.cancel(node, key, member_id=None, admin=True)
        else:
            order = await selling.decide(node, key, decision, note=note, admin=True)
        return reading.view(order)

    order = with_node(settings, work)
    click.echo(f"{order['key']}: {order['said']}")


# Each of the seller's (and buyer's) decisions: what it does, and what its note is for.
_DECISIONS = {
    "accept": (
        "Accept order KEY: the buyer is sent the agreement; its stock stays held.",
        "Words for the buyer (pickup time, say).",
    ),
    "reject": (
        "Reject order KEY: its stock comes back, the buyer is told why.",
        "Why, for the buyer.",
    ),
    "fulfil": (
        "Mark accepted order KEY fulfilled (delivered, picked up): the buyer is told.",
        "Words for the buyer.",
    ),
    "cancel": (
        "Cancel order KEY (received and accepted, or placed): the stock comes back and the "
        "other side is told.",
        "Why, for the other side.",
    ),
}


def _decision_command(decision: str, what: str, note_help: str) -> click.Command:
    @click.command(decision, help=what)
    @click.argument("key")
    @click.option("--note", default="", help=note_help)
    @data_dir_option
    def command(key: str, note: str, data_dir: Path) -> None:
        _decide(key, decision, note, data_dir)

    return command


for _name, (_what, _note_help) in _DECISIONS.items():
    orders.add_command(_decision_command(_name, _what, _note_help))


@orders.command("policy")
@click.argument("offer_key")
@click.argument("policy", type=click.Choice(["auto", "manual"]))
@data_dir_option
def orders_policy(offer_key: str, policy: str, data_dir: Path) -> None:
    """How the orders for the co-op's offer OFFER_KEY are answered: `auto` accepts them
    at once while in stock, `manual` holds them for the seller."""
    from node.orders import selling

    settings = settings_of(data_dir)
    with_node(settings, lambda node: selling.set_policy(node, offer_key, policy))
    click.echo(f"Orders for {offer_key}: {policy}.")


COMMANDS = (orders,)
