"""``--log-format json``: one JSON object a line, from ``coopnode serve`` (the server's
lines included) and ``coopnode worker``, whose metrics a scraper reads on its own port."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from node.logs import JsonFormatter
from tests.support.postgres import PostgresCluster
from tests.support.processes import (
    ROOT,
    coopnode_command,
    free_port,
    process_env,
    run_coopnode,
    start_serve,
    stop_process,
)


def json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_a_record_is_one_line_of_json_with_its_traceback() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("coopnode.test.logs")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("delivery to %s failed", "peer.example")
        try:
            raise ValueError("the peer said «non»")
        except ValueError:
            log.exception("round failed")
    finally:
        log.removeHandler(handler)

    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["level"] == "WARNING"
    assert first["logger"] == "coopnode.test.logs"
    assert first["message"] == "delivery to peer.example failed"
    assert first["time"].endswith("+00:00")
    assert "exception" not in first
    assert second["message"] == "round failed"
    assert second["exception"].startswith("Traceback")
    assert "ValueError: the peer said «non»" in second["exception"]


def test_serve_writes_json_lines_for_its_own_and_the_servers_records(tmp_path: Path) -> None:
    served = start_serve(tmp_path / "node", None, "--log-format", "json", "--access-log")
    try:
        served.wait_ready()
        httpx.get(served.base + "/.well-known/nodeinfo", timeout=5)
    finally:
        served.stop()

    output = served.read_output()
    records = json_lines(output)
    loggers = {record["logger"] for record in records}
    assert {"uvicorn.error", "uvicorn.access"} <= loggers, output
    assert all(set(r) >= {"time", "level", "logger", "message"} for r in records)
    assert any("Application startup complete" in r["message"] for r in records)
    # uvicorn's own text format ("INFO:     ...") is gone.
    assert not any(line.startswith(("INFO:", "WARNING:")) for line in output.splitlines())


def _postgres_selected() -> bool:
    # The suite's backend selection (tests/conftest.py): COOPNODE_TEST_BACKENDS.
    chosen = os.environ.get("COOPNODE_TEST_BACKENDS", "sqlite,postgres").split(",")
    return "postgres" in {b.strip() for b in chosen}


def test_a_worker_logs_json_and_shows_its_metrics_on_its_port(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if not _postgres_selected():
        pytest.skip("COOPNODE_TEST_BACKENDS leaves PostgreSQL out")
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    env = {"COOPNODE_DATABASE_URL": cluster.create_database()}
    data = tmp_path / "node"
    made = run_coopnode(
        "init", "--domain", "coop.test", "--name", "Co-op", "--data-dir", str(data), env=env
    )
    assert made.returncode == 0, made.stderr
    port = free_port()
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *coopnode_command(),
                *("worker", "--log-format", "json", "--metrics-port", str(port)),
                *("--data-dir", str(data)),
            ],
            cwd=ROOT,
            env=process_env(env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while "coopnode worker:" not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.05)
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    finally:
        stop_process(process)

    records = json_lines(log.read_text())
    assert any(r["message"].startswith("coopnode worker:") for r in records), log.read_text()
    assert all(r["logger"] and r["level"] for r in records)
    assert scraped.status_code == 200
    assert "coopnode_deliveries_total" in scraped.text
