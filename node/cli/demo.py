"""``coopnode demo``: three federated co-ops on this machine (see :mod:`node.demo`).

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
    type=click.IntRange(1, 65533),
    help="The first port: the co-ops listen on PORT, PORT+1 and PORT+2 of 127.0.0.1.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the three nodes in DIR (DIR/marche, DIR/food, DIR/tourism) and leave them "
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
    """Run three federated co-ops on this machine, seeded, until Ctrl-C.

    A fair-trade marketplace, a local food network and a multi-stakeholder tourism
    co-op follow each other; each has members who log in with the passwords printed,
    offers in French and English, and proposals open for voting.
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
