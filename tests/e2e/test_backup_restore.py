"""A node backed up while a peer's activities arrive and members vote, restored on a new
data directory and started again at the same address: it serves the same actor with
the same keys, offers, proposal, ballots and photo, and the peer keeps delivering to it.
On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from node.storage.database import Database
from node.storage.tables import ballots
from tests.e2e.test_offers_processes import offer
from tests.node.cli.test_cli_media import png
from tests.support.processes import ServeProcess, admin_token, run_coopnode, start_serve

pytestmark = pytest.mark.e2e

AS2 = {"Accept": "application/activity+json"}
VOTERS = 12


@pytest.fixture
def started() -> Iterator[list[ServeProcess]]:
    processes: list[ServeProcess] = []
    yield processes
    for process in reversed(processes):
        process.stop()


def ballot_ids(url: str) -> list[int]:
    db = Database(url, readers=1)
    try:
        return db.read_sync(
            lambda c: list(c.execute(select(ballots.c.id).order_by(ballots.c.id)).scalars())
        )
    finally:
        db.close()


def test_a_restored_node_is_the_same_node_and_peers_keep_delivering(
    tmp_path: Path, started: list[ServeProcess], database_factory: Callable[[str], str]
) -> None:
    source_url, target_url = database_factory("a"), database_factory("a2")
    env = {} if source_url.startswith("sqlite") else {"COOPNODE_DATABASE_URL": source_url}
    if source_url.startswith("sqlite"):  # each node's own file in its data directory
        source_url = f"sqlite:///{tmp_path / 'a' / 'coopnode.sqlite3'}"
        target_url = f"sqlite:///{tmp_path / 'a2' / 'coopnode.sqlite3'}"
    a, b = start_serve(tmp_path / "a", env=env), start_serve(tmp_path / "b")
    started += [a, b]
    a.wait_ready()
    b.wait_ready()
    admin = {"Authorization": f"Bearer {admin_token(a)}"}
    peer = {"Authorization": f"Bearer {admin_token(b)}"}
    members: list[dict[str, str]] = []
    with httpx.Client(base_url=a.base, headers=admin) as api:
        for n in range(VOTERS):
            added = api.post(
                "/api/v1/members", json={"username": f"m{n}", "joined_at": "2026-01-01"}
            )
            assert added.status_code == 201, added.text
            token = api.post(f"/api/v1/members/{added.json()['id']}/tokens").json()["token"]
            members.append({"Authorization": f"Bearer {token}"})
        own = api.post("/api/v1/offers", json=offer("Our own apples"))
        assert own.status_code == 201, own.text
    photo = tmp_path / "honey.png"
    photo.write_bytes(png())
    uploaded = run_coopnode("media", "upload", str(photo), "--data-dir", str(a.data_dir), env=env)
    assert uploaded.returncode == 0, uploaded.stderr
    photo_url = uploaded.stdout.split("\t")[1].strip()
    followed = run_coopnode(
        "follow", f"coop@127.0.0.1:{b.port}", "--data-dir", str(a.data_dir), env=env
    )
    assert followed.returncode == 0, followed.stderr + a.read_output()
    spec = tmp_path / "proposal.json"
    closes = datetime.now(UTC) + timedelta(minutes=30)
    spec.write_text(
        json.dumps(
            {"title": "New roof", "options": ["For", "Against"], "closes_at": closes.isoformat()}
        )
    )
    opened = run_coopnode("proposals", "open", str(spec), "--data-dir", str(a.data_dir), env=env)
    assert opened.returncode == 0, opened.stderr
    key = opened.stdout.split("\t")[0]

    # While the backup runs: the peer publishes offers (delivered to a) and members vote.
    stop, voted, published = threading.Event(), [], []

    def traffic() -> None:
        with (
            httpx.Client(base_url=b.base, headers=peer) as remote,
            httpx.Client(base_url=a.base) as local,
        ):
            for n, member in enumerate(members):
                if stop.is_set():
                    return
                got = remote.post("/api/v1/offers", json=offer(f"Peer pears {n}"))
                published.append(got.status_code)
                vote = local.post(
                    f"/api/v1/proposals/{key}/votes", json={"choices": ["For"]}, headers=member
                )
                voted.append(vote.status_code)
                time.sleep(0.05)

    before = {
        "actor": httpx.get(f"{a.base}/actors/coop", headers=AS2).json(),
        "proposal": httpx.get(f"{a.base}/proposals/{key}", headers=AS2).json(),
        "outbox": httpx.get(f"{a.base}/actors/coop/outbox?page=true", headers=AS2).json(),
    }
    worker = threading.Thread(target=traffic)
    worker.start()
    time.sleep(0.5)
    archive = tmp_path / "backups" / "a.tar.gz"
    try:
        backed_up = run_coopnode("backup", str(archive), "--data-dir", str(a.data_dir), env=env)
        cast_before_stop = len(voted)
    finally:
        stop.set()
        worker.join()
    assert backed_up.returncode == 0, backed_up.stderr
    assert set(voted) == {201}
    assert set(published) == {201}
    a.stop()
    a_ballots = ballot_ids(source_url)

    restored_dir = tmp_path / "a2"
    extra = [] if env == {} else ["--database-url", target_url]
    restored = run_coopnode("restore", str(archive), "--data-dir", str(restored_dir), *extra)
    assert restored.returncode == 0, restored.stderr
    a2 = start_serve(restored_dir, a.port)
    started.append(a2)
    a2.wait_ready()

    # The same actor and keys, offers, proposal, and ballots as far as the backup saw.
    assert httpx.get(f"{a2.base}/actors/coop", headers=AS2).json() == before["actor"]
    proposal = httpx.get(f"{a2.base}/proposals/{key}", headers=AS2).json()
    live = ("oneOf", "votersCount", "updated")  # the running counts, and when they changed
    assert {k: v for k, v in proposal.items() if k not in live} == {
        k: v for k, v in before["proposal"].items() if k not in live
    }
    outbox = httpx.get(f"{a2.base}/actors/coop/outbox?page=true", headers=AS2).json()
    assert [i["id"] for i in outbox["orderedItems"]] == [
        i["id"] for i in before["outbox"]["orderedItems"]
    ]
    offers_before = [
        i["object"] for i in before["outbox"]["orderedItems"] if "Question" not in str(i["object"])
    ]
    assert offers_before
    for item in offers_before:
        served = httpx.get(item["id"], headers=AS2).json()
        assert {k: v for k, v in served.items() if k != "@context"} == item
    assert httpx.get(photo_url.replace("https://", "http://")).content == png()
    kept = ballot_ids(target_url)
    assert 0 < len(kept) <= cast_before_stop
    assert kept == a_ballots[: len(kept)]
    with tarfile.open(archive) as tar:
        manifest: Any = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert manifest["counts"]["ballots"] == len(kept)
    # Members' tokens still work: one whose vote the backup missed votes again.
    with httpx.Client(base_url=a2.base) as local:
        again = local.post(
            f"/api/v1/proposals/{key}/votes", json={"choices": ["Against"]}, headers=members[-1]
        )
    assert again.status_code in (201, 409), again.text

    # The peer keeps delivering: a new offer from b reaches the restored node.
    new = tmp_path / "honey.json"
    new.write_text(json.dumps({**offer("Lavender honey"), "categories": ["honey"]}))
    assert run_coopnode("offers", "create", str(new), "--data-dir", str(b.data_dir)).returncode == 0
    deadline = time.monotonic() + 20
    while "Lavender honey" not in (
        hits := run_coopnode("catalogue", "search", "honey", "--data-dir", str(restored_dir)).stdout
    ):
        assert time.monotonic() < deadline, hits + a2.read_output() + b.read_output()
        time.sleep(0.3)
