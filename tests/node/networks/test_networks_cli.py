"""``coopnode networks`` as the hub's admin types it, against the data directory of a
real node: create a network, list and show it, see who waits, approve and refuse
(the co-ops learn the answer), remove; and each refusal is a plain error."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli import main
from node.cli import networks as networks_cli
from node.networks import joining, reading
from node.networks.model import State
from node.settings import write_config
from tests.support.network import Network, TestNode
from tests.support.processes import ROOT, coopnode_command, process_env, start_serve

NETWORK = "https://hub.test/actors/reseau"
FOOD = "https://food.test/actors/coop"
MARKET = "https://market.test/actors/coop"
# The group as `coopnode` registers it (the module's own, where it does not yet).
NETWORKS = main.commands.get("networks", networks_cli.networks)


def invoke(*args: str) -> tuple[int, str]:
    """``coopnode networks ARGS...``."""
    result = CliRunner().invoke(NETWORKS, list(args), catch_exceptions=False)
    return result.exit_code, result.output


async def run(node: TestNode, *args: str) -> tuple[int, str]:
    """A command on ``node``'s data directory, in a thread of its own (the command runs
    its own event loop, as in a terminal)."""
    write_config(node.settings)
    data = str(node.settings.data_dir)
    return await asyncio.to_thread(invoke, *args, "--data-dir", data)


async def ok(node: TestNode, *args: str) -> str:
    code, output = await run(node, *args)
    assert code == 0, output
    return output


async def fails(node: TestNode, *args: str) -> str:
    code, output = await run(node, *args)
    assert code == 1, output
    assert output.startswith("Error: "), output
    return output


async def test_the_admin_creates_a_network_and_decides_on_applications(network: Network) -> None:
    hub = await network.add("hub.test")
    food = await network.add("food.test")
    market = await network.add("market.test")
    assert (await ok(hub, "list")).startswith("No network is hosted here")

    output = await ok(
        hub,
        "create",
        "reseau",
        "--title",
        "Plateformes en communs",
        "--summary",
        "Les plateformes de l'Ouest.",
        "--charter",
        "Entraide.",
    )
    assert f"Network reseau created: {NETWORK} (admission: admin)." in output
    assert "coopnode networks join reseau@hub.test" in output

    await joining.join(food.node, "reseau@hub.test", sector="food", region="Bretagne")
    await joining.join(market.node, NETWORK, sector="crafts")
    await network.settle()

    assert (await ok(hub, "list")).splitlines() == [
        "hosted\treseau\tadmin\t0 members\t2 waiting\tPlateformes en communs"
    ]
    shown = await ok(hub, "show", "reseau")
    assert shown.splitlines()[:3] == [
        "Plateformes en communs (reseau@hub.test)",
        f"  actor: {NETWORK}",
        "  summary: Les plateformes de l'Ouest.",
    ]
    assert "  admission: admin" in shown
    assert "  0 members, 2 waiting, 0 offers relayed" in shown
    assert "  charter:\n    Entraide.\n" in shown
    assert f"  waiting since 2027-03-01: {FOOD}\tfood\tBretagne\tCo-op food.test\n" in shown
    assert f": {MARKET}\tcrafts\t-\t" in shown
    assert await ok(hub, "show", NETWORK) == shown
    assert await ok(hub, "show", "reseau@hub.test") == shown

    waiting = (await ok(hub, "members", "reseau", "--waiting")).splitlines()
    assert [line.split("\t")[1:3] for line in waiting] == [
        [MARKET, "crafts"],
        [FOOD, "food"],
    ]
    assert (await ok(hub, "members", "reseau")) == "reseau has no member yet.\n"

    output = await ok(hub, "approve", "reseau", FOOD)
    assert output == f"{FOOD} is now a member of reseau; an Accept is on its way.\n"
    output = await ok(hub, "refuse", "reseau", MARKET, "--reason", "Hors de notre région.")
    assert output == f"{MARKET} was refused from reseau; a Reject is on its way.\n"
    await network.settle()

    mine, _ = await reading.membership(food.node, NETWORK)
    assert mine.state is State.MEMBER
    theirs, _ = await reading.membership(market.node, NETWORK)
    assert (theirs.state, theirs.reason) == (State.REFUSED, "Hors de notre région.")
    listed = json.loads(await ok(hub, "members", "reseau", "--json"))
    assert [(m["actor"], m["state"], m["sector"], m["region"]) for m in listed] == [
        (FOOD, "member", "food", "Bretagne")
    ]
    assert listed[0]["memberSince"] is not None
    assert (await ok(hub, "members", "reseau", "--waiting")) == "No application waits in reseau.\n"

    # Each co-op sees its own membership.
    assert (await ok(food, "list")).splitlines() == [f"member\t{NETWORK}\tPlateformes en communs"]
    refused = await ok(market, "show", NETWORK)
    assert "  state: refused\n  reason: Hors de notre région.\n" in refused
    assert "  as: crafts, -\n" in refused

    # Removal needs a reason, which the co-op receives.
    code, output = await run(hub, "remove", "reseau", FOOD)
    assert code == 2
    assert "--reason" in output
    assert "a removal says why" in await fails(hub, "remove", "reseau", FOOD, "--reason", " ")
    await ok(hub, "remove", "reseau", FOOD, "--reason", "Statuts non respectés.")
    await network.settle()
    mine, _ = await reading.membership(food.node, NETWORK)
    assert (mine.state, mine.reason) == (State.REMOVED, "Statuts non respectés.")
    assert "  state: removed\n  reason: Statuts non respectés.\n" in await ok(food, "show", NETWORK)


async def test_a_member_leaves_and_refusals_are_plain_errors(network: Network) -> None:
    hub = await network.add("hub.test")
    food = await network.add("food.test")
    await ok(hub, "create", "reseau", "--admission", "vote")
    assert "  admission: vote\n" in await ok(hub, "show", "reseau")
    await joining.join(food.node, "reseau@hub.test")
    await network.settle()

    # Unknown networks and co-ops, wrong states, bad input.
    assert "'reseau' is taken on this node" in await fails(hub, "create", "reseau")
    assert "'coop' is taken" in await fails(hub, "create", "coop")
    assert "name: a network's name is" in await fails(hub, "create", "Pas Un Nom")
    assert "no network 'inconnu' is hosted here" in await fails(hub, "members", "inconnu")
    assert "no network 'inconnu' is hosted here" in await fails(hub, "show", "inconnu")
    assert "never applied to reseau" in await fails(hub, "approve", "reseau", MARKET)
    assert "no network 'inconnu'" in await fails(hub, "approve", "inconnu", FOOD)
    assert "is not a member of reseau (pending)" in await fails(
        hub, "remove", "reseau", FOOD, "--reason", "Non."
    )
    await ok(hub, "approve", "reseau", FOOD)
    assert "already a member of reseau" in await fails(hub, "approve", "reseau", FOOD)
    assert "has no application waiting (member)" in await fails(hub, "refuse", "reseau", FOOD)
    assert "sector: sector is longer than 64" in await fails(
        food, "join", NETWORK, "--sector", "x" * 65
    )
    assert "never applied to" in await fails(food, "show", MARKET)
    await network.settle()

    # Food leaves: the network takes it off its members.
    assert (await ok(food, "leave", NETWORK)) == f"Left {NETWORK}; a Leave is on its way.\n"
    await network.settle()
    gone = await reading.applications(hub.node, "reseau", states=(State.LEFT,))
    assert [m.actor for m in gone] == [FOOD]
    assert "neither belongs nor applied" in await fails(food, "leave", NETWORK)
    assert (await ok(food, "list")).splitlines() == [f"left\t{NETWORK}\treseau"]


def test_networks_needs_a_node(tmp_path: Path) -> None:
    code, output = invoke("list", "--data-dir", str(tmp_path / "none"))

    assert code == 1
    assert "coopnode init" in output


def networks_command(*args: str) -> list[str]:
    """``coopnode networks ARGS...`` as a process (through the module while the
    top-level command does not register the group)."""
    if "networks" in main.commands:
        return [*coopnode_command(), "networks", *args]
    program = "from node.cli.networks import networks; networks(prog_name='coopnode networks')"
    return [sys.executable, "-c", program, *args]


def run_networks(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        networks_command(*args),
        cwd=ROOT,
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.e2e
def test_join_waits_for_the_admins_answer_between_two_processes(tmp_path: Path) -> None:
    hub = start_serve(tmp_path / "hub")
    food = start_serve(tmp_path / "food")
    try:
        hub.wait_ready()
        food.wait_ready()
        created = run_networks("create", "reseau", "--data-dir", str(hub.data_dir))
        assert created.returncode == 0, created.stderr
        handle = f"reseau@127.0.0.1:{hub.port}"
        joining_process = subprocess.Popen(
            networks_command(
                "join", handle, "--sector", "food", "--wait", "30", "--data-dir", str(food.data_dir)
            ),
            cwd=ROOT,
            env=process_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        applicant = f"{food.base}/actors/coop"
        deadline = time.monotonic() + 20
        while (
            applicant
            not in (
                waiting := run_networks(
                    "members", "reseau", "--waiting", "--data-dir", str(hub.data_dir)
                )
            ).stdout
        ):
            assert time.monotonic() < deadline, waiting.stdout + hub.read_output()
            time.sleep(0.3)
        approved = run_networks("approve", "reseau", applicant, "--data-dir", str(hub.data_dir))
        assert approved.returncode == 0, approved.stderr
        out, err = joining_process.communicate(timeout=40)

        assert joining_process.returncode == 0, err
        assert out.splitlines() == [
            f"Application sent to {hub.base}/actors/reseau.",
            f"{hub.base}/actors/reseau admitted the co-op: its members' offers will reach it.",
        ], out + err + food.read_output()
        members = run_networks("members", "reseau", "--data-dir", str(hub.data_dir))
        assert f"\t{applicant}\tfood\t-\t" in members.stdout
    finally:
        hub.stop()
        food.stop()
