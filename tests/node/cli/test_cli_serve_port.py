"""``coopnode serve`` on a port another program holds: refused before anything is made.

A new local node is named after the address it serves (``127.0.0.1:PORT``); creating it
and then failing to listen would leave a data directory tied to a port it never
served. The port is tried first, with a real socket already listening on it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli import main
from node.cli.server import check_port_free


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 with another program listening on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield int(held.getsockname()[1])


def serve(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["serve", *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_a_new_node_on_a_busy_port_is_not_created(tmp_path: Path, busy_port: int) -> None:
    data = tmp_path / "node"

    code, output = serve("--port", str(busy_port), "--data-dir", str(data))

    assert code == 1
    assert f"port {busy_port} on 127.0.0.1 is in use" in output
    assert "--port" in output
    assert not data.exists()


def test_an_existing_node_on_a_busy_port_says_so_and_stays_as_it_was(
    tmp_path: Path, busy_port: int
) -> None:
    data = tmp_path / "node"
    init = CliRunner().invoke(
        main, ["init", "--domain", "a.example", "--name", "A", "--data-dir", str(data)]
    )
    assert init.exit_code == 0
    before = sorted(p.name for p in data.iterdir())

    code, output = serve("--port", str(busy_port), "--data-dir", str(data))

    assert code == 1
    assert "is in use" in output
    assert sorted(p.name for p in data.iterdir()) == before


def test_a_free_port_passes_the_check(tmp_path: Path) -> None:
    """The check lets a port go at once: the same port is free again right after."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    check_port_free("127.0.0.1", port)
    check_port_free("127.0.0.1", port)
