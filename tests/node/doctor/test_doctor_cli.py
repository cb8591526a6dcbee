"""``coopnode doctor`` on a local node, run as an admin runs it: against a real
``coopnode serve``, a stopped one, an outdated schema, a clock that drifted."""

from __future__ import annotations

import json
import re
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from node.settings import load_settings
from node.storage import migrate
from node.storage.engine import create_null_pool_engine
from node.storage.tables import domains
from tests.support.postgres import PostgresCluster
from tests.support.processes import (
    ServeProcess,
    coopnode_command,
    process_env,
    run_coopnode,
    start_serve,
    stop_process,
)


def doctor(
    data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    done = run_coopnode("doctor", "--json", "--data-dir", str(data_dir), *args, env=env)
    assert done.stderr == "", done.stderr
    return done.returncode, json.loads(done.stdout)


def levels(report: dict[str, Any]) -> dict[str, str]:
    return {f["check"]: f["level"] for f in report["findings"]}


def finding(report: dict[str, Any], check: str) -> dict[str, Any]:
    (found,) = [f for f in report["findings"] if f["check"] == check]
    return found


@pytest.fixture
def serving(tmp_path: Path) -> Any:
    node = start_serve(tmp_path / "node")
    try:
        node.wait_ready()
        yield node
    finally:
        node.stop()


def test_a_healthy_local_node_is_all_well(serving: ServeProcess) -> None:
    code, report = doctor(serving.data_dir)

    assert code == 0, report
    assert report["healthy"] is True
    assert levels(report) == {
        "schema": "ok",
        "disk": "ok",
        "permissions": "ok",
        "workers": "ok",
        "queues": "ok",
        "peers": "ok",
        "email": "ok",  # off, and nothing waits for it
        "clock": "skipped",  # no peer yet
        "tls": "skipped",  # http on one machine
        "webfinger": "ok",
        "actor": "ok",
        "proxy": "ok",
        "proxy host": "ok",
        "body limit": "ok",
    }
    assert "all 10 loops ran" in finding(report, "workers")["summary"]
    assert "10551296 bytes" in finding(report, "body limit")["summary"]


def test_the_text_report_ends_with_its_verdict(serving: ServeProcess) -> None:
    done = run_coopnode("doctor", "--data-dir", str(serving.data_dir))

    assert done.returncode == 0, done.stdout
    assert done.stdout.splitlines()[-1] == "All is well."
    assert any(line.startswith("ok       webfinger") for line in done.stdout.splitlines())


def test_a_data_directory_open_to_others_is_a_warning_not_a_failure(
    serving: ServeProcess,
) -> None:
    serving.data_dir.chmod(0o755)

    code, report = doctor(serving.data_dir, "--no-public")

    assert code == 0
    permissions = finding(report, "permissions")
    assert permissions["level"] == "warning"
    assert "open to other users" in permissions["summary"]
    assert permissions["advice"] == f"chmod 700 {serving.data_dir}"
    assert finding(report, "public URL")["level"] == "skipped"


def test_a_strangers_probe_is_refused_before_its_body_is_read(serving: ServeProcess) -> None:
    url = f"{serving.base}/doctor/probe/{'x' * 43}"

    assert httpx.get(url).status_code == 404
    # A body larger than any the node takes: refused at once, not read.
    refused = httpx.post(url, content=b"\0" * (11 << 20), timeout=30)
    assert refused.status_code == 404
    assert httpx.get(f"{serving.base}/doctor/probe/{'y' * 65}").status_code == 404


def test_a_stopped_node_is_said_so(tmp_path: Path) -> None:
    node = start_serve(tmp_path / "node")
    node.wait_ready()
    node.stop()

    # Ten minutes later, as the doctor's clock has it: the loops stopped beating.
    code, report = doctor(node.data_dir, env={"COOPNODE_CLOCK_OFFSET": "600"})

    assert code == 1
    workers = finding(report, "workers")
    assert workers["level"] == "problem"
    assert "inbox last ran 10 min ago" in workers["summary"]
    webfinger = finding(report, "webfinger")
    assert webfinger["level"] == "problem"
    assert webfinger["summary"].startswith(f"nothing answers at {node.base}/.well-known/webfinger")
    assert [finding(report, c)["level"] for c in ("actor", "proxy", "body limit")] == [
        "skipped"
    ] * 3


def test_an_outdated_schema_is_a_problem_and_the_rest_waits(tmp_path: Path) -> None:
    data = tmp_path / "node"
    assert (
        run_coopnode(
            "init", "--domain", "a.example", "--name", "A", "--data-dir", str(data)
        ).returncode
        == 0
    )
    engine = create_null_pool_engine(load_settings(data).database_url)
    migrate.upgrade_or_downgrade(engine, "0014")
    engine.dispose()

    code, report = doctor(data)

    assert code == 1
    schema = finding(report, "schema")
    assert schema["level"] == "problem"
    assert f"revision 0014, older than this coopnode's {migrate.HEAD_REVISION}" in schema["summary"]
    assert "coopnode migrate" in schema["advice"]
    assert {finding(report, c)["level"] for c in ("workers", "queues", "clock", "public URL")} == {
        "skipped"
    }


def test_the_clock_is_compared_with_a_peers(tmp_path: Path) -> None:
    here = start_serve(tmp_path / "here")
    peer = start_serve(tmp_path / "peer")
    try:
        here.wait_ready()
        peer.wait_ready()
        # The peer took a delivery an hour ago: the doctor asks it the time.
        engine = create_null_pool_engine(load_settings(here.data_dir).database_url)
        with engine.begin() as conn:
            conn.execute(
                insert(domains).values(
                    host=f"127.0.0.1:{peer.port}",
                    policy="",
                    reason="",
                    unavailable=0,
                    last_success_at=datetime.now(UTC),
                    updated_at=datetime.now(UTC),
                )
            )
        engine.dispose()

        code, report = doctor(here.data_dir, "--no-public")
        assert code == 0, report
        clock = finding(report, "clock")
        assert clock["level"] == "ok"
        assert f"127.0.0.1:{peer.port}" in clock["summary"]

        # This machine's clock as the node signs by it, ten minutes behind.
        code, report = doctor(here.data_dir, "--no-public", env={"COOPNODE_CLOCK_OFFSET": "-600"})
        assert code == 1
        clock = finding(report, "clock")
        assert clock["level"] == "problem"
        behind = re.search(r"this machine's clock is (\d+) s behind the peers", clock["summary"])
        assert behind, clock["summary"]
        assert 598 <= int(behind.group(1)) <= 602
    finally:
        here.stop()
        peer.stop()


def test_on_postgresql_the_workers_heartbeats_come_from_their_own_process(
    tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    data = tmp_path / "node"
    url = postgres_cluster.create_database()
    init = ("init", "--domain", "a.example", "--name", "A", "--data-dir", str(data))
    assert run_coopnode(*init, "--database-url", url).returncode == 0
    web = start_serve(data, None, "--no-workers")
    worker: subprocess.Popen[bytes] | None = None
    try:
        web.wait_ready()

        code, report = doctor(data, "--no-public")

        assert code == 1
        workers = finding(report, "workers")
        assert workers["summary"].startswith("no background loop has ever run")
        assert "`coopnode worker`" in workers["advice"]

        with (tmp_path / "worker.log").open("wb") as log:
            worker = subprocess.Popen(
                [*coopnode_command(), "worker", "--data-dir", str(data)],
                env=process_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while True:
            code, report = doctor(data, "--no-public")
            if code == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)

        assert code == 0, report
        assert f"(process {worker.pid} on " in finding(report, "workers")["summary"]
    finally:
        if worker is not None:
            stop_process(worker)  # type: ignore[arg-type]
        web.stop()
