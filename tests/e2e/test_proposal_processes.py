"""A proposal on a real ``coopnode serve`` process that is down across its closing time:
the vote closes as soon as the node is back, with the ballots cast before the close,
and the published result is what ``coopnode proposals show`` prints."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.support.processes import ServeProcess, admin_token, run_coopnode, start_serve

pytestmark = pytest.mark.e2e

AS2 = {"Accept": "application/activity+json"}
AN_HOUR_LATER = {"COOPNODE_CLOCK_OFFSET": "3600"}


@pytest.fixture
def started() -> Iterator[list[ServeProcess]]:
    processes: list[ServeProcess] = []
    yield processes
    for process in reversed(processes):
        process.stop()


def test_a_node_restarted_across_the_close_closes_when_it_is_back(
    tmp_path: Path, started: list[ServeProcess]
) -> None:
    node = start_serve(tmp_path / "a")
    started.append(node)
    node.wait_ready()
    admin = {"Authorization": f"Bearer {admin_token(node)}"}
    members: dict[str, dict[str, str]] = {}
    with httpx.Client(base_url=node.base, headers=admin) as api:
        for name in ("ana", "ben", "chloe"):
            added = api.post("/api/v1/members", json={"username": name, "joined_at": "2026-01-01"})
            assert added.status_code == 201, added.text
            token = api.post(f"/api/v1/members/{added.json()['id']}/tokens")
            members[name] = {"Authorization": f"Bearer {token.json()['token']}"}
    closes = datetime.now(UTC) + timedelta(minutes=10)
    spec = tmp_path / "proposal.json"
    spec.write_text(
        json.dumps(
            {
                "title": "Adopt the 2027 delivery tariff",
                "options": ["For", "Against", "Abstain"],
                "rule": "qualified",
                "threshold": "2/3",
                "quorum": "50%",
                "closes_at": closes.isoformat(),
            }
        )
    )
    opened = run_coopnode("proposals", "open", str(spec), "--data-dir", str(node.data_dir))
    assert opened.returncode == 0, opened.stderr
    key, state, uri = opened.stdout.strip().split("\t")
    assert state == "open"
    with httpx.Client(base_url=node.base) as client:
        for name, choice in (("ana", "For"), ("ben", "For"), ("chloe", "Against")):
            voted = client.post(
                f"/api/v1/proposals/{key}/votes", json={"choices": [choice]}, headers=members[name]
            )
            assert voted.status_code == 201, voted.text

    node.stop()  # down across the close, back an hour later
    node = start_serve(node.data_dir, node.port, env=AN_HOUR_LATER)
    started.append(node)
    node.wait_ready()

    deadline = time.monotonic() + 20
    with httpx.Client(base_url=node.base, headers=AS2) as client:
        while "closed" not in (doc := client.get(f"/proposals/{key}").json()):
            assert time.monotonic() < deadline, node.read_output()
            time.sleep(0.2)
        late = client.post(
            f"/api/v1/proposals/{key}/votes", json={"choices": ["For"]}, headers=members["chloe"]
        )
    assert doc["id"] == uri
    assert doc["closed"] > doc["endTime"]
    # Exactly two thirds for: "at least 2/3" passes (exact fractions, no rounding).
    assert doc["outcome"]["result"] == "passed"
    assert doc["outcome"]["reason"] == (
        "passed: 2 for, 1 against (66.7 % for); at least 2/3 needed"
    )
    assert late.status_code == 409
    shown = run_coopnode("proposals", "show", key, "--data-dir", str(node.data_dir))
    assert "outcome: passed: 2 for, 1 against" in shown.stdout, shown.stdout + shown.stderr
    listed = run_coopnode("proposals", "list", "--data-dir", str(node.data_dir))
    assert f"{key}\tclosed\t3 voters" in listed.stdout
    # Anyone can recount it: every ballot's proof checks against its member's key.
    audited = run_coopnode("audit", uri, "--allow-http")
    assert audited.returncode == 0, audited.stdout + audited.stderr
    assert "VERIFIED" in audited.stdout
    assert "3 with proofs verified" in audited.stdout, audited.stdout
