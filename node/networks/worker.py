"""The networks' background round: the votes on applicants that closed are applied
(:mod:`.admission`), and newcomers' offers are introduced to the members a page at a
time (:mod:`.introduce`)."""

from __future__ import annotations

from node.networks import admission, introduce
from node.runtime import Node, Poller


async def run_once(node: Node) -> int:
    return await admission.settle_votes(node) + await introduce.run_once(node)


NETWORKS_POLLER = Poller(
    name="networks",
    run_once=run_once,
    idle_seconds=60.0,
    wakeup=lambda node: node.networks_wakeup,
)
