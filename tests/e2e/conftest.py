"""Fixtures of the end-to-end tests: real ``coopnode serve`` processes on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import ServeProcess, start_serve


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[tuple[ServeProcess, ServeProcess]]:
    a = start_serve(tmp_path / "a")
    b = start_serve(tmp_path / "b")
    try:
        a.wait_ready()
        b.wait_ready()
        yield a, b
    finally:
        a.stop()
        b.stop()
