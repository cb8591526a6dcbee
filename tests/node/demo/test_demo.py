"""``coopnode demo``: three federated co-ops in one process, seen over real HTTP."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from node.cli import main
from tests.support.demo import AS2, free_ports, login, start_demo


@pytest.mark.e2e
def test_the_demo_runs_three_federated_coops_and_stops_cleanly_on_ctrl_c() -> None:
    demo = start_demo(None, "--closes-in", "0.3")
    try:
        info = demo.wait_ready()
        assert set(info.nodes) == {"marche", "food", "tourism"}
        assert [n.base for n in info.nodes.values()] == [
            f"http://127.0.0.1:{demo.port + i}/" for i in range(3)
        ]
        assert info.data_dir is not None
        assert info.data_dir.is_dir()
        with httpx.Client(timeout=10) as http:
            # First of all, while the votes are open: members of the three co-ops vote
            # on the shared proposal, each at home.
            shared = info.proposal("shared")
            for handle, username in (("food", "paul"), ("marche", "amina"), ("tourism", "tom")):
                node = info.nodes[handle]
                who = next(x for x in info.logins if x.username == username)
                member = login(http, node, who)
                listed = http.get(node.base + "api/v1/proposals", headers=member).json()
                [key] = [
                    p["id"]
                    for p in listed["proposals"] + listed["shared"]
                    if p["uri"] == shared.url
                ]
                voted = http.post(
                    f"{node.base}api/v1/proposals/{key}/votes",
                    json={"choices": ["Pour / For"]},
                    headers=member,
                )
                assert voted.status_code == 201, voted.text

            for node in info.nodes.values():
                found = http.get(
                    node.base + ".well-known/webfinger",
                    params={"resource": f"acct:{node.address}"},
                )
                assert found.status_code == 200, found.text
                assert found.json()["subject"] == f"acct:{node.address}"
                actor = http.get(node.actor, headers=AS2)
                assert actor.status_code == 200, actor.text
                assert actor.json()["type"] == "Group"

            marche, food, tourism = (info.nodes[h] for h in ("marche", "food", "tourism"))
            # The marketplace's honey, federated into the food network's catalogue.
            food_admin = login(http, food, info.login("food"))
            hits = http.get(
                food.base + "api/v1/catalogue", params={"q": "miel"}, headers=food_admin
            ).json()["items"]
            coops = {hit["coop"] for hit in hits}
            assert {marche.actor, food.actor} <= coops
            page = http.get(food.base + "catalogue", params={"q": "miel"})
            assert page.status_code == 200
            assert "Miel de lavande" in page.text or "Lavender honey" in page.text

            # The shared proposal, hosted by the tourism co-op, reached the other two.
            assert shared.handle == "tourism"
            assert shared.url.startswith(tourism.base)
            for node in (marche, food):
                member = login(http, node, info.login(node.handle, "member"))
                listed = http.get(node.base + "api/v1/proposals", headers=member).json()
                assert shared.url in [p["uri"] for p in listed["shared"]]
            internal = info.proposal("internal")
            assert internal.handle == "food"
            question = http.get(internal.url, headers=AS2).json()
            assert question["type"] == "Question"
            # The tourism co-op's members are in its colleges.
            tourism_admin = login(http, tourism, info.login("tourism"))
            colleges = http.get(tourism.base + "api/v1/colleges", headers=tourism_admin).json()
            assert {c["name"] for c in colleges["colleges"]} == {"workers", "guests", "partners"}
            members = http.get(tourism.base + "api/v1/members", headers=tourism_admin).json()
            assert {m["college"] for m in members["items"]} == {"workers", "guests", "partners"}
            # --closes-in 0.3: both votes close 18 seconds after they opened, and the
            # outcome of the shared one reaches the co-ops taking part.
            deadline = time.monotonic() + 50
            while True:
                listed = http.get(food.base + "api/v1/proposals", headers=food_admin).json()
                [there] = [p for p in listed["shared"] if p["uri"] == shared.url]
                [own] = listed["proposals"]
                if there["state"] == "closed" and own["state"] == "closed":
                    break
                assert time.monotonic() < deadline, listed
                time.sleep(0.5)
            assert there["outcome"]["result"] == "passed", there["outcome"]
            assert there["outcome"]["counts"]["Pour / For"] == 3
            assert there["outcome"]["eligible"] == 13
            # The co-ops share their colleges, which weigh across them.
            assert {c["name"] for c in there["outcome"]["colleges"]} == {
                "workers",
                "guests",
                "partners",
            }
            assert own["outcome"]["result"] == "no quorum"
    finally:
        code = demo.stop()
    output = demo.read_output()
    assert code == 0, output
    assert "Traceback" not in output
    assert "The demo stopped." in output
    assert info.data_dir is not None
    assert not info.data_dir.exists()


def test_a_taken_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    first = free_ports()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", first + 1))
        taken.listen()
        result = CliRunner().invoke(
            main, ["demo", "--port", str(first), "--data-dir", str(tmp_path / "demo")]
        )
    assert result.exit_code != 0
    assert f"port {first + 1} on 127.0.0.1 is taken" in result.output
    assert "--port" in result.output
    assert not (tmp_path / "demo").exists()


def test_a_directory_that_holds_something_else_is_not_replaced(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me", encoding="utf-8")
    result = CliRunner().invoke(
        main, ["demo", "--port", str(free_ports()), "--data-dir", str(tmp_path)]
    )
    assert result.exit_code != 0
    assert "holds no demo" in result.output
    assert (tmp_path / "precious.txt").read_text(encoding="utf-8") == "keep me"
