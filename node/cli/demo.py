"""``coopnode demo``: federated co-ops on this machine, and their network (see :mod:`node.demo`).

Its commands import what they use when they run, so that ``coopnode --help`` and the
other commands start without loading it."""

from __future__ import annotations

from pathlib import Path

import click

from node.cli.common import command_clock


@click.command()
@click.option(
    "--port",
    default=8100,
    show_default=True,
    type=click.IntRange(1, 65532),
    help="The first port: the co-ops listen on PORT to PORT+3 of 127.0.0.1 (the fourth, "
    "gites, only applies to the network).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the four nodes in DIR (DIR/marche, DIR/food, DIR/tourism, DIR/gites) and "
    "leave them "
    "there at exit; an earlier demo in DIR is replaced. Default: a temporary directory, "
    "deleted at exit.",
)
@click.option(
    "--closes-in",
    default=60.0 * 24 * 7,
    show_default=True,
    type=click.FloatRange(0.1, 60.0 * 24 * 365),
    help="Minutes until the two proposals close (fractions too: 0.5 is thirty seconds).",
)
def demo(port: int, data_dir: Path | None, closes_in: float) -> None:
    """Run federated co-ops on this machine, seeded, until Ctrl-C.

    A fair-trade marketplace, a local food network and a multi-stakeholder tourism
    co-op belong to one network and follow each other; each has members who log in with
    the passwords printed, offers in French and English, and proposals open for voting.
    A fourth co-op's application to the network waits for its admin.
    """
    # Imported here to keep start-up fast: the demo loads the whole application.
    from node.demo.errors import DemoError
    from node.demo.runner import run

    clock = command_clock()
    try:
        run(port=port, data_dir=data_dir, closes_in=closes_in, clock=clock, echo=click.echo)
    except DemoError as exc:
        raise click.ClickException(str(exc)) from None


COMMANDS = (demo,)
