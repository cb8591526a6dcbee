"""Running the demo: the nodes (the three co-ops' and the newcomer's) started in one
event loop, seeded, described, and stopped at SIGINT (Ctrl-C) or SIGTERM, their
temporary data directory deleted."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from federation.clock import Clock
from node.app import create_app
from node.demo.coops import Seed, load_seed
from node.demo.errors import DemoError
from node.demo.nodes import HOST, DemoNode, Server, bind_ports, create_node, prepare_data_dir
from node.demo.seeding import (
    Proposals,
    federate,
    form_network,
    open_proposals,
    place_orders,
    seed_node,
    wait_for,
)
from node.governance.rules.proposal_input import iso


def _following(nodes: list[DemoNode], seed: Seed) -> str:
    """Who follows whom, in a few words: all of them each other, but for the co-ops
    the data file says follow fewer."""
    fewer = [
        f"{d.coop.handle} follows only {', '.join(seed.followed_by(d.coop)) or 'nobody'}"
        for d in nodes
        if set(seed.followed_by(d.coop)) != {p.coop.handle for p in nodes if p is not d}
    ]
    if not fewer:
        return "each following the others"
    return "following each other, except that " + "; ".join(fewer)


def _network_lines(nodes: list[DemoNode], seed: Seed, width: int) -> list[str]:
    """The network, where its directory is, and each co-op's standing in it."""
    network = seed.network
    if network is None:
        return []
    by_handle = {d.coop.handle: d for d in nodes}
    host = by_handle[network.host]
    lines = [
        "",
        f"The network {network.title}, hosted by {network.host}: its directory is at "
        f"{host.base}networks/{network.name}; {network.host}'s admin answers the "
        f"application waiting at {host.base}admin/networks.",
        "",
        f"  network  {network.host:<{width}}  {host.base}actors/{network.name}  "
        f"@{network.name}@{host.domain}  {network.title}",
    ]
    for state, seats in (("member", network.members), ("pending", network.waiting)):
        for seat in seats:
            lines.append(
                f"  member   {seat.coop:<{width}}  {state:<7}  {seat.sector} / {seat.region}"
            )
    return lines


def describe(
    nodes: list[DemoNode],
    proposals: Proposals,
    root: Path,
    temporary: bool,
    seed: Seed,
) -> str:
    """What the demo prints once it is ready: easy to read, easy to parse."""
    width = max(len(d.coop.handle) for d in nodes)
    core = [d for d in nodes if d.coop in seed.coops]
    newcomers = [d for d in nodes if d.coop in seed.newcomers]
    lines = [
        "",
        f"Three co-ops are running on this machine, {_following(core, seed)}:",
        "",
    ]
    for demo in core:
        handle = demo.coop.handle
        lines.append(
            f"  node  {handle:<{width}}  {demo.base}  @{handle}@{demo.domain}  {demo.coop.name}"
        )
    if newcomers:
        lines += ["", "And a newcomer, which follows nobody and only applies to the network:", ""]
        for demo in newcomers:
            handle = demo.coop.handle
            lines.append(
                f"  newcomer  {handle:<{width}}  {demo.base}  @{handle}@{demo.domain}  "
                f"{demo.coop.name}"
            )
    lines += ["", "Demo logins (at each node's /login), with their role:", ""]
    for demo in nodes:
        for member in demo.coop.members:
            name = member.name + (f" ({member.college})" if member.college else "")
            lines.append(
                f"  login  {demo.coop.handle:<{width}}  {member.role:<6}  "
                f"{member.username:<5}  {member.password:<18}  {name}"
            )
    lines += _network_lines(nodes, seed, width)
    orders = seed.orders
    if orders:
        lines += [
            "",
            "Orders between the co-ops: seller, state, buyer, member, quantity, offer "
            "(a pending one waits for the seller's admin):",
            "",
        ]
        for order in orders:
            lines.append(
                f"  order  {order.seller:<{width}}  {order.state.value:<9}  "
                f"{order.buyer:<{width}}  {order.member:<5}  "
                f"{order.data['quantity']:>3}  {order.offer}"
            )
    lines += ["", f"Proposals open for voting, closing at {iso(proposals.closes_at)}:", ""]
    for handle, kind, uri, title in proposals.shown:
        lines.append(f"  proposal  {handle:<{width}}  {kind:<8}  {uri}  {title}")
    lines.append("")
    where = "a temporary directory, deleted at exit" if temporary else "kept at exit"
    lines.append(f"Data: {root} ({where}).")
    return "\n".join(lines)


async def _start(nodes: list[DemoNode], clock: Clock) -> None:
    for demo in nodes:
        demo.app = create_app(demo.settings, clock=clock)
        server = Server(demo.app)
        demo.server = server
        demo.task = asyncio.create_task(server.serve(demo.sock), name=f"demo-{demo.coop.handle}")

    async def started() -> bool:
        for demo in nodes:
            assert demo.task is not None
            if demo.task.done():
                demo.task.result()  # its error
                raise DemoError(f"the node {demo.coop.handle} stopped while starting")
        return all(d.server is not None and d.server.started for d in nodes)

    await wait_for("the servers starting", started, seconds=30)


async def _setup(
    nodes: list[DemoNode],
    seed: Seed,
    *,
    clock: Clock,
    closes_in: float,
    root: Path,
    temporary: bool,
    echo: Callable[[str], None],
) -> None:
    began = time.monotonic()
    await _start(nodes, clock)
    joined_at = (clock.now() - timedelta(days=90)).date().isoformat()
    await asyncio.gather(*(seed_node(demo, joined_at) for demo in nodes))
    await federate([d for d in nodes if d.coop in seed.coops], seed)
    if seed.network is not None:
        await form_network(nodes, seed.network)
    await place_orders(nodes, seed)
    proposals = await open_proposals(nodes, seed, closes_in)
    echo(describe(nodes, proposals, root, temporary, seed))
    echo(f"Ready in {time.monotonic() - began:.1f} s. Press Ctrl-C to stop the demo.")


async def _run(
    nodes: list[DemoNode],
    seed: Seed,
    *,
    clock: Clock,
    closes_in: float,
    root: Path,
    temporary: bool,
    echo: Callable[[str], None],
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal() -> None:
        # A second Ctrl-C closes the open connections at once rather than letting them
        # finish; the workers still stop and the data directory is still cleaned up.
        if stop.is_set():
            for demo in nodes:
                if demo.server is not None:
                    demo.server.force()
        stop.set()

    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, on_signal)
    setup = asyncio.create_task(
        _setup(
            nodes,
            seed,
            clock=clock,
            closes_in=closes_in,
            root=root,
            temporary=temporary,
            echo=echo,
        )
    )
    stopping = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({setup, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if setup in done:
            setup.result()
            servers = {d.task for d in nodes if d.task is not None}
            done, _ = await asyncio.wait({stopping, *servers}, return_when=asyncio.FIRST_COMPLETED)
            for task in done & servers:
                task.result()
                raise DemoError("a node stopped on its own")
        echo("Stopping the demo...")
    finally:
        for task in (setup, stopping):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await setup
        with contextlib.suppress(asyncio.CancelledError):
            await stopping
        for demo in nodes:
            if demo.server is not None:
                demo.server.stop()
        tasks = [d.task for d in nodes if d.task is not None]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for sig in signals:
            loop.remove_signal_handler(sig)
        for outcome in results:
            if isinstance(outcome, DemoError):
                raise outcome


def run(
    *,
    port: int,
    data_dir: Path | None,
    closes_in: float,
    clock: Clock,
    echo: Callable[[str], None],
) -> None:
    """Run the demo until SIGINT or SIGTERM; :class:`DemoError` when it cannot."""
    seed = load_seed()
    coops = seed.everyone
    sockets = bind_ports(port, len(coops))
    root: Path | None = None
    temporary = False
    # Until the event loop takes the signals over, SIGTERM stops the demo as Ctrl-C does.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        root, temporary = prepare_data_dir(data_dir)
        echo(f"Starting {len(coops)} co-ops on ports {port} to {port + len(coops) - 1}...")
        nodes = [
            DemoNode(
                coop=coop,
                port=port + i,
                settings=create_node(
                    root,
                    coop,
                    port + i,
                    clock,
                    # The three co-ops trust each other: shared proposals need no answer.
                    # A newcomer trusts nobody yet.
                    partners=tuple(
                        f"{other.handle}@{HOST}:{port + j}"
                        for j, other in enumerate(coops)
                        if j != i and coop in seed.coops and other in seed.coops
                    ),
                ),
                sock=sock,
            )
            for i, (coop, sock) in enumerate(zip(coops, sockets, strict=True))
        ]
        main = _run(
            nodes,
            seed,
            clock=clock,
            closes_in=closes_in,
            root=root,
            temporary=temporary,
            echo=echo,
        )
        try:
            import uvloop  # optional: not built for every platform
        except ImportError:
            asyncio.run(main)
        else:
            uvloop.run(main)
    except KeyboardInterrupt:  # while the nodes were being created
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        for sock in sockets:
            sock.close()
        if temporary and root is not None:
            shutil.rmtree(root, ignore_errors=True)
    echo("The demo stopped.")
