"""``coopnode comments``: the admin reads the reports and hides, shows again, removes or
dismisses, from the command line, on the same database the node serves."""

from __future__ import annotations

import asyncio

from click.testing import CliRunner

from node.cli import main
from node.settings import write_config
from tests.support.coops import make_coop
from tests.support.network import Network


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


async def cli(*args: str) -> tuple[int, str]:
    # In a thread: a command runs its own event loop.
    return await asyncio.to_thread(run, *args)


async def test_the_admin_moderates_from_the_command_line(network: Network) -> None:
    coop = await make_coop(network, local=2, remote=0)
    created = await coop.propose("m0", title="Tariff")
    response = await coop.node.request(
        "POST",
        f"/api/v1/proposals/{created['id']}/comments",
        json={"text": "Buy **my** product"},
        headers=coop.local["m0"],
    )
    said = response.json()
    await coop.node.request(
        "POST",
        f"/api/v1/comments/{said['key']}/report",
        json={"reason": "advertising"},
        headers=coop.local["m1"],
    )
    await network.settle()
    write_config(coop.node.settings)
    data = ("--data-dir", str(coop.node.settings.data_dir))

    code, output = await cli("comments", "list", "--reported", *data)
    assert code == 0, output
    assert output.startswith(f"{said['key']}\tvisible\t")
    assert "\tm0 (here)\tBuy my product\n" in output
    assert f"reported by {coop.node.base}/actors/m1: advertising" in output

    code, output = await cli("comments", "hide", said["key"], *data)
    assert code == 0, output
    assert f"{said['key']}\thidden\t" in output
    code, output = await cli("comments", "list", "--hidden", *data)
    assert output.startswith(f"{said['key']}\thidden")
    code, output = await cli("comments", "list", "--reported", *data)
    assert output.startswith("No report waiting.")
    code, output = await cli("comments", "unhide", said["key"], *data)
    assert f"{said['key']}\tvisible\t" in output
    code, output = await cli("comments", "remove", said["key"], *data)
    assert code == 0, output
    assert f"{said['key']}\tremoved\t" in output
    gone = await coop.node.get(
        f"/comments/{said['key']}", headers={"Accept": "application/activity+json"}
    )
    assert gone.status_code == 410

    code, output = await cli("comments", "hide", "no-such-key", *data)
    assert code == 1
    assert "no such comment" in output
