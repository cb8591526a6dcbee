"""The ``coopnode`` command line: the :func:`main` group, with its commands registered
from one module per group of them.

- :mod:`node.cli.server`: ``init``, ``serve``, ``worker``, ``migrate``
- :mod:`node.cli.demo`: ``demo``
- :mod:`node.cli.tokens`: ``tokens``
- :mod:`node.cli.members`: ``members``
- :mod:`node.cli.follows`: ``follow``, ``unfollow``, ``following``, ``followers``, ``profile``
- :mod:`node.cli.peers`: ``lookup``, ``domains``, ``deliveries``
- :mod:`node.cli.offers`: ``offers``, ``catalogue``
- :mod:`node.cli.orders`: ``orders``
- :mod:`node.cli.networks`: ``networks``
- :mod:`node.cli.media`: ``media``
- :mod:`node.cli.proposals`: ``proposals``, ``audit``
- :mod:`node.cli.keys`: ``keys``
- :mod:`node.cli.backup`: ``backup``, ``restore``
- :mod:`node.cli.doctor`: ``doctor``
- :mod:`node.cli.mail`: ``mail``
- :mod:`node.cli.comments`: ``comments``

What they share (settings, the clock, the database, a whole node) is in
:mod:`node.cli.common`. Each command imports what it needs when it runs, so that
``coopnode --help`` and the light commands start fast.
"""

from __future__ import annotations

import click

from node.cli import (
    backup,
    comments,
    demo,
    doctor,
    follows,
    keys,
    mail,
    media,
    members,
    networks,
    offers,
    orders,
    peers,
    proposals,
    server,
    tokens,
)


@click.group()
@click.version_option(package_name="coopnode")
def main() -> None:
    """coopnode: a co-operative's own node in the fediverse."""


for group in (
    server,
    demo,
    tokens,
    members,
    follows,
    peers,
    offers,
    orders,
    networks,
    media,
    proposals,
    keys,
    backup,
    doctor,
    mail,
    comments,
):
    for command in group.COMMANDS:
        main.add_command(command)
