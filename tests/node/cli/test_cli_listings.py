"""What the command line lists: empty lists say so in words, `proposals list` shows the
shared proposals other co-ops host beside the co-op's own, and `offers categories` and
`offers units` list the values an offer's JSON may name."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from node.cli import main
from node.offers import categories
from node.offers.model import DEFAULT_UNIT, UNITS
from node.settings import write_config
from tests.support.coops import make_coop, take_part_in
from tests.support.network import Network


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def new_node(tmp_path: Path) -> str:
    data = str(tmp_path / "node")
    code, output = run("init", "--domain", "a.example", "--name", "A", "--data-dir", data)
    assert code == 0, output
    return data


def test_empty_lists_say_so_in_words(tmp_path: Path) -> None:
    data = new_node(tmp_path)
    expected = {
        ("proposals", "list"): "No proposal yet",
        ("offers", "list"): "The co-op has no offer yet",
        ("following",): "The co-op follows no one yet",
        ("followers", "list"): "No one follows the co-op yet",
        ("followers", "list", "--pending"): "No follow waits for approval",
        ("domains", "list"): "No domain is blocked or allowed",
    }
    for command, sentence in expected.items():
        code, output = run(*command, "--data-dir", data)
        assert code == 0, output
        assert output.startswith(sentence), (command, output)


def test_categories_and_units_are_listed_and_an_offer_takes_them(tmp_path: Path) -> None:
    data = new_node(tmp_path)

    code, listed_categories = run("offers", "categories")
    assert code == 0
    rows = [line.strip().split("\t") for line in listed_categories.splitlines()]
    assert [row[0] for row in rows] == list(categories.all_categories())
    apples = categories.get("apples")
    assert apples is not None
    assert apples.parent is not None
    assert f"    apples\t{apples.kind}\tApples / Pommes" in listed_categories.splitlines()

    code, listed_units = run("offers", "units")
    assert code == 0
    names = [line.split("\t")[0] for line in listed_units.splitlines()]
    assert names == list(UNITS)
    assert f"{DEFAULT_UNIT}\tpièce\t(default)" in listed_units.splitlines()

    # The last of each list, as listed, makes a valid offer.
    offer = tmp_path / "offer.json"
    offer.write_text(
        json.dumps({"title": {"en": "Baskets"}, "categories": [rows[-1][0]], "unit": names[-1]})
    )
    code, output = run("offers", "create", str(offer), "--data-dir", data)
    assert code == 0, output
    code, output = run("offers", "list", "--data-dir", data)
    assert code == 0
    assert output.endswith("\tactive\tBaskets\n")


async def test_proposals_list_shows_the_shared_ones_hosted_elsewhere(network: Network) -> None:
    tourism = await make_coop(network, local=1, remote=0, domain="tourism.test")
    food = await make_coop(
        network, local=1, remote=0, domain="food.test", accept_shared_from=("coop@tourism.test",)
    )
    await take_part_in(network, tourism, food)
    await food.propose("m0", title="Buy a second van", quorum="0%")
    await tourism.propose(
        "m0",
        title="Join the regional mobility fund",
        quorum="0%",
        electorate=["coop@food.test"],
    )
    await network.settle()
    write_config(food.node.settings)

    code, output = run("proposals", "list", "--data-dir", str(food.node.settings.data_dir))

    assert code == 0, output
    own, hosted = output.splitlines()
    assert own.endswith("\tBuy a second van")
    assert hosted.split("\t")[1] == "open"  # under this co-op's own key for it
    assert "\tJoin the regional mobility fund\t" in hosted
    assert hosted.endswith("(shared, hosted by another co-op: https://tourism.test/actors/coop)")


def test_opening_a_proposal_nobody_may_vote_on_warns(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from node.governance.documents import NO_VOTERS

    data = new_node(tmp_path)
    spec = tmp_path / "proposal.json"
    closes = datetime.now(UTC) + timedelta(days=7)
    spec.write_text(
        json.dumps({"title": "T", "options": ["For", "Against"], "closes_at": closes.isoformat()})
    )

    code, output = run("proposals", "open", str(spec), "--data-dir", data)

    assert code == 0, output
    assert f"warning: {NO_VOTERS}" in output
